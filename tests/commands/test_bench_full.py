"""``minibitnet bench --full`` and ``--sizes`` as a user runs them (tiny shapes, seconds)."""

import json
import subprocess
import sys

import pytest

from minibitnet.tools.shapes import SHAPES
from minibitnet.tools.synthetic import write_checkpoint


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
