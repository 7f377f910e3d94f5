"""A Hugging Face repo id works wherever a model is named, and "not found" reads the same there.

The model sits in a hub cache laid out as ``huggingface_hub`` writes it (blobs, snapshot symlinks,
refs/main; minibitnet_testing.hub_cache), found through ``HF_HUB_CACHE`` or through ``HF_HOME``.
Each place that names a model is driven with the repo id: ``minibitnet.load``,
``minibitnet.tokenizer.load`` and the commands info, ops, eval, convert and generate, in process
through ``minibitnet.cli.main``, each compared with the same model read from a plain folder;
chat and bench join them where a missing model must read the same everywhere.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from minibitnet_testing.hub_cache import COMMIT, cache_model, repo_dir
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

import minibitnet
import minibitnet.formats.locate
from minibitnet import tokenizer
from minibitnet.cli import main
from minibitnet.errors import ConfigError
from minibitnet.formats.locate import resolve_model

REPO = "org/name"
IDS = [1, 2, 3, 4]
TEXT = "When I do count the clock that tells the time,\n"
HUB_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME whose hub/ cache holds REPO: a tiny model with a tokenizer."""
    home = tmp_path_factory.mktemp("hf_home")
    source = build_model_with_tokenizer(tmp_path_factory.mktemp("source"), seed=3,
                                        max_position_embeddings=48)
    cache_model(source, home / "hub", REPO)
    return home


@pytest.fixture(scope="module")
def plain(hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model as a plain folder: the snapshot's files copied through their symlinks."""
    folder = tmp_path_factory.mktemp("plain") / "model"
    shutil.copytree(repo_dir(hf_home / "hub", REPO) / "snapshots" / COMMIT, folder)
    return folder


@pytest.fixture(params=["HF_HUB_CACHE", "HF_HOME"])
def snapshot(request: pytest.FixtureRequest, hf_home: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """REPO findable through one environment variable; returns its snapshot folder."""
    for variable in HUB_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    cache = hf_home / "hub"
    monkeypatch.setenv(request.param, str(cache if request.param == "HF_HUB_CACHE" else hf_home))
    monkeypatch.chdir(tmp_path)  # no folder named org/name beside the tests
    return repo_dir(cache, REPO) / "snapshots" / COMMIT


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """minibitnet.cli.main(argv) in process: (exit code, stdout, stderr)."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- the Python API ----


def test_the_repo_id_is_the_snapshot_of_refs_main(snapshot: Path) -> None:
    assert resolve_model(REPO) == snapshot
    assert (snapshot / "config.json").is_symlink()  # read through the hub's links


def test_load_takes_a_repo_id(snapshot: Path, plain: Path) -> None:
    model = minibitnet.load(REPO)
    assert np.array_equal(model.logits(IDS), minibitnet.load(plain).logits(IDS))


def test_tokenizer_load_takes_a_repo_id(snapshot: Path, plain: Path) -> None:
    expected = tokenizer.load(plain).encode(TEXT, bos=True)
    assert tokenizer.load(REPO).encode(TEXT, bos=True) == expected


# ---- every command that reads a model ----


def test_info(snapshot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["info", "-m", REPO], capsys)
    assert code == 0
    assert f"model:   {snapshot}" in out


def test_ops(snapshot: Path, plain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["ops", "-m", REPO, "--json"], capsys)
    assert code == 0
    assert json.loads(out) == json.loads(run_cli(["ops", "-m", str(plain), "--json"], capsys)[1])


def test_eval(snapshot: Path, plain: Path, tmp_path: Path,
              capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    code, out, _ = run_cli(["eval", "-m", REPO, "--text", str(text), "--json"], capsys)
    assert code == 0
    score = json.loads(out)
    assert score.pop("model") == str(snapshot)
    expected = json.loads(run_cli(["eval", "-m", str(plain), "--text", str(text), "--json"],
                                  capsys)[1])
    expected.pop("model")
    assert score == expected


@pytest.mark.parametrize("source", [["-m", REPO], [REPO]], ids=["-m", "SRC"])
def test_convert(source: list[str], snapshot: Path, plain: Path, tmp_path: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["convert", *source, str(tmp_path / "out"), "--to", "bf16"], capsys)
    assert code == 0
    assert out.strip() == str(tmp_path / "out")
    converted = minibitnet.load(tmp_path / "out").logits(IDS)
    assert np.array_equal(converted, minibitnet.load(plain).logits(IDS))


def test_generate(snapshot: Path, plain: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["-p", "hello", "-n", "6", "--temp", "0", "--quiet"]
    code, out, _ = run_cli(["generate", "-m", REPO, *flags], capsys)
    assert code == 0
    assert out == run_cli(["generate", "-m", str(plain), *flags], capsys)[1]


def test_convert_wants_one_source(snapshot: Path, plain: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = str(tmp_path / "out")
    code, _, err = run_cli(["convert", str(plain), out_dir, "-m", REPO, "--to", "bf16"], capsys)
    assert code == 1 and "expected one model to read, not both" in err
    code, _, err = run_cli(["convert", out_dir, "--to", "bf16"], capsys)
    assert code == 1 and "expected SRC DST, or -m MODEL DST" in err
    assert not Path(out_dir).exists()


# ---- not found: one wording everywhere ----


def commands_naming(model: str, tmp_path: Path) -> list[list[str]]:
    """Every command line that reads the model ``model`` and nothing else first."""
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    out = str(tmp_path / "out")
    return [["info", "-m", model], ["ops", "-m", model], ["eval", "-m", model, "--text", str(text)],
            ["convert", "-m", model, out, "--to", "bf16"], ["convert", model, out, "--to", "bf16"],
            ["generate", "-m", model, "-p", "x"], ["chat", "-m", model], ["bench", "-m", model]]


@pytest.mark.parametrize("missing", ["org/absent", "absent-folder", "a-file"])
def test_not_found_reads_the_same_everywhere(missing: str, snapshot: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    if missing == "a-file":
        (tmp_path / missing).write_text("not a model", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        minibitnet.load(missing)
    message = str(raised.value)
    with pytest.raises(ConfigError) as raised:
        tokenizer.load(missing)
    assert str(raised.value) == message
    for argv in commands_naming(missing, tmp_path):
        code, out, err = run_cli(argv, capsys)
        assert (code, out, err) == (1, "", f"minibitnet: error: {message}\n"), argv
    assert "\n" not in message


def test_not_found_says_where_it_looked_and_how_to_fetch(snapshot: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        minibitnet.load("org/absent")
    cache = snapshot.parents[2]
    assert str(raised.value) == (
        "org/absent: no such folder, expected a model folder with config.json and "
        "model.safetensors, or a repo id in the local Hugging Face cache (looked in "
        f"{cache / 'models--org--absent'}/snapshots/*); nothing is downloaded here: fetch it "
        "first (huggingface-cli download org/absent)")


# ---- the import direction ----


def test_the_resolver_imports_only_errors_and_files_of_the_package() -> None:
    """loader.py, tokenizer.py and the commands import locate.py, so it imports none of them
    (files.py, the bounded read of refs/main, is of the bottom layer)."""
    source = Path(minibitnet.formats.locate.__file__).read_text(encoding="utf-8")
    package_imports = {node.module for node in ast.walk(ast.parse(source))
                       if isinstance(node, ast.ImportFrom) and node.level > 0}
    assert package_imports == {"errors", "files"}
