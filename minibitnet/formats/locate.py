"""Which folder a model name means: a folder, a Hugging Face repo id in the local cache, or none.

The one resolver for every place a model is named: each command's ``-m/--model`` (and
``convert``'s source), ``minibitnet.load(path)`` and ``minibitnet.tokenizer.load(path)``. No name
(None) means the model that ships inside the package. So a name means the same everywhere, and
"not found" reads the same everywhere. This module imports nothing of the package but ``errors``
and ``files``: the loader, the tokenizer and the commands all import it.

A repo id such as ``microsoft/bitnet-b1.58-2B-4T`` is looked up where ``huggingface_hub`` stores
downloads, and nowhere else (never the network)::

    $HF_HUB_CACHE                       (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
      models--microsoft--bitnet-b1.58-2B-4T/
        refs/main                        the commit hash that "main" pointed to when downloaded
        snapshots/<commit>/config.json   the files of that commit

The snapshot named by refs/main is preferred; without it, the most recently changed snapshot that
holds a config.json. A name that is neither gets a one-line error listing where it looked.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..files import read_bounded

# The model that ships inside the package, used when no model is named.
BUILTIN_MODEL_DIR = Path(__file__).parents[1] / "models" / "shakespeare-ternary"

# What a model folder holds, as every "not found" message says it.
MODEL_FOLDER = "a model folder with config.json and model.safetensors"

# refs/main holds one commit hash (40 hex digits, and a newline); 4 kB is any ref name git allows
# in practice, and keeps a corrupt cache from being read whole.
MAX_REF_BYTES = 4096


def builtin_model_dir() -> Path:
    """The folder of the built-in model; ConfigError if this installation has none."""
    if not (BUILTIN_MODEL_DIR / "config.json").is_file():
        raise ConfigError(f"{BUILTIN_MODEL_DIR}: the built-in model is not installed and no "
                          f"model was given; expected {MODEL_FOLDER}, or ORG/NAME of a model in "
                          "the local Hugging Face cache (-m/--model on the command line)")
    return BUILTIN_MODEL_DIR


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, as ``huggingface_hub`` computes it."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):  # the second is the older name
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def _snapshot(repo_dir: Path) -> Path | None:
    ref = repo_dir / "refs" / "main"
    if ref.exists():  # not is_file(): a FIFO there is refused by its type, never waited on
        data = read_bounded(ref, MAX_REF_BYTES, ConfigError, "a commit hash")
        commit = data.decode("utf-8", errors="replace").strip()
        if commit and (repo_dir / "snapshots" / commit / "config.json").is_file():
            return repo_dir / "snapshots" / commit
    snapshots = [s for s in (repo_dir / "snapshots").glob("*") if (s / "config.json").is_file()]
    return max(snapshots, key=lambda s: s.stat().st_mtime) if snapshots else None


def resolve_model(name: str | os.PathLike[str] | None) -> Path:
    """The model folder that ``name`` means: a folder (which wins over a repo id of the same
    spelling), else ORG/NAME's snapshot in the local Hugging Face cache; None: the built-in model.

    Raises ConfigError (one line) naming the folder it expected and, for a repo id, the cache
    folder it looked in and how to fetch the model. Whether the folder holds a readable model is
    the loader's question, not this one's.
    """
    if name is None:
        return builtin_model_dir()
    text = os.fspath(name)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return folder
    if folder.exists():
        raise ConfigError(f"{folder}: a file, expected {MODEL_FOLDER}")
    not_found = f"{folder}: no such folder, expected {MODEL_FOLDER}"
    if not _looks_like_repo_id(text):
        raise ConfigError(not_found)
    repo_dir = hub_cache_dir() / ("models--" + text.replace("/", "--"))
    snapshot = _snapshot(repo_dir) if repo_dir.is_dir() else None
    if snapshot is None:
        raise ConfigError(f"{not_found}, or a repo id in the local Hugging Face cache (looked in "
                          f"{repo_dir}/snapshots/*); nothing is downloaded here: fetch it first "
                          f"(huggingface-cli download {text})")
    return snapshot
