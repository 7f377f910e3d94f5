"""The ``--seed`` flag of every command: an integer >= 0 repeats a run, -1 draws a fresh seed.

-1 means "random" as in llama.cpp (``--seed -1``, its default for sampling). The seed drawn from
the operating system's entropy is printed, so that a run that turned out well can be repeated.
"""

from __future__ import annotations

import argparse
import secrets

RANDOM_SEED = -1
SEED_LIMIT = 2**31  # drawn seeds are below this: short to copy, and valid for every generator


def seed_value(text: str) -> int:
    """An argparse ``type=``: an integer >= 0, or -1 for a random seed; else a one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer >= 0, or -1 for a random seed") from None
    if value < RANDOM_SEED:
        raise argparse.ArgumentTypeError(
            f"{text} is out of range, expected an integer >= 0, or -1 for a random seed")
    return value


def resolve_seed(seed: int | None) -> int:
    """``seed``, or one drawn from the OS's entropy when it is -1 (or None)."""
    if seed is None or seed == RANDOM_SEED:
        return secrets.randbelow(SEED_LIMIT)
    return seed
