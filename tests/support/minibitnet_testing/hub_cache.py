"""A model folder moved into the Hugging Face hub cache, in the layout ``huggingface_hub`` writes.

What ``huggingface-cli download org/name`` leaves under ``$HF_HUB_CACHE``::

    models--org--name/
      blobs/<sha256 of the file>          the bytes, stored once
      snapshots/<commit>/config.json  ->  ../../blobs/<sha256>   (a relative symlink)
      refs/main                           the commit, no newline

so a test that finds its model through a repo id reads it through those symlinks, as a user does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # 40 hex digits, as a git commit


def repo_dir(cache: Path, repo_id: str) -> Path:
    """The folder of ``repo_id`` ("org/name") inside the hub cache ``cache``."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def cache_model(source: Path, cache: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Move the files of the model folder ``source`` into ``cache`` as ``repo_id`` at ``commit``.

    returns: the snapshot folder, snapshots/<commit>, whose entries are symlinks into blobs/
    """
    repo = repo_dir(cache, repo_id)
    blobs = repo / "blobs"
    snapshot = repo / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for file in sorted(source.iterdir()):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        file.replace(blobs / digest)  # files of equal content share one blob, as in the hub
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", digest))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    return snapshot
