"""Which checkpoint format a model folder holds, and reading any of them into one model value.

Three formats, told apart by the files in the folder:

    packed        config.json + model.safetensors, U8 [out/4, in] projections + weight_scale
                  (microsoft/bitnet-b1.58-2B-4T; checkpoint.py)
    bf16-masters  config.json + model.safetensors, float [out, in] projections, no scales
                  (microsoft/bitnet-b1.58-2B-4T-bf16, or 1bitLLM's fp16; master.py),
                  ternarised on load
    gguf-i2s      one .gguf file and no model.safetensors (bitnet.cpp's ggml-model-i2_s.gguf;
                  gguf_checkpoint.py), config from its metadata (gguf_config.py)

A sharded checkpoint (model.safetensors.index.json and its shards) counts as model.safetensors.
model.safetensors wins when both are present, so a folder that holds a safetensors checkpoint
behaves as before whatever else lies beside it; the first projection's dtype tells packed from
masters (checkpoint.layout_of).
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import MASTERS, PACKED, WEIGHTS_FILE, layout_of, load_weights
from ..config import ModelConfig, load_config
from ..errors import CheckpointError
from .gguf.checkpoint import GGUF_FILE, load_gguf
from .shards import INDEX_FILE, open_tensors
from ..core.weights import Weights

GGUF = "gguf-i2s"
FORMATS = (PACKED, MASTERS, GGUF)
DESCRIPTIONS = {
    PACKED: "Hugging Face BitNet b1.58 safetensors, packed uint8 ternary weights + bf16 scales",
    MASTERS: "Hugging Face safetensors, float master weights (bf16, or fp16 for 1bitLLM; "
             "ternarised on load)",
    GGUF: "GGUF v3, bitnet.cpp I2_S ternary weights",  # `info` adds general.architecture
}


def find_gguf(model_dir: Path) -> Path | None:
    """The .gguf file of a GGUF model folder; None when the folder has model.safetensors or no
    .gguf file. Several .gguf files: the one named ggml-model-i2_s.gguf, else CheckpointError."""
    if (model_dir / WEIGHTS_FILE).exists() or (model_dir / INDEX_FILE).exists():
        return None
    # every entry, not only regular files: a FIFO, device or folder named .gguf is refused by
    # its type (GGUFFile), rather than skipped and the folder reported as holding no model
    found = sorted(model_dir.glob("*.gguf"))
    if len(found) <= 1:
        return found[0] if found else None
    if model_dir / GGUF_FILE in found:
        return model_dir / GGUF_FILE
    names = ", ".join(p.name for p in found[:4]) + (" ..." if len(found) > 4 else "")
    raise CheckpointError(f"{model_dir}: holds {len(found)} .gguf files ({names}), expected one "
                          f"(or one named {GGUF_FILE})")


def read_model(model_dir: str | Path) -> tuple[ModelConfig, Weights, str]:
    """Read and check the model in ``model_dir``, whatever its format.

    returns: (config, weights, format), format one of FORMATS
    raises:  ConfigError / CheckpointError naming the file, as each format's reader does
    """
    model_dir = Path(model_dir)
    gguf_path = find_gguf(model_dir)
    if gguf_path is not None:
        config, weights = load_gguf(gguf_path)
        return config, weights, GGUF
    config = load_config(model_dir)
    weights = load_weights(model_dir, config)  # every check, and the layout, happen here
    return config, weights, layout_of(open_tensors(model_dir, WEIGHTS_FILE).tensors)
