"""``minibitnet chat``: through a real terminal (a pty), and the KV cache kept across turns."""

from __future__ import annotations

import argparse
import io
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

import minibitnet
from minibitnet.commands.chat import Conversation
from minibitnet.commands.running import stream_reply
from minibitnet.tokenizer import load as load_tokenizer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_with_tokenizer(tmp_path_factory.mktemp("chat-model"), seed=5,
                                      max_position_embeddings=256)


class Terminal:
    """A command on a pseudo-terminal: ``expect`` reads until a string shows, ``send`` types."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TERM": "dumb"}
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                        cwd="/", env=env, close_fds=True)
        os.close(slave)
        self.seen = ""

    def _read_until(self, shows: Callable[[str], bool], what: str, timeout: float) -> None:
        """Read into ``self.seen`` until ``shows(self.seen)``; fails after ``timeout`` seconds.

        The deadline only keeps a broken command from hanging the suite: the wait itself ends
        on what the terminal shows.
        """
        deadline = time.monotonic() + timeout
        while not shows(self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}; terminal shows {self.seen[-500:]!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed before {what}; it showed {self.seen[-500:]!r}"
                self.seen += chunk.decode("utf-8", "replace")

    def expect(self, text: str, timeout: float = 60.0) -> str:
        """Everything read up to and including ``text``; fails after ``timeout`` seconds."""
        self._read_until(lambda seen: text in seen, repr(text), timeout)
        upto = self.seen.index(text) + len(text)
        shown, self.seen = self.seen[:upto], self.seen[upto:]
        return shown

    def expect_output(self, timeout: float = 60.0) -> str:
        """Whatever the command shows next, at least one character."""
        self._read_until(bool, "more output", timeout)
        shown, self.seen = self.seen, ""
        return shown

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            os.close(self.master)


def chat_command(model_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "minibitnet.cli", "chat", "-m", str(model_dir), "--seed", "3",
            "-n", "8", *flags]


def test_chat_in_a_terminal(model_dir: Path) -> None:
    terminal = Terminal(chat_command(model_dir, "--system", "Be brief."))
    terminal.expect("/exit or Ctrl-D quits")
    terminal.expect("> ")
    terminal.send("Hello there\n")
    reply = terminal.expect("> ")  # the reply, its summary line, then the next prompt
    assert "prompt tokens" in reply and "new tokens" in reply
    terminal.send("And again?\n")
    second = terminal.expect("> ")
    assert "prompt tokens" in second
    terminal.send("/reset\n")
    terminal.expect("(conversation reset)")
    terminal.send("/exit\n")
    assert terminal.wait() == 0


def test_ctrl_d_quits(model_dir: Path) -> None:
    terminal = Terminal(chat_command(model_dir, "--quiet"))
    terminal.expect("> ")
    terminal.send("\x04")  # Ctrl-D on an empty line: end of input
    assert terminal.wait() == 0


def _greedy_args(n: int) -> argparse.Namespace:
    return argparse.Namespace(n_predict=n, temp=0.0, top_k=None, top_p=None)


def test_cache_across_turns_equals_one_pass(model_dir: Path) -> None:
    """Turn 2 through the kept cache gives the reply a fresh pass over all the ids gives."""
    model, tokenizer = minibitnet.load(model_dir), load_tokenizer(model_dir)
    conversation = Conversation(model, tokenizer, "Be brief.")
    # a random model seldom says <|eot_id|>; let its third greedy token end the turn instead
    dry_run = model.generate(conversation.prompt_for("Hello there"), 3, temperature=0.0,
                             stop_ids=[])
    stops = {dry_run[2]}
    fed: list[int] = []  # every id that went into the cache, in order
    for turn, user in enumerate(["Hello there", "And again?"]):
        prompt = conversation.prompt_for(user)
        if turn == 1:
            assert conversation.cache.length > 0, "the second turn must reuse the cache"
        fed += prompt
        before = list(fed)
        reply = stream_reply(model, tokenizer, prompt, _greedy_args(6), 0, stops,
                             conversation.cache, io.StringIO())
        # the same reply from scratch: one pass over everything the cache was given
        assert model.generate(before, 6, temperature=0.0, stop_ids=sorted(stops)) == reply.ids
        fed += reply.ids[:-1]
        if reply.ids[-1] not in stops:  # a cut reply: the next turn starts a fresh cache
            fed = []
        conversation.add_turn(user, reply, stops)
    assert len(conversation.messages) == 5  # system, and two user + assistant pairs


def test_turn_text_follows_the_template(model_dir: Path) -> None:
    """The ids of a turn are the template's new text after the cached conversation."""
    model, tokenizer = minibitnet.load(model_dir), load_tokenizer(model_dir)
    conversation = Conversation(model, tokenizer, None)
    first = conversation.prompt_for("Hi")
    assert tokenizer.decode(first) == "<|begin_of_text|>User: Hi<|eot_id|>Assistant: "
    eot = tokenizer.special_ids["<|eot_id|>"]
    conversation.cache = model.new_cache()
    model.forward(first, conversation.cache)
    reply_ids = tokenizer.encode("Hello.") + [eot]
    model.forward(reply_ids[:-1], conversation.cache)
    conversation.add_turn("Hi", _reply(reply_ids), {eot})
    second = conversation.prompt_for("Bye")
    assert second == [eot] + tokenizer.encode("User: Bye<|eot_id|>Assistant: ")


def _reply(ids: list[int]):  # type: ignore[no-untyped-def]
    from minibitnet.commands.running import Reply

    return Reply(ids, 0.0, 0.0, "stop token")


def test_ctrl_c_during_a_reply_returns_to_the_prompt(tmp_path: Path) -> None:
    import signal

    build_model_with_tokenizer(tmp_path, seed=4, max_position_embeddings=4096)
    terminal = Terminal([sys.executable, "-m", "minibitnet.cli", "chat", "-m", str(tmp_path),
                         "-n", "4000", "--temp", "0"])
    terminal.expect("> ")
    terminal.send("Tell me everything\n")
    terminal.expect("Tell me everything")
    terminal.expect("\n")  # the line is read: what shows next is the reply, streaming
    shown = terminal.expect_output()
    terminal.process.send_signal(signal.SIGINT)
    shown += terminal.expect("(reply interrupted)")
    shown += terminal.expect("> ")
    # the summary line; Ctrl-C may come as early as after the first token ("1 new token")
    assert re.search(r"\d+ new tokens?;", shown) and "Traceback" not in shown
    terminal.send("/exit\n")
    assert terminal.wait() == 0
