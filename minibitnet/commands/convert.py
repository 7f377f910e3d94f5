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
rebuilt from its metadata (gguf_tokenizer.py).

The whole folder is written under a temporary name beside the destination
(``.DST.minibitnet-partial-<pid>``), with a progress bar on stderr, and renamed to DST only when
every file in it is complete and fsynced (:func:`minibitnet.folders.replace_folder`); the folder
path alone goes to stdout, after that. A DST already there is replaced as a folder: the files it
holds besides a model (notes, tokenizer files the source lacks) are carried into the new one as
hard links, and it is renamed aside and removed once the new one is in place. So:

- a failure (a bad tensor, Ctrl-C, ``2>&1 | head -1`` closing the pipe the progress goes to, a
  full disk, which is reported as one line naming the file being written) removes everything
  the command created and leaves DST as it was;
- a kill (SIGKILL, power loss) leaves DST absent, as it was, or complete, never weights without
  config.json; the next convert to DST removes the temporary folder left behind;
- two converts to one DST exclude each other through an flock on ``.DST.minibitnet-lock`` beside
  it, held for the whole run: the second stops at once with one line. Without fcntl (Windows)
  there is no lock, and temporaries left by a kill stay for the user to remove.

DST's parent folder must be writable, since the new folder is made there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..core.weights import Weights
from ..formats.checkpoint import MASTERS, PACKED, WEIGHTS_FILE
from ..errors import ArgumentError, TokenizerError
from ..files import atomic_write, atomic_write_text, naming_os_errors, read_bounded
from ..folders import (folder_lock, make_partial_folder, remove_stale_temporaries,
                       replace_folder)
from ..formats.detect import GGUF, find_gguf, read_model
from ..formats.gguf.container import GGUFFile
from ..formats.gguf.architectures import check_gguf_writable, writable_architecture
from ..formats.gguf.checkpoint import GGUF_FILE, gguf_bytes, write_gguf_model
from ..formats.gguf.config import model_name
from ..tokenizer.gguf import tokenizer_files, tokenizer_metadata
from ..tokenizer.bpe_file import MAX_TOKENIZER_JSON_BYTES
from ..tokenizer.tokenizer import read_tokenizer_files
from ..formats.locate import resolve_model
from ..tools.progress import ProgressBar, note
from ..formats.writers import config_for_layout, safetensors_bytes, write_safetensors_model

TARGETS = {"gguf-i2s": GGUF, "safetensors": PACKED, "bf16": MASTERS}
# copied from the source folder when present, so the new folder can generate text
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "generation_config.json")
# the staging folder that minibitnet before 0.2 made inside DST; a DST replaced drops any left
LEGACY_STAGING = re.compile(r"\.convert-.+\.partial")


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
                    "The folder is written under a temporary name beside DST and renamed "
                    "into place when complete, so a kill leaves DST as it was or complete; "
                    "two converts to one DST exclude each other (a lock file beside it). "
                    "Progress goes to stderr.",
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
                             ".gguf files; other files there are kept)")
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
            with naming_os_errors(dst / "tokenizer.json"):
                atomic_write_text(dst / "tokenizer.json", json.dumps(spec, ensure_ascii=False))
            with naming_os_errors(dst / "tokenizer_config.json"):
                atomic_write_text(dst / "tokenizer_config.json",
                                  json.dumps(config, indent=2) + "\n")
        return
    for name in TOKENIZER_FILES:
        if (src / name).exists():  # a FIFO or device is refused by read_bounded, not skipped
            data = read_bounded(src / name, MAX_TOKENIZER_JSON_BYTES, TokenizerError,
                                f"a tokenizer file ({name})")
            with naming_os_errors(dst / name), atomic_write(dst / name) as handle:
                handle.write(data)


def _outermost_missing(folder: Path) -> Path | None:
    """The first of ``folder``'s ancestors (or ``folder``) that does not exist: what
    ``mkdir(parents=True)`` creates, and what a failed convert removes again."""
    chain = [*reversed(folder.absolute().parents), folder.absolute()]  # from / down to folder
    return next((path for path in chain if not path.exists()), None)


def _remove_created(folder: Path, created: Path) -> None:
    """Remove ``folder`` and its ancestors up to ``created``, each only if empty: a concurrent
    convert into a sibling folder may have put its files there meanwhile."""
    for path in [folder.absolute(), *folder.absolute().parents]:
        try:
            path.rmdir()
        except OSError:
            return
        if path == created.absolute():
            return


def _kept_from_old(stale: list[Path]) -> Callable[[str], bool]:
    """Which entries of a DST being replaced the new folder keeps, by name: all but the model
    files replaced (``stale``) and the staging folders an older minibitnet left inside DST."""
    replaced = {path.name for path in stale}
    return lambda name: name not in replaced and not LEGACY_STAGING.fullmatch(name)


def _write_error(error: OSError, partial: Path, dst: Path) -> OSError:
    """``error`` of a file written in ``partial``, named as the file in DST it was to be."""
    if not isinstance(error.filename, str) or Path(error.filename).parent != partial:
        return error
    reason = error.strerror or str(error)
    return OSError(error.errno, f"cannot write ({reason})", str(dst / Path(error.filename).name))


def _source(args: argparse.Namespace) -> Path:
    """The folder of the model to read, named by SRC or by -m/--model (exactly one of them)."""
    if args.src is not None and args.model is not None:
        raise ArgumentError(f"SRC {args.src} and -m/--model {args.model}: expected one model "
                            "to read, not both")
    if args.src is None and args.model is None:
        raise ArgumentError(f"no model to read (only DST {args.dst} was given): expected "
                            "SRC DST, or -m MODEL DST")
    return resolve_model(args.src if args.src is not None else args.model)


def _check_destination(src: Path, dst: Path, folder: Path, force: bool) -> list[Path]:
    """Under the lock of ``folder`` (DST, symlink resolved): put right what a killed convert
    left beside it, then refuse a DST that cannot take the model. Checked under the lock, so
    no other convert can write a model there between the check and the rename.

    returns: the model files DST holds, which the new folder replaces (only with ``force``)
    """
    for line in remove_stale_temporaries(folder):
        note(f"note: {line}")
    if folder.exists() and not folder.is_dir():
        raise ArgumentError(f"DST {dst}: exists and is not a folder")
    if folder.exists() and folder.resolve() == src.resolve():
        raise ArgumentError(f"DST {dst}: is the source folder; expected a different folder")
    stale = _model_files(folder)
    if stale and not force:
        raise ArgumentError(f"DST {dst}: already holds {stale[0].name}; pass --force to "
                            "replace the model there")
    return stale


def _write_model(partial: Path, src: Path, source_format: str, target: str,
                 config: ModelConfig, weights: Weights,
                 tokenizer_keys: dict[str, tuple[int, Any]] | None, total: int) -> None:
    """Write every file of the new folder into ``partial``, with a progress bar of ``total``
    bytes: the weights (and config.json) in ``target``'s format, then the tokenizer files."""
    out_name = GGUF_FILE if target == GGUF else WEIGHTS_FILE
    with ProgressBar(total, out_name) as bar:
        if target == GGUF:
            gguf_source = find_gguf(src) if source_format == GGUF else None
            name = model_name(src, GGUFFile(gguf_source) if gguf_source is not None else None)
            with naming_os_errors(partial / out_name):
                write_gguf_model(partial / out_name, config, weights, on_bytes=bar.update,
                                 extra_metadata=tokenizer_keys, name=name)
        else:
            write_safetensors_model(partial, config, weights, target, on_bytes=bar.update)
    _copy_tokenizer(src, partial, source_format)


def _convert_locked(args: argparse.Namespace, src: Path, dst: Path, folder: Path) -> None:
    """The convert proper, with the lock of ``folder`` (DST, symlink resolved) held."""
    stale = _check_destination(src, dst, folder, args.force)
    target = TARGETS[args.target]
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
    partial = make_partial_folder(folder)
    try:
        note(f"converting {src} ({source_format}, {config.family} family) to {target} in "
             f"{dst}")
        if written_family != config.family:  # 1bitLLM packed, a SiLU-gated bitnet model as GGUF
            print(f"note: {target} holds this {config.family} model as the {written_family} "
                  "family, which computes the same function", file=sys.stderr)
        _write_model(partial, src, source_format, target, config, weights, tokenizer_keys,
                     total)
        replace_folder(partial, folder, keep=_kept_from_old(stale))
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise _write_error(error, partial, dst) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def run(args: argparse.Namespace) -> int:
    src = _source(args)
    dst = Path(args.dst)
    folder = dst.resolve() if dst.is_symlink() else dst.absolute()  # renamed: not the link
    created = _outermost_missing(folder.parent)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(folder.parent, os.W_OK):  # else the first refusal names the lock file
            raise ArgumentError(f"DST {dst}: cannot write in its folder {folder.parent}, where "
                                "the new folder is made before it is renamed to DST")
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(folder_lock(folder))
            except BlockingIOError:
                raise ArgumentError(f"DST {dst}: another minibitnet convert is writing "
                                    "it") from None
            _convert_locked(args, src, dst, folder)
    except BaseException:
        if created is not None:
            _remove_created(folder.parent, created)
        raise
    print(dst)
    return 0
