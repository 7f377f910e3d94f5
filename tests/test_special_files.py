"""Every file minibitnet reads, replaced by something hostile, gives one clean error and returns.

A model folder (and a text to score, a prompt, training data) is untrusted: any of its files may
be a FIFO (whose plain open() blocks until a writer comes), a symlink to ``/dev/zero`` (which
reads forever), a folder, or a regular file far larger than its kind ever is. For each file the
package reads (a :class:`Site`) and each such replacement, the command that reads it must exit
1 with one line on stderr naming the file and what it is, with no traceback.

FIFOs and ``/dev/zero`` run the real command in a subprocess, whose timeout only detects a hang
(a broken read would block or fill memory there, not in the test process). Folders and files
over budget cannot hang, so they run in-process, the budget constant lowered by monkeypatch
rather than a huge file written.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from minibitnet.cli import main
from minibitnet.errors import ArgumentError, CheckpointError, ConfigError, TokenizerError
from minibitnet.files import open_regular, read_bounded, read_text_argument
from minibitnet_testing.hub_cache import cache_model
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")

TEXT = "To be, or not to be, that is the question.\n" * 4
TINY_SHAPE = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2}
SHARD = "model-00001-of-00001.safetensors"
REPO_ID = "org/tiny"


@dataclass(frozen=True)
class Site:
    """A file the package reads, and a command line that reads it.

    file:   the file, relative to the case folder (see :func:`template`)
    argv:   the command, run in the case folder
    budget: (module, constant) that caps the file's size; None for memory-mapped files
    read_first: whether the file is read before the command prints anything else, so the error
                is all of stderr; else only the error's line is checked, as the last one
    """

    name: str
    file: str
    argv: tuple[str, ...]
    budget: tuple[str, str] | None
    read_first: bool = True


EVAL = ("eval", "-m", "model", "--text", "text.txt")
SITES = [
    Site("config.json", "model/config.json", ("info", "-m", "model"),
         ("minibitnet.config", "MAX_CONFIG_BYTES")),
    Site("model.safetensors", "model/model.safetensors", ("info", "-m", "model"), None),
    Site("shard index", "sharded/model.safetensors.index.json", ("info", "-m", "sharded"),
         ("minibitnet.formats.shards", "MAX_INDEX_BYTES")),
    Site("shard", f"sharded/{SHARD}", ("info", "-m", "sharded"), None),
    Site("gguf", "gguf/ggml-model-i2_s.gguf", ("info", "-m", "gguf"), None),
    Site("tokenizer.json", "model/tokenizer.json", EVAL,
         ("minibitnet.tokenizer.bpe_file", "MAX_TOKENIZER_JSON_BYTES")),
    Site("tokenizer_config.json", "model/tokenizer_config.json", EVAL,
         ("minibitnet.tokenizer.bpe_file", "MAX_TOKENIZER_CONFIG_BYTES")),
    Site("eval --text", "text.txt", EVAL, ("minibitnet.commands.eval", "MAX_EVAL_TEXT_BYTES")),
    Site("generate -f", "text.txt", ("generate", "-m", "model", "-f", "text.txt", "-n", "1",
                                     "--quiet"),
         ("minibitnet.commands.generate", "MAX_PROMPT_FILE_BYTES")),
    Site("train --data", "text.txt", ("train", "--data", "text.txt", "--out", "run",
                                      "--config", "tiny"),
         ("minibitnet.train.data", "MAX_TRAINING_TEXT_BYTES")),
    Site("train --config", "shape.json", ("train", "--data", "text.txt", "--out", "run",
                                          "--config", "shape.json"),
         ("minibitnet.commands.train", "MAX_CONFIG_BYTES")),
    Site("train --resume", "run/checkpoint.npz", ("train", "--resume", "--out", "run"), None),
    Site("hub cache refs/main", "cache/models--org--tiny/refs/main", ("info", "-m", REPO_ID),
         ("minibitnet.formats.locate", "MAX_REF_BYTES")),
    Site("convert special_tokens_map.json", "model/special_tokens_map.json",
         ("convert", "model", "out", "--to", "bf16"),
         # its budget is tokenizer.json's (that site tests it), which convert's copy applies to
         # tokenizer.json first; the optional tokenizer files are copied after the weights
         None, read_first=False),
]
BUDGETED = [site for site in SITES if site.budget is not None]


# ---- the case folder: every file a site names, valid ----


def shard_in_place(folder: Path) -> None:
    """model.safetensors -> one shard and the index that names it for every tensor."""
    header_length = int.from_bytes((folder / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((folder / "model.safetensors").read_bytes()[8:8 + header_length])
    header.pop("__metadata__", None)
    (folder / "model.safetensors").rename(folder / SHARD)
    index = {"metadata": {}, "weight_map": {name: SHARD for name in header}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny model and tokenizer (model/), the same sharded (sharded/), a GGUF
    folder (gguf/, whose .gguf each test supplies), the model in a hub cache (cache/), a text,
    a training shape and a training run's folder (run/)."""
    root = tmp_path_factory.mktemp("special")
    model = build_model_with_tokenizer(root / "model")
    (model / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}))
    shutil.copytree(model, root / "sharded")
    shard_in_place(root / "sharded")
    (root / "gguf").mkdir()
    shutil.copy(model / "config.json", root / "gguf")
    shutil.copytree(model, root / "to-cache")
    cache_model(root / "to-cache", root / "cache", REPO_ID)
    shutil.rmtree(root / "to-cache")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "shape.json").write_text(json.dumps(TINY_SHAPE))
    (root / "run").mkdir()  # a training run's folder, whose checkpoint each test supplies
    return root


@pytest.fixture
def case(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template, for one test to break."""
    folder = tmp_path / "case"
    shutil.copytree(template, folder, symlinks=True)  # the hub cache's relative links stay links
    return folder


# ---- the hostile replacements ----


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def make_fifo(path: Path) -> None:
    _remove(path)
    os.mkfifo(path)


def link_to_dev_zero(path: Path) -> None:
    _remove(path)
    path.symlink_to("/dev/zero")


def make_folder(path: Path) -> None:
    _remove(path)
    path.mkdir()


# the replacement, and what the error line must say of it
BLOCKING: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (make_fifo, "is a FIFO (named pipe), expected a regular file"),
    "dev-zero": (link_to_dev_zero, "is a character device, expected a regular file"),
}


def run_cli(argv: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command in a fresh interpreter; the timeout only detects a hang."""
    env = dict(os.environ, HF_HUB_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def assert_one_error_line(stderr: str, site: Site, says: str) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines, "no error printed"
    assert len(lines) == 1 or not site.read_first, stderr
    error = lines[-1]
    assert error.startswith("minibitnet: error: "), stderr
    assert Path(site.file).name in error and says in error, stderr
    assert sum(line.startswith("minibitnet: error: ") for line in lines) == 1, stderr


@pytest.mark.parametrize("kind", list(BLOCKING))
@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_a_special_file_is_refused_by_its_type_without_blocking(site: Site, kind: str,
                                                                 case: Path) -> None:
    replace, says = BLOCKING[kind]
    replace(case / site.file)
    result = run_cli(site.argv, case)
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr, site, says)


def run_in_process(site: Site, case: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of the site's command run by ``main`` in this process (exit code checked)."""
    monkeypatch.chdir(case)
    monkeypatch.setenv("HF_HUB_CACHE", str(case / "cache"))
    code = main(list(site.argv))
    err = capsys.readouterr().err
    assert code == 1, err
    return err


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.name)
def test_a_folder_in_place_of_a_file_is_named_as_one(site: Site, case: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(case / site.file)
    assert_one_error_line(run_in_process(site, case, monkeypatch, capsys), site, "is a folder")


@pytest.mark.parametrize("site", BUDGETED, ids=lambda site: site.name)
def test_a_file_over_its_budget_is_refused(site: Site, case: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert site.budget is not None
    module, constant = site.budget
    assert (case / site.file).stat().st_size > 8  # so a budget of 8 bytes is exceeded
    monkeypatch.setattr(importlib.import_module(module), constant, 8)
    err = run_in_process(site, case, monkeypatch, capsys)
    assert_one_error_line(err, site, "larger than the 8-byte limit")


@pytest.mark.parametrize("site", BUDGETED, ids=lambda site: site.name)
def test_each_budget_is_a_named_constant_above_real_files(site: Site, template: Path) -> None:
    """The budgets are generous: the valid file of each site is far below its budget."""
    assert site.budget is not None
    module, constant = site.budget
    budget = getattr(importlib.import_module(module), constant)
    assert isinstance(budget, int) and budget >= 4096
    assert (template / site.file).stat().st_size < budget // 8


def test_a_symlinked_model_folder_still_loads(template: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Symlinks to regular files are fine: the hub cache is all symlinks (and refs/main, config,
    tokenizer and weights are all read through them here)."""
    snapshot = next((template / "cache" / "models--org--tiny" / "snapshots").iterdir())
    assert all(entry.is_symlink() for entry in snapshot.iterdir())
    monkeypatch.chdir(template)
    monkeypatch.setenv("HF_HUB_CACHE", str(template / "cache"))
    assert main(["eval", "-m", REPO_ID, "--text", "text.txt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] > 0


# ---- read_bounded itself, in-process ----


@pytest.fixture
def hang_detector() -> Iterator[None]:
    """SIGALRM after 30 s: a read that blocks fails the test instead of stopping the run."""
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the read blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_read_bounded_reads_up_to_its_limit_exactly(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_bytes(b"0123456789")
    assert read_bounded(path, 10, ConfigError, "a small file") == b"0123456789"
    with pytest.raises(ConfigError, match=r"small.json: larger than the 9-byte limit, expected "
                                          r"a small file$"):
        read_bounded(path, 9, ConfigError, "a small file")


def test_read_bounded_follows_a_symlink_to_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"{}")
    (tmp_path / "config.json").symlink_to("blob")
    assert read_bounded(tmp_path / "config.json", 10, ConfigError, "a config") == b"{}"


@pytest.mark.parametrize("replace, says", [
    (make_fifo, "is a FIFO (named pipe), expected a regular file (a config)"),
    (link_to_dev_zero, "is a character device, expected a regular file (a config)"),
    (make_folder, "is a folder, expected a config"),
], ids=["fifo", "dev-zero", "folder"])
def test_read_bounded_refuses_by_type(replace: Callable[[Path], None], says: str,
                                      tmp_path: Path, hang_detector: None) -> None:
    path = tmp_path / "config.json"
    replace(path)
    with pytest.raises(CheckpointError) as error:
        read_bounded(path, 1 << 20, CheckpointError, "a config")
    assert str(error.value) == f"{path}: {says}"


def test_read_bounded_refuses_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(ConfigError, match=r"s.json: is a socket, expected a regular file"):
            read_bounded(path, 100, ConfigError, "a config")


def test_a_file_swapped_for_a_fifo_after_stat_is_caught_by_fstat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hang_detector: None) -> None:
    """stat says regular file (the file as it was), the path is a FIFO by the time it is
    opened: the check on the opened descriptor refuses it, and nothing blocks."""
    regular, fifo = tmp_path / "was-regular", tmp_path / "config.json"
    regular.write_bytes(b"{}")
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *args, **kwargs: real_stat(
        regular if Path(path) == fifo else path, *args, **kwargs))
    with pytest.raises(ConfigError, match="is a FIFO"):
        read_bounded(fifo, 100, ConfigError, "a config")


def test_the_not_found_wording_is_the_callers(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"absent.json: no such file \(expected a vocab\)$"):
        read_bounded(tmp_path / "absent.json", 100, TokenizerError, "a vocab")
    with pytest.raises(TokenizerError, match=r"absent.json: no vocab here$"):
        read_bounded(tmp_path / "absent.json", 100, TokenizerError, "a vocab",
                     missing="no vocab here")


def test_a_file_opened_by_open_regular_reads_in_blocking_mode(tmp_path: Path) -> None:
    """O_NONBLOCK guards the open only; the handle handed on reads as any file does."""
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    with open_regular(path, CheckpointError, "a file") as handle:
        assert os.get_blocking(handle.fileno())
        assert handle.read() == b"abc"


def test_read_text_argument_names_the_flag_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9")
    with pytest.raises(ArgumentError, match=r"^--data: .*latin1.txt: not UTF-8 text \(byte 3\)$"):
        read_text_argument(path, 100, "--data")
    with pytest.raises(ArgumentError, match=r"^--data: .*latin1.txt: larger than the 2-byte"):
        read_text_argument(path, 2, "--data")
    path.write_text("héllo", encoding="utf-8")
    assert read_text_argument(path, 100, "--data") == "héllo"


@pytest.mark.parametrize("stdin, says", [
    ("/dev/zero", "standard input: larger than the 16,777,216-byte limit, expected a UTF-8 "
                  "prompt"),
    ("latin1", "standard input: not UTF-8 text (byte 3)"),
])
def test_a_prompt_piped_in_is_read_within_its_budget(template: Path, tmp_path: Path,
                                                     stdin: str, says: str) -> None:
    """generate reads a prompt from standard input when it is not a terminal: /dev/zero there
    is refused after MAX_PROMPT_FILE_BYTES (16 MiB), as -f refuses it, never read into memory."""
    source = Path(stdin) if stdin.startswith("/") else tmp_path / "prompt.txt"
    if stdin == "latin1":
        source.write_bytes(b"caf\xe9")
    with source.open("rb") as piped:
        done = subprocess.run([sys.executable, "-m", "minibitnet.cli", "generate", "-m",
                               str(template / "model"), "-n", "1"], stdin=piped,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"minibitnet: error: {says}"]
