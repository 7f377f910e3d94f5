"""``minibitnet bench --full`` and ``--sizes``: whole-model figures of one backend, and the scaling
table over model sizes (the options and runner that bench.py hands over to).

``--full``: one backend on one model in this process only, so its peak resident memory is its
own: load time (opening and checking the checkpoint, then building the kernels' formats and the
head), prefill and decode tokens/s, peak RSS, where a decode step's time goes, and the memory
bandwidth bound (full_bench.py). With ``--transformers`` the same checkpoint then runs in
transformers' ``BitNetForCausalLM`` on the CPU for a few decode steps, so the ratio is measured in
one run.

``--sizes 125M,350M,...``: for each size, writes the checkpoint of that shape (shapes.py) unless
present, measures it with ``--full --json`` in a fresh child process (a clean peak RSS per size),
deletes it again unless ``--keep-checkpoints``, then prints the table, one JSON line, and with
``--plot FILE`` draws ms/token and memory against parameters beside the bandwidth bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ArgumentError
from ..tools.bitnet_cpp import TIMING_NOTE, find_llama_bench, measure_bitnet_cpp
from ..tools.full_bench import format_model_report, measure_model, peak_rss_mb
from ..formats.locate import resolve_model
from ..tools.progress import ProgressBar, note
from ..tools.shapes import SHAPES, count_parameters, get_shape
from ..tools.synthetic import checkpoint_bytes
from ..tools.wording import milliseconds, plural, significant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--full`` and ``--sizes`` (added to bench's parser)."""
    group = parser.add_argument_group("whole-model figures and scaling")
    group.add_argument("--full", action="store_true",
                       help="measure only --backend, in this process: load time, prefill and "
                            "decode tokens/s, peak RSS, decode time by part, bandwidth bound "
                            "(no reference run, no kernel table)")
    group.add_argument("--head-storages", action="store_true",
                       help="with --full: also time the output head in each storage of head.py")
    group.add_argument("--transformers", action="store_true",
                       help="with --full: then decode with transformers' BitNetForCausalLM on the "
                            "same checkpoint (dev extra; slow: use --transformers-tokens)")
    group.add_argument("--transformers-tokens", type=int, default=3, metavar="N",
                       help="decode steps for --transformers (default: 3)")
    group.add_argument("--bitnet-cpp", metavar="DIR",
                       help="with --full: then time bitnet.cpp's llama-bench (its build folder, "
                            "e.g. bitnet-cpp/build/bin) on the same model, threads and lengths, "
                            "and print both side by side (the model is converted to GGUF I2_S "
                            "first, in a temporary folder)")
    group.add_argument("--sizes", metavar="LIST",
                       help="comma-separated shapes for the scaling table, e.g. "
                            "125M,350M,1.5B,3.3B,7B,13B (each measured with --full in its own "
                            "process)")
    group.add_argument("--checkpoint-dir", metavar="DIR", default="/tmp/minibitnet-scaling",
                       help="where --sizes writes its checkpoints (default: "
                            "/tmp/minibitnet-scaling; up to 3.5 GB for 13B)")
    group.add_argument("--keep-checkpoints", action="store_true",
                       help="keep the --sizes checkpoints instead of deleting each after use")
    group.add_argument("--plot", metavar="PNG",
                       help="with --sizes: save the scaling plot here (needs matplotlib)")


# ---- transformers on the same checkpoint ----


def transformers_decode(model_dir: Path, prompt_tokens: int, new_tokens: int) -> dict[str, Any]:
    """Decode tokens/s of transformers' BitNetForCausalLM (CPU, bf16 as published) on model_dir."""
    try:
        import torch
        import transformers
    except ImportError:
        raise ArgumentError("--transformers needs torch and transformers (pip install "
                            "'minibitnet[dev]')") from None
    # BitNet's quantisers are torch.compile-decorated; compiling changes nothing numerically
    torch._dynamo.config.disable = True
    note("bench: transformers: loading BitNetForCausalLM")
    start = time.perf_counter()
    model = transformers.BitNetForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    model.eval()  # type: ignore[no-untyped-call]
    load_s = time.perf_counter() - start
    vocab = model.config.vocab_size
    prompt = torch.tensor([[(7 * i + 3) % vocab for i in range(prompt_tokens)]])
    times = []
    with torch.no_grad(), ProgressBar(new_tokens, "bench: transformers: decode",
                                      unit="token") as bar:
        out = model(prompt, use_cache=True)
        past = out.past_key_values
        for i in range(new_tokens):
            token = torch.tensor([[(11 * i + 5) % vocab]])
            start = time.perf_counter()
            out = model(token, past_key_values=past, use_cache=True)
            times.append(time.perf_counter() - start)
            past = out.past_key_values
            bar.update(1)
    step = statistics.median(times)
    return {"transformers_load_s": load_s, "transformers_decode_ms_per_token": step * 1e3,
            "transformers_decode_tokens_per_s": 1 / step,
            "transformers_threads": torch.get_num_threads()}


def bitnet_cpp_side_by_side(build: str, model_dir: Path, result: dict[str, Any]
                            ) -> dict[str, Any]:
    """bitnet.cpp on the same model, threads, prompt and decode lengths as ``result``."""
    find_llama_bench(build)  # a wrong folder fails before the conversion
    with tempfile.TemporaryDirectory(prefix="minibitnet-bitnet-cpp-") as folder:
        note(f"bench: bitnet.cpp: converting {model_dir} to GGUF I2_S, then llama-bench with "
             f"{plural(result['threads'], 'thread')}")
        run = measure_bitnet_cpp(build, model_dir, Path(folder), result["threads"],
                                 result["prompt_tokens"], result["new_tokens"])
    return {"bitnet_cpp_prefill_tokens_per_s": run.prefill_tokens_per_s,
            "bitnet_cpp_decode_tokens_per_s": run.decode_tokens_per_s,
            "bitnet_cpp_peak_rss_mb": run.peak_rss_mb,
            "bitnet_cpp_timing_equivalent": run.timing_equivalent}


def run_full(args: argparse.Namespace) -> dict[str, Any]:
    model_dir = resolve_model(args.model)
    if args.bitnet_cpp is not None:
        find_llama_bench(args.bitnet_cpp)  # before minutes of measuring
    result = measure_model(model_dir, args.backend, args.prompt_tokens, args.new_tokens,
                           args.repeats, head_storages=args.head_storages,
                           threads=args.threads)
    if args.bitnet_cpp is not None:
        gc.collect()
        result.update(bitnet_cpp_side_by_side(args.bitnet_cpp, model_dir, result))
    if args.transformers:
        gc.collect()  # the measured model is gone; its peak RSS is already recorded
        result.update(transformers_decode(model_dir, args.prompt_tokens,
                                          args.transformers_tokens))
        result["peak_rss_mb_with_transformers"] = peak_rss_mb()
        result["decode_speedup_over_transformers"] = (
            result["decode_tokens_per_s"] / result["transformers_decode_tokens_per_s"])
    return result


def format_side_by_side(result: dict[str, Any]) -> str:
    """minibitnet and bitnet.cpp in one table, with the ratio of their rates."""
    rows = [("minibitnet " + result["backend"], result["prefill_tokens_per_s"],
             result["decode_tokens_per_s"], result["peak_rss_mb"]),
            ("bitnet.cpp v1 I2_S", result["bitnet_cpp_prefill_tokens_per_s"],
             result["bitnet_cpp_decode_tokens_per_s"], result["bitnet_cpp_peak_rss_mb"])]
    lines = [f"{'threads':>7s}  {'system':24s} {'prefill tok/s':>13s} {'decode tok/s':>12s} "
             f"{'peak RSS MB':>11s}"]
    for system, prefill, decode, rss in rows:
        lines.append(f"{result['threads']:7d}  {system:24s} {prefill:13.1f} {decode:12.2f} "
                     f"{rss:11.0f}")
    lines.append(f"{'':7s}  {'ratio minibitnet/bitnet.cpp':24s} "
                 f"{rows[0][1] / rows[1][1]:12.2f}x {rows[0][2] / rows[1][2]:11.2f}x")
    if result["bitnet_cpp_timing_equivalent"]:
        lines.append(f"note: {TIMING_NOTE}")
    return "\n".join(lines)


def format_full(result: dict[str, Any]) -> str:
    text = format_model_report(result)
    if "bitnet_cpp_decode_tokens_per_s" in result:
        text += "\n" + format_side_by_side(result)
    if "transformers_decode_tokens_per_s" in result:
        text += (f"\ntransformers BitNetForCausalLM ({result['transformers_threads']} threads): "
                 f"{result['transformers_decode_tokens_per_s']:.3f} tokens/s decode "
                 f"({milliseconds(result['transformers_decode_ms_per_token'])}/token); "
                 f"{result['backend']} is {result['decode_speedup_over_transformers']:.1f}x faster")
    return text


# ---- scaling over sizes ----


def _size_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        get_shape(name, "--sizes")  # one-line error naming the valid shapes
    if not names:
        raise ArgumentError("--sizes is empty; expected e.g. 125M,350M,1.5B")
    return names


def _measure_size(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Write (if needed) and measure the checkpoint of shape ``name`` in a child process."""
    folder = Path(args.checkpoint_dir) / name
    made = False
    if not (folder / "model.safetensors").is_file():
        free = shutil.disk_usage(folder.parent if folder.parent.exists() else "/").free
        if free < checkpoint_bytes(get_shape(name)) + 256 * 1024 * 1024:
            raise ArgumentError(f"--checkpoint-dir {args.checkpoint_dir}: {free / 1e9:.1f} GB "
                                f"free, not enough for the {name} checkpoint")
        note(f"bench: writing the {name} checkpoint to {folder}")
        subprocess.run([sys.executable, "-m", "minibitnet.cli", "make-checkpoint", "--shape",
                        name, "--out", str(folder), "--force"], check=True,
                       stdout=subprocess.DEVNULL)
        made = True
    try:
        command = [sys.executable, "-m", "minibitnet.cli", "bench", "--model", str(folder),
                   "--full", "--json", "--backend", args.backend, "--prompt-tokens",
                   str(args.prompt_tokens), "--new-tokens", str(args.new_tokens), "--repeats",
                   str(args.repeats), *(["--threads", str(args.threads)] if args.threads else [])]
        child = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        if made and not args.keep_checkpoints:
            shutil.rmtree(folder, ignore_errors=True)
    result["shape"] = name
    return result


def format_scaling(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'shape':6s} {'params':>8s} {'load s':>7s} {'prefill tok/s':>13s} "
             f"{'decode ms/tok':>13s} {'bound ms':>8s} {'peak RSS MB':>11s}"]
    for row in rows:
        lines.append(f"{row['shape']:6s} {row['parameters'] / 1e9:7.2f}B {row['load_s']:7.1f} "
                     f"{row['prefill_tokens_per_s']:13.1f} "
                     f"{significant(row['decode_ms_per_token']):>13s} "
                     f"{significant(row['bandwidth_bound_ms']):>8s} {row['peak_rss_mb']:11.0f}")
    return "\n".join(lines)


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    """ms/token (with the bandwidth bound) and peak RSS against parameters, two panels."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArgumentError("--plot needs matplotlib (pip install 'minibitnet[docs]')") from None
    params = [row["parameters"] / 1e9 for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(params, [row["decode_ms_per_token"] for row in rows], "o-",
              label=f"measured decode ({rows[0]['backend']})")
    left.plot(params, [row["bandwidth_bound_ms"] for row in rows], "s--",
              label="memory-bandwidth bound (weights / copy bandwidth)")
    left.set(xscale="log", yscale="log", xlabel="parameters (billions)", ylabel="ms per token",
             title="decode time per token")
    right.plot(params, [row["peak_rss_mb"] / 1024 for row in rows], "o-", label="peak RSS")
    right.plot(params, [row["weight_bytes_per_token"] / 2**30 for row in rows], "s--",
               label="weights as stored")
    right.set(xscale="log", yscale="log", xlabel="parameters (billions)", ylabel="GiB",
              title="memory")
    for axes, values in ((left, [row["decode_ms_per_token"] for row in rows]),
                         (right, [row["peak_rss_mb"] / 1024 for row in rows])):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
        for row, x, y in zip(rows, params, values):
            axes.annotate(row["shape"], (x, y), fontsize=7, textcoords="offset points",
                          xytext=(4, -10))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_scaling(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name in _size_list(args.sizes):
        total = count_parameters(SHAPES[name])["total"]
        note(f"bench: {name} ({total / 1e9:.2f} B parameters)")
        rows.append(_measure_size(name, args))
    if args.plot:
        plot_scaling(rows, Path(args.plot))
    return rows


def run(args: argparse.Namespace) -> int:
    """bench with --full or --sizes."""
    if args.sizes:
        rows = run_scaling(args)
        if args.json:
            print(json.dumps({"scaling": rows}))
        else:
            print(format_scaling(rows))
        return 0
    result = run_full(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_full(result))
    return 0
