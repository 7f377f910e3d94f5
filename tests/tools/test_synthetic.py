"""Random checkpoints: the published 2B4T tensor table, the ternary code distribution, streaming
and atomic writes, and the layout transformers' BitNetForCausalLM loads."""

import math

import numpy as np
import pytest

import minibitnet
from minibitnet.formats.checkpoint import expected_tensors
from minibitnet.core.packing import pack_ternary, unpack_ternary
from minibitnet.core.quant import ternarize_weights
from minibitnet.formats.safetensors import SafetensorsFile, TensorSpec, read_header, write_safetensors
from minibitnet.tools.shapes import SHAPES, count_parameters, get_shape
from minibitnet.errors import ArgumentError
from minibitnet.tools.synthetic import (
    CODE_HI, CODE_LO, checkpoint_bytes, checkpoint_specs, latent_std, random_codes,
    random_packed_weight, tiny_config, weight_scale_of, write_checkpoint,
)

# microsoft/bitnet-b1.58-2B-4T, read off its published safetensors header: D=2560, F=6912,
# H*Hd=2560, K*Hd=640 (5 KV heads of 128), V=128256; packed weights hold 4 rows per byte.
PUBLISHED_2B4T_LAYER = {
    "input_layernorm.weight": ("BF16", (2560,)),
    "post_attention_layernorm.weight": ("BF16", (2560,)),
    "self_attn.q_proj.weight": ("U8", (640, 2560)),
    "self_attn.k_proj.weight": ("U8", (160, 2560)),
    "self_attn.v_proj.weight": ("U8", (160, 2560)),
    "self_attn.o_proj.weight": ("U8", (640, 2560)),
    "self_attn.attn_sub_norm.weight": ("BF16", (2560,)),
    "mlp.gate_proj.weight": ("U8", (1728, 2560)),
    "mlp.up_proj.weight": ("U8", (1728, 2560)),
    "mlp.down_proj.weight": ("U8", (640, 6912)),
    "mlp.ffn_sub_norm.weight": ("BF16", (6912,)),
    **{f"{p}.weight_scale": ("BF16", (1,)) for p in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")},
}


def test_2b4t_tensor_table_matches_the_published_model():
    specs = {s.name: (s.dtype, s.shape) for s in checkpoint_specs(get_shape("2b4t"))}
    expected = {"model.embed_tokens.weight": ("BF16", (128256, 2560)),
                "model.norm.weight": ("BF16", (2560,))}
    for n in range(30):
        expected.update({f"model.layers.{n}.{k}": v for k, v in PUBLISHED_2B4T_LAYER.items()})
    assert len(expected) == 542
    assert specs == expected
    # 2.41 B parameters; the file's data section is 1.18 GB (the published file: 1.19 GB)
    assert count_parameters(get_shape("2b4t"))["total"] == 2_412_820_480
    assert checkpoint_bytes(get_shape("2b4t")) == sum(
        math.prod(shape) * (1 if dtype == "U8" else 2) for dtype, shape in expected.values())


@pytest.mark.parametrize("name, billions", [("125M", 0.125), ("350M", 0.35), ("1.5B", 1.5),
                                            ("3.3B", 3.3), ("7B", 7.0), ("13B", 13.0)])
def test_scaling_shapes_have_their_advertised_size(name, billions):
    total = count_parameters(SHAPES[name])["total"]
    assert abs(total / 1e9 - billions) / billions < 0.08


def test_unknown_shape_names_the_valid_ones():
    with pytest.raises(ArgumentError, match="2b4t"):
        get_shape("2B4T-large")


def test_code_thresholds_match_absmean_ternarisation_of_normals():
    # the fraction of zeros absmean ternarisation gives on real N(0, σ²) latents
    latent = np.random.default_rng(0).normal(0.0, 0.03, (512, 512)).astype(np.float32)
    w_ternary, scale = ternarize_weights(latent)
    zeros = float(np.mean(w_ternary == 0))
    assert abs((CODE_HI - CODE_LO) / 2**16 - zeros) < 0.005
    assert CODE_LO == 2**16 - CODE_HI  # as many -1 as +1 codes
    assert abs(weight_scale_of(0.03) / float(scale) - 1) < 0.005


def test_random_codes_are_ternary_with_the_expected_frequencies():
    codes = random_codes(np.random.default_rng(1), (1000, 999))
    counts = np.bincount(codes.ravel(), minlength=4) / codes.size
    assert counts[3] == 0
    np.testing.assert_allclose(counts[:3], [CODE_LO / 2**16, (CODE_HI - CODE_LO) / 2**16,
                                            1 - CODE_HI / 2**16], atol=0.003)


@pytest.mark.parametrize("rows, in_features", [(1, 1), (3, 7), (40, 1000)])
def test_random_packed_weight_is_the_packing_py_layout(rows, in_features, monkeypatch):
    monkeypatch.setattr("minibitnet.tools.synthetic.CHUNK_WEIGHTS", 4 * in_features * 2)  # 2-row chunks
    chunks = list(random_packed_weight(np.random.default_rng(5), rows, in_features))
    assert len(chunks) == math.ceil(rows / 2)
    rng = np.random.default_rng(5)  # the same draws, packed by packing.py
    for chunk in chunks:
        codes = random_codes(rng, (4, chunk.shape[0], in_features))
        w_ternary = codes.reshape(4 * chunk.shape[0], in_features).astype(np.int8) - 1
        assert np.array_equal(chunk, pack_ternary(w_ternary))
        assert np.array_equal(unpack_ternary(chunk), w_ternary)


def test_chunked_producer_writes_the_same_file_as_whole_arrays(tmp_path):
    data = np.arange(35, dtype=np.uint16).reshape(7, 5)
    specs = [TensorSpec("a", "BF16", (7, 5)), TensorSpec("b", "U8", (2, 3))]
    b = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    write_safetensors(tmp_path / "whole.safetensors", specs, lambda s: data if s.name == "a" else b)
    seen = []
    write_safetensors(tmp_path / "chunks.safetensors", specs,
                      lambda s: iter([data[:3], data[3:]]) if s.name == "a" else iter([b[:1], b[1:]]),
                      on_bytes=seen.append)
    assert (tmp_path / "whole.safetensors").read_bytes() == (tmp_path / "chunks.safetensors").read_bytes()
    assert seen == [30, 40, 3, 3]
    assert np.array_equal(SafetensorsFile(tmp_path / "chunks.safetensors").array("a"), data)


@pytest.mark.parametrize("chunks, message", [([np.zeros(4, np.uint16)], "produced 8 bytes"),
                                             ([np.zeros(35, np.uint8)], "produced uint8")])
def test_chunked_producer_with_wrong_size_or_dtype_fails_and_leaves_no_file(tmp_path, chunks, message):
    with pytest.raises(ValueError, match=message):
        write_safetensors(tmp_path / "m.safetensors", [TensorSpec("a", "BF16", (7, 5))],
                          lambda s: iter(chunks))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_partial_model(tmp_path):
    config = tiny_config()
    write_checkpoint(tmp_path, config, seed=1)
    before = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "config.json").unlink()

    def interrupt_halfway(num_bytes, written=[0]):
        written[0] += num_bytes
        if written[0] > checkpoint_bytes(config) // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path, config, seed=2, on_bytes=interrupt_halfway)
    # the old model is untouched, no temporary file is left, no config.json was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_written_checkpoint_matches_its_specs_and_scales(tmp_path):
    config = SHAPES["tiny"]
    write_checkpoint(tmp_path, config, seed=3)
    tensors, _, _ = read_header(tmp_path / "model.safetensors")
    assert {n: (t.dtype, t.shape) for n, t in tensors.items()} == {
        s.name: (s.dtype, s.shape) for s in checkpoint_specs(config)}
    file = SafetensorsFile(tmp_path / "model.safetensors")
    name = "model.layers.1.mlp.down_proj"
    expected = np.float32(weight_scale_of(latent_std(name, config)))
    assert abs(file.float32(name + ".weight_scale")[0] / expected - 1) < 2**-8  # bf16 rounding
    assert set(expected_tensors(config)) == set(tensors)


def test_same_seed_same_file_different_seed_different_file(tmp_path):
    config = tiny_config()
    paths = [write_checkpoint(tmp_path / str(i), config, seed=s) / "model.safetensors"
             for i, s in enumerate([4, 4, 5])]
    first, again, other = (p.read_bytes() for p in paths)
    assert first == again and first != other


def test_activations_stay_in_a_plausible_range(tmp_path):
    # a 12-layer model: the residual RMS grows smoothly, logits are finite and of order one
    config = tiny_config(num_hidden_layers=12, hidden_size=128, intermediate_size=344,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=512)
    model = minibitnet.load(write_checkpoint(tmp_path, config, seed=6))
    logits = model.logits(list(range(1, 17)))
    assert np.isfinite(logits).all()
    assert 0.3 < float(logits.std()) < 3.0


transformers = None
try:  # the oracle is optional (dev extra)
    import torch as _torch
    import transformers
except ImportError:  # pragma: no cover
    pass


@pytest.mark.oracle
@pytest.mark.parametrize("config", [
    tiny_config(),
    # like the dummy table: multi-head, head size 100 as in the 3.3B row, odd vocabulary size
    tiny_config(hidden_size=200, num_attention_heads=2, num_key_value_heads=2,
                intermediate_size=344, vocab_size=320, rope_theta=10000.0),
    tiny_config(tie_word_embeddings=False),
], ids=["tiny", "mha-head100", "untied"])
def test_transformers_loads_exactly_the_written_tensors(tmp_path, config):
    if transformers is None:
        pytest.skip("transformers is not installed")
    pytest.importorskip("accelerate")
    write_checkpoint(tmp_path, config, seed=8)
    model, info = transformers.BitNetForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"] and not info["error_msgs"]
    tensors, _, _ = read_header(tmp_path / "model.safetensors")
    state = model.state_dict()
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        state.pop("lm_head.weight")
    assert set(state) == set(tensors)
    torch_dtypes = {"U8": _torch.uint8, "BF16": _torch.bfloat16}
    for name, info_ in tensors.items():
        assert tuple(state[name].shape) == info_.shape, name
        assert state[name].dtype == torch_dtypes[info_.dtype], name
