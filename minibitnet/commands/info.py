"""``minibitnet info``: what a model folder holds, and which backends this install offers."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..backend import available_backends
from ..checkpoint import WEIGHTS_FILE, load_weights
from ..config import load_config
from ..loader import model_folder
from ..safetensors import STORAGE_DTYPES, read_header


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
    parser.add_argument("--model", metavar="DIR",
                        help="model folder with config.json and model.safetensors "
                             "(default: the built-in model)")
    parser.set_defaults(run=run)


def _part_of(name: str) -> str:
    if name.endswith("_proj.weight") or name.endswith(".weight_scale"):
        return "ternary projections (packed 2-bit + scales)"
    if name == "model.embed_tokens.weight":
        return "token embedding"
    if name == "lm_head.weight":
        return "output head (untied)"
    return "norms"


def _describe_model(model_dir: Path) -> None:
    config = load_config(model_dir)
    load_weights(model_dir, config)  # every check a load makes, so info also vets a checkpoint
    tensors, metadata, _ = read_header(model_dir / WEIGHTS_FILE)
    print(f"model:   {model_dir}")
    print(f"format:  Hugging Face BitNet b1.58 (model_type bitnet, offline packed uint8 ternary, "
          f"{'tied' if 'lm_head.weight' not in tensors else 'untied'} head), "
          f"{len(tensors)} tensors")
    print("config:")
    for key, value in config.to_json_dict().items():
        if key not in ("architectures", "quantization_config"):
            print(f"  {key:26s} {value}")
    parts: dict[str, tuple[int, int]] = {}
    for name, info in tensors.items():
        count = info.num_elements * (4 if info.dtype == "U8" and name.endswith(".weight") else 1)
        if name.endswith(".weight_scale"):
            count = 0  # a scale is not a parameter of the network
        nbytes = info.num_elements * STORAGE_DTYPES[info.dtype].itemsize
        old_count, old_bytes = parts.get(_part_of(name), (0, 0))
        parts[_part_of(name)] = (old_count + count, old_bytes + nbytes)
    total_count = sum(c for c, _ in parts.values())
    total_bytes = sum(b for _, b in parts.values())
    print("parameters and bytes:")
    for part, (count, nbytes) in sorted(parts.items()):
        bits = 8 * nbytes / count if count else math.nan
        print(f"  {part:46s} {count:>14,d} params {nbytes / 1e6:>10.2f} MB ({bits:.2f} bits/param)")
    print(f"  {'total':46s} {total_count:>14,d} params {total_bytes / 1e6:>10.2f} MB")


def run(args: argparse.Namespace) -> int:
    model_dir = model_folder(args.model)
    _describe_model(model_dir)
    print("backends:")
    for backend in available_backends():
        print(f"  {backend.name:16s} {backend.description}")
    return 0
