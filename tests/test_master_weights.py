"""bf16 master weights: ternarised on load exactly as the packed checkpoint made from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minibitnet
from minibitnet.checkpoint import MASTERS, PACKED, WEIGHTS_FILE, load_weights
from minibitnet.errors import CheckpointError
from minibitnet.master import (LARGEST_SCALE, master_from_ternary, round_scale_to_bf16,
                               ternarize_master, ternarize_online)
from minibitnet.packing import pack_ternary, unpack_ternary
from minibitnet.quant import ternarize_weights
from minibitnet.safetensors import SafetensorsFile, bf16_to_float32, float32_to_bf16, read_header
from minibitnet.writers import write_safetensors_model
from format_builders import build_master_checkpoint, build_packed_from_masters, write_folder
from strategies import ternary_matrices

BACKENDS = ["reference", "fast"]
PROMPT = [1, 5, 17, 3, 99, 42, 8]


def test_worked_example_from_quant():
    # quant.py's example: mean|w| = 0.2125, codes [1, 0, -1, 0]; four rows so that it packs
    w = np.array([[0.3], [-0.05], [-0.4], [0.1]], np.float32)  # (4, 1)
    weight = ternarize_master(w)
    assert unpack_ternary(weight.packed)[:, 0].tolist() == [1, 0, -1, 0]
    # 1 / 0.2125 = 4.70588..., between the bf16 values 4.6875 and 4.71875 (steps of 1/32 in
    # [4, 8)) and nearer the second
    assert weight.weight_scale == np.float32(4.71875)


@given(w=st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).standard_normal((8, 24)).astype(np.float32)))
def test_ternarize_master_is_the_absmean_quantiser_with_a_bf16_scale(w):
    weight = ternarize_master(w)
    w_ternary, scale = ternarize_weights(w)
    assert np.array_equal(unpack_ternary(weight.packed), w_ternary)
    assert weight.weight_scale == bf16_to_float32(float32_to_bf16(np.array([scale])))[0]


def _is_exact_by_guarantee(w_ternary: np.ndarray) -> bool:
    """Codes for which master_from_ternary's docstring promises latents (k >= 1 nonzero)."""
    k = int(np.count_nonzero(w_ternary))
    z = w_ternary.size - k
    return z >= 3 or (z == 2 and k >= 16) or (z == 1 and k >= 2**11) or (z == 0 and k >= 2**18)


def _float32_bits(value: np.float32) -> int:
    """The bit pattern of a float32, so that equal means bit for bit."""
    return int(np.array([value], np.float32).view(np.uint32)[0])


def _assert_round_trip(w_ternary: np.ndarray, weight_scale: np.float32) -> np.ndarray:
    """Latents of (w_ternary, weight_scale), checked to ternarise back to both exactly."""
    latents = bf16_to_float32(master_from_ternary(w_ternary, weight_scale))
    codes, scale = ternarize_weights(latents)
    assert np.array_equal(codes, w_ternary)
    assert _float32_bits(scale) == _float32_bits(weight_scale)
    # corrections on zero codes keep |W s| <= 0.25, well clear of the 0.5 tie
    assert np.all(np.abs(latents[w_ternary == 0]) * weight_scale <= 0.25)
    return latents


@given(w_ternary=ternary_matrices(), scale_bits=st.integers(0x3A00, 0x4500))
def test_masters_from_codes_ternarise_back_to_the_same_codes_and_scale(w_ternary, scale_bits):
    weight_scale = bf16_to_float32(np.array([scale_bits], np.uint16))[0]  # a bf16 scale
    if not w_ternary.any():  # no scale to keep: zeros, which reload with the clamped scale
        latents = bf16_to_float32(master_from_ternary(w_ternary, weight_scale))
        assert not latents.any()
        assert ternarize_weights(latents)[1] == LARGEST_SCALE
        return
    try:
        _assert_round_trip(w_ternary, weight_scale)
    except ValueError as error:  # too few zero codes to correct the sum with
        assert not _is_exact_by_guarantee(w_ternary), str(error)
        assert "zero codes among" in str(error)


@st.composite
def codes_with_zeros(draw: st.DrawFn) -> np.ndarray:
    """(out, in) int8 codes, out a multiple of 4, with at least one nonzero and three zeros:
    one nonzero, sparse, a third zero, dense, or all nonzero but three."""
    rows, cols = 4 * draw(st.integers(1, 75)), draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    fill = draw(st.sampled_from(["one", "sparse", "third", "dense", "three zeros"]))
    n = rows * cols
    nonzero_share = {"one": 0.0, "sparse": 0.02, "third": 2 / 3, "dense": 0.98, "three zeros": 1.0}
    signs = rng.choice(np.array([-1, 1], np.int8), n)  # (n,)
    w = np.where(rng.random(n) < nonzero_share[fill], signs, 0).astype(np.int8)  # (n,)
    zeros = rng.choice(n, 4, replace=False)
    w[zeros[:3]] = 0
    w[zeros[3]] = signs[0]  # at least one nonzero
    return w.reshape(rows, cols)


# float32 bit patterns from 1e-2 to 1e4: any float32 scale, not only bf16 values
float32_scales = st.integers(0x3C23D70A, 0x461C4000).map(
    lambda bits: np.array([bits], np.uint32).view(np.float32)[0])


@given(w_ternary=codes_with_zeros(), weight_scale=float32_scales)
def test_online_reading_of_masters_gives_back_any_float32_scale(w_ternary, weight_scale):
    latents = _assert_round_trip(w_ternary, weight_scale)
    weight = ternarize_online(latents)
    assert np.array_equal(weight.packed, pack_ternary(w_ternary))
    assert _float32_bits(weight.weight_scale) == _float32_bits(weight_scale)
    # and the bf16-rounded reading gives the scale a packed checkpoint stores
    assert ternarize_master(latents).weight_scale == round_scale_to_bf16(weight_scale)


@given(w_ternary=codes_with_zeros(), scale_bits=st.integers(0x3C24, 0x461C))
def test_bf16_reading_of_masters_gives_back_a_bf16_scale(w_ternary, scale_bits):
    weight_scale = bf16_to_float32(np.array([scale_bits], np.uint16))[0]
    weight = ternarize_master(bf16_to_float32(master_from_ternary(w_ternary, weight_scale)))
    assert np.array_equal(weight.packed, pack_ternary(w_ternary))
    assert weight.weight_scale == weight_scale


EDGE_SCALES = [
    LARGEST_SCALE,  # mean|W| at the 1e-5 clamp
    np.nextafter(LARGEST_SCALE, np.float32(0)),
    np.float32(2.0**-3), np.nextafter(np.float32(2.0**-3), np.float32(0)),  # across a binade
    np.nextafter(np.float32(64.0), np.float32(np.inf)),
    np.float32(1e-20),  # latents near 1e20, still bf16
]


@pytest.mark.parametrize("weight_scale", EDGE_SCALES, ids=repr)
@pytest.mark.parametrize("fill", ["one nonzero", "three zeros", "random"])
def test_edge_scales_come_back_exactly(weight_scale, fill):
    rng = np.random.default_rng(7)
    w_ternary = rng.integers(-1, 2, (12, 37)).astype(np.int8)  # (12, 37)
    if fill == "one nonzero":
        w_ternary[:] = 0
        w_ternary[5, 3] = -1
    elif fill == "three zeros":
        w_ternary = np.where(w_ternary == 0, 1, w_ternary).astype(np.int8)
        w_ternary[0, :3] = 0
    _assert_round_trip(w_ternary, weight_scale)


@pytest.mark.parametrize(("zeros", "nonzeros"), [(2, 16), (1, 2**11), (0, 2**18)])
def test_fewer_than_three_zero_codes_are_enough_for_large_tensors(zeros, nonzeros):
    rng = np.random.default_rng(zeros)
    for _ in range(5):
        w_ternary = rng.choice(np.array([-1, 1], np.int8), (1, zeros + nonzeros))
        w_ternary[0, rng.choice(zeros + nonzeros, zeros, replace=False)] = 0
        scale_bits = rng.integers(0x3C23D70A, 0x461C4000)
        _assert_round_trip(w_ternary, np.array([scale_bits], np.uint32).view(np.float32)[0])


def test_worked_example_of_going_back():
    # the module docstring: codes [1, 0, -1, 0] with s = 3 need sum|W| = 4/3
    latents = bf16_to_float32(master_from_ternary(np.array([[1], [0], [-1], [0]]), 3.0))
    assert latents[:, 0].tolist() == [0.66796875, 0.0012969970703125, -0.6640625,
                                      5.125999450683594e-06]
    assert float(np.abs(latents).sum(dtype=np.float64)) == 1.3333333730697632
    assert ternarize_weights(latents)[1] == np.float32(3.0)


def test_a_projection_of_2b4t_size_comes_back_exactly():
    rng = np.random.default_rng(2560)
    w_ternary = rng.integers(-1, 2, (2560, 6912)).astype(np.int8)  # about a third zero
    weight_scale = np.float32(rng.uniform(0.5, 4.0))
    assert round_scale_to_bf16(weight_scale) != weight_scale  # not a bf16 value
    _assert_round_trip(w_ternary, weight_scale)


def test_codes_in_any_memory_order_give_the_same_latents():
    rng = np.random.default_rng(3)
    w_ternary = rng.integers(-1, 2, (40, 24)).astype(np.int8)
    weight_scale = np.float32(1.2345678)
    transposed = np.ascontiguousarray(w_ternary.T).T  # same values, column-major
    assert np.array_equal(master_from_ternary(transposed, weight_scale),
                          master_from_ternary(w_ternary, weight_scale))


@pytest.mark.parametrize("weight_scale", [np.nan, np.inf, 0.0, -1.0, 2e5,
                                          np.nextafter(LARGEST_SCALE, np.float32(np.inf))])
def test_a_scale_no_latents_give_is_refused(weight_scale):
    w_ternary = np.array([[1], [0], [-1], [0]], np.int8)
    with pytest.raises(ValueError, match=r"weight_scale .*: expected a finite float32 in "
                                         r"\(0, 100000\]"):
        master_from_ternary(w_ternary, np.float32(weight_scale))


def test_latents_beyond_bf16_range_are_refused():
    w_ternary = np.array([[1], [0], [0], [0]], np.int8)  # one nonzero carries 4 / s
    with pytest.raises(ValueError, match=r"weight_scale 1e-38: latents of magnitude about "
                                         r"n / \(k s\) = [34]\.\d+e\+38 are beyond bf16"):
        master_from_ternary(w_ternary, np.float32(1e-38))


def test_codes_without_zeros_to_correct_with_are_refused():
    # 16 nonzeros: their sums move in bf16 steps of about 2^-8 / s, far above the 2^-24
    # relative slack of a float32 scale, and there is no zero code to make up the rest
    with pytest.raises(ValueError, match=r"w_ternary has 0 zero codes among 16 weights; "
                                         r"weight_scale 1.2345678 needs 2 of them"):
        master_from_ternary(np.ones((4, 4), np.int8), np.float32(1.2345678))


def test_all_zero_codes_give_zero_latents_whatever_the_scale():
    latents = bf16_to_float32(master_from_ternary(np.zeros((8, 5), np.int8), np.float32(np.nan)))
    assert latents.shape == (8, 5) and not latents.any()


@pytest.fixture(scope="module")
def twin_folders(tmp_path_factory):
    """(masters, the packed checkpoint made from them), shape "awkward"."""
    root = tmp_path_factory.mktemp("masters")
    masters = build_master_checkpoint(root / "masters", "awkward", seed=4)
    packed = build_packed_from_masters(root / "packed", "awkward", seed=4)
    return masters, packed


@pytest.mark.parametrize("backend", BACKENDS)
def test_masters_and_their_packed_checkpoint_give_identical_logits(twin_folders, backend):
    masters, packed = twin_folders
    from_masters = minibitnet.load(masters, backend=backend).logits(PROMPT)
    from_packed = minibitnet.load(packed, backend=backend).logits(PROMPT)
    assert np.array_equal(from_masters, from_packed)
    assert np.array_equal(from_masters, minibitnet.load(masters).logits(PROMPT))  # = reference


def test_writing_masters_of_a_packed_checkpoint_and_back_keeps_every_byte(twin_folders, tmp_path):
    _, packed = twin_folders
    weights = load_weights(packed)
    config = minibitnet.load(packed).config
    write_safetensors_model(tmp_path / "masters", config, weights, MASTERS)
    written = SafetensorsFile(tmp_path / "masters" / WEIGHTS_FILE)
    assert written.tensors["model.layers.0.mlp.up_proj.weight"].dtype == "BF16"
    assert not any(name.endswith("weight_scale") for name in written.tensors)
    write_safetensors_model(tmp_path / "back", config, load_weights(tmp_path / "masters"), PACKED)
    before = SafetensorsFile(packed / WEIGHTS_FILE)
    after = SafetensorsFile(tmp_path / "back" / WEIGHTS_FILE)
    assert set(before.tensors) == set(after.tensors)
    for name, info in before.tensors.items():
        assert after.tensors[name].dtype == info.dtype, name
        assert np.array_equal(after.array(name), before.array(name)), name


def _edit_masters(folder: Path, name: str, value: float) -> None:
    """Set the first element of bf16 tensor ``name`` to ``value``."""
    tensors, _, data_start = read_header(folder / WEIGHTS_FILE)
    raw = bytearray((folder / WEIGHTS_FILE).read_bytes())
    start = data_start + tensors[name].begin
    raw[start:start + 2] = float32_to_bf16(np.array([value], np.float32)).tobytes()
    (folder / WEIGHTS_FILE).write_bytes(bytes(raw))


def test_nan_in_a_master_weight_is_one_clean_error(tmp_path):
    folder = build_master_checkpoint(tmp_path / "m", "tiny")
    _edit_masters(folder, "model.layers.1.mlp.down_proj.weight", float("nan"))
    with pytest.raises(CheckpointError, match=r"model.safetensors: tensor "
                       r"'model.layers.1.mlp.down_proj.weight' holds NaN or infinity"):
        minibitnet.load(folder)


def test_a_master_of_the_wrong_shape_names_the_expected_shape(tmp_path):
    folder = build_master_checkpoint(tmp_path / "m", "tiny")
    config = json.loads((folder / "config.json").read_text())
    config["num_key_value_heads"] = 4  # the key masters hold 2 heads of 16
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"'model.layers.0.self_attn.k_proj.weight' has "
                                              r"shape \[32, 64\], expected \[64, 64\]"):
        minibitnet.load(folder)


def test_masters_may_not_mix_with_packed_projections(tmp_path):
    masters = build_master_checkpoint(tmp_path / "m", "tiny")
    packed = build_packed_from_masters(tmp_path / "p", "tiny")
    # a packed file whose first projection is a float tensor is read as masters: the next
    # packed projection is then refused with the master shape expected
    packed_file = SafetensorsFile(packed / WEIGHTS_FILE)
    tensors = {name: np.array(packed_file.array(name)) for name in packed_file.tensors}
    dtypes = {name: info.dtype for name, info in packed_file.tensors.items()}
    name = "model.layers.0.self_attn.q_proj.weight"
    tensors[name] = np.array(SafetensorsFile(masters / WEIGHTS_FILE).array(name))
    dtypes[name] = "BF16"
    config = minibitnet.load(packed).config
    write_folder(tmp_path / "mixed", config, tensors, dtypes)
    with pytest.raises(CheckpointError, match=r"'model.layers.0.self_attn.k_proj.weight' has "
                                              r"shape \[8, 64\], expected \[32, 64\]"):
        minibitnet.load(tmp_path / "mixed")
