"""minibitnet.tools.progress: one bar for every command, on a terminal and in a log.

A fake stream says whether it is a terminal; a fake clock makes rates and times exact, so the
lines are compared whole and nothing waits.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibitnet.tools.progress import ProgressBar, format_seconds, note


class Stream(io.StringIO):
    """stderr as a test sees it: a terminal or not, every write kept."""

    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def steps_bar(stream: Stream, clock: Clock, total: int = 40, **flags: object) -> ProgressBar:
    return ProgressBar(total, "training", unit="step", stream=stream, clock=clock, **flags)


@pytest.mark.parametrize("seconds, expected", [
    (0.0, "0 s"), (12.4, "12 s"), (59.4, "59 s"), (59.7, "1 min 00 s"), (185.0, "3 min 05 s"),
    (3599.6, "1 h 00 min"), (7620.0, "2 h 07 min"),
])
def test_format_seconds(seconds: float, expected: str) -> None:
    assert format_seconds(seconds) == expected


# ---- the line ----


def test_a_line_of_steps_with_rate_time_left_and_detail() -> None:
    clock = Clock()
    bar = steps_bar(Stream(terminal=False), clock)
    for _ in range(10):
        clock.now += 0.5
        bar.update(1, detail="loss 4.1234")
    assert bar.line() == ("training [######..................] 10/40 steps  2.00 steps/s  "
                          "ETA 15 s  loss 4.1234")
    assert bar.line(final=True) == ("training [######..................] 10/40 steps  "
                                    "2.00 steps/s  done in 5 s  loss 4.1234")


def test_a_line_of_bytes_is_in_megabytes() -> None:
    clock = Clock()
    bar = ProgressBar(1_000_000, "model.safetensors", stream=Stream(False), clock=clock)
    clock.now += 5
    bar.update(500_000)
    assert bar.line() == ("model.safetensors [############............] 0.50/1.00 MB  "
                          "0.100 MB/s  ETA 5 s")


def test_no_rate_before_anything_is_counted() -> None:
    clock = Clock()
    bar = steps_bar(Stream(False), clock)
    clock.now += 3
    assert bar.line() == "training [........................] 0/40 steps  ETA ?"


def test_a_resumed_bar_times_only_what_it_saw() -> None:
    clock = Clock()
    bar = steps_bar(Stream(False), clock, initial=20)
    for _ in range(5):
        clock.now += 1
        bar.update(1)
    assert bar.line() == "training [###############.........] 25/40 steps  1.00 steps/s  ETA 15 s"


def test_a_total_of_one_is_singular() -> None:
    bar = ProgressBar(1, "scored", unit="token", stream=Stream(False), clock=Clock())
    assert "0/1 token  " in bar.line()


# ---- not a terminal: plain lines ----


def test_a_log_gets_a_line_each_tenth_and_a_final_line() -> None:
    stream, clock = Stream(terminal=False), Clock()
    bar = steps_bar(stream, clock, total=100)
    for _ in range(100):
        clock.now += 1
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == [
        "1/100", "10/100", "20/100", "30/100", "40/100", "50/100", "60/100", "70/100", "80/100",
        "90/100", "100/100"]
    assert lines[-1] == ("training [########################] 100/100 steps  1.00 steps/s  "
                         "done in 1 min 40 s")


@given(counts=st.lists(st.integers(0, 50), max_size=60))
def test_a_log_never_gets_more_than_eleven_lines(counts: list[int]) -> None:
    stream = Stream(terminal=False)
    bar = ProgressBar(max(sum(counts), 1), "scored", unit="token", stream=stream, clock=Clock())
    for count in counts:
        bar.update(count)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 1 <= len(lines) <= 11
    assert lines[-1].startswith("scored [") and "done in 0 s" in lines[-1]


def test_a_note_in_a_log_is_a_line_of_its_own() -> None:
    stream = Stream(terminal=False)
    bar = steps_bar(stream, Clock(), total=2)
    bar.update(1)
    bar.note("step 1: validation loss 3.2100")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[1] == "step 1: validation loss 3.2100" and len(lines) == 3


# ---- a terminal: one line redrawn ----


def test_a_terminal_line_is_redrawn_in_place_at_most_ten_times_a_second() -> None:
    stream, clock = Stream(terminal=True), Clock()
    bar = steps_bar(stream, clock)
    assert stream.getvalue() == "\rtraining [........................] 0/40 steps  ETA ?"
    for _ in range(5):  # no time passes: nothing is redrawn
        bar.update(1)
    assert stream.getvalue().count("\r") == 1
    clock.now += 0.25
    bar.update(1)
    assert stream.getvalue().count("\r") == 2
    assert stream.getvalue().endswith("6/40 steps  24.0 steps/s  ETA 1 s")
    assert "\n" not in stream.getvalue()


def test_a_terminal_gets_one_final_line() -> None:
    stream, clock = Stream(terminal=True), Clock()
    with steps_bar(stream, clock, total=3) as bar:
        for _ in range(3):
            clock.now += 2
            bar.update(1)
    text = stream.getvalue()
    assert text.endswith("\rtraining [########################] 3/3 steps  0.500 steps/s  "
                         "done in 6 s\n")
    assert text.count("\n") == 1


def test_a_shorter_line_blanks_the_end_of_the_longer_one() -> None:
    stream, clock = Stream(terminal=True), Clock()
    bar = steps_bar(stream, clock)
    clock.now += 1
    bar.update(1, detail="a long detail that a shorter line must cover")
    longer = stream.getvalue().split("\r")[-1]
    clock.now += 1
    bar.update(1, detail="short")
    shorter = stream.getvalue().split("\r")[-1]
    assert len(shorter) == len(longer) and shorter.rstrip().endswith("short")


def test_a_note_on_a_terminal_goes_above_the_bar() -> None:
    stream, clock = Stream(terminal=True), Clock()
    bar = steps_bar(stream, clock, total=2)
    clock.now += 1
    bar.update(1)
    bar.note("step 1: validation loss 3.2100")
    before, after = stream.getvalue().rsplit("\n", 1)
    assert before.split("\r")[-1].rstrip() == "step 1: validation loss 3.2100"
    assert after.startswith("\rtraining [")  # the bar again, below the note


def test_an_error_ends_the_terminal_line_without_a_summary() -> None:
    stream = Stream(terminal=True)
    with pytest.raises(KeyboardInterrupt), steps_bar(stream, Clock()) as bar:
        bar.update(1)
        raise KeyboardInterrupt
    assert stream.getvalue().endswith("\n") and "done in" not in stream.getvalue()


def test_an_error_adds_nothing_to_a_log() -> None:
    stream = Stream(terminal=False)
    with pytest.raises(ValueError), steps_bar(stream, Clock(), total=100) as bar:
        bar.update(1)
        raise ValueError
    assert stream.getvalue().count("\n") == 1 and "done in" not in stream.getvalue()


# ---- quiet, and closing once ----


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_quiet_prints_nothing(terminal: bool) -> None:
    stream = Stream(terminal)
    with steps_bar(stream, Clock(), quiet=True) as bar:
        bar.update(40, detail="loss 1.0")
        bar.note("a note")
    note("loading ...", stream, quiet=True)
    assert stream.getvalue() == ""


def test_closing_twice_prints_the_final_line_once() -> None:
    stream = Stream(terminal=False)
    bar = steps_bar(stream, Clock(), total=1)
    bar.update(1)
    bar.close()
    bar.close()
    assert stream.getvalue().count("done in") == 1


def test_a_note_is_one_flushed_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    note("bench: loading /models/x with backend fast")
    captured = capsys.readouterr()
    assert captured.err == "bench: loading /models/x with backend fast\n"
    assert captured.out == ""


def test_the_default_stream_is_stderr_when_the_bar_is_made(
        capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBar(10, "scored", unit="token", clock=Clock()) as bar:
        bar.update(10)
    captured = capsys.readouterr()
    assert captured.out == "" and "scored [" in captured.err and "done in" in captured.err
