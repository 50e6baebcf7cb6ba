"""karen-ops: the demo, the Dagster UI, backups and restores, the doctor, and WAL archiving."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import time
from pathlib import Path

from karen_ops import settings
from karen_ops.errors import KarenOpsError

# PostgreSQL runs these for every WAL file: they skip loading the rest of the commands.
_ARCHIVING = {"wal-push", "wal-fetch"}
# The Dagster UI's port. The AI Karen platform's own web frontend has 3000, Dagster's default.
UI_PORT = 3030
# Where `dagster dev` serves the UI.
UI_HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _ARCHIVING:
        from karen_ops.pitr.__main__ import main as archiving

        return archiving(argv)
    args = _parser().parse_args(argv)
    if args.home:
        # Every command finds its home through settings.ops_home(), which reads the variable.
        os.environ[settings.OPS_HOME] = str(Path(args.home).expanduser().resolve())
    try:
        return args.command(settings.ops_home(), args)
    except KarenOpsError as exc:
        print(f"karen-ops: {exc}", file=sys.stderr)
        return 1


def _demo(home: Path, args: argparse.Namespace) -> int:
    from karen_ops.demo import run

    return run.main(home, users=args.users)


def _ui(home: Path, args: argparse.Namespace) -> int:
    from karen_ops.demo import run

    # Before anything starts: `dagster dev` starts its daemon even when another daemon runs on
    # the instance, or when its webserver cannot listen on the port.
    _check_no_daemon(home / "dagster")  # the instance folder run.prepare sets up
    _check_port_free(UI_HOST, args.port)
    setup = run.prepare(home, users=args.users, instance_template=Path.cwd() / "dagster.yaml")
    os.environ.update(setup.environment())
    workspace = Path.cwd() / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.is_file() else ["-m", "karen_ops.definitions"]
    command = [sys.executable, "-m", "dagster", "dev", *target]
    command += ["--host", UI_HOST, "--port", str(args.port)]
    # Run from the instance folder, so Dagster finds one dagster.yaml: the instance's own copy.
    os.chdir(setup.dagster_home)
    print(f"starting the Dagster UI on http://{UI_HOST}:{args.port} (Ctrl-C stops it)")
    print(f"DAGSTER_HOME={setup.dagster_home}")
    # Replace this process, so that stopping the UI with Ctrl-C stops everything it started.
    os.execv(sys.executable, command)  # noqa: S606 (an argument list, no shell)
    return 0  # not reached: execv replaces this process


def _check_no_daemon(dagster_home: Path) -> None:
    """Raise if a Dagster daemon of the instance in ``dagster_home`` reported lately: a second
    daemon on one instance launches every scheduled run twice."""
    if not dagster_home.is_dir():
        return  # no instance yet, so no daemon of it
    import dagster as dg
    from dagster._daemon.controller import DEFAULT_HEARTBEAT_INTERVAL_SECONDS

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        heartbeats = instance.get_daemon_heartbeats().values()
    last = max((heartbeat.timestamp for heartbeat in heartbeats), default=None)
    if last is None:
        return  # no daemon ever ran on it
    # A running daemon stores a heartbeat every DEFAULT_HEARTBEAT_INTERVAL_SECONDS (30 s) as its
    # loop comes round; two intervals allow one late beat. A stopped daemon leaves its last one
    # behind, so this is also how long a restart waits. Dagster's own tolerance (30 minutes) only
    # marks a daemon unhealthy in its UI; as a wait it would be far too long.
    silence = 2 * DEFAULT_HEARTBEAT_INTERVAL_SECONDS
    age = int(max(0.0, time.time() - last))  # never negative, whatever the clocks say
    if age < silence:
        wait = silence - age
        raise KarenOpsError(
            f"a Dagster daemon already runs for the instance in {dagster_home} (last heartbeat "
            f"{age} seconds ago), so a second one would launch every scheduled run twice; "
            "open the UI that serves it or stop it first (if it has stopped, try again in "
            f"{wait} seconds)"
        )


def _check_port_free(host: str, port: int) -> None:
    """Raise unless a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the webserver binds: a port whose last connections are still closing is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            reason = "is already in use" if taken else f"cannot be used ({exc.strerror})"
            raise KarenOpsError(
                f"port {port} on {host} {reason}, so the Dagster UI cannot listen there; "
                "stop what holds it or choose another port with --port PORT"
            ) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return port


def _stop(home: Path, args: argparse.Namespace) -> int:
    from karen_ops.resources.embedded_postgres import stop_embedded_server

    stopped = stop_embedded_server(home / "pgdata")
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def _parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: the archiving fast path in main() needs none of them.
    from karen_ops.backups.commands import add_commands as backup_commands
    from karen_ops.doctor.commands import add_commands as doctor_commands
    from karen_ops.pitr.commands import add_commands as pitr_commands
    from karen_ops.security.commands import add_commands as security_commands

    parser = argparse.ArgumentParser(prog="karen-ops", description=__doc__)
    parser.add_argument(
        "--home", help=f"karen-ops home folder (default: ${settings.OPS_HOME} or ./.karen-ops)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="back up and verify a synthetic AI Karen database on an embedded server"
    )
    demo.add_argument("--users", type=int, default=2000, help="size of the synthetic database")
    demo.set_defaults(command=_demo)

    ui = commands.add_parser("ui", help="open the Dagster UI on the demo's setup")
    ui.add_argument(
        "--port",
        type=_port,
        default=UI_PORT,
        help=f"port of the UI on {UI_HOST} (default: {UI_PORT}; the AI Karen frontend has 3000)",
    )
    ui.add_argument("--users", type=int, default=2000, help=argparse.SUPPRESS)
    ui.set_defaults(command=_ui)

    stop = commands.add_parser("stop", help="stop the demo's embedded PostgreSQL server")
    stop.set_defaults(command=_stop)

    backup_commands(commands)
    doctor_commands(commands)
    pitr_commands(commands)
    security_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
