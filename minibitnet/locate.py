"""``--model``: a folder, or a Hugging Face repo id found in the local Hugging Face cache.

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

from .errors import ConfigError
from .loader import builtin_model_dir


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
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if (repo_dir / "snapshots" / commit / "config.json").is_file():
            return repo_dir / "snapshots" / commit
    snapshots = [s for s in (repo_dir / "snapshots").glob("*") if (s / "config.json").is_file()]
    return max(snapshots, key=lambda s: s.stat().st_mtime) if snapshots else None


def resolve_model(name: str | None) -> Path:
    """The model folder for ``--model NAME``; None means the built-in model.

    Raises ConfigError (one line) when nothing is found, naming every place it looked.
    """
    if name is None:
        try:
            return builtin_model_dir()
        except ConfigError:
            raise ConfigError("no model was given and this installation has no built-in model; "
                              "pass --model DIR (a model folder) or --model ORG/NAME (a Hugging "
                              "Face repo id in the local cache)") from None
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    looked = [f"folder {folder}"]
    if _looks_like_repo_id(name):
        repo_dir = hub_cache_dir() / ("models--" + name.replace("/", "--"))
        snapshot = _snapshot(repo_dir) if repo_dir.is_dir() else None
        if snapshot is not None:
            return snapshot
        looked.append(f"Hugging Face cache {repo_dir}/snapshots/*")
    if _looks_like_repo_id(name):
        raise ConfigError(f"model {name!r} not found (looked in: {'; '.join(looked)}); nothing "
                          f"is downloaded here: fetch it first (huggingface-cli download {name})")
    raise ConfigError(f"model folder {str(folder)!r} not found; expected a folder with "
                      "config.json, model.safetensors and tokenizer.json, or ORG/NAME of a model "
                      "in the local Hugging Face cache")
