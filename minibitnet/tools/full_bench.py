"""Whole-model measurements for ``minibitnet bench``: load time, prefill and decode tokens/s, peak
resident memory, where a decode step's time goes, and the memory-bandwidth bound.

Every figure comes from one process that loads one model once, so the peak resident memory
(``VmHWM``, the kernel's own high-water mark, file-backed pages of the memory map included) is the
model's and not a leftover of an earlier one. Timings are medians: the machine may be shared.

The bandwidth bound: a decode step must read every weight once, so it cannot be faster than
(bytes of weights read per token) / (memory bandwidth). The bandwidth is measured here as a
NumPy copy of a 256 MB array (bytes read + bytes written per second, STREAM's "copy" rule); the
bytes per token count the ternary weights in the kernel's own format and the output head's table
as stored (head.py), and leave out the KV cache, which is small at these lengths.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..formats.checkpoint import load_weights
from ..config import load_config
from ..core.head import STORAGES, OutputHead
from ..core.model import Model
from ..kernels.registry import available_cores
from ..loader import build_model
from .progress import note
from .shapes import count_parameters
from .step_timing import PARTS, timed_forward
from .wording import milliseconds, plural, significant

COPY_BYTES = 256 * 1024 * 1024
# bits per ternary weight in each backend's stored format (packing.py): the LUT kernel keeps five
# weights per byte, the bit-plane kernel two bits, the reference int8, dense the checkpoint's 2 bits
FORMAT_BITS = {"fast": 8 / 5, "fast:lut": 8 / 5, "fast:bitplane": 2.0, "fast:dense": 2.0,
               "reference": 8.0}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KB


def copy_bandwidth_gb_s(repeats: int = 5) -> float:
    """Memory bandwidth of a NumPy copy of 256 MB, in GB/s (read + write bytes), median."""
    source = np.ones(COPY_BYTES // 4, np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)  # fault both arrays in before timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - start)
    return 2 * COPY_BYTES / statistics.median(times) / 1e9


def weight_bytes_per_token(model: Model) -> float:
    """Bytes of weights one decode step reads: ternary weights as the backend stores them, plus
    the output head's table as stored."""
    ternary = count_parameters(model.config)["ternary"]
    bits = FORMAT_BITS.get(model.backend, 2.0)
    head = model.head.vocab_size * model.head.hidden_size
    head_bytes = 4 * head if model.head.storage == "float32" else 2 * head
    return float(ternary * bits / 8 + head_bytes)


def measure_load(model_dir: Path, backend: str,
                 threads: int | None = None) -> tuple[Model, dict[str, float]]:
    """Load a model, timing the two halves: opening and checking the checkpoint (header, shapes,
    the scan of every packed byte for code 3) and building the model (each kernel's weight
    format, the output head)."""
    start = time.perf_counter()
    config = load_config(model_dir)
    weights = load_weights(model_dir, config)
    opened = time.perf_counter()
    model = build_model(config, weights, backend, threads)
    built = time.perf_counter()
    return model, {"load_s": built - start, "open_and_check_s": opened - start,
                   "prepare_s": built - opened}


def measure_steps(model: Model, prompt_tokens: int, new_tokens: int, repeats: int
                  ) -> dict[str, Any]:
    """Prefill and decode speed, and the parts of a decode step, medians over ``repeats``."""
    vocab = model.config.vocab_size
    prompt = [(7 * i + 3) % vocab for i in range(prompt_tokens)]  # fixed, spread over the vocab
    steps = [(11 * i + 5) % vocab for i in range(new_tokens)]
    prefill_times, decode_times = [], []
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    for repeat in range(repeats):
        note(f"bench: {model.backend}: prefill {prompt_tokens} + decode {new_tokens}, run "
             f"{repeat + 1}/{repeats}")
        cache = model.new_cache()
        start = time.perf_counter()
        model.forward(prompt, cache)
        prefill_times.append(time.perf_counter() - start)
        for token in steps:
            start = time.perf_counter()
            model.forward([token], cache)
            decode_times.append(time.perf_counter() - start)
        # the same decode steps again, each timed part by part: the same forward, with a clock
        # as its timer (step_timing.py); kept apart so the clock cannot slow the figures above
        cache = model.new_cache()
        model.forward(prompt, cache)
        for token in steps:
            _, seconds = timed_forward(model, [token], cache)
            for part, value in seconds.items():
                parts[part].append(value)
    decode_s = statistics.median(decode_times)
    return {
        "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "repeats": repeats,
        "prefill_s": statistics.median(prefill_times),
        "prefill_tokens_per_s": prompt_tokens / statistics.median(prefill_times),
        "decode_ms_per_token": decode_s * 1e3,
        "decode_tokens_per_s": 1 / decode_s,
        "decode_parts_ms": {part: statistics.median(values) * 1e3
                            for part, values in parts.items()},
    }


def measure_head_storages(model: Model, repeats: int) -> dict[str, float]:
    """ms per decode token of the output head in each storage of head.py, on this model's table."""
    table = model.embed_tokens  # the tied table (bf16 bits, memory-mapped)
    hidden = np.random.default_rng(0).standard_normal((1, model.config.hidden_size),
                                                      dtype=np.float32)  # (1, D)
    result = {}
    for storage in STORAGES:
        head = model.head if storage == model.head.storage else OutputHead(
            table, storage, threads=model.head.threads)  # the bf16 storage on the model's threads
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            head(hidden)
            times.append(time.perf_counter() - start)
        result[storage] = statistics.median(times[1:]) * 1e3
        del head
    return result


def measure_model(model_dir: Path, backend: str, prompt_tokens: int, new_tokens: int,
                  repeats: int, head_storages: bool = False,
                  threads: int | None = None) -> dict[str, Any]:
    """Every whole-model figure of one backend on one model folder, as a flat dict.

    Keys include load_s, prefill_tokens_per_s, decode_tokens_per_s, peak_rss_mb,
    decode_parts_ms (PARTS), copy_bandwidth_gb_s, weight_bytes_per_token and
    bandwidth_bound_ms (the fastest a decode step could be at that bandwidth).
    """
    threads = threads if threads is not None else available_cores()
    note(f"bench: loading {model_dir} with backend {backend} on {plural(threads, 'thread')}")
    model, load = measure_load(model_dir, backend, threads)
    result: dict[str, Any] = {"model": str(model_dir), "backend": backend, "threads": threads,
                              "parameters": count_parameters(model.config)["total"], **load,
                              "head_storage": model.head.storage,
                              "rss_after_load_mb": peak_rss_mb()}
    result.update(measure_steps(model, prompt_tokens, new_tokens, repeats))
    result["peak_rss_mb"] = peak_rss_mb()  # before the extra heads below add their own
    if head_storages:
        result["head_ms_by_storage"] = measure_head_storages(model, max(repeats, 3))
    result["copy_bandwidth_gb_s"] = copy_bandwidth_gb_s()
    result["weight_bytes_per_token"] = weight_bytes_per_token(model)
    result["bandwidth_bound_ms"] = (result["weight_bytes_per_token"]
                                    / (result["copy_bandwidth_gb_s"] * 1e9) * 1e3)
    return result


def _count(number: float) -> str:
    return f"{number / 1e9:.2f} B" if number >= 1e9 else f"{number / 1e6:.2f} M"


def _size(num_bytes: float) -> str:
    """'1.18 GB', or '0.423 MB' for a tiny model (never '0.00 GB')."""
    if num_bytes >= 1e9:
        return f"{significant(num_bytes / 1e9)} GB"
    return f"{significant(num_bytes / 1e6)} MB"


def format_model_report(result: dict[str, Any]) -> str:
    """The figures of :func:`measure_model` as a few lines of text."""
    parts = result["decode_parts_ms"]
    total = sum(parts.values())
    lines = [
        f"model:   {result['model']} ({_count(result['parameters'])} parameters), "
        f"backend {result['backend']} on {plural(result['threads'], 'thread')}",
        f"load:    {significant(result['load_s'])} s (open and check "
        f"{significant(result['open_and_check_s'])} s, kernel formats and head "
        f"{significant(result['prepare_s'])} s)",
        f"prefill: {result['prefill_tokens_per_s']:.1f} tokens/s "
        f"({plural(result['prompt_tokens'], 'token')} in {significant(result['prefill_s'])} s)",
        f"decode:  {result['decode_tokens_per_s']:.2f} tokens/s "
        f"({milliseconds(result['decode_ms_per_token'])}/token; median of "
        f"{plural(result['new_tokens'] * result['repeats'], 'step')})",
        f"memory:  peak RSS {result['peak_rss_mb']:.0f} MB (after load "
        f"{result['rss_after_load_mb']:.0f} MB)",
        f"bound:   {milliseconds(result['bandwidth_bound_ms'])}/token = "
        f"{_size(result['weight_bytes_per_token'])} of weights / "
        f"{result['copy_bandwidth_gb_s']:.1f} GB/s copy bandwidth",
        "decode step, by part (median ms per token):",
    ]
    for part in PARTS:
        share = parts[part] / total if total else 0.0
        lines.append(f"  {part:16s} {significant(parts[part]):>9s} ms {100 * share:5.1f} %")
    lines.append(f"  {'sum':16s} {significant(total):>9s} ms")
    if "head_ms_by_storage" in result:
        lines.append("output head per token by storage (head.py): " + ", ".join(
            f"{name} {milliseconds(ms)}" for name, ms in result["head_ms_by_storage"].items()))
    return "\n".join(lines)
