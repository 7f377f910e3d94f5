"""What ``generate`` and ``chat`` share: model flags, sampling flags, loading, streaming a reply.

Flag names follow llama.cpp's where it has one (``-p``, ``-f``, ``-n``, ``--temp``, ``--top-k``,
``--top-p``, ``--seed``); every number is range-checked by argparse, so a bad value is a one-line
usage error before anything is loaded.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO


from ..kernels.registry import available_backends, available_cores
from ..errors import TokenizerError
from ..core.generate import stream_tokens
from ..core.kv_cache import KVCache
from ..loader import load
from ..formats.locate import resolve_model
from ..core.model import Model
from ..tokenizer.tokenizer import Tokenizer
from ..tokenizer.tokenizer import load as load_tokenizer
from ..tools.progress import note
from ..tools.wording import plural, significant
from .seeds import RANDOM_SEED, resolve_seed, seed_value


def _number(kind: Callable[[str], float], test: Callable[[float], bool],
            expected: str) -> Callable[[str], float]:
    """An argparse ``type=``: parse with ``kind``, then a one-line error unless ``test`` holds."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range, expected {expected}")
        return value
    return parse


non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
temperature = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def default_backend() -> str:
    """"fast" when this installation registers it, else "reference"."""
    names = [info.name for info in available_backends()]
    return "fast" if "fast" in names else "reference"


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    """-t/--threads N, llama.cpp's flag; None (the default): every core this process may use."""
    parser.add_argument("-t", "--threads", type=positive_int, default=None, metavar="N",
                        help="threads for the kernels that use several (fast, fast:numba); the "
                             "same text on any count (default: the cores this process may use, "
                             f"{available_cores()} here)")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """-m/--model, --backend, -t/--threads, --quiet."""
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder (config.json, model.safetensors, tokenizer.json), or "
                             "a Hugging Face repo id already in the local cache, e.g. "
                             "microsoft/bitnet-b1.58-2B-4T (default: the built-in model)")
    parser.add_argument("--backend", metavar="NAME", default=None,
                        help="ternary kernels: a name from `minibitnet info` "
                             "(default: fast when installed, else reference)")
    add_threads_flag(parser)
    parser.add_argument("--quiet", action="store_true",
                        help="no loading messages and no speed summary on stderr")


def add_sampling_flags(parser: argparse.ArgumentParser, max_tokens: int) -> None:
    """-n, --temp, --top-k, --top-p, --seed, each range-checked; -n defaults to ``max_tokens``."""
    group = parser.add_argument_group("sampling")
    group.add_argument("-n", "--n-predict", dest="n_predict", type=non_negative_int,
                       default=max_tokens, metavar="N",
                       help=f"most new tokens to generate (default {max_tokens})")
    group.add_argument("--temp", type=temperature, default=0.8, metavar="T",
                       help="temperature; 0 is greedy (default 0.8)")
    group.add_argument("--top-k", dest="top_k", type=positive_int, default=40, metavar="K",
                       help="sample from the K most likely tokens (default 40)")
    group.add_argument("--top-p", dest="top_p", type=probability, default=0.95, metavar="P",
                       help="then from the smallest set of probability >= P (default 0.95)")
    group.add_argument("-s", "--seed", type=seed_value, default=RANDOM_SEED, metavar="S",
                       help="random seed: the same seed and flags give the same text; -1 (the "
                            "default) draws a fresh one, shown in the summary")


def load_model(args: argparse.Namespace) -> tuple[Model, Tokenizer]:
    """The model and tokenizer that the flags name, with progress lines on stderr."""
    model_dir = resolve_model(args.model)
    backend = args.backend or default_backend()
    started = time.perf_counter()
    note(f"loading {model_dir} (backend {backend}) ...", quiet=args.quiet)
    tokenizer = load_tokenizer(model_dir)
    model = load(model_dir, backend=backend, threads=args.threads)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise TokenizerError(f"{tokenizer.source}: {tokenizer.vocab_size} tokens, "
                             f"but config.json has vocab_size {model.config.vocab_size}; "
                             "expected at most that many")
    c = model.config
    note(f"loaded in {significant(time.perf_counter() - started)} s: "
         f"{plural(c.num_hidden_layers, 'layer')}, hidden {c.hidden_size}, vocab "
         f"{c.vocab_size}, context {c.max_position_embeddings}", quiet=args.quiet)
    return model, tokenizer


@dataclass
class Reply:
    """One streamed generation: the ids produced and how long each phase took."""

    ids: list[int]  # every sampled id, the stop token included
    prefill_s: float  # prompt forward pass and the first sample
    decode_s: float  # the remaining tokens, one forward each
    stopped_by: str  # "stop token", "length" (-n), "context" or "interrupted"


def stream_reply(model: Model, tokenizer: Tokenizer, prompt: Sequence[int],
                 args: argparse.Namespace, seed: int, stop_ids: set[int], cache: KVCache,
                 out: TextIO) -> Reply:
    """Sample after ``prompt`` (continuing ``cache``), printing text to ``out`` as it comes.

    Special tokens are not printed. Ids the tokenizer cannot decode are never sampled
    (``Tokenizer.undecodable_ids``). Ctrl-C ends the reply early; what was printed stays.
    """
    suppressed = tokenizer.undecodable_ids(model.config.vocab_size)  # (V,) bool
    decoder = tokenizer.stream_decoder(skip_special=True)
    ids: list[int] = []
    started = time.perf_counter()
    first_at = started
    stopped_by = "length"
    try:
        for token in stream_tokens(model, prompt, args.n_predict, temperature=args.temp,
                                   top_k=args.top_k, top_p=args.top_p, seed=seed,
                                   stop_ids=sorted(stop_ids), cache=cache,
                                   suppressed=suppressed):
            if not ids:
                first_at = time.perf_counter()
            ids.append(token)
            if token in stop_ids:
                stopped_by = "stop token"
                break
            out.write(decoder.add(token))
            out.flush()
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    out.write(decoder.flush())
    out.flush()
    if stopped_by == "length" and len(ids) < args.n_predict:  # the stream ends early only there
        stopped_by = "context"
    ended = time.perf_counter()
    return Reply(ids, first_at - started if ids else ended - started,
                 ended - first_at if ids else 0.0, stopped_by)


def pick_seed(args: argparse.Namespace) -> int:
    """--seed, or a fresh random one for -1 (printed in the summary, so a run can be repeated)."""
    return resolve_seed(args.seed)


def summary(prompt_tokens: int, reply: Reply, seed: int) -> str:
    """One line: prompt and new tokens, prefill and decode speed, the seed.

    A rate is shown only when it was measured: prefill once a token came out of it (``-n 0`` runs
    no forward pass), decode once a second token did (the first comes from the prefill).
    """
    rates = []
    if reply.ids and reply.prefill_s > 0:
        rates.append(f"prefill {prompt_tokens / reply.prefill_s:.1f} tokens/s")
    decoded = len(reply.ids) - 1
    if decoded > 0 and reply.decode_s > 0:
        rates.append(f"decode {decoded / reply.decode_s:.1f} tokens/s")
    counts = f"{plural(prompt_tokens, 'prompt token')}, {plural(len(reply.ids), 'new token')}"
    return "[" + "; ".join([counts, *([", ".join(rates)] if rates else []), f"seed {seed}"]) + "]"
