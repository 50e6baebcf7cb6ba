"""Running a pipeline of processes and measuring it: wall time, CPU time, peak memory.

CPU time is the user and system time of every process the pipeline started, read from the
kernel's accounting of reaped children (so grandchildren, such as the pg_dump that a Python
backup process starts, are included). Peak memory is the largest sum of resident set sizes over
the whole process tree, sampled every few milliseconds while it runs. The PostgreSQL server
backend that serves pg_dump is not a child of the benchmark, so neither its CPU time nor its
memory is included; it is the same for every variant of a comparison.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

SAMPLE_SECONDS = 0.02
MIB = 1024 * 1024


class PipelineError(RuntimeError):
    """A measured command exited with a non-zero status."""


@dataclass(frozen=True)
class Sample:
    """One measured run."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    output: bytes = b""


@dataclass
class Series:
    """Several runs of the same thing, and the facts that do not vary between them."""

    samples: list[Sample] = field(default_factory=list)
    stored_bytes: int | None = None

    @property
    def wall(self) -> float:
        return statistics.median(s.wall_seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_seconds for s in self.samples)

    @property
    def peak_rss(self) -> int:
        return int(statistics.median(s.peak_rss_bytes for s in self.samples))

    @property
    def walls(self) -> list[float]:
        return [s.wall_seconds for s in self.samples]


class _PeakSampler(threading.Thread):
    """Polls the resident set size of a set of processes and all their descendants."""

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__(daemon=True)
        self.roots = [psutil.Process(pid) for pid in pids]
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self.stopped.wait(SAMPLE_SECONDS)

    def _tree_rss(self) -> int:
        total = 0
        for root in self.roots:
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for member in members:
                try:
                    total += member.memory_info().rss
                except psutil.Error:
                    continue  # exited between listing and reading
        return total

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def run_pipeline(
    commands: Sequence[Sequence[str]],
    *,
    stdin: Path | None = None,
    stdout: Path | None = None,
    capture: bool = False,
    env: dict[str, str] | None = None,
) -> Sample:
    """Run ``commands`` connected by pipes, like a shell pipeline, and measure them together.

    The first reads ``stdin`` (or nothing), the last writes to ``stdout`` (or /dev/null, or a
    captured buffer when ``capture``). Any non-zero exit raises PipelineError.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with _open(stdin, "rb") as first_in, _open(stdout, "wb") as last_out:
        processes, stderr_files = _start(commands, first_in, last_out, capture, env)
        sampler = _PeakSampler([p.pid for p in processes])
        sampler.start()
        output = processes[-1].stdout.read() if capture else b""  # type: ignore[union-attr]
        codes = [p.wait() for p in processes]
        peak = sampler.stop()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    errors = []
    for stderr in stderr_files:
        stderr.seek(0)
        errors.append(stderr.read().decode(errors="replace"))
        stderr.close()
    outcomes = zip(commands, codes, errors, strict=True)
    failed = [(argv, code, err) for argv, code, err in outcomes if code != 0]
    if failed:
        argv, code, err = failed[0]
        raise PipelineError(f"{argv[0]} exited with status {code}: {err.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, peak, output)


def _start(
    commands: Sequence[Sequence[str]],
    first_in: IO[bytes] | None,
    last_out: IO[bytes] | None,
    capture: bool,
    env: dict[str, str] | None,
) -> tuple[list[subprocess.Popen[bytes]], list[IO[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    stderr_files: list[IO[bytes]] = []
    upstream: IO[bytes] | int | None = first_in or subprocess.DEVNULL
    for index, argv in enumerate(commands):
        last = index == len(commands) - 1
        out: IO[bytes] | int | None = subprocess.PIPE
        if last:
            out = subprocess.PIPE if capture else (last_out or subprocess.DEVNULL)
        # stderr to a temporary file, so a chatty command can never block on a full pipe.
        stderr_files.append(tempfile.TemporaryFile())  # noqa: SIM115 (closed after the run)
        process = subprocess.Popen(
            list(argv),
            stdin=upstream,
            stdout=out,
            stderr=stderr_files[-1],
            env={**os.environ, **(env or {})},
        )
        if processes and processes[-1].stdout is not None:
            processes[-1].stdout.close()  # the child holds its own copy of the pipe
        upstream = process.stdout
        processes.append(process)
    return processes, stderr_files


class _open:
    """Open ``path`` when given; a no-op context otherwise."""

    def __init__(self, path: Path | None, mode: str) -> None:
        self.path, self.mode, self.file = path, mode, None

    def __enter__(self) -> IO[bytes] | None:
        if self.path is not None:
            self.file = self.path.open(self.mode)
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
