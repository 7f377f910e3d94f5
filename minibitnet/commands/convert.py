"""``minibitnet convert``: a model folder in one checkpoint format -> a new folder in another.

The source may be any format :mod:`minibitnet.formats.detect` reads; every check of a load is made
before anything is written. The destination is a folder: config.json + model.safetensors for
``safetensors`` (packed) and ``bf16`` (masters), or ggml-model-i2_s.gguf alone for
``gguf-i2s``. Every family converts: the family of the result is
:func:`minibitnet.formats.writers.config_for_layout`'s for safetensors and bf16, and the GGUF
architecture of the family for gguf-i2s (gguf_architectures.py), named (general.name) after
the source folder as bitnet.cpp's converter names it, or as a GGUF source is named
(gguf_config.model_name). The tokenizer files of the
source are copied beside the weights; a GGUF also gets the tokenizer in its metadata, and a
GGUF source without tokenizer.json beside it gives tokenizer.json and tokenizer_config.json
rebuilt from its metadata (gguf_tokenizer.py). The files are written into a hidden staging
folder inside the destination, with a progress bar on stderr, and renamed into place only when
all of them are complete (weights first, config.json last); the folder path alone goes to
stdout, after that. A failure before then (a bad tensor, Ctrl-C, ``2>&1 | head -1`` closing the
pipe the progress goes to) removes everything the command created, the destination folder too
when it made it, and leaves what was there before as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..formats.checkpoint import MASTERS, PACKED, WEIGHTS_FILE
from ..errors import ArgumentError
from ..files import atomic_write, atomic_write_text
from ..formats.detect import GGUF, find_gguf, read_model
from ..formats.gguf.container import GGUFFile
from ..formats.gguf.architectures import check_gguf_writable, writable_architecture
from ..formats.gguf.checkpoint import GGUF_FILE, gguf_bytes, write_gguf_model
from ..formats.gguf.config import model_name
from ..tokenizer.gguf import tokenizer_files, tokenizer_metadata
from ..tokenizer.tokenizer import read_tokenizer_files
from ..formats.locate import resolve_model
from ..tools.progress import ProgressBar, note
from ..formats.writers import config_for_layout, safetensors_bytes, write_safetensors_model

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
                    "microsoft/bitnet-b1.58-2B-4T-bf16, or a bitnet.cpp ggml-model-i2_s.gguf) "
                    "and family (BitNet b1.58; LLaMA with transformers' bitnet quantisation, "
                    "as Falcon3 1.58-bit, Falcon-E and Llama3-8B-1.58; 1bitLLM), check it as a "
                    "load does, and write it in the format given by --to into a new folder: "
                    "config.json + model.safetensors for safetensors and bf16, "
                    "ggml-model-i2_s.gguf for gguf-i2s, plus the source's tokenizer files. "
                    "The model is kept exactly: the written folder has the same ternary codes, "
                    "scales, norms and embedding as the source, so its logits are identical. "
                    "bf16 masters are ternarised with the absmean quantiser on load; going to "
                    "bf16 writes latents that ternarise back to the same codes and scales (the "
                    "latents a packed file was made from cannot be recovered). 1bitLLM has no "
                    "packed layout and is written as a BitNet b1.58 model with a SiLU gate. "
                    "Files are written atomically, with progress on stderr.",
        epilog="example: minibitnet convert /models/bitnet-b1.58-2B-4T /models/2b4t-gguf "
               "--to gguf-i2s. GGUF I2_S needs every projection input to be a multiple of "
               "128, and cannot hold an RMSNorm inside BitLinear (Falcon-E).",
    )
    parser.add_argument("src", metavar="SRC", nargs="?",
                        help="the model to read: a model folder, or a Hugging Face repo id "
                             "already in the local cache (or give it as -m MODEL)")
    parser.add_argument("dst", metavar="DST", help="the folder to write (created if missing)")
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="the model to read, named as every other command names it; "
                             "instead of SRC")
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


def _copy_tokenizer(src: Path, dst: Path, source_format: str) -> None:
    """Copy the source's tokenizer files; from a GGUF without them, rebuild them from its
    metadata."""
    if source_format == GGUF and not (src / "tokenizer.json").exists():
        gguf_path = find_gguf(src)
        files = tokenizer_files(GGUFFile(gguf_path)) if gguf_path is not None else None
        if files is not None:
            spec, config = files
            atomic_write_text(dst / "tokenizer.json", json.dumps(spec, ensure_ascii=False))
            atomic_write_text(dst / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
        return
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            with atomic_write(dst / name) as handle:
                handle.write((src / name).read_bytes())


def _outermost_missing(folder: Path) -> Path | None:
    """The first of ``folder``'s ancestors (or ``folder``) that does not exist: what
    ``mkdir(parents=True)`` creates, and what a failed convert removes again."""
    chain = [*reversed(folder.absolute().parents), folder.absolute()]  # from / down to folder
    return next((path for path in chain if not path.exists()), None)


def _move_into(staging: Path, dst: Path, first: str) -> set[Path]:
    """Rename every file of ``staging`` into ``dst``: ``first`` (the weights) first and
    config.json last, so a folder with a config.json always has its weights. Returns the paths
    in ``dst``."""
    names = sorted(path.name for path in staging.iterdir())
    order = sorted(names, key=lambda name: (name != first, name == "config.json"))
    for name in order:
        os.replace(staging / name, dst / name)
    return {dst / name for name in order}


def _source(args: argparse.Namespace) -> Path:
    """The folder of the model to read, named by SRC or by -m/--model (exactly one of them)."""
    if args.src is not None and args.model is not None:
        raise ArgumentError(f"SRC {args.src} and -m/--model {args.model}: expected one model "
                            "to read, not both")
    if args.src is None and args.model is None:
        raise ArgumentError(f"no model to read (only DST {args.dst} was given): expected "
                            "SRC DST, or -m MODEL DST")
    return resolve_model(args.src if args.src is not None else args.model)


def run(args: argparse.Namespace) -> int:
    src = _source(args)
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
    tokenizer_keys = None
    if target == GGUF:
        check_gguf_writable(config, out_file)  # before anything is written
        written_family = writable_architecture(config, out_file).family
        tokenizer = read_tokenizer_files(src)
        if tokenizer is not None:
            tokenizer_keys = tokenizer_metadata(*tokenizer, str(src / "tokenizer.json"))
        total = gguf_bytes(config, weights)
    else:
        total = safetensors_bytes(config, weights, target)
        written_family = config_for_layout(config, target).family
    note(f"converting {src} ({source_format}, {config.family} family) to {target} in {dst}")
    if written_family != config.family:  # 1bitLLM packed, a SiLU-gated bitnet model as GGUF
        print(f"note: {target} holds this {config.family} model as the {written_family} "
              "family, which computes the same function", file=sys.stderr)
    created = _outermost_missing(dst)
    dst.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", suffix=".partial", dir=dst))
    try:
        with ProgressBar(total, out_file.name) as bar:
            if target == GGUF:
                gguf_source = find_gguf(src) if source_format == GGUF else None
                name = model_name(src, GGUFFile(gguf_source) if gguf_source is not None
                                  else None)
                write_gguf_model(staging / out_file.name, config, weights, on_bytes=bar.update,
                                 extra_metadata=tokenizer_keys, name=name)
            else:
                write_safetensors_model(staging, config, weights, target, on_bytes=bar.update)
        _copy_tokenizer(src, staging, source_format)
        written = _move_into(staging, dst, first=out_file.name)
    except BaseException:
        shutil.rmtree(created if created is not None else staging, ignore_errors=True)
        raise
    staging.rmdir()
    for path in stale:  # a model of another format replaced under --force
        if path not in written:
            os.unlink(path)
    print(dst)
    return 0
