"""-t/--threads N (llama.cpp's flag) on generate, chat, eval and bench, and ``threads=`` of
``minibitnet.load``: a count below 1 is one line before anything is loaded, and the text is the
same on any count."""

from __future__ import annotations

from pathlib import Path

import pytest

import minibitnet
from minibitnet.cli import build_parser, main
from minibitnet.errors import ArgumentError
from minibitnet.kernels.registry import available_cores
from minibitnet_testing.cli import usage_error

# each command with the arguments it requires, so that only --threads can be wrong
COMMANDS = [["generate", "-p", "x"], ["chat"], ["eval", "-f", "x"], ["bench"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
@pytest.mark.parametrize("flag", ["-t", "--threads"])
@pytest.mark.parametrize("value", ["0", "-1", "-8"])
def test_threads_below_one_is_a_one_line_usage_error(command: list[str], flag: str, value: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, [*command, flag, value])
    assert f"-t/--threads: {value} is out of range, expected an integer >= 1" in err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_threads_that_is_not_a_number_is_a_usage_error(command: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, [*command, "--threads", "many"])
    assert "-t/--threads: 'many' is not an integer >= 1" in err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_threads_defaults_to_every_core_and_says_so(command: list[str]) -> None:
    subparsers = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    help_text = " ".join(subparsers[command[0]].format_help().split())
    assert "-t N, --threads N" in help_text
    assert f"the cores this process may use, {available_cores()} here" in help_text
    args = build_parser().parse_args([*command, "-t", "3"])
    assert args.threads == 3
    assert build_parser().parse_args(command).threads is None  # None: every core


@pytest.mark.parametrize("threads", [0, -2])
def test_load_rejects_a_bad_count_before_reading_anything(threads: int) -> None:
    with pytest.raises(ArgumentError, match=f"^threads is {threads}, expected an integer >= 1"):
        minibitnet.load(Path("/no/such/model"), threads=threads)


def test_generate_prints_the_same_text_on_one_and_two_threads(
        capsys: pytest.CaptureFixture[str]) -> None:
    texts = []
    for threads in ("1", "2"):
        assert main(["generate", "-p", "ROMEO:", "-n", "12", "--temp", "0", "--quiet",
                     "-t", threads]) == 0
        texts.append(capsys.readouterr().out)
    assert main(["generate", "-p", "ROMEO:", "-n", "12", "--temp", "0", "--quiet",
                 "--backend", "reference"]) == 0
    assert texts == [capsys.readouterr().out] * 2
