"""The bitnet.cpp side of ``bench --full --bitnet-cpp``, without bitnet.cpp: finding llama-bench,
the GGUF file written for it, and reading what llama-bench prints (a stand-in script plays it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minibitnet.errors import ArgumentError
from minibitnet.formats.detect import read_model
from minibitnet.formats.gguf.container import GGUFFile
from minibitnet.tools.bitnet_cpp import (
    TIMING_NOTE, find_llama_bench, run_llama_bench, write_timing_gguf,
)
from minibitnet.tools.synthetic import tiny_config, write_checkpoint
from minibitnet_testing.gguf_cases import BASE, gguf_model_with_tokenizer
from minibitnet_testing.weight_checks import assert_same_weights

# what llama-bench -o json prints for -p 64 -n 16: one object per test
LLAMA_BENCH_OUTPUT = [
    {"n_prompt": 64, "n_gen": 0, "avg_ts": 61.5, "n_threads": 2},
    {"n_prompt": 0, "n_gen": 16, "avg_ts": 22.25, "n_threads": 2},
]


def fake_llama_bench(folder: Path, body: str) -> Path:
    """An executable named llama-bench in folder/build/bin that runs ``body`` as Python."""
    program = folder / "build" / "bin" / "llama-bench"
    program.parent.mkdir(parents=True)
    program.write_text(f"#!{sys.executable}\nimport json, sys\n{body}\n", encoding="utf-8")
    program.chmod(0o755)
    return program


def test_llama_bench_is_found_in_a_build_folder(tmp_path):
    program = fake_llama_bench(tmp_path, "")
    for given in (tmp_path, tmp_path / "build", tmp_path / "build" / "bin", program):
        assert find_llama_bench(given) == program


def test_a_folder_without_llama_bench_is_one_line(tmp_path):
    with pytest.raises(ArgumentError, match=rf"--bitnet-cpp {tmp_path}: no llama-bench there"):
        find_llama_bench(tmp_path)


def test_a_bitnet_b158_model_is_written_under_bitnet_with_the_same_tensors(tmp_path):
    source = gguf_model_with_tokenizer(tmp_path / "model")
    gguf = tmp_path / "out" / "ggml-model-i2_s.gguf"
    gguf.parent.mkdir()
    assert write_timing_gguf(gguf, source) is True  # only timing-equivalent: see TIMING_NOTE
    metadata = GGUFFile(gguf).metadata
    assert metadata["general.architecture"] == "bitnet"
    assert metadata["tokenizer.ggml.model"] == "gpt2"  # llama.cpp loads no model without it
    assert len(metadata["tokenizer.ggml.tokens"]) == 556
    config, weights, _ = read_model(gguf.parent)
    _, source_weights, _ = read_model(source)
    assert config.hidden_act == "silu"  # the graph bitnet.cpp v1 runs ...
    assert_same_weights(weights, source_weights)  # ... over exactly the model's tensors
    assert "'bitnet'" in TIMING_NOTE and "timing" in TIMING_NOTE


def test_a_silu_model_keeps_its_own_architecture(tmp_path):
    source = gguf_model_with_tokenizer(tmp_path / "model", hidden_act="silu")
    gguf = tmp_path / "ggml-model-i2_s.gguf"
    assert write_timing_gguf(gguf, source) is False
    assert GGUFFile(gguf).metadata["general.architecture"] == "bitnet"


def test_a_model_without_a_tokenizer_is_one_line(tmp_path):
    source = write_checkpoint(tmp_path / "model", tiny_config(**BASE), seed=5)
    with pytest.raises(ArgumentError, match="no tokenizer.json, which bitnet.cpp needs"):
        write_timing_gguf(tmp_path / "m.gguf", source)


def test_the_prefill_and_decode_rates_are_read_from_its_json(tmp_path):
    body = (f"assert sys.argv[1:] == ['-m', 'm.gguf', '-t', '2', '-p', '64', '-n', '16', '-r', "
            f"'3', '-o', 'json'], sys.argv\nprint(json.dumps({LLAMA_BENCH_OUTPUT!r}))")
    program = fake_llama_bench(tmp_path, body)
    prefill, decode, peak_mb = run_llama_bench(program, Path("m.gguf"), 2, 64, 16)
    assert (prefill, decode) == (61.5, 22.25)
    assert peak_mb > 1  # the child's own high-water mark: a Python interpreter's


def test_a_failing_llama_bench_is_one_line_with_its_last_words(tmp_path):
    program = fake_llama_bench(tmp_path, "print('loading', file=sys.stderr)\n"
                                         "print('error: failed to load model', file=sys.stderr)\n"
                                         "sys.exit(1)")
    with pytest.raises(ArgumentError, match=r"llama-bench failed \(exit 1\): error: failed to "
                                            r"load model$"):
        run_llama_bench(program, Path("m.gguf"), 2, 64, 16)
