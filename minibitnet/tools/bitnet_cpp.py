"""bitnet.cpp side by side: the same model, converted by minibitnet, timed by ``llama-bench``.

``minibitnet bench --full --bitnet-cpp DIR`` measures minibitnet and then bitnet.cpp v1 (the I2_S
CPU kernels; ``DIR`` is its build, e.g. what ``build-bitnet-cpp.sh`` leaves in
``bitnet-cpp/build/bin``) on the same checkpoint, threads and prompt length, so that the ratio
comes from one run on one machine. Nothing else in the package needs bitnet.cpp.

The model reaches bitnet.cpp as a GGUF I2_S file written by minibitnet's own GGUF writer (what
``minibitnet convert --to gguf-i2s`` runs). subtle: bitnet.cpp v1 knows the GGUF architecture
``bitnet`` (a SiLU gate) but not ``bitnet-b1.58`` (the squared-ReLU gate of 2B4T), so a 2B4T
model is written with the same tensors under ``bitnet``: the same matrices, norms and shapes,
an elementwise activation apart, which is timing-equivalent, not the same function. The report
says so under the table.

Peak resident memory of the bitnet.cpp run is its own: ``os.wait4`` returns the child's usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ArgumentError
from ..formats.detect import read_model
from ..formats.gguf.architectures import architecture_of
from ..formats.gguf.checkpoint import write_gguf_model
from ..tokenizer.gguf import tokenizer_metadata
from ..tokenizer.tokenizer import read_tokenizer_files

BENCH_PROGRAM = "llama-bench"
TIMING_NOTE = ("bitnet.cpp v1 knows the GGUF architecture 'bitnet' (SiLU gate), not "
               "'bitnet-b1.58' (squared ReLU): the model was written with the same tensors under "
               "'bitnet' for timing; the activation is elementwise, so the timing is equivalent "
               "though the function is not the same")


@dataclass(frozen=True)
class BitnetCppRun:
    """What llama-bench measured: tokens/s of the prompt (prefill) and of decoding, peak RSS."""

    threads: int
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    peak_rss_mb: float
    timing_equivalent: bool  # written under another architecture (TIMING_NOTE)


def find_llama_bench(build: str | Path) -> Path:
    """``build`` itself, or llama-bench inside it (``build/bin``, ``bin``); ArgumentError if none."""
    folder = Path(build).expanduser()
    for candidate in (folder, folder / BENCH_PROGRAM, folder / "bin" / BENCH_PROGRAM,
                      folder / "build" / "bin" / BENCH_PROGRAM):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ArgumentError(f"--bitnet-cpp {build}: no {BENCH_PROGRAM} there (expected bitnet.cpp's "
                        "build folder, e.g. bitnet-cpp/build/bin)")


def write_timing_gguf(path: Path, model_dir: Path) -> bool:
    """Write the model of ``model_dir`` with its tokenizer (llama.cpp loads none without one) as
    a GGUF I2_S file bitnet.cpp v1 can run; True when the file holds the tensors under another
    architecture than the model's own (see the module docstring)."""
    config, weights, _ = read_model(model_dir)
    tokenizer = read_tokenizer_files(model_dir)
    if tokenizer is None:
        raise ArgumentError(f"{model_dir}: no tokenizer.json, which bitnet.cpp needs to load a "
                            "model (make-checkpoint --shape 2b4t writes one)")
    tokenizer_keys = tokenizer_metadata(*tokenizer, str(model_dir / "tokenizer.json"))
    own = architecture_of(config)
    equivalent = own is None or own.name == "bitnet-b1.58"
    if equivalent:  # the same tensors, read by the graph of the SiLU-gated architecture 'bitnet'
        config = replace(config, hidden_act="silu")
    write_gguf_model(path, config, weights, extra_metadata=tokenizer_keys, name=model_dir.name)
    return equivalent


def run_llama_bench(program: Path, gguf: Path, threads: int, prompt_tokens: int,
                    new_tokens: int, repetitions: int = 3) -> tuple[float, float, float]:
    """(prefill tokens/s, decode tokens/s, peak RSS MB) of one llama-bench run.

    llama-bench reports each test as one JSON object: ``n_prompt`` > 0 is the prefill test,
    ``n_gen`` > 0 the decode test, ``avg_ts`` their mean tokens/s over ``repetitions``.
    """
    command = [str(program), "-m", str(gguf), "-t", str(threads), "-p", str(prompt_tokens),
               "-n", str(new_tokens), "-r", str(repetitions), "-o", "json"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        # subtle: os.wait4 reaps the child and returns its own resource usage; Popen.wait would
        # reap it without, and RUSAGE_CHILDREN is a high-water mark over every child so far
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise ArgumentError(f"{program.name} failed (exit {process.returncode}): {last}")
    tests = json.loads(stdout)
    prefill = [t["avg_ts"] for t in tests if t.get("n_prompt", 0) > 0 and t.get("n_gen", 0) == 0]
    decode = [t["avg_ts"] for t in tests if t.get("n_gen", 0) > 0 and t.get("n_prompt", 0) == 0]
    if not prefill or not decode:
        raise ArgumentError(f"{program.name} printed no prefill and decode results")
    return float(prefill[0]), float(decode[0]), usage.ru_maxrss / 1024  # ru_maxrss is in KiB


def measure_bitnet_cpp(build: str | Path, model_dir: Path, folder: Path, threads: int,
                       prompt_tokens: int, new_tokens: int) -> BitnetCppRun:
    """Write the model of ``model_dir`` for bitnet.cpp into ``folder`` (ggml-model-i2_s.gguf,
    as bitnet.cpp names it) and time it with llama-bench."""
    program = find_llama_bench(build)
    gguf = folder / "ggml-model-i2_s.gguf"
    equivalent = write_timing_gguf(gguf, model_dir)
    prefill, decode, peak = run_llama_bench(program, gguf, threads, prompt_tokens, new_tokens)
    return BitnetCppRun(threads, prefill, decode, peak, equivalent)
