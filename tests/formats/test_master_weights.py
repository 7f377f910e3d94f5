"""bf16 master weights: ternarised on load exactly as the packed checkpoint made from them.

Going back, from codes and a scale to masters, is tested in test_latents.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minibitnet
from minibitnet.formats.checkpoint import MASTERS, PACKED, WEIGHTS_FILE, load_weights
from minibitnet.errors import CheckpointError
from minibitnet.formats.master import ternarize_master, ternarize_online
from minibitnet.core.packing import unpack_ternary
from minibitnet.core.quant import ternarize_weights
from minibitnet.formats.safetensors import SafetensorsFile, read_header
from minibitnet.core.bfloat16 import bf16_to_float32, float32_to_bf16
from minibitnet.formats.writers import write_safetensors_model
from minibitnet_testing.format_builders import build_master_checkpoint, build_packed_from_masters, write_folder

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


# (8, 24) float32 latents, normally distributed like trained weights
gaussian_latents = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).standard_normal((8, 24)).astype(np.float32))


@given(w=gaussian_latents)
def test_ternarize_master_is_the_absmean_quantiser_with_a_bf16_scale(w):
    weight = ternarize_master(w)
    w_ternary, scale = ternarize_weights(w)
    assert np.array_equal(unpack_ternary(weight.packed), w_ternary)
    assert weight.weight_scale == bf16_to_float32(float32_to_bf16(np.array([scale])))[0]


@given(w=gaussian_latents)
def test_ternarize_online_is_the_absmean_quantiser_with_its_float32_scale(w):
    weight = ternarize_online(w)
    w_ternary, scale = ternarize_weights(w)
    assert np.array_equal(unpack_ternary(weight.packed), w_ternary)
    assert weight.weight_scale.dtype == np.float32 and weight.weight_scale == scale


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
    reference = minibitnet.load(masters, backend="reference").logits(PROMPT)
    assert np.array_equal(from_masters, reference)


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
