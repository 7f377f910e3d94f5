"""``minibitnet bench``: prefill and decode tokens/s of a backend, and ns/weight of each kernel.

Every figure is the median of ``--repeats`` runs after one warm-up, and the reference backend is
measured in the same run, so the speed-ups compare like with like on a machine whose load may
change. Progress goes to stderr; the report (or, with ``--json``, one JSON line) to stdout.

What is measured:

- prefill: one forward of ``--prompt-tokens`` tokens on an empty KV cache;
- decode: ``--new-tokens`` single-token forwards after that prompt, through the cache;
- kernels: one (T, in) x (out, in) ternary product per kernel on random weights, for each
  distinct BitLinear shape of the model or each ``--kernel-shape``, in ns per weight per token.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..kernels import mypyc as fast
from ..kernels.registry import available_backends, available_cores, get_backend
from ..config import ModelConfig, load_config
from ..errors import ArgumentError
from ..loader import load
from ..formats.locate import resolve_model
from ..core.model import Model
from ..core.packing import pack_ternary
from ..tools.progress import note
from ..tools.wording import plural
from . import bench_full
from .running import add_threads_flag

KERNELS = ["reference", "fast:numba", "fast:lut", "fast:bitplane", "fast:dense"]


@dataclass(frozen=True)
class KernelTiming:
    kernel: str
    out_features: int
    in_features: int
    tokens: int
    ns_per_weight: float  # median over repeats, per weight and per token
    ns_per_weight_min: float


@dataclass(frozen=True)
class ModelTiming:
    backend: str
    prefill_tokens_per_s: float  # median over repeats
    decode_tokens_per_s: float


def _shape(text: str) -> tuple[int, int]:
    """"OUTxIN" -> (out, in); an argparse type."""
    try:
        out_text, in_text = text.lower().split("x")
        shape = int(out_text), int(in_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not OUTxIN, e.g. 6912x2560") from None
    if min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text}: both sizes must be >= 1")
    return shape


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is out of range, expected an integer >= 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bench",
        help="measure prefill / decode tokens/s and per-kernel ns/weight against the reference",
        description="Measure a backend's prefill and decode speed on a model, the reference "
                    "backend's in the same run, and the ns/weight of every ternary kernel on "
                    "the model's matrix shapes. Medians of --repeats runs; progress on stderr.",
    )
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder or cached Hugging Face repo id (default: built-in)")
    parser.add_argument("--backend", default="fast", metavar="NAME",
                        help="backend to measure against the reference (default: fast)")
    parser.add_argument("--prompt-tokens", type=_positive, default=32, metavar="P",
                        help="tokens in the prefill (default: 32)")
    parser.add_argument("--new-tokens", type=_positive, default=16, metavar="N",
                        help="single-token decode steps after the prompt (default: 16)")
    parser.add_argument("--repeats", type=_positive, default=5, metavar="R",
                        help="runs per measurement; the median is reported (default: 5)")
    parser.add_argument("--kernel-shape", type=_shape, action="append", metavar="OUTxIN",
                        help="matrix shape for the kernel timings, repeatable, e.g. "
                             "--kernel-shape 6912x2560 --kernel-shape 2560x6912 "
                             "(default: every distinct shape of the model)")
    add_threads_flag(parser)
    parser.add_argument("--kernel-tokens", type=_positive, default=1, metavar="T",
                        help="activation vectors per kernel call (default: 1, a mat-vec)")
    parser.add_argument("--kernels-only", action="store_true",
                        help="time the kernels only (no model forward; --model then only "
                             "supplies shapes when no --kernel-shape is given)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line instead of the report")
    bench_full.add_arguments(parser)
    parser.set_defaults(run=run)


def machine() -> dict[str, object]:
    """CPU model, core count, Python, and whether the fast kernels are compiled."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "fast_compiled": fast.is_compiled()}


def median_seconds(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, min) wall time of ``call`` over ``repeats`` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def model_shapes(config: ModelConfig) -> list[tuple[int, int]]:
    """The distinct (out, in) shapes of the model's BitLinear layers, largest first."""
    c = config
    attention = c.num_attention_heads * c.head_dim
    kv = c.num_key_value_heads * c.head_dim
    shapes = {(attention, c.hidden_size), (kv, c.hidden_size), (c.hidden_size, attention),
              (c.intermediate_size, c.hidden_size), (c.hidden_size, c.intermediate_size)}
    return sorted(shapes, key=lambda shape: (-shape[0] * shape[1], shape))


def time_kernel(name: str, shape: tuple[int, int], tokens: int, repeats: int,
                rng: np.random.Generator, threads: int | None = None) -> KernelTiming:
    """ns per weight per token of one kernel on a random ternary matrix of ``shape``."""
    out_features, in_features = shape
    rows = -(-out_features // 4) * 4  # the packed layout holds rows in fours
    w_ternary = rng.integers(-1, 2, (rows, in_features), dtype=np.int8)  # (out, in)
    x_q = rng.integers(-128, 128, (tokens, in_features), dtype=np.int8)  # (T, in)
    kernel = get_backend(name, threads)
    prepared = kernel.prepare(pack_ternary(w_ternary))
    # another vector than the call before, as each token of a decode brings: the LUT kernel
    # keeps the table of the last vector, and the same one again would skip building it
    vectors = (x_q, x_q ^ 1)
    calls = itertools.count()
    median, fastest = median_seconds(lambda: kernel.matmul(prepared, vectors[next(calls) % 2]),
                                     repeats)
    weights = rows * in_features * tokens
    return KernelTiming(name, rows, in_features, tokens, median * 1e9 / weights,
                        fastest * 1e9 / weights)


def time_model(model: Model, prompt_tokens: int, new_tokens: int, repeats: int) -> ModelTiming:
    """Prefill and decode tokens/s of a loaded model, medians over ``repeats``."""
    vocab = model.config.vocab_size
    prompt = [(7 * i + 3) % vocab for i in range(prompt_tokens)]  # fixed, spread over the vocab
    steps = [(11 * i + 5) % vocab for i in range(new_tokens)]

    def prefill() -> None:
        model.forward(prompt, model.new_cache())

    def decode() -> None:
        cache = model.new_cache()
        model.forward(prompt, cache)
        start = time.perf_counter()
        for token in steps:
            model.forward([token], cache)
        decode_times.append(time.perf_counter() - start)

    prefill_s, _ = median_seconds(prefill, repeats)
    decode_times: list[float] = []
    median_seconds(decode, repeats)
    decode_s = statistics.median(decode_times[1:])  # the first run is the warm-up
    return ModelTiming(model.backend, prompt_tokens / prefill_s, new_tokens / decode_s)


def bench_models(model_dir: Path, backends: list[str], args: argparse.Namespace) -> list[ModelTiming]:
    timings = []
    for backend in backends:
        note(f"bench: loading {model_dir} with backend {backend}")
        model = load(model_dir, backend=backend, threads=args.threads)
        limit = model.config.max_position_embeddings
        if args.prompt_tokens + args.new_tokens > limit:
            raise ArgumentError(f"--prompt-tokens + --new-tokens = "
                                f"{args.prompt_tokens + args.new_tokens} exceeds the model's "
                                f"context length {limit}")
        note(f"bench: {backend}: prefill {plural(args.prompt_tokens, 'token')}, decode "
             f"{args.new_tokens}, {plural(args.repeats, 'repeat')}")
        timings.append(time_model(model, args.prompt_tokens, args.new_tokens, args.repeats))
    return timings


def bench_kernels(shapes: list[tuple[int, int]], args: argparse.Namespace) -> list[KernelTiming]:
    rng = np.random.default_rng(0)
    runnable = {info.name for info in available_backends()}
    timings = []
    for shape in shapes:
        for name in [name for name in KERNELS if name in runnable]:  # fast:numba needs numba
            note(f"bench: kernel {name} on {shape[0]}x{shape[1]}, T={args.kernel_tokens}")
            timings.append(time_kernel(name, shape, args.kernel_tokens, args.repeats, rng,
                                       args.threads))
    return timings


def summarize(model_dir: Path | None, models: list[ModelTiming], kernels: list[KernelTiming],
              args: argparse.Namespace) -> dict[str, object]:
    """Everything measured, as one flat-ish dict (the --json line)."""
    result: dict[str, object] = {"machine": machine(), "repeats": args.repeats,
                                 "threads": args.threads or available_cores()}
    if model_dir is not None and models:
        measured, reference = models[0], models[-1]
        result.update(
            model=str(model_dir), backend=measured.backend,
            prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens,
            prefill_tokens_per_s=measured.prefill_tokens_per_s,
            decode_tokens_per_s=measured.decode_tokens_per_s,
            reference_prefill_tokens_per_s=reference.prefill_tokens_per_s,
            reference_decode_tokens_per_s=reference.decode_tokens_per_s,
            prefill_speedup=measured.prefill_tokens_per_s / reference.prefill_tokens_per_s,
            decode_speedup=measured.decode_tokens_per_s / reference.decode_tokens_per_s,
        )
    result["kernels"] = [asdict(timing) for timing in kernels]
    return result


def print_report(result: dict[str, object]) -> None:
    info = result["machine"]
    assert isinstance(info, dict)
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
          f"fast path {'compiled' if info['fast_compiled'] else 'INTERPRETED'}, "
          f"--threads {result['threads']}")
    if "backend" in result:
        print(f"model:   {result['model']}")
        print(f"{'':12s} {'prefill tok/s':>14s} {'decode tok/s':>14s}")
        print(f"{result['backend']!s:12s} {result['prefill_tokens_per_s']:14.1f} "
              f"{result['decode_tokens_per_s']:14.1f}")
        print(f"{'reference':12s} {result['reference_prefill_tokens_per_s']:14.1f} "
              f"{result['reference_decode_tokens_per_s']:14.1f}")
        print(f"{'speed-up':12s} {result['prefill_speedup']:13.1f}x "
              f"{result['decode_speedup']:13.1f}x")
    kernels, repeats = result["kernels"], result["repeats"]
    assert isinstance(kernels, list) and isinstance(repeats, int)
    if kernels:
        print(f"kernels (ns per weight per token, median and min of {plural(repeats, 'run')}):")
        for timing in kernels:
            shape = f"{timing['out_features']}x{timing['in_features']}"
            print(f"  {timing['kernel']:14s} {shape:>11s} T={timing['tokens']:<3d} "
                  f"{timing['ns_per_weight']:9.3f} {timing['ns_per_weight_min']:9.3f}")


def run(args: argparse.Namespace) -> int:
    if args.full or args.sizes:  # one backend's whole-model figures, or the scaling table
        return bench_full.run(args)
    model_dir: Path | None = None
    models: list[ModelTiming] = []
    shapes = args.kernel_shape
    if not (args.kernels_only and shapes):
        model_dir = resolve_model(args.model)
    if not args.kernels_only and model_dir is not None:
        backends = [args.backend] + (["reference"] if args.backend != "reference" else [])
        models = bench_models(model_dir, backends, args)
    if not shapes and model_dir is not None:
        shapes = model_shapes(load_config(model_dir))
    kernels = bench_kernels(shapes, args)
    result = summarize(model_dir if models else None, models, kernels, args)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0
