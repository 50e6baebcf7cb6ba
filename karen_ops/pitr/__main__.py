"""``python -m karen_ops.pitr wal-push %p``: the archiving commands without the rest of the CLI."""

import argparse
import sys

from karen_ops import settings
from karen_ops.pitr.commands import add_commands


def main(argv: list[str] | None = None, prog: str = "karen-ops") -> int:
    # `karen-ops wal-push` and `wal-fetch` come here too: their usage names the command typed.
    parser = argparse.ArgumentParser(prog=prog)
    add_commands(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.command(settings.ops_home(), args)


if __name__ == "__main__":
    sys.exit(main(prog="python -m karen_ops.pitr"))
