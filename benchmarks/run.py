"""Benchmark karen-ops against the scripts it replaces and against the machine's ceiling.

    python benchmarks/run.py [--size-gb 1] [--repeat 3] [--skip-large] [--skip-growth]

Generates a synthetic AI Karen database of the chosen size on the server named by --server,
then measures side by side: backup (pg_dump | gzip, an uncompressed custom-format pg_dump to
/dev/null, karen-ops' take_backup), restore (gunzip | psql, pg_restore -j 2 of an uncompressed
archive, karen-ops' verify_backup), the backup's peak memory at four times the size, the
growth backfill (benchmarks/growth_backfill.py), and the cold load of karen_ops.definitions.
Prints a table and writes docs/BENCHMARKS.md. Databases are named bench_* and dropped at the
end; files go to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from karen_bench import scenarios
from karen_bench.dataset import loaded_dataset, maintenance_url, server_version
from karen_bench.document import markdown, terminal
from karen_bench.growth import run_growth_backfill
from karen_bench.report import Results, machine_details
from karen_bench.scenarios import Tools

from karen_ops.resources.conninfo import ConnInfo
from karen_ops.resources.postgres import connect, server_major
from karen_ops.settings import DATABASE_URL

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> int:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = maintenance_url(args.server)
    work = Path(tempfile.mkdtemp(prefix="bench_", dir=args.work_dir))
    try:
        results = _run(args, server, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(terminal(results))
    if args.output:
        Path(args.output).write_text(markdown(results))
        print(f"\nwrote {args.output}")
    return 0


def _run(args: argparse.Namespace, server: str, work: Path) -> Results:
    with connect(ConnInfo.parse(server, setting=DATABASE_URL), setting=DATABASE_URL) as conn:
        major = server_major(conn)
    tools = Tools.find(major, args.bin_dir)
    machine = machine_details(work, server_version(server), tools.pg_dump.version)
    repeat = args.repeat
    target = int(args.size_gb * 1e9)
    load = [_load_average()]

    _say(f"loading about {args.size_gb} GB of synthetic AI Karen data")
    with loaded_dataset(server, target, "data") as data:
        results = Results(machine, _command(args), data, repeat)
        _say(f"loaded {data.database_bytes / 2**20:.0f} MiB in {data.load_seconds:.0f} s")
        script_file, manifest = _backups(results, tools, data.url, work, args.experiments)
        _restores(results, tools, data.url, server, work, (script_file, manifest), args.experiments)

    if not args.skip_large:
        _say(f"loading about {4 * args.size_gb} GB for the memory comparison")
        with loaded_dataset(server, 4 * target, "large") as large:
            _say(f"loaded {large.database_bytes / 2**20:.0f} MiB; backing it up")
            series, _ = scenarios.karen_backup(large.url, work / "store-large", repeat)
            results.large = (large, series)
            shutil.rmtree(work / "store-large", ignore_errors=True)

    if not args.skip_growth:
        _say("running benchmarks/growth_backfill.py")
        results.growth = run_growth_backfill(server, args.growth_users, repeat)
    _say("timing the cold load of karen_ops.definitions")
    results.definitions = scenarios.definitions_load(args.definitions_runs)
    load.append(_load_average())
    results.load_average = load
    return results


def _backups(
    results: Results, tools: Tools, source: str, work: Path, experiments: bool
) -> tuple[Path, Path]:
    """Measure every backup; return the script's dump and karen-ops' manifest for restores."""
    repeat = results.repeat
    _say("backup: pg_dump | gzip")
    results.backup["script"], script_file = scenarios.script_backup(tools, source, work, repeat)
    _say("backup: uncompressed custom-format pg_dump to /dev/null")
    results.backup["ceiling"] = scenarios.ceiling_backup(tools, source, repeat)
    _say("backup: karen-ops take_backup")
    store = work / "store"
    results.backup["karen-ops"], _ = scenarios.karen_backup(source, work / "trial", repeat)
    if experiments:
        for label, level, threads in [
            ("zstd level 3", 3, None),
            ("zstd level 6", 6, None),
            ("zstd level 3, 1 worker thread", 3, 1),
            ("zstd level 3, no worker thread", 3, 0),
        ]:
            _say(f"backup experiment: {label}")
            key = f"experiment: karen-ops, {label}"
            results.backup[key], _ = scenarios.karen_backup(
                source, work / "trial", repeat, level=level, threads=threads
            )
        _say("backup experiment: parallel pg_dump, directory format, 2 jobs")
        results.backup["experiment: pg_dump -Fd -j 2 -Z 0 to disk"] = (
            scenarios.parallel_ceiling_backup(tools, source, work, repeat)
        )
    shutil.rmtree(work / "trial", ignore_errors=True)
    # The archive that the verification reads, taken with the default settings.
    _, manifest = scenarios.karen_backup(source, store, 1)
    return script_file, manifest


def _restores(
    results: Results,
    tools: Tools,
    source: str,
    server: str,
    work: Path,
    backups: tuple[Path, Path],
    experiments: bool,
) -> None:
    repeat = results.repeat
    script_file, manifest = backups
    _say("restore: gunzip | psql")
    results.restore["script"] = scenarios.script_restore(tools, server, script_file, repeat)
    raw = scenarios.raw_archive(tools, source, work)
    _say("restore: pg_restore -j 2 of an uncompressed archive")
    results.restore["raw"] = scenarios.raw_restore(tools, server, raw, repeat)
    raw.unlink()
    _say("restore: karen-ops verify_backup")

    def verify(jobs: int, on_disk: bool = False) -> scenarios.Series:
        where = work if on_disk else None
        return scenarios.karen_verify(
            source, server, work / "store", manifest, repeat, jobs=jobs, work=where
        )

    results.restore["karen-ops"] = verify(2)
    if experiments:
        for jobs in (1, 4):
            _say(f"restore experiment: verify_backup with {jobs} pg_restore job(s)")
            results.restore[f"experiment: karen-ops, --jobs {jobs}"] = verify(jobs)
        _say("restore experiment: verify_backup decompressing to disk")
        results.restore["experiment: karen-ops, archive decompressed to disk"] = verify(2, True)


def _load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _command(args: argparse.Namespace) -> str:
    argv = ["python", "benchmarks/run.py", *sys.argv[1:]]
    return shlex.join(argv)


def _say(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="libpq URL of a maintenance database; bench_* databases are created beside it",
    )
    parser.add_argument("--size-gb", type=float, default=1.0, help="database size (about)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (median)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 4x-size backup")
    parser.add_argument("--skip-growth", action="store_true", help="skip the growth backfill")
    parser.add_argument(
        "--no-experiments",
        dest="experiments",
        action="store_false",
        help="skip the alternative compression settings and restore parallelism",
    )
    parser.add_argument("--growth-users", type=int, default=20_000)
    parser.add_argument(
        "--definitions-runs", type=int, default=7, help="fresh interpreters loading definitions"
    )
    parser.add_argument("--bin-dir", default=None, help="folder with pg_dump and pg_restore")
    parser.add_argument("--work-dir", default=None, help="where dumps go (default: $TMPDIR)")
    parser.add_argument(
        "--output",
        default=str(REPOSITORY / "docs" / "BENCHMARKS.md"),
        help="markdown report to write ('' to write none)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
