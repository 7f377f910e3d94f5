"""What the commands print: plurals after counts, no rate that was not measured, and durations
under a millisecond that do not round to 0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from minibitnet.cli import main
from minibitnet.commands.bench_full import format_scaling
from minibitnet.commands.running import Reply, summary
from minibitnet.tools.full_bench import format_model_report
from minibitnet.tools.step_timing import PARTS
from minibitnet_testing.builders import build_checkpoint
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer


# ---- generate and chat: the summary line ----


def test_summary_without_new_tokens_shows_no_rate() -> None:
    line = summary(5, Reply(ids=[], prefill_s=1e-6, decode_s=0.0, stopped_by="length"), seed=3)
    assert line == "[5 prompt tokens, 0 new tokens; seed 3]"


def test_summary_of_one_token_shows_the_prefill_rate_only() -> None:
    line = summary(1, Reply(ids=[7], prefill_s=0.5, decode_s=0.0, stopped_by="length"), seed=3)
    assert line == "[1 prompt token, 1 new token; prefill 2.0 tokens/s; seed 3]"


def test_summary_of_a_reply_shows_both_rates() -> None:
    line = summary(8, Reply(ids=[7, 8, 9], prefill_s=0.5, decode_s=0.25, stopped_by="length"),
                   seed=3)
    assert line == ("[8 prompt tokens, 3 new tokens; prefill 16.0 tokens/s, decode 8.0 tokens/s; "
                    "seed 3]")


def test_generate_n_0_reports_no_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = build_model_with_tokenizer(tmp_path, seed=4)
    assert main(["generate", "-m", str(model), "-p", "Hello there", "-n", "0", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "\n"
    assert re.search(r"^\[\d+ prompt tokens, 0 new tokens; seed 1\]$", captured.err, re.MULTILINE)
    assert "tokens/s" not in captured.err


# ---- bench ----


def test_bench_with_one_repeat_says_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_checkpoint(tmp_path, "tiny", seed=3)
    assert main(["bench", "-m", str(tmp_path), "--prompt-tokens", "1", "--new-tokens", "1",
                 "--repeats", "1", "--kernel-shape", "4x8"]) == 0
    captured = capsys.readouterr()
    assert "prefill 1 token, decode 1, 1 repeat\n" in captured.err
    assert "median and min of 1 run):" in captured.out
    assert "1 repeats" not in captured.err and "1 tokens" not in captured.err


def full_result(bound_ms: float, decode_ms: float) -> dict[str, object]:
    """A --full result as measure_model returns it, with chosen figures."""
    return {"model": "m", "parameters": 78_464, "backend": "reference", "threads": 1,
            "load_s": 0.01, "open_and_check_s": 0.005, "prepare_s": 0.005, "prompt_tokens": 1, "prefill_s": 0.002,
            "prefill_tokens_per_s": 500.0, "new_tokens": 1, "repeats": 1,
            "decode_ms_per_token": decode_ms, "decode_tokens_per_s": 1e3 / decode_ms,
            "peak_rss_mb": 80.0, "rss_after_load_mb": 79.0, "copy_bandwidth_gb_s": 10.0,
            "weight_bytes_per_token": bound_ms * 1e-3 * 10e9, "bandwidth_bound_ms": bound_ms,
            "decode_parts_ms": dict.fromkeys(PARTS, decode_ms / len(PARTS)),
            "head_ms_by_storage": {"float32": 0.004, "bf16": 0.006}}


def test_full_report_keeps_figures_under_a_millisecond() -> None:
    text = format_model_report(full_result(bound_ms=0.0423, decode_ms=0.731))
    assert ("bound:   0.0423 ms/token = 0.423 MB of weights / 10.0 GB/s copy bandwidth"
            in text)
    assert "(0.731 ms/token; median of 1 step)" in text
    assert "load:    0.0100 s (open and check 0.00500 s, kernel formats and head 0.00500 s)" in text
    assert "(1 token in 0.00200 s)" in text
    assert "head.py): float32 0.00400 ms, bf16 0.00600 ms" in text
    assert not re.search(r" 0(\.0+)? m?s", text)


def test_full_report_of_a_large_model_stays_in_whole_milliseconds() -> None:
    text = format_model_report(full_result(bound_ms=145.2, decode_ms=1234.5))
    assert "bound:   145 ms/token = 1.45 GB of weights" in text and "(1234 ms/token;" in text


def test_scaling_table_keeps_figures_under_a_millisecond() -> None:
    row = {**full_result(bound_ms=0.0423, decode_ms=0.731), "shape": "tiny"}
    line = format_scaling([row]).splitlines()[1]
    assert line.split()[-3:-1] == ["0.731", "0.0423"]


# ---- ops ----


def test_ops_of_a_one_layer_model_in_the_singular(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    build_checkpoint(tmp_path, "tiny", num_hidden_layers=1, num_attention_heads=1,
                     num_key_value_heads=1, head_dim=64)
    assert main(["ops", "-m", str(tmp_path), "--context", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 layer, 1 head / 1 KV head," in out
    assert "one forward token attending to 1 position:" in out
