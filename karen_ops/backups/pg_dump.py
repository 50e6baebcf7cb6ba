"""A running pg_dump child: its output pipe, its stderr kept on disk, and a clean stop."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import IO

from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import PgTool

# Keep at most this much of pg_dump's stderr for an error message.
STDERR_TAIL_BYTES = 8192


class PgDumpProcess:
    """pg_dump writing an uncompressed custom-format archive of one snapshot to a pipe."""

    def __init__(
        self, tool: PgTool, source: ConnInfo, snapshot: str, lock_wait_timeout_seconds: int
    ) -> None:
        argv = [
            str(tool.path),
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            f"--lock-wait-timeout={lock_wait_timeout_seconds}s",
            f"--dbname={source.public_dsn()}",
        ]
        # stderr goes to a file, not a pipe: a chatty pg_dump can never block on it.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close)
        env = {**os.environ, **source.tool_environment()}
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr, env=env)

    @property
    def stdout(self) -> IO[bytes]:
        assert self._process.stdout is not None
        return self._process.stdout

    def wait(self) -> int:
        return self._process.wait()

    def stderr_tail(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - STDERR_TAIL_BYTES))
        return self._stderr.read().decode(errors="replace").strip()

    def close(self) -> None:
        """Kill pg_dump if it still runs, and release its pipes."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.stdout.close()
        self._stderr.close()
