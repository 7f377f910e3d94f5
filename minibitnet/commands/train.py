"""``minibitnet train``: train a ternary (or full-precision) BitNet model from text files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import MAX_CONFIG_BYTES
from ..errors import ArgumentError
from ..files import read_text_argument
from .seeds import RANDOM_SEED, resolve_seed, seed_value

DEFAULT_STEPS = 1400

# Model shapes by name; --config also takes a JSON file with these keys.
PRESETS: dict[str, dict[str, Any]] = {
    # the built-in model: ~3.4M parameters (2.9M ternary), 2112-token vocabulary
    "shakespeare": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
                    "num_attention_heads": 4, "num_key_value_heads": 2},
    # seconds per step on a laptop: for tests and trying the command out
    "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}
SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "rope_theta", "rms_norm_eps")


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "train",
        help="train a ternary BitNet b1.58 model on text files (NumPy, quantisation-aware)",
        description="Train a byte-level BPE tokenizer and a BitNet b1.58 model on text files, "
                    "from scratch, with ternary weights and int8 activations in the forward pass "
                    "and the straight-through estimator in the backward pass. Checkpoints are "
                    "written to OUT every --checkpoint-every steps; --resume continues a run "
                    "exactly. At the end a ternary run exports OUT/model/, a model folder in the "
                    "BitNet b1.58 2B4T layout (loads in minibitnet and in transformers).",
    )
    parser.add_argument("--data", nargs="+", metavar="FILE",
                        help="UTF-8 training text files (required for a new run)")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder")
    parser.add_argument("--config", default="shakespeare", metavar="PRESET_OR_JSON",
                        help=f"model shape: a preset ({', '.join(PRESETS)}) or a JSON file with "
                             "hidden_size, intermediate_size, num_hidden_layers, "
                             "num_attention_heads, num_key_value_heads (default: shakespeare)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimiser steps (default {DEFAULT_STEPS}); with --resume, the "
                             "step to train on to, past the end of a finished run")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step (16)")
    parser.add_argument("--context", type=int, default=256,
                        help="tokens per sequence, also the model's context length (256)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default 6e-3 ternary, 3e-3 with --no-quant)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up steps (default: 5%% of --steps)")
    parser.add_argument("--weight-decay", type=float, default=0.1,
                        help="peak weight decay of the first stage (0.1)")
    parser.add_argument("--bpe-vocab", type=int, default=2048,
                        help="BPE tokens before the special tokens (2048)")
    parser.add_argument("-s", "--seed", type=seed_value, default=0, metavar="S",
                        help="initial weights and batch order; -1 draws a fresh one and prints "
                             "it (default 0)")
    parser.add_argument("--no-quant", action="store_true",
                        help="full precision: the same code path without ternary weights and "
                             "int8 activations (the comparison twin)")
    parser.add_argument("--val", metavar="FILE",
                        help="held-out text: its loss goes into OUT/loss.csv every --val-every")
    parser.add_argument("--val-every", type=int, default=100, help="steps between validations")
    parser.add_argument("--checkpoint-every", type=int, default=50,
                        help="steps between checkpoints (50)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT from its last checkpoint, to --steps when "
                             "given (other flags are read from the checkpoint)")
    parser.set_defaults(run=run)


def _shape(spec: str) -> dict[str, Any]:
    if spec in PRESETS:
        return dict(PRESETS[spec])
    path = Path(spec)
    if not path.exists():  # a FIFO or device is refused by its type, just below
        raise ArgumentError(f"--config: {spec!r} is neither a preset ({', '.join(PRESETS)}) "
                            "nor a JSON file")
    text = read_text_argument(path, MAX_CONFIG_BYTES, "--config")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ArgumentError(f"--config: {path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ArgumentError(f"--config: {path}: expected a JSON object")
    unknown = sorted(set(raw) - set(SHAPE_KEYS))
    if unknown:
        raise ArgumentError(f"--config: {path}: unknown key {unknown[0]!r}, expected keys from "
                            f"{', '.join(SHAPE_KEYS)}")
    return raw


def _check_positive(args: argparse.Namespace) -> None:
    for flag in ("steps", "batch_size", "context", "bpe_vocab", "val_every", "checkpoint_every"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ArgumentError(f"--{flag.replace('_', '-')} is {value}, expected at least 1")
    if args.bpe_vocab < 256:
        raise ArgumentError(f"--bpe-vocab is {args.bpe_vocab}, expected at least 256")


def run(args: argparse.Namespace) -> int:
    from ..train.loop import Settings, train

    if args.resume:
        if args.steps is not None and args.steps < 1:
            raise ArgumentError(f"--steps is {args.steps}, expected at least 1")
        train(args.out, resume=True, steps=args.steps, log=sys.stderr)
        return 0
    if not args.data:
        raise ArgumentError("--data: a new run needs training text files")
    _check_positive(args)
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    lr = args.lr if args.lr is not None else (3e-3 if args.no_quant else 6e-3)
    warmup = args.warmup if args.warmup is not None else max(1, steps // 20)
    seed = resolve_seed(args.seed)
    if args.seed == RANDOM_SEED:  # the checkpoint keeps it too, so --resume takes the same batches
        print(f"seed {seed} (drawn at random; --seed {seed} repeats this run)", file=sys.stderr)
    settings = Settings(
        data=tuple(str(Path(p)) for p in args.data), steps=steps,
        batch_size=args.batch_size, context=args.context, lr=lr, warmup=warmup,
        weight_decay=args.weight_decay, seed=seed, quantize=not args.no_quant,
        bpe_vocab=args.bpe_vocab, checkpoint_every=args.checkpoint_every, val=args.val,
        val_every=args.val_every)
    train(args.out, settings, _shape(args.config), log=sys.stderr)
    return 0
