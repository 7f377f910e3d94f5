"""The command line itself: --version, global flags on either side of the subcommand, --seed -1,
eval -f, and Ctrl-C while the command modules are still being imported."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import minibitnet
from minibitnet.formats.checkpoint import WEIGHTS_FILE
from minibitnet.cli import build_parser, main
from minibitnet.train.loop import CHECKPOINT_FILE, load_checkpoint
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer, syllable_text
from minibitnet_testing import TEST_DATA
from minibitnet_testing.cli import usage_error

ROOT = Path(__file__).parents[2]
CORPUS = TEST_DATA / "sonnets_excerpt.txt"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_with_tokenizer(tmp_path_factory.mktemp("model"), seed=4,
                                      max_position_embeddings=64)


# ---- --version ----


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"minibitnet {minibitnet.__version__}\n"


def test_package_version_is_the_distributions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert minibitnet.__version__ == project["version"]


# ---- global flags on either side of the subcommand ----


@pytest.mark.parametrize("argv, debug", [
    (["info"], False),
    (["--debug", "info"], True),
    (["info", "--debug"], True),
    (["--debug", "info", "--debug"], True),
])
def test_debug_is_read_before_or_after_the_subcommand(argv: list[str], debug: bool) -> None:
    assert build_parser().parse_args(argv).debug is debug


@pytest.mark.parametrize("argv", [["--debug", "ops", "--context", "0"],
                                  ["ops", "--context", "0", "--debug"]])
def test_debug_shows_the_traceback_in_either_position(argv: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "minibitnet: error: --context is 0" in err


def test_without_debug_an_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--context", "0"]) == 1
    assert capsys.readouterr().err == ("minibitnet: error: --context is 0, expected an integer "
                                       ">= 1\n")


def test_every_subcommand_takes_the_global_flags() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, subparser in commands.items():
        assert "--debug" in subparser.format_help(), name


# ---- --seed: >= 0 repeats a run, -1 draws one, below -1 is a usage error ----


@pytest.mark.parametrize("command", [
    ["generate", "-p", "x"], ["chat"], ["make-checkpoint", "--shape", "tiny", "--out", "x"],
    ["train", "--data", "x", "--out", "y"],
])
@pytest.mark.parametrize("value", ["-2", "-100"])
def test_seed_below_minus_one_is_a_one_line_usage_error(command: list[str], value: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, [*command, "--seed", value])
    assert f"--seed: {value} is out of range, expected an integer >= 0, or -1" in err


def test_seed_that_is_not_a_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["generate", "--seed", "x"])
    assert "--seed: 'x' is not an integer" in err


def test_generate_seed_minus_one_prints_a_seed_that_repeats_the_text(
        model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["generate", "-m", str(model_dir), "-p", "Hello", "-n", "12", "--temp", "1.5"]
    assert main([*flags, "--seed", "-1"]) == 0
    first = capsys.readouterr()
    seeds = re.findall(r"seed (\d+)\]", first.err)
    assert len(seeds) == 1, first.err
    assert main([*flags, "--seed", seeds[0]]) == 0
    again = capsys.readouterr()
    assert again.out == first.out
    assert f"seed {seeds[0]}]" in again.err


def test_make_checkpoint_seed_minus_one_prints_a_seed_that_repeats_the_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-checkpoint", "--shape", "tiny", "--out", str(tmp_path / "a"),
                 "--seed", "-1"]) == 0
    err = capsys.readouterr().err
    drawn = re.search(r"^seed (\d+) \(drawn at random; --seed \1 writes the same model\)$", err,
                      re.MULTILINE)
    assert drawn is not None, err
    assert main(["make-checkpoint", "--shape", "tiny", "--out", str(tmp_path / "b"),
                 "--seed", drawn.group(1)]) == 0
    assert "drawn at random" not in capsys.readouterr().err
    assert ((tmp_path / "a" / WEIGHTS_FILE).read_bytes()
            == (tmp_path / "b" / WEIGHTS_FILE).read_bytes())


def test_train_seed_minus_one_is_drawn_printed_and_kept_in_the_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(CORPUS), "--out", str(tmp_path), "--config", "tiny",
                 "--steps", "2", "--batch-size", "2", "--context", "16", "--bpe-vocab", "260",
                 "--seed", "-1"]) == 0
    err = capsys.readouterr().err
    drawn = re.search(r"^seed (\d+) \(drawn at random", err, re.MULTILINE)
    assert drawn is not None, err
    *_, meta = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert meta["settings"]["seed"] == int(drawn.group(1))


# ---- eval -f ----


def test_eval_takes_the_text_as_f_file_or_text(model_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "held_out.txt"
    text.write_text(syllable_text(60, seed=2), encoding="utf-8")
    lines = []
    for flag in ("-f", "--file", "--text"):
        assert main(["eval", "-m", str(model_dir), flag, str(text), "--json"]) == 0
        lines.append(capsys.readouterr().out)
    assert lines[0] == lines[1] == lines[2]
    assert '"bits_per_char"' in lines[0]


def test_eval_without_a_text_names_f(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["eval", "-m", str(model_dir)])
    assert "-f/--file/--text" in err


def test_eval_names_a_missing_file(model_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "-m", str(model_dir), "-f", str(tmp_path / "nope.txt")]) == 1
    assert capsys.readouterr().err == (f"minibitnet: error: -f/--file: {tmp_path / 'nope.txt'}: "
                                       "no such file\n")


# ---- Ctrl-C while the command modules are imported ----


def test_ctrl_c_while_importing_the_commands_is_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_import = importlib.import_module

    def interrupted_import(name: str, package: str | None = None) -> object:
        if name == "minibitnet.commands.train":
            raise KeyboardInterrupt
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", interrupted_import)
    assert main(["info"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "\nminibitnet: interrupted\n"
    assert captured.out == ""


# A real SIGINT, sent by the process to itself the moment the import system looks for a command
# module that is not imported yet: as if the user pressed Ctrl-C right after Enter.
SIGINT_DURING_IMPORT = """
import os, signal, sys
from minibitnet import cli

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "minibitnet.commands.eval":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.exit(cli.main(["info"]))
"""


def test_sigint_while_importing_the_commands_exits_130_without_a_traceback() -> None:
    result = subprocess.run([sys.executable, "-c", SIGINT_DURING_IMPORT], capture_output=True,
                            text=True, timeout=120, cwd="/")
    assert result.returncode == 130, result.stderr
    assert result.stderr == "\nminibitnet: interrupted\n"
    assert result.stdout == ""



def test_importing_the_command_line_imports_no_numpy() -> None:
    # everything heavy is imported inside main's Ctrl-C handler (the package's names are lazy)
    result = subprocess.run([sys.executable, "-c", "import sys, minibitnet.cli; "
                             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy'))"],
                            capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_sigint_while_importing_numpy_exits_130_without_a_traceback() -> None:
    script = SIGINT_DURING_IMPORT.replace('"minibitnet.commands.eval"', '"numpy"')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd="/")
    assert result.returncode == 130, result.stderr
    assert result.stderr == "\nminibitnet: interrupted\n"
