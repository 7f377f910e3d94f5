"""``minibitnet eval``: perplexity and bits per character of a model on a text file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ArgumentError
from ..files import read_text_argument
from ..tools.wording import plural
from .running import add_threads_flag

# The text is read whole. enwik8 (10**8 bytes), the usual bits-per-character benchmark, fits with
# room to spare; a larger file would take the NumPy forward pass days to score, so it is refused
# before it is read, as is /dev/zero.
MAX_EVAL_TEXT_BYTES = 256 * 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "eval",
        help="perplexity and bits per character of a model on a text file",
        description="Score a UTF-8 text file with a model: every token is predicted from the "
                    "tokens before it, in windows of --window tokens that overlap by "
                    "--window minus --stride. Prints bits per character (independent of the "
                    "tokenizer) and perplexity per token; --json prints one JSON line instead. "
                    "--model also takes the folder of a `minibitnet train --no-quant` run (the "
                    "full-precision twin), scored with the training forward pass unquantised.",
    )
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder with config.json, model.safetensors and "
                             "tokenizer.json, or a Hugging Face repo id already in the local "
                             "cache (default: the built-in model)")
    parser.add_argument("-f", "--file", "--text", dest="text", required=True, metavar="FILE",
                        help="UTF-8 text to score")
    parser.add_argument("--backend", default="reference",
                        help="ternary kernel backend (see `minibitnet info`; default reference)")
    add_threads_flag(parser)
    parser.add_argument("--window", type=int, default=None,
                        help="tokens per window (default: the model's context length)")
    parser.add_argument("--stride", type=int, default=None,
                        help="new tokens scored per window (default: half the window)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line with bits_per_char, perplexity and tokens")
    parser.set_defaults(run=run)


def _scorer(model_dir: Path, backend: str,
            threads: int | None = None) -> tuple[Callable[[Sequence[int]], np.ndarray], int]:
    """The logits function of the model in ``model_dir`` and its context length.

    A model folder loads through ``minibitnet.load``; the folder of a ``--no-quant`` training run
    (config.json + model-float.safetensors) runs the training forward pass in full precision.
    """
    from ..config import load_config
    from ..loader import load
    from ..train.export import read_float
    from ..train.loop import FLOAT_WEIGHTS_FILE
    from ..train.model import forward_logits

    if not (model_dir / FLOAT_WEIGHTS_FILE).exists():  # a FIFO there is refused, not skipped
        model = load(model_dir, backend=backend, threads=threads)
        return model.logits, model.config.max_position_embeddings
    config = load_config(model_dir)
    params = read_float(model_dir / FLOAT_WEIGHTS_FILE)

    def float_logits(ids: Sequence[int]) -> np.ndarray:
        return forward_logits(params, config, np.asarray(ids)[None, :], quantize=False)[0]

    return float_logits, config.max_position_embeddings


def run(args: argparse.Namespace) -> int:
    from ..tools.evaluate import score_text
    from ..tools.progress import ProgressBar
    from ..formats.locate import resolve_model
    from ..tokenizer.tokenizer import load as load_tokenizer

    model_dir = resolve_model(args.model)
    text = read_text_argument(args.text, MAX_EVAL_TEXT_BYTES, "-f/--file")
    if not text:
        raise ArgumentError(f"-f/--file: {args.text}: the file is empty")
    logits_of, context = _scorer(model_dir, args.backend, args.threads)
    tokenizer = load_tokenizer(model_dir)
    window = args.window if args.window is not None else context
    if not 2 <= window <= context:
        raise ArgumentError(f"--window is {window}, expected 2 .. {context} (the context length)")
    stride = args.stride if args.stride is not None else max(1, window // 2)
    ids = tokenizer.encode(text, bos=True)
    with ProgressBar(len(ids) - 1, "scored", unit="token") as bar:  # <bos> is context only
        score = score_text(logits_of, ids, len(text), window, stride, on_tokens=bar.update)
    if args.json:
        print(json.dumps({"bits_per_char": round(score.bits_per_char, 6),
                          "perplexity": round(score.perplexity, 6), "tokens": score.tokens,
                          "characters": score.characters, "window": window, "stride": stride,
                          "model": str(model_dir), "text": str(args.text)}))
    else:
        print(f"{score.bits_per_char:.4f} bits per character, perplexity {score.perplexity:.3f} "
              f"per token ({plural(score.tokens, 'token')}, "
              f"{plural(score.characters, 'character')}, window {window}, stride {stride})")
    return 0
