"""Model names: folders, Hugging Face cache snapshots, and the messages when nothing is found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minibitnet.errors import ConfigError
from minibitnet.formats.locate import hub_cache_dir, resolve_model


def _snapshot(cache: Path, repo: str, commit: str, ref: bool = True) -> Path:
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    folder = repo_dir / "snapshots" / commit
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if ref:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / "main").write_text(commit + "\n")
    return folder


def test_a_folder_is_itself(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == tmp_path


def test_repo_id_in_hf_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    old = _snapshot(tmp_path, "org/model", "a" * 40, ref=False)
    main = _snapshot(tmp_path, "org/model", "b" * 40)
    os.utime(old, (2e9, 2e9))  # newer on disk, but refs/main names the other one
    assert resolve_model("org/model") == main


def test_without_refs_the_newest_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    old = _snapshot(tmp_path, "org/model", "a" * 40, ref=False)
    new = _snapshot(tmp_path, "org/model", "b" * 40, ref=False)
    os.utime(old, (1e9, 1e9))
    os.utime(new, (2e9, 2e9))
    assert resolve_model("org/model") == new


def test_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    folder = _snapshot(tmp_path / "home" / "hub", "microsoft/bitnet-b1.58-2B-4T", "c" * 40)
    assert resolve_model("microsoft/bitnet-b1.58-2B-4T") == folder


def test_default_cache_is_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    assert hub_cache_dir() == Path("~/.cache/huggingface/hub").expanduser()


def test_missing_repo_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        resolve_model("org/absent")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "models--org--absent") in message
    assert "huggingface-cli download org/absent" in message


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "deeper" / "x"
    with pytest.raises(ConfigError) as info:
        resolve_model(str(missing))
    assert str(info.value) == (f"{missing}: no such folder, expected a model folder with "
                               "config.json and model.safetensors")


def test_a_file_is_not_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"config.json: a file, expected a model folder"):
        resolve_model(tmp_path / "config.json")


def test_a_folder_wins_over_the_repo_id_it_spells(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    _snapshot(tmp_path / "cache", "org/model", "a" * 40)
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_model("org/model") == Path("org/model")


def test_a_path_object_is_resolved_as_its_text(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    folder = _snapshot(tmp_path, "org/model", "a" * 40)
    monkeypatch.chdir(tmp_path)
    assert resolve_model(Path("org/model")) == folder


def test_no_model_given_says_so() -> None:
    from minibitnet.formats.locate import BUILTIN_MODEL_DIR

    if (BUILTIN_MODEL_DIR / "config.json").is_file():
        assert resolve_model(None) == BUILTIN_MODEL_DIR
    else:
        with pytest.raises(ConfigError, match="no model was given"):
            resolve_model(None)
