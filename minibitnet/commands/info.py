"""``minibitnet info``: what a model folder holds, and which backends this install offers."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..kernels.registry import available_backends
from ..formats.checkpoint import MASTERS, WEIGHTS_FILE
from ..config import ModelConfig
from ..errors import one_line
from ..families import FAMILIES
from ..formats.detect import DESCRIPTIONS, GGUF, find_gguf, read_model
from ..formats.gguf.container import I2_S, GGUFFile
from ..formats.gguf.architectures import ARCHITECTURES
from ..formats.locate import resolve_model
from ..formats.safetensors import STORAGE_DTYPES
from ..formats.shards import open_tensors
from ..tools.wording import plural

# how a GGUF holds the weights, whatever its family
GGUF_WEIGHTS = "ternary weights quantised offline (I2_S codes, one stored scale per tensor)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "info",
        help="show a model's config, parameter counts and bytes per part, and the backends",
        description="Print the config of a model folder, its parameter counts and bytes per "
                    "part (ternary projections, embedding, head, norms), the checkpoint format "
                    "detected, and the ternary backends this installation offers. Every "
                    "tensor is checked as a load checks it (names, shapes, dtypes, packed codes, "
                    "scales, norms), so info also vets a downloaded or hand-edited checkpoint.",
    )
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder: config.json and model.safetensors (packed ternary "
                             "or bf16 master weights), or one bitnet.cpp I2_S .gguf file; or a "
                             "Hugging Face repo id already in the local cache "
                             "(default: the built-in model)")
    parser.set_defaults(run=run)


def _part_of(name: str, layout: str) -> str:
    if name.endswith("_proj.weight") or name.endswith(".weight_scale"):
        if layout == MASTERS:
            return "ternary projections (bf16 masters)"
        return "ternary projections (packed 2-bit + scales)"
    if name == "model.embed_tokens.weight":
        return "token embedding"
    if name == "lm_head.weight":
        return "output head (untied)"
    return "norms"


def _gguf_part_of(name: str, ggml_type: int) -> str:
    if ggml_type == I2_S:
        return "ternary projections (I2_S 2-bit + scales)"
    if name == "token_embd.weight":
        return "token embedding"
    if name == "output.weight":
        return "output head (untied)"
    return "norms"


def _safetensors_parts(model_dir: Path, layout: str) -> tuple[dict[str, tuple[int, int]], int]:
    """(part -> (parameters, bytes), tensor count) of model.safetensors."""
    tensors = open_tensors(model_dir, WEIGHTS_FILE).tensors  # one file or the shards
    parts: dict[str, tuple[int, int]] = {}
    for name, info in tensors.items():
        count = info.num_elements * (4 if info.dtype == "U8" and name.endswith(".weight") else 1)
        if name.endswith(".weight_scale"):
            count = 0  # a scale is not a parameter of the network
        nbytes = info.num_elements * STORAGE_DTYPES[info.dtype].itemsize
        old_count, old_bytes = parts.get(_part_of(name, layout), (0, 0))
        parts[_part_of(name, layout)] = (old_count + count, old_bytes + nbytes)
    return parts, len(tensors)


def _gguf_parts(path: Path) -> tuple[dict[str, tuple[int, int]], int, str]:
    """(part -> (parameters, bytes), tensor count, general.architecture) of a GGUF file."""
    file = GGUFFile(path)
    parts: dict[str, tuple[int, int]] = {}
    for name, info in file.tensors.items():
        count = math.prod(info.dims)
        old_count, old_bytes = parts.get(_gguf_part_of(name, info.ggml_type), (0, 0))
        parts[_gguf_part_of(name, info.ggml_type)] = (old_count + count,
                                                      old_bytes + info.num_bytes)
    return parts, len(file.tensors), str(file.metadata["general.architecture"])


def _describe_model(model_dir: Path) -> None:
    # every check a load makes, so info also vets a checkpoint
    config, _, layout = read_model(model_dir)
    gguf_path = find_gguf(model_dir) if layout == GGUF else None
    description = DESCRIPTIONS[layout]
    family = FAMILIES[config.family].description
    if gguf_path is not None:
        parts, tensor_count, architecture = _gguf_parts(gguf_path)
        description += f", architecture {one_line(architecture)}"  # bitnet-b1.58, bitnet or llama
        # the family's line says how its checkpoints store weights (1bitLLM: fp16 latents,
        # ternarised on load); every GGUF holds codes quantised offline, whatever the family
        family = f"{ARCHITECTURES[architecture].description}, {GGUF_WEIGHTS}"
    else:
        parts, tensor_count = _safetensors_parts(model_dir, layout)
    # names and values read from the folder are untrusted text: escaped, so that an escape
    # sequence in a config value cannot drive the terminal, and a lone surrogate still prints
    shown_name = f" ({one_line(gguf_path.name)})" if gguf_path is not None else ""
    print(f"model:   {one_line(str(model_dir))}{shown_name}")
    print(f"format:  {layout}: {description} "
          f"({'tied' if config.tie_word_embeddings else 'untied'} head), "
          f"{plural(tensor_count, 'tensor')}")
    traits = [f"quantization_mode {config.quantization_mode}"] \
        if config.quantization_mode != "offline" else []
    if config.use_rms_norm:
        traits.append(f"an RMSNorm inside every BitLinear (use_rms_norm, eps "
                      f"{config.quant_rms_norm_eps:g})")
    if config.rope_scaling is not None:
        traits.append(f"llama3 RoPE scaling (factor {config.rope_scaling.factor:g})")
    print(f"family:  {config.family}: {family}"
          + "".join(f", {trait}" for trait in traits))
    _print_config(config)
    _print_parts(parts)


def _print_config(config: ModelConfig) -> None:
    print("config:")
    for key, value in config.to_json_dict().items():
        if key not in ("architectures", "quantization_config"):
            print(f"  {one_line(key):26s} {one_line(str(value))}")


def _print_parts(parts: dict[str, tuple[int, int]]) -> None:
    total_count = sum(c for c, _ in parts.values())
    total_bytes = sum(b for _, b in parts.values())
    print("parameters and bytes:")
    for part, (count, nbytes) in sorted(parts.items()):
        bits = 8 * nbytes / count if count else math.nan
        print(f"  {part:46s} {count:>14,d} params {nbytes / 1e6:>10.2f} MB ({bits:.2f} bits/param)")
    print(f"  {'total':46s} {total_count:>14,d} params {total_bytes / 1e6:>10.2f} MB")


def run(args: argparse.Namespace) -> int:
    model_dir = resolve_model(args.model)
    _describe_model(model_dir)
    print("backends:")
    for backend in available_backends(include_missing=True):
        missing = f" [not available: {backend.missing}]" if backend.missing else ""
        print(f"  {backend.name:16s} {backend.description}{missing}")
    return 0
