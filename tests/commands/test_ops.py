"""``minibitnet ops`` and minibitnet.tools.opcount: counts checked against independent computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from minibitnet_testing.builders import SHAPES, build_checkpoint
from hypothesis import given
from hypothesis import strategies as st

from minibitnet.formats.checkpoint import WEIGHTS_FILE, load_weights
from minibitnet.cli import main
from minibitnet.config import load_config
from minibitnet.tools.opcount import (
    HOROWITZ_45NM_PJ,
    count_model_ops,
    count_nonzero,
    projection_shapes,
)
from minibitnet.core.packing import pack_ternary, unpack_ternary
from minibitnet.formats.safetensors import STORAGE_DTYPES, read_header
from minibitnet.core.weights import TernaryWeight


@given(rows=st.integers(1, 6), cols=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       zero_share=st.floats(0.0, 1.0))
def test_count_nonzero_matches_unpacked_weights(rows: int, cols: int, seed: int,
                                                zero_share: float) -> None:
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], size=(4 * rows, cols)).astype(np.int8)
    w[rng.random(w.shape) < zero_share] = 0
    weight = TernaryWeight(pack_ternary(w), np.float32(1.0))
    assert count_nonzero(weight) == int(np.count_nonzero(w))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("ops") / "m", "awkward", seed=3)


def test_counts_follow_the_checkpoint(model_dir: Path) -> None:
    config = load_config(model_dir)
    report = count_model_ops(model_dir, context=10)
    weights = load_weights(model_dir, config)
    unpacked = [unpack_ternary(np.asarray(getattr(layer, name).packed))
                for layer in weights.layers for name in projection_shapes(config)]
    nonzero = sum(int(np.count_nonzero(w)) for w in unpacked)
    total = sum(w.size for w in unpacked)
    assert report.ternary_weights == total
    assert report.nonzero_weights == nonzero
    # one integer add or subtract per non-zero weight, and no integer multiplies at all
    assert report.ternary.parts["ternary projections"].int_add == nonzero
    assert report.ternary.total.int_mult == 0
    # the FP16 twin does one multiply and one add per weight instead
    assert report.fp16.parts["FP16 projections"].float_mult == total
    assert report.fp16.parts["FP16 projections"].int_add == 0

    # weight bytes: every tensor in the file once (the tied table serves as the head), plus the
    # embedding row of the token
    tensors, _, _ = read_header(model_dir / WEIGHTS_FILE)
    file_bytes = sum(info.num_elements * STORAGE_DTYPES[info.dtype].itemsize
                     for info in tensors.values())
    assert report.ternary.total.weight_bytes == file_bytes + 2 * config.hidden_size
    # the FP16 model stores 2 bytes per projection weight instead of 2 bits
    assert (report.fp16.total.weight_bytes - report.ternary.total.weight_bytes
            == 2 * total - total // 4 - 2 * 7 * config.num_hidden_layers)


def test_attention_cost_grows_with_context(model_dir: Path) -> None:
    config = load_config(model_dir)
    short, long = count_model_ops(model_dir, context=1), count_model_ops(model_dir, context=11)
    extra = long.ternary.parts["attention"].float_mult - short.ternary.parts["attention"].float_mult
    # q.k and p.v: 2 * H * Hd products per extra key per layer
    assert extra == 10 * 2 * config.num_attention_heads * config.head_dim \
        * config.num_hidden_layers
    assert long.ternary.parts["attention"].float_mult == long.fp16.parts["attention"].float_mult


def test_energy_uses_the_published_table(model_dir: Path) -> None:
    report = count_model_ops(model_dir, context=4)
    part = report.ternary.parts["ternary projections"]
    expected = (part.int_add * HOROWITZ_45NM_PJ["int32_add"]
                + part.float_add * HOROWITZ_45NM_PJ["fp16_add"]
                + part.float_mult * HOROWITZ_45NM_PJ["fp16_mult"])
    assert part.arithmetic_pj() == pytest.approx(expected)
    fp16 = report.fp16.parts["FP16 projections"]
    assert part.arithmetic_pj() < fp16.arithmetic_pj() / 5
    assert report.ternary.total.memory_pj() < report.fp16.total.memory_pj()


def test_cli_table_and_json(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--model", str(model_dir), "--context", "8"]) == 0
    table = capsys.readouterr().out
    assert "integer adds/subtracts" in table and "ISSCC 2014" in table
    assert main(["ops", "--model", str(model_dir), "--context", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = count_model_ops(model_dir, context=8)
    assert data["nonzero_weights"] == report.nonzero_weights
    assert data["ternary"]["int_add"] == report.ternary.total.int_add
    assert data["fp16"]["energy_uj"] > data["ternary"]["energy_uj"]


def test_cli_default_context_fits_a_short_model(model_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--model", str(model_dir), "--json"]) == 0
    limit = SHAPES["awkward"].max_position_embeddings
    assert json.loads(capsys.readouterr().out)["context"] == min(512, limit)


@pytest.mark.parametrize("args, fragment", [
    (["--context", "0"], "--context is 0"),
    (["--context", "100000"], "--context is 100000"),
])
def test_cli_rejects_bad_context(model_dir: Path, capsys: pytest.CaptureFixture[str],
                                 args: list[str], fragment: str) -> None:
    assert main(["ops", "--model", str(model_dir), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minibitnet: error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1


def test_cli_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--model", str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err
    assert "absent" in err and len(err.strip().splitlines()) == 1
