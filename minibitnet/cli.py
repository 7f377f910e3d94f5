"""The ``minibitnet`` command: argparse subcommands, each in ``minibitnet/commands/``.

Every subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int``. Errors the user
can fix (a bad file, a bad flag) are printed as one line, ``minibitnet: error: ...``, with exit
code 1 and no traceback; ``--debug`` shows the traceback. Ctrl-C exits with code 130 and keeps
whatever was already printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from .errors import MinibitnetError

# Subcommand modules under minibitnet.commands, in the order --help lists them.
COMMANDS = ["info", "ops", "make-checkpoint"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibitnet",
        description="Run, inspect, benchmark and train ternary (BitNet b1.58) language models.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"minibitnet.commands.{name.replace('-', '_')}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("\nminibitnet: interrupted", file=sys.stderr)
        return 130
    except (MinibitnetError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).replace("\n", " ")
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {exc.strerror or exc}"
        print(f"minibitnet: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
