"""Finding pg_dump and pg_restore of a major version that suits a server or an archive.

pg_dump refuses to dump a server newer than itself, and pg_restore cannot read archives written
by a newer pg_dump, so the right binary depends on the server. Folders are searched in order:
``KAREN_PG_BIN_DIR``, ``PATH``, the Debian and Red Hat package folders, then the binaries of the
embedded server from PyPI. The first binary of exactly the needed major version wins; failing
that, the oldest newer one.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import logging
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from karen_ops.errors import ToolNotFoundError
from karen_ops.settings import PG_BIN_DIR

log = logging.getLogger(__name__)

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_PACKAGE_FOLDERS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")


@dataclass(frozen=True, order=True)
class PgTool:
    """One PostgreSQL client binary and the version it reports."""

    major: int
    minor: int
    path: Path

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.path.name} {self.version} ({self.path})"


def find_tool(name: str, needed_major: int, *, bin_dir: str | None = None) -> PgTool:
    """The best ``name`` binary for PostgreSQL ``needed_major``, or a ToolNotFoundError."""
    if bin_dir and not (Path(bin_dir).expanduser() / name).is_file():
        raise ToolNotFoundError(
            f"{PG_BIN_DIR}={bin_dir} holds no {name}; point it at a PostgreSQL bin folder "
            "or unset it to search PATH and the usual package folders"
        )
    found = list_tools(name, bin_dir=bin_dir)
    exact = [tool for tool in found if tool.major == needed_major]
    if exact:
        return exact[0]

    newer = sorted((tool for tool in found if tool.major > needed_major), key=lambda t: t.major)
    if newer:
        return newer[0]

    seen = ", ".join(str(tool) for tool in found) or "none"
    raise ToolNotFoundError(
        f"no {name} of PostgreSQL {needed_major} or newer was found (found: {seen}); "
        f"install the PostgreSQL {needed_major} client tools or set {PG_BIN_DIR} "
        f"to a folder holding {name} {needed_major}"
    )


def list_tools(name: str, *, bin_dir: str | None = None) -> list[PgTool]:
    """Every distinct ``name`` binary in search order, each with its version."""
    tools: list[PgTool] = []
    seen: set[Path] = set()
    for folder in _search_folders(bin_dir):
        candidate = folder / name
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            continue
        real = candidate.resolve()
        if real in seen:
            continue
        seen.add(real)
        tool = _probe(str(candidate))
        if tool is not None:
            tools.append(tool)
    return tools


def _search_folders(bin_dir: str | None) -> list[Path]:
    folders = [Path(bin_dir).expanduser()] if bin_dir else []
    folders += [Path(entry) for entry in os.environ.get("PATH", "").split(os.pathsep) if entry]
    for pattern in _PACKAGE_FOLDERS:
        # Newest first, so that a newer package folder is tried before an older one.
        folders += sorted((Path(p) for p in glob.glob(pattern)), reverse=True)
    embedded = embedded_bin_dir()
    if embedded is not None:
        folders.append(embedded)
    return folders


def embedded_bin_dir() -> Path | None:
    """The bin folder of the embedded PostgreSQL from PyPI, when that package is installed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=64)
def _probe(path: str) -> PgTool | None:
    try:
        completed = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("skipping PostgreSQL tool path=%s reason=%s", path, exc)
        return None
    match = _VERSION.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        log.warning("skipping PostgreSQL tool path=%s reason=unreadable version", path)
        return None
    return PgTool(int(match.group(1)), int(match.group(2) or 0), Path(path))


def describe_exit(tool: str, returncode: int, output: str = "") -> str:
    """How a failed client tool ended, in words, with what it wrote if anything."""
    if returncode < 0:
        # subprocess reports death by a signal as the negated signal number.
        ended = f"{tool} was killed by signal {-returncode} ({_signal_name(-returncode)})"
    else:
        ended = f"{tool} exited with status {returncode}"
    return f"{ended}: {output}" if output else ended


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
