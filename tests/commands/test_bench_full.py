"""``minibitnet bench --full`` and ``--sizes`` as a user runs them (tiny shapes, seconds)."""

import json
import subprocess
import sys

import pytest

from minibitnet.tools.shapes import SHAPES
from minibitnet.tools.synthetic import write_checkpoint
from minibitnet_testing.gguf_cases import gguf_model_with_tokenizer


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_full_reports_every_figure_as_one_json_line(tmp_path):
    write_checkpoint(tmp_path, SHAPES["tiny"], seed=1)
    result = run_cli("bench", "--model", str(tmp_path), "--full", "--json", "--prompt-tokens",
                     "5", "--new-tokens", "2", "--repeats", "2", "--head-storages")
    assert result.returncode == 0, result.stderr
    line, = result.stdout.strip().splitlines()
    figures = json.loads(line)
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "load_s", "peak_rss_mb",
                "copy_bandwidth_gb_s", "bandwidth_bound_ms"):
        assert figures[key] > 0, key
    assert set(figures["decode_parts_ms"]) == {"ternary matmuls", "quantisation", "attention",
                                               "norms", "head", "other"}
    assert set(figures["head_ms_by_storage"]) == {"float32", "bf16"}
    assert figures["parameters"] == 78_464 and figures["backend"] == "fast"


def test_full_text_report_names_the_parts(tmp_path):
    write_checkpoint(tmp_path, SHAPES["tiny"], seed=1)
    result = run_cli("bench", "--model", str(tmp_path), "--full", "--backend", "reference",
                     "--prompt-tokens", "3", "--new-tokens", "1", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    for word in ("load:", "prefill:", "decode:", "peak RSS", "ternary matmuls", "bound:"):
        assert word in result.stdout


def test_sizes_writes_measures_plots_and_deletes(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "scaling.png"
    result = run_cli("bench", "--sizes", "tiny", "--checkpoint-dir", str(tmp_path / "ckpt"),
                     "--json", "--plot", str(plot), "--prompt-tokens", "3", "--new-tokens", "1",
                     "--repeats", "1")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])["scaling"]
    assert [row["shape"] for row in rows] == ["tiny"] and rows[0]["peak_rss_mb"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "ckpt" / "tiny").exists()  # the checkpoint is removed after use


def test_unknown_size_is_one_line():
    result = run_cli("bench", "--sizes", "125M,1T")
    assert result.returncode == 1 and "--sizes '1T' is not a known shape" in result.stderr



# ---- bitnet.cpp side by side (a stand-in llama-bench: tests never need bitnet.cpp) ----

STAND_IN = """#!{python}
import json, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
assert args["-t"] == "1" and args["-p"] == "5" and args["-n"] == "2", sys.argv
print(json.dumps([{{"n_prompt": 5, "n_gen": 0, "avg_ts": 50.0}},
                  {{"n_prompt": 0, "n_gen": 2, "avg_ts": 20.0}}]))
"""


def stand_in_llama_bench(folder):
    program = folder / "llama-bench"
    program.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    program.chmod(0o755)
    return folder


def test_full_with_bitnet_cpp_prints_both_side_by_side(tmp_path):
    model = gguf_model_with_tokenizer(tmp_path / "model")
    build = stand_in_llama_bench(tmp_path)
    result = run_cli("bench", "-m", str(model), "--full", "-t", "1", "--prompt-tokens", "5",
                     "--new-tokens", "2", "--repeats", "1", "--bitnet-cpp", str(build))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.lstrip().startswith("threads"))):]
    assert table[2].split()[:6] == ["1", "bitnet.cpp", "v1", "I2_S", "50.0", "20.00"]
    assert table[1].split()[:3] == ["1", "minibitnet", "fast"]
    prefill, decode = (float(v) for v in table[1].split()[3:5])
    ratio = table[3].split()
    assert ratio[0] == "ratio" and ratio[-2:] == [f"{prefill / 50:.2f}x", f"{decode / 20:.2f}x"]
    assert table[4].startswith("note: bitnet.cpp v1 knows the GGUF architecture 'bitnet'")


def test_full_with_bitnet_cpp_json_has_its_figures(tmp_path):
    model = gguf_model_with_tokenizer(tmp_path / "model")
    build = stand_in_llama_bench(tmp_path)
    result = run_cli("bench", "-m", str(model), "--full", "--json", "-t", "1", "--prompt-tokens",
                     "5", "--new-tokens", "2", "--repeats", "1", "--bitnet-cpp", str(build))
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["threads"] == 1
    assert figures["bitnet_cpp_prefill_tokens_per_s"] == 50.0
    assert figures["bitnet_cpp_decode_tokens_per_s"] == 20.0
    assert figures["bitnet_cpp_peak_rss_mb"] > 1 and figures["bitnet_cpp_timing_equivalent"]


def test_a_wrong_bitnet_cpp_folder_fails_before_measuring(tmp_path):
    write_checkpoint(tmp_path / "model", SHAPES["tiny"], seed=1)
    result = run_cli("bench", "-m", str(tmp_path / "model"), "--full", "--bitnet-cpp",
                     str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"minibitnet: error: --bitnet-cpp {tmp_path}: no llama-bench there (expected bitnet.cpp's "
        "build folder, e.g. bitnet-cpp/build/bin)"]
