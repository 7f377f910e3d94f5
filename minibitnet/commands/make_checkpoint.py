"""``minibitnet make-checkpoint``: write a random model of a named shape in the 2B4T layout."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..formats.checkpoint import WEIGHTS_FILE
from ..errors import ArgumentError
from ..tools.progress import ProgressBar, note
from ..tools.shapes import SHAPES, count_parameters, get_shape
from ..tools.synthetic import checkpoint_bytes, write_checkpoint
from ..tokenizer.synthetic import LLAMA3_SPECIAL_TOKENS, LLAMA3_VOCAB, synthetic_vocab, write_tokenizer
from .seeds import RANDOM_SEED, resolve_seed, seed_value

# room left on the disk beyond the file itself (the temporary file is the file; this is slack)
SPARE_BYTES = 64 * 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "make-checkpoint",
        help="write a random ternary model of a named shape (tiny, 2b4t, 125M ... 13B)",
        description="Write config.json and model.safetensors for a random BitNet b1.58 model in "
                    "the exact layout of microsoft/bitnet-b1.58-2B-4T (packed uint8 ternary "
                    "weights, bf16 scales, norms and tied embedding). Weights are absmean "
                    "ternarisations of random Gaussian latents with per-tensor scales that keep "
                    "activations in a plausible range. The file is streamed to disk with a "
                    "progress bar on stderr and renamed into place only when complete. A shape "
                    "with LLaMA-3's vocabulary size (2b4t) also gets tokenizer.json and "
                    "tokenizer_config.json: a made-up 128,000-token byte-level BPE in LLaMA-3's "
                    "exact format, so generate, chat and eval run on it end to end.",
        epilog="shapes: " + ", ".join(SHAPES) + ". Example: minibitnet make-checkpoint "
               "--shape 2b4t --out /tmp/2b4t  (1.18 GB, about a minute)",
    )
    parser.add_argument("--shape", metavar="NAME",
                        help="model shape: " + ", ".join(SHAPES) + " (see --list)")
    parser.add_argument("--out", metavar="DIR", help="folder to write (created if missing)")
    parser.add_argument("-s", "--seed", type=seed_value, default=0, metavar="S",
                        help="random seed; -1 draws a fresh one and prints it (default 0)")
    parser.add_argument("--force", action="store_true",
                        help="replace a model.safetensors already in DIR")
    parser.add_argument("--list", action="store_true",
                        help="list the shapes with their parameters and file sizes, then exit")
    parser.set_defaults(run=run)


def _list_shapes() -> None:
    print(f"{'shape':6s} {'layers':>6s} {'hidden':>6s} {'ffn':>6s} {'heads':>5s} {'kv':>3s} "
          f"{'vocab':>7s} {'parameters':>14s} {'file MB':>9s}")
    for name, config in SHAPES.items():
        total = count_parameters(config)["total"]
        print(f"{name:6s} {config.num_hidden_layers:6d} {config.hidden_size:6d} "
              f"{config.intermediate_size:6d} {config.num_attention_heads:5d} "
              f"{config.num_key_value_heads:3d} {config.vocab_size:7d} {total:14,d} "
              f"{checkpoint_bytes(config) / 1e6:9.1f}")


def _has_llama3_vocabulary(shape: str) -> bool:
    """Whether the shape's embedding has LLaMA-3's rows, with <|begin_of_text|> as BOS."""
    config = SHAPES[shape]
    return (config.vocab_size == LLAMA3_VOCAB + len(LLAMA3_SPECIAL_TOKENS)
            and config.bos_token_id == LLAMA3_VOCAB)


def run(args: argparse.Namespace) -> int:
    if args.list:
        _list_shapes()
        return 0
    if not args.shape or not args.out:
        raise ArgumentError("--shape and --out are required (or --list to see the shapes)")
    config = get_shape(args.shape)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ArgumentError(f"--out {out_dir}: exists and is not a folder")
    if (out_dir / WEIGHTS_FILE).exists() and not args.force:
        raise ArgumentError(f"--out {out_dir}: already holds {WEIGHTS_FILE}; pass --force to "
                            "replace it")
    total = checkpoint_bytes(config)
    existing = out_dir if out_dir.exists() else next(
        (p for p in out_dir.absolute().parents if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    if free < total + SPARE_BYTES:
        raise ArgumentError(f"--out {out_dir}: {free / 1e9:.2f} GB free, but the {args.shape} "
                            f"checkpoint needs {total / 1e9:.2f} GB")
    seed = resolve_seed(args.seed)
    if args.seed == RANDOM_SEED:
        print(f"seed {seed} (drawn at random; --seed {seed} writes the same model)",
              file=sys.stderr)
    note(f"writing {args.shape} ({count_parameters(config)['total']:,} parameters, "
         f"{total / 1e6:,.1f} MB) to {out_dir}")
    with ProgressBar(total, WEIGHTS_FILE) as bar:
        write_checkpoint(out_dir, config, seed=seed, on_bytes=bar.update)
    if _has_llama3_vocabulary(args.shape):
        note("writing tokenizer.json (a made-up 128,000-token vocabulary in LLaMA-3's format)")
        write_tokenizer(out_dir, synthetic_vocab(LLAMA3_VOCAB, seed=seed))
    print(out_dir)
    return 0
