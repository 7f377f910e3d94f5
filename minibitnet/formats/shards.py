"""Sharded safetensors checkpoints: ``model.safetensors.index.json`` and the files it names.

transformers' ``save_pretrained`` splits a checkpoint larger than its shard size (5 GB by
default: 1bitLLM's 3B fp16 latents, say) into ``model-00001-of-0000N.safetensors`` ... and
writes an index beside them::

    {"metadata": {"total_size": 6651535360},
     "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", ...}}

:class:`ShardedSafetensors` presents the shards as one :class:`SafetensorsFile` (``tensors``,
``array``, ``float32``, ``in``), so the loader's table of names and checks stays the same. Each
shard is checked as a single file is; the index must be a JSON object whose ``weight_map`` maps
tensor names to plain file names in the same folder (no path separators), and every tensor it
names must lie in the shard it names. Tensors a shard holds but the index does not name are
ignored, as transformers ignores them. Left out: ``.bin`` (pickle) shards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from ..files import read_bounded
from .safetensors import SafetensorsFile, TensorInfo

INDEX_FILE = "model.safetensors.index.json"
# an 8B model's index is about 25 kB; a larger file is not an index and is not read into memory
MAX_INDEX_BYTES = 16 * 1024 * 1024
# LLaMA 3.1 405B, the largest open checkpoint, ships 191 shards; 50 times that is not a model
MAX_SHARDS = 10_000


def _read_weight_map(path: Path) -> dict[str, str]:
    """The weight_map of an index file, checked: tensor name -> shard file name."""
    data = read_bounded(path, MAX_INDEX_BYTES, CheckpointError, "a small JSON index")
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: not valid UTF-8 JSON") from None
    weight_map = raw.get("weight_map") if isinstance(raw, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{path}: expected a JSON object with a non-empty 'weight_map' "
                              "(tensor name -> shard file)")
    for name, shard in weight_map.items():
        if (not isinstance(shard, str) or not shard.endswith(".safetensors")
                or "/" in shard or "\\" in shard or shard.startswith(".")):
            shown = repr(shard) if len(repr(shard)) <= 60 else repr(shard)[:60] + "..."
            raise CheckpointError(f"{path}: tensor {name!r} is mapped to {shown}, expected the "
                                  "name of a .safetensors file in the same folder")
    return weight_map


class ShardedSafetensors:
    """Several memory-mapped safetensors files, read as one through their index."""

    def __init__(self, index_path: str | Path) -> None:
        self.path = Path(index_path)  # errors about the checkpoint as a whole name the index
        weight_map = _read_weight_map(self.path)
        shards = self._open_shards(sorted(set(weight_map.values())))
        self.tensors: dict[str, TensorInfo] = {}
        self._shard_of: dict[str, SafetensorsFile] = {}
        for name, shard_name in weight_map.items():
            shard = shards[shard_name]
            if name not in shard.tensors:
                raise CheckpointError(f"{shard.path}: no tensor {name!r}, which "
                                      f"{self.path.name} places in this file")
            self.tensors[name] = shard.tensors[name]
            self._shard_of[name] = shard

    def _open_shards(self, shard_names: list[str]) -> dict[str, SafetensorsFile]:
        """Shard file name -> its file, each distinct file opened and checked once.

        subtle: names that are links to one file (as the Hugging Face cache makes of identical
        blobs) share one SafetensorsFile, keyed by device and inode: an index naming 2000 links
        to one large header would otherwise parse that header 2000 times.
        """
        if len(shard_names) > MAX_SHARDS:
            raise CheckpointError(f"{self.path}: names {len(shard_names)} shard files, expected "
                                  f"at most {MAX_SHARDS}")
        by_file: dict[tuple[int, int], SafetensorsFile] = {}
        shards: dict[str, SafetensorsFile] = {}
        for shard_name in shard_names:
            shard_path = self.path.parent / shard_name
            try:
                status = shard_path.stat()
            except OSError:  # the type of one that exists SafetensorsFile checks
                raise CheckpointError(f"{shard_path}: no such file (named by "
                                      f"{self.path.name})") from None
            key = (status.st_dev, status.st_ino)
            if key not in by_file:
                by_file[key] = SafetensorsFile(shard_path)
            shards[shard_name] = by_file[key]
        return shards

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def array(self, name: str) -> np.ndarray:
        """The tensor as a read-only view of its shard, in its storage dtype."""
        return self._shard_of[name].array(name)

    def float32(self, name: str) -> np.ndarray:
        """The tensor widened to a float32 copy."""
        return self._shard_of[name].float32(name)


def open_tensors(model_dir: Path, weights_file: str) -> SafetensorsFile | ShardedSafetensors:
    """``model_dir/weights_file`` when it exists, else the sharded checkpoint of the index.

    raises: CheckpointError when there is neither (naming ``weights_file``)
    """
    path = model_dir / weights_file
    # exists(), not is_file(): a FIFO or device there is refused by its type (SafetensorsFile,
    # read_bounded), not reported missing
    if not path.exists() and (model_dir / INDEX_FILE).exists():
        return ShardedSafetensors(model_dir / INDEX_FILE)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected the safetensors file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (.bin checkpoints are not supported; "
                              f"expected one {weights_file}, or {INDEX_FILE} and its shards)")
    return SafetensorsFile(path)
