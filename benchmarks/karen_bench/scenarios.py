"""What is measured: the scripts being replaced, the hardware's ceiling, and karen-ops.

Each function runs one variant ``repeat`` times and returns its Series. Command lines are
argument lists; connection secrets reach the PostgreSQL tools through their environment only.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from karen_bench.dataset import scratch_database
from karen_bench.measure import Sample, Series, run_pipeline
from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.pg_tools import PgTool, find_tool
from karen_ops.settings import DATABASE_URL

CHILD = Path(__file__).with_name("child.py")


@dataclass(frozen=True)
class Tools:
    """The PostgreSQL client programs of the server's major version."""

    pg_dump: PgTool
    pg_restore: PgTool
    psql: Path

    @classmethod
    def find(cls, major: int, bin_dir: str | None) -> Tools:
        pg_dump = find_tool("pg_dump", major, bin_dir=bin_dir)
        pg_restore = find_tool("pg_restore", major, bin_dir=bin_dir)
        psql = pg_dump.path.with_name("psql")
        return cls(pg_dump, pg_restore, psql if psql.exists() else Path("psql"))


def _tool_args(url: str) -> tuple[str, dict[str, str]]:
    info = ConnInfo.parse(url, setting=DATABASE_URL)
    return f"--dbname={info.public_dsn()}", info.tool_environment()


def script_backup(tools: Tools, source: str, work: Path, repeat: int) -> tuple[Series, Path]:
    """The script being replaced: plain-SQL pg_dump piped through gzip (level 6) to a file."""
    dbname, env = _tool_args(source)
    target = work / "script.sql.gz"
    series = Series()
    for _ in range(repeat):
        series.samples.append(
            run_pipeline([[str(tools.pg_dump.path), dbname], ["gzip"]], stdout=target, env=env)
        )
    series.stored_bytes = target.stat().st_size
    return series, target


def ceiling_backup(tools: Tools, source: str, repeat: int) -> Series:
    """What the hardware allows: an uncompressed custom-format pg_dump to /dev/null."""
    dbname, env = _tool_args(source)
    argv = [str(tools.pg_dump.path), "--format=custom", "--compress=0", dbname]
    return Series([run_pipeline([argv], env=env) for _ in range(repeat)])


def parallel_ceiling_backup(tools: Tools, source: str, work: Path, repeat: int) -> Series:
    """An uncompressed directory-format pg_dump with two jobs, written to local disk."""
    dbname, env = _tool_args(source)
    series = Series()
    for _ in range(repeat):
        target = work / "parallel.dir"
        shutil.rmtree(target, ignore_errors=True)
        argv = [str(tools.pg_dump.path), "--format=directory", "--compress=0", "--jobs=2"]
        series.samples.append(run_pipeline([[*argv, f"--file={target}", dbname]], env=env))
        series.stored_bytes = sum(f.stat().st_size for f in target.iterdir())
        shutil.rmtree(target)
    return series


def raw_archive(tools: Tools, source: str, work: Path) -> Path:
    """An uncompressed custom-format archive on disk, for the raw pg_restore (not measured)."""
    dbname, env = _tool_args(source)
    target = work / "raw.dump"
    argv = [str(tools.pg_dump.path), "--format=custom", "--compress=0", f"--file={target}"]
    run_pipeline([[*argv, dbname]], env=env)
    return target


def karen_backup(
    source: str, store: Path, repeat: int, *, level: int | None = None, threads: int | None = None
) -> tuple[Series, Path]:
    """karen-ops' take_backup into a FileStore; returns the series and the last manifest.

    Wall and CPU time are the backup's own (reported by the child, without its interpreter
    start-up); peak memory is the child's whole process tree, start-up included.
    """
    argv = [sys.executable, str(CHILD), "backup", f"--source={source}", f"--store={store}"]
    argv += [] if level is None else [f"--level={level}"]
    argv += [] if threads is None else [f"--threads={threads}"]
    series = Series()
    manifest_path = store.parent / f"{store.name}-manifest.json"
    for _ in range(repeat):
        shutil.rmtree(store, ignore_errors=True)
        sample = run_pipeline([argv], capture=True)
        report = json.loads(sample.output)
        series.samples.append(_own_timing(sample, report["timing"]))
        series.stored_bytes = report["manifest"]["size_bytes"]
        manifest_path.write_text(json.dumps(report["manifest"]))
    return series, manifest_path


def script_restore(tools: Tools, server: str, dump: Path, repeat: int) -> Series:
    """The script being replaced: gunzip piped into psql, into an empty database."""
    series = Series()
    for _ in range(repeat):
        with scratch_database(server, "restore") as target:
            dbname, env = _tool_args(target)
            psql = [str(tools.psql), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", dbname]
            series.samples.append(run_pipeline([["gunzip", "--stdout", str(dump)], psql], env=env))
    return series


def raw_restore(tools: Tools, server: str, archive: Path, repeat: int, jobs: int = 2) -> Series:
    """pg_restore --jobs of an uncompressed archive already on local disk."""
    series = Series()
    for _ in range(repeat):
        with scratch_database(server, "restore") as target:
            dbname, env = _tool_args(target)
            argv = [str(tools.pg_restore.path), f"--jobs={jobs}", "--exit-on-error"]
            argv += ["--no-owner", "--no-privileges", dbname, str(archive)]
            series.samples.append(run_pipeline([argv], env=env))
    return series


def karen_verify(
    source: str,
    server: str,
    store: Path,
    manifest: Path,
    repeat: int,
    jobs: int = 2,
    work: Path | None = None,
) -> Series:
    """karen-ops' verify_backup: fetch, checksum, decompress, pg_restore --jobs, exact counts.

    Without ``work`` verify_backup chooses where the decompressed archive goes, as in a run.
    """
    argv = [sys.executable, str(CHILD), "verify", f"--source={source}"]
    argv += [f"--verify-server={server}", f"--store={store}", f"--manifest={manifest}"]
    argv += [f"--jobs={jobs}"] + ([f"--work-dir={work}"] if work else [])
    series = Series()
    for _ in range(repeat):
        sample = run_pipeline([argv], capture=True)
        report = json.loads(sample.output)
        series.samples.append(_own_timing(sample, report["timing"]))
    return series


def definitions_load(repeat: int) -> Series:
    """A fresh interpreter importing karen_ops.definitions and resolving its repository."""
    code = "import karen_ops.definitions as m; m.defs.get_repository_def()"
    return Series([run_pipeline([[sys.executable, "-c", code]]) for _ in range(repeat)])


def _own_timing(sample: Sample, timing: dict[str, float]) -> Sample:
    return Sample(timing["wall_seconds"], timing["cpu_seconds"], sample.peak_rss_bytes)
