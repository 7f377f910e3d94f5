"""Sharded checkpoints (model.safetensors.index.json): the same model as one file, and one clean
error for each way the index or a shard can be wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.errors import CheckpointError
from minibitnet.formats.safetensors import SafetensorsFile, TensorSpec, write_safetensors
from minibitnet.formats.shards import INDEX_FILE, ShardedSafetensors
from minibitnet_testing.builders import build_checkpoint
from minibitnet_testing.family_builders import build_family_checkpoint

PROMPT = [1, 5, 17, 3, 99, 42, 8]


def shard(folder: Path, parts: int = 2) -> Path:
    """Split ``folder``'s model.safetensors into ``parts`` shards plus an index, in place, the
    way save_pretrained does: tensors in file order, cut into runs."""
    single = SafetensorsFile(folder / WEIGHTS_FILE)
    names = list(single.tensors)
    tensors = {name: np.array(single.array(name)) for name in names}
    infos = dict(single.tensors)
    del single
    (folder / WEIGHTS_FILE).unlink()
    weight_map = {}
    step = -(-len(names) // parts)
    for index in range(parts):
        file_name = f"model-{index + 1:05d}-of-{parts:05d}.safetensors"
        chunk = names[index * step:(index + 1) * step]
        specs = [TensorSpec(name, infos[name].dtype, infos[name].shape) for name in chunk]
        write_safetensors(folder / file_name, specs, lambda spec: tensors[spec.name])
        weight_map.update({name: file_name for name in chunk})
    total = sum(value.nbytes for value in tensors.values())
    (folder / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total},
                                                 "weight_map": weight_map}))
    return folder


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(one file, the same checkpoint in shards) for a packed bitnet and a 1bitLLM fp16 model."""
    root = tmp_path_factory.mktemp("shards")
    out = {}
    for name, build in (("bitnet", lambda f: build_checkpoint(f, "awkward", seed=3)),
                        ("1bitllm", lambda f: build_family_checkpoint(f, "1bitllm", seed=3))):
        single, sharded = build(root / name), build(root / f"{name}-sharded")
        out[name] = (single, shard(sharded, parts=3))
    return out


@pytest.mark.parametrize("name", ["bitnet", "1bitllm"])
@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_shards_give_the_logits_of_the_single_file(pairs, name, backend):
    single, sharded = pairs[name]
    assert not (sharded / WEIGHTS_FILE).exists()
    expected = minibitnet.load(single, backend=backend).logits(PROMPT)
    assert np.array_equal(minibitnet.load(sharded, backend=backend).logits(PROMPT), expected)


def test_info_reads_a_sharded_folder(pairs):
    single, sharded = pairs["bitnet"]
    outputs = [subprocess.run([sys.executable, "-m", "minibitnet.cli", "info", "--model",
                               str(folder)], capture_output=True, text=True, check=True).stdout
               for folder in (single, sharded)]
    # everything but the folder name agrees, parameter and byte counts included
    assert outputs[0].splitlines()[1:] == outputs[1].splitlines()[1:]


def edited(pairs, tmp_path: Path, edit) -> Path:
    """A copy of the sharded bitnet folder with ``edit(folder)`` applied."""
    _, sharded = pairs["bitnet"]
    folder = tmp_path / "model"
    folder.mkdir()
    for path in sharded.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    edit(folder)
    return folder


def set_index(value) -> Callable[[Path], None]:
    return lambda folder: (folder / INDEX_FILE).write_text(json.dumps(value))


def remap(name: str, shard_name: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        index = json.loads((folder / INDEX_FILE).read_text())
        index["weight_map"][name] = shard_name
        (folder / INDEX_FILE).write_text(json.dumps(index))
    return edit


def drop(name: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        index = json.loads((folder / INDEX_FILE).read_text())
        del index["weight_map"][name]
        (folder / INDEX_FILE).write_text(json.dumps(index))
    return edit


NORM = "model.norm.weight"
BROKEN = [
    ("not JSON", lambda f: (f / INDEX_FILE).write_text("{"), INDEX_FILE,
     "not valid UTF-8 JSON"),
    ("no weight_map", set_index({"metadata": {}}), INDEX_FILE,
     "expected a JSON object with a non-empty 'weight_map'"),
    ("a path outside the folder", remap(NORM, "../model-00001-of-00003.safetensors"), INDEX_FILE,
     "is mapped to '../model-00001-of-00003.safetensors', expected the name of a .safetensors "
     "file in the same folder"),
    ("a shard name that is not a string", remap(NORM, 7), INDEX_FILE, "is mapped to 7"),
    ("a missing shard", remap(NORM, "model-00009-of-00009.safetensors"),
     "model-00009-of-00009.safetensors", "no such file (named by model.safetensors.index.json)"),
    ("a tensor in another shard", remap(NORM, "model-00003-of-00003.safetensors"),
     "model-00003-of-00003.safetensors", "no tensor 'model.norm.weight', which "
     "model.safetensors.index.json places in this file"),
    ("a tensor the index leaves out", drop(NORM), INDEX_FILE,
     "missing tensor 'model.norm.weight'"),
]


@pytest.mark.parametrize("edit, file, message", [case[1:] for case in BROKEN],
                         ids=[case[0] for case in BROKEN])
def test_a_broken_index_is_one_clean_line(pairs, tmp_path, edit, file, message):
    folder = edited(pairs, tmp_path, edit)
    with pytest.raises(CheckpointError) as raised:
        minibitnet.load(folder)
    text = str(raised.value)
    assert text.startswith(str(folder / file) + ": ") and message in text and "\n" not in text


def test_a_single_file_wins_over_an_index(pairs, tmp_path):
    single, sharded = pairs["bitnet"]
    folder = edited(pairs, tmp_path, lambda f: (f / INDEX_FILE).write_text("{"))
    (folder / WEIGHTS_FILE).write_bytes((single / WEIGHTS_FILE).read_bytes())
    assert np.array_equal(minibitnet.load(folder).logits(PROMPT),
                          minibitnet.load(single).logits(PROMPT))


def linked_shards(tmp_path: Path, links: int) -> Path:
    """A model whose index maps each tensor to one of ``links`` shard names, every name a
    symlink to the one file that holds all the tensors."""
    folder = build_checkpoint(tmp_path / "model", "tiny", seed=2)
    real = folder / "all-tensors.safetensors"
    (folder / WEIGHTS_FILE).rename(real)
    names = list(SafetensorsFile(real).tensors)
    weight_map = {}
    for index in range(links):
        link = f"model-{index + 1:05d}-of-{links:05d}.safetensors"
        (folder / link).symlink_to(real.name)
    for position, name in enumerate(names):
        weight_map[name] = f"model-{position % links + 1:05d}-of-{links:05d}.safetensors"
    (folder / INDEX_FILE).write_text(json.dumps({"weight_map": weight_map}))
    return folder


def test_links_to_one_shard_file_parse_its_header_once(tmp_path, monkeypatch):
    expected = minibitnet.load(build_checkpoint(tmp_path / "single", "tiny", seed=2),
                               backend="reference").logits(PROMPT)
    folder = linked_shards(tmp_path, links=20)
    opened = []
    original_init = SafetensorsFile.__init__

    def counting_init(self, path):
        opened.append(path)
        original_init(self, path)

    monkeypatch.setattr(SafetensorsFile, "__init__", counting_init)
    sharded = ShardedSafetensors(folder / INDEX_FILE)
    assert len(opened) == 1 and len(sharded.tensors) > 20
    monkeypatch.undo()
    model = minibitnet.load(folder, backend="reference")
    np.testing.assert_array_equal(model.logits(PROMPT), expected)


def test_more_shards_than_the_budget_is_one_clean_line(tmp_path, monkeypatch):
    monkeypatch.setattr("minibitnet.formats.shards.MAX_SHARDS", 5)
    folder = linked_shards(tmp_path, links=6)
    with pytest.raises(CheckpointError, match=r"names 6 shard files, expected at most 5"):
        minibitnet.load(folder, backend="reference")
