"""``minibitnet bench``: runs end to end on a tiny model, reports every figure, rejects bad flags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minibitnet.cli import main
from minibitnet_testing.builders import build_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("bench"), "tiny", seed=3)


def test_bench_json_line(folder, capsys):
    code = main(["bench", "--model", str(folder), "--prompt-tokens", "4", "--new-tokens", "2",
                 "--repeats", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    assert result["backend"] == "fast"
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "reference_decode_tokens_per_s",
                "decode_speedup"):
        assert result[key] > 0
    kernels = {(k["kernel"], k["out_features"], k["in_features"]) for k in result["kernels"]}
    assert ("fast:lut", 96, 64) in kernels and ("reference", 64, 96) in kernels
    assert "bench:" in captured.err  # progress on stderr, not mixed into the JSON line


def test_bench_kernels_only_with_shapes(capsys):
    code = main(["bench", "--kernels-only", "--kernel-shape", "8x41", "--kernel-tokens", "3",
                 "--repeats", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "fast:bitplane" in out and "8x41" in out and "T=3" in out


def test_bench_bad_shape_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--kernels-only", "--kernel-shape", "8by41"])
    assert exit_info.value.code == 2
    assert "OUTxIN" in capsys.readouterr().err


def test_bench_context_too_long(folder, capsys):
    code = main(["bench", "--model", str(folder), "--prompt-tokens", "100", "--new-tokens", "100",
                 "--repeats", "1"])
    assert code == 1
    assert "context length" in capsys.readouterr().err


def test_each_timed_kernel_call_gets_another_vector_than_the_last(monkeypatch) -> None:
    """A kernel may keep what it built from the last vector (the LUT kernel's table): timing
    the same vector again would leave that work out, where every token of a decode pays it."""
    from minibitnet.commands import bench

    seen: list[bytes] = []

    class RecordingKernel:
        def prepare(self, packed):
            return packed

        def matmul(self, prepared, x_q):
            seen.append(x_q.tobytes())
            return np.zeros((x_q.shape[0], prepared.shape[0]), np.int32)

    monkeypatch.setattr(bench, "get_backend", lambda name, threads=None: RecordingKernel())
    bench.time_kernel("fast:lut", (8, 40), 1, 5, np.random.default_rng(0))
    assert len(seen) == 6  # a warm-up call, then the timed ones
    assert all(before != after for before, after in zip(seen, seen[1:]))
