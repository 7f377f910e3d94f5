"""The ``minibitnet`` command: argparse subcommands, each in ``minibitnet/commands/``.

Every subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int``. Errors the user
can fix (a bad file, a bad flag) are printed as one line, ``minibitnet: error: ...``, with exit
code 1 and no traceback; ``--debug`` shows the traceback. A bad command line is one line too,
with exit code 2 (argparse's). Ctrl-C exits with code 130 and keeps whatever was already printed,
also while the command modules (and NumPy with them) are still being imported. subtle: only what
runs before :func:`main` is outside that reach, so neither this module nor the package's
``__init__`` imports anything heavy at the top.

Global flags (``--debug``) go before or after the subcommand: ``minibitnet --debug info`` and
``minibitnet info --debug`` are the same.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import MinibitnetError, one_line

# Subcommand modules under minibitnet.commands, in the order --help lists them.
COMMANDS = ["generate", "chat", "info", "convert", "ops", "make-checkpoint", "train", "eval",
            "bench"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line pointing at --help instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def add_global_flags(parser: argparse.ArgumentParser, top_level: bool) -> None:
    """The flags every command takes, on the top-level parser and on each subcommand's.

    subtle: on a subcommand the default is SUPPRESS, so ``minibitnet --debug info`` keeps the
    top-level True instead of the subcommand writing its own False over it.
    """
    parser.add_argument("--debug", action="store_true",
                        default=False if top_level else argparse.SUPPRESS,
                        help="show Python tracebacks instead of one-line errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="minibitnet",
        description="Run, inspect, benchmark and train ternary (BitNet b1.58) language models.",
    )
    parser.add_argument("--version", action="version", version=f"minibitnet {__version__}")
    add_global_flags(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"minibitnet.commands.{name.replace('-', '_')}")
        module.add_parser(subparsers)
        add_global_flags(subparsers.choices[name], top_level=False)
    return parser


def _interrupted() -> int:
    """Ctrl-C: keep what was printed, say so in one line, exit code 130 (128 + SIGINT)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    print("\nminibitnet: interrupted", file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()  # imports every command module: most of the start-up time
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted()
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        # the reader went away (`minibitnet info | head -3`): stop quietly, as other tools do
        _silence_stdout()
        return 1
    except (MinibitnetError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc)
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {exc.strerror or exc}"
        print(f"minibitnet: error: {one_line(message)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not bad input: still one line, and the way to the traceback
        if args.debug:
            traceback.print_exc()
        print(f"minibitnet: internal error: {type(exc).__name__}: {one_line(str(exc))[:500]} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
