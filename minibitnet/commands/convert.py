"""``minibitnet convert``: a model folder in one checkpoint format -> a new folder in another.

The source may be any format :mod:`minibitnet.formats` reads; every check of a load is made
before anything is written. The destination is a folder: config.json + model.safetensors for
``safetensors`` (packed) and ``bf16`` (masters), or ggml-model-i2_s.gguf alone for
``gguf-i2s``. The tokenizer files of the source are copied beside the weights. Every file is
written atomically (weights first), with a progress bar on stderr; the folder path alone goes to
stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..checkpoint import MASTERS, PACKED, WEIGHTS_FILE
from ..errors import ArgumentError
from ..files import atomic_write
from ..formats import GGUF, read_model
from ..gguf_checkpoint import GGUF_FILE, check_i2s_shapes, gguf_bytes, write_gguf_model
from ..loader import model_folder
from ..progress import ProgressBar
from ..writers import safetensors_bytes, write_safetensors_model

TARGETS = {"gguf-i2s": GGUF, "safetensors": PACKED, "bf16": MASTERS}
# copied from the source folder when present, so the new folder can generate text
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "convert",
        help="convert a model folder between packed safetensors, bf16 masters and GGUF I2_S",
        description="Read a model folder in any supported format (packed uint8 ternary "
                    "safetensors as microsoft/bitnet-b1.58-2B-4T, bf16 master weights as "
                    "microsoft/bitnet-b1.58-2B-4T-bf16, or a bitnet.cpp ggml-model-i2_s.gguf), "
                    "check it as a load does, and write it in the format given by --to into a "
                    "new folder: config.json + model.safetensors for safetensors and bf16, "
                    "ggml-model-i2_s.gguf for gguf-i2s, plus the source's tokenizer files. "
                    "Packed <-> GGUF is lossless both ways (same codes, same bf16 scales). bf16 "
                    "masters are ternarised with the absmean quantiser; going to bf16 writes "
                    "latents that ternarise back to the same codes and scales. Files are "
                    "written atomically, with progress on stderr.",
        epilog="example: minibitnet convert /models/bitnet-b1.58-2B-4T /models/2b4t-gguf "
               "--to gguf-i2s. GGUF I2_S needs every projection input to be a multiple of 128.",
    )
    parser.add_argument("src", metavar="SRC", help="the model folder to read")
    parser.add_argument("dst", metavar="DST", help="the folder to write (created if missing)")
    parser.add_argument("--to", required=True, choices=list(TARGETS), dest="target",
                        help="format to write: gguf-i2s (bitnet.cpp), safetensors (packed "
                             "uint8 ternary + bf16 scales), bf16 (master weights)")
    parser.add_argument("--force", action="store_true",
                        help="replace a model already in DST (its weights, config.json and "
                             ".gguf files)")
    parser.set_defaults(run=run)


def _model_files(folder: Path) -> list[Path]:
    """The files of DST that a model in any format consists of."""
    if not folder.is_dir():
        return []
    named = [folder / WEIGHTS_FILE, folder / "config.json"]
    return [p for p in named if p.exists()] + sorted(folder.glob("*.gguf"))


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            with atomic_write(dst / name) as handle:
                handle.write((src / name).read_bytes())


def run(args: argparse.Namespace) -> int:
    src = model_folder(args.src)
    dst = Path(args.dst)
    target = TARGETS[args.target]
    if dst.exists() and not dst.is_dir():
        raise ArgumentError(f"DST {dst}: exists and is not a folder")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ArgumentError(f"DST {dst}: is the source folder; expected a different folder")
    stale = _model_files(dst)
    if stale and not args.force:
        raise ArgumentError(f"DST {dst}: already holds {stale[0].name}; pass --force to "
                            "replace the model there")
    config, weights, source_format = read_model(src)
    out_file = dst / (GGUF_FILE if target == GGUF else WEIGHTS_FILE)
    if target == GGUF:
        check_i2s_shapes(config, out_file)  # before anything is written
        total = gguf_bytes(config, weights)
    else:
        total = safetensors_bytes(config, weights, target)
    print(f"converting {src} ({source_format}) to {target} in {dst}", file=sys.stderr)
    dst.mkdir(parents=True, exist_ok=True)
    bar = ProgressBar(total, out_file.name)
    if target == GGUF:
        write_gguf_model(out_file, config, weights, on_bytes=bar.update)
    else:
        write_safetensors_model(dst, config, weights, target, on_bytes=bar.update)
    bar.close()
    _copy_tokenizer(src, dst)
    written = {out_file, dst / "config.json"} if target != GGUF else {out_file}
    for path in stale:  # a model of another format replaced under --force
        if path not in written:
            os.unlink(path)
    print(dst)
    return 0
