"""``minibitnet convert`` on every checkpoint family: the model survives every conversion exactly.

"Exactly" means the written folder holds the same model: the same ternary codes, bit-equal
float32 weight scales, norms and embedding/head tables of the same dtype, and therefore logits
that are ``np.array_equal`` to the source's on both backends. Two things may change, and the
tests say where: the quantization_mode (packed files are offline, masters online) and, for
1bitLLM written packed, the family (1bitLLM has no packed layout; writers.config_for_layout).
Latents are not recoverable from a packed file: a round trip through bf16 masters keeps the
model, not the source's latent bytes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.cli import main
from minibitnet.config import ModelConfig
from minibitnet.formats.detect import read_model
from minibitnet.formats.safetensors import SafetensorsFile
from minibitnet.formats.gguf.checkpoint import GGUF_FILE
from minibitnet_testing.family_builders import FAMILY_SHAPES, build_family_checkpoint
from minibitnet_testing.gguf_cases import CASES as GGUF_CASES
from minibitnet_testing.gguf_cases import build_source as build_gguf_source
from minibitnet_testing.weight_checks import assert_same_weights

BACKENDS = ["reference", "fast"]
TARGETS = ["safetensors", "bf16"]
LAYOUT_OF_TARGET = {"safetensors": "packed", "bf16": "bf16-masters"}


def convert(src: Path, dst: Path, target: str) -> int:
    return main(["convert", str(src), str(dst), "--to", target])


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("family-sources")
    return {shape: build_family_checkpoint(root / shape, shape, seed=3) for shape in FAMILY_SHAPES}


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Every family shape converted to every safetensors target through the command."""
    root = tmp_path_factory.mktemp("family-converted")
    out = {}
    for shape, folder in sources.items():
        for target in TARGETS:
            out[shape, target] = root / f"{shape}-{target}"
            assert convert(folder, out[shape, target], target) == 0
    return out


def comparable(config: ModelConfig) -> ModelConfig:
    """The config without what a conversion may change (family and mode, see the docstring)."""
    return replace(config, family="-", quantization_mode="-")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("shape", list(FAMILY_SHAPES))
def test_every_family_keeps_its_model_in_every_safetensors_layout(sources, converted, shape,
                                                                  target):
    source_config, source_weights, _ = read_model(sources[shape])
    config, weights, layout = read_model(converted[shape, target])
    assert layout == LAYOUT_OF_TARGET[target]
    assert comparable(config) == comparable(source_config)
    assert config.quantization_mode == ("offline" if target == "safetensors" else "online")
    expected_family = "bitnet" if (source_config.family, target) == ("1bitllm", "safetensors") \
        else source_config.family
    assert config.family == expected_family
    assert_same_weights(weights, source_weights)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", list(FAMILY_SHAPES))
def test_logits_are_identical_after_every_conversion(sources, converted, shape, backend):
    source = minibitnet.load(sources[shape], backend=backend)
    ids = np.random.default_rng(5).integers(0, source.config.vocab_size, 9).tolist()
    expected = source.logits(ids)
    for target in TARGETS:
        got = minibitnet.load(converted[shape, target], backend=backend).logits(ids)
        assert np.array_equal(got, expected), target


@pytest.mark.parametrize("shape", [s for s, c in FAMILY_SHAPES.items()
                                   if c.quantization_mode == "offline"])
def test_packed_sources_come_back_byte_identical_through_masters(sources, converted, shape,
                                                                 tmp_path):
    assert convert(converted[shape, "bf16"], tmp_path / "back", "safetensors") == 0
    for name in (WEIGHTS_FILE, "config.json"):
        assert (tmp_path / "back" / name).read_bytes() == (sources[shape] / name).read_bytes()


@pytest.mark.parametrize("shape", [s for s, c in FAMILY_SHAPES.items()
                                   if c.quantization_mode == "online"])
def test_masters_written_from_packed_files_pack_to_the_same_bytes(converted, shape, tmp_path):
    """Online sources: masters -> packed -> masters -> packed repeats the packed bytes (the
    source's own latents are not recoverable, the model is)."""
    assert convert(converted[shape, "bf16"], tmp_path / "packed", "safetensors") == 0
    for name in (WEIGHTS_FILE, "config.json"):
        assert (tmp_path / "packed" / name).read_bytes() == \
            (converted[shape, "safetensors"] / name).read_bytes()


def test_a_packed_1bitllm_model_is_a_bitnet_file_that_keeps_its_fp16_tables(sources, tmp_path,
                                                                           capsys):
    assert convert(sources["1bitllm"], tmp_path / "packed", "safetensors") == 0
    err = capsys.readouterr().err
    assert "note: packed holds this 1bitllm model as the bitnet family, which computes the " \
           "same function\n" in err
    written = json.loads((tmp_path / "packed" / "config.json").read_text())
    assert (written["model_type"], written["architectures"], written["hidden_act"]) == (
        "bitnet", ["BitNetForCausalLM"], "silu")
    assert written["quantization_config"]["quantization_mode"] == "offline"
    tensors = SafetensorsFile(tmp_path / "packed" / WEIGHTS_FILE).tensors
    assert tensors["model.embed_tokens.weight"].dtype == "F16"
    assert tensors["lm_head.weight"].dtype == "F16"
    assert "model.layers.0.self_attn.attn_sub_norm.weight" in tensors
    assert not any("inner_attn_ln" in name for name in tensors)
    # a 1bitLLM scale is the float32 absmean of fp16 latents: kept exactly, hence F32
    assert tensors["model.layers.0.self_attn.q_proj.weight_scale"].dtype == "F32"


def test_masters_of_a_family_keep_its_tensor_names(converted):
    tensors = SafetensorsFile(converted["1bitllm", "bf16"] / WEIGHTS_FILE).tensors
    assert "model.layers.1.mlp.ffn_layernorm.weight" in tensors
    assert tensors["model.layers.1.mlp.down_proj.weight"].dtype == "BF16"
    assert tensors["model.embed_tokens.weight"].dtype == "F16"
    falcon = SafetensorsFile(converted["falcon-e", "bf16"] / WEIGHTS_FILE).tensors
    assert "model.layers.0.mlp.up_proj.rms_norm.weight" in falcon
    assert not any("sub_norm" in name for name in falcon)
    written = json.loads((converted["falcon3", "bf16"] / "config.json").read_text())
    assert written["quantization_config"] == {"quant_method": "bitnet",
                                              "linear_class": "autobitlinear",
                                              "quantization_mode": "online"}


# ---- GGUF I2_S through the command: every family, every way ----


@pytest.fixture(scope="module")
def gguf_chains(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """For every GGUF-sized family case of test_gguf_families.py: the source, and the source
    converted to GGUF, that GGUF to packed and to bf16, and that bf16 back to GGUF.

    Every folder of a chain is called "model": a GGUF file's general.name is the folder it was
    converted from (as bitnet.cpp's converter names it), so equal names keep equal bytes."""
    root = tmp_path_factory.mktemp("gguf-chains")
    chains = {}
    for name, (config, stored) in GGUF_CASES.items():
        folder = root / name
        chain = {"source": build_gguf_source(folder / "source" / "model", config, stored)}
        for step, src, target in (("gguf", "source", "gguf-i2s"), ("packed", "gguf", "safetensors"),
                                  ("masters", "gguf", "bf16"), ("again", "masters", "gguf-i2s")):
            chain[step] = folder / step / "model"
            assert convert(chain[src], chain[step], target) == 0, (name, step)
        chains[name] = chain
    return chains


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_family_survives_gguf_and_back_with_identical_logits(gguf_chains, backend):
    for name, chain in gguf_chains.items():
        source = minibitnet.load(chain["source"], backend=backend)
        ids = np.random.default_rng(2).integers(0, source.config.vocab_size, 9).tolist()
        expected = source.logits(ids)
        for step in ("gguf", "packed", "masters", "again"):
            got = minibitnet.load(chain[step], backend=backend).logits(ids)
            assert np.array_equal(got, expected), (name, step)


def test_every_family_keeps_its_weights_through_gguf(gguf_chains):
    for name, chain in gguf_chains.items():
        _, expected, _ = read_model(chain["source"])
        for step in ("gguf", "packed", "masters", "again"):
            _, weights, _ = read_model(chain[step])
            assert_same_weights(weights, expected)


def test_gguf_written_twice_through_masters_is_byte_identical(gguf_chains):
    for name, chain in gguf_chains.items():
        assert (chain["again"] / GGUF_FILE).read_bytes() == \
            (chain["gguf"] / GGUF_FILE).read_bytes(), name


def test_packed_gguf_packed_gives_back_the_source_bytes(gguf_chains):
    for name, (config, stored) in GGUF_CASES.items():
        if stored != "packed" or config.family != "llama-bitnet":
            continue  # bitnet packed is test_convert.py's; the rest change mode or family
        chain = gguf_chains[name]
        for file in (WEIGHTS_FILE, "config.json"):
            assert (chain["packed"] / file).read_bytes() == \
                (chain["source"] / file).read_bytes(), (name, file)


def test_a_silu_gated_bitnet_model_is_written_as_the_1bitllm_architecture(tmp_path, capsys):
    source = build_gguf_source(tmp_path / "source", *GGUF_CASES["bitnet-silu"])
    assert convert(source, tmp_path / "gguf", "gguf-i2s") == 0
    assert "note: gguf-i2s holds this bitnet model as the 1bitllm family, which computes the " \
           "same function\n" in capsys.readouterr().err
    assert minibitnet.load(tmp_path / "gguf").config.family == "1bitllm"


def test_what_gguf_cannot_hold_is_refused_by_convert_before_writing(tmp_path, capsys):
    config = replace(GGUF_CASES["1bitllm"][0], tie_word_embeddings=False)
    source = build_gguf_source(tmp_path / "untied", config, "F16")
    assert convert(source, tmp_path / "out", "gguf-i2s") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minibitnet: error: {tmp_path / 'out' / GGUF_FILE}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
