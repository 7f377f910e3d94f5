"""``minibitnet chat``: an interactive conversation through the model's chat template.

Each turn renders the whole conversation with the template, but only the text that the KV cache
does not hold yet goes through the model: the cache keeps every earlier turn, including the
reply exactly as it was sampled. A reply ends at the end-of-turn token (``<|eot_id|>`` for
2B4T). ``/reset`` forgets the conversation (the system message stays), ``/exit`` or Ctrl-D quits,
Ctrl-C stops a reply early.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ContextLengthError
from ..core.model import Model
from ..tokenizer.tokenizer import Tokenizer
from .running import (
    Reply,
    add_model_flags,
    add_sampling_flags,
    load_model,
    pick_seed,
    stream_reply,
    summary,
)

HELP = "type a message and press Enter; /reset starts over, /exit or Ctrl-D quits"


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "chat",
        help="talk with a chat model in the terminal",
        description="An interactive chat with a BitNet b1.58 model, using the chat template "
                    "from its tokenizer_config.json (or the 2B4T one). The KV cache is kept "
                    f"across turns. In the chat: {HELP}.",
        epilog="example: minibitnet chat -m microsoft/bitnet-b1.58-2B-4T "
               "--system 'You are a helpful assistant.'",
    )
    add_model_flags(parser)
    parser.add_argument("--system", metavar="TEXT", default=None,
                        help="a system message that starts every conversation")
    add_sampling_flags(parser, max_tokens=512)
    parser.set_defaults(run=run)


class Conversation:
    """The messages so far and the KV cache that holds them."""

    def __init__(self, model: Model, tokenizer: Tokenizer, system: str | None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.system = system
        self.reset()

    def reset(self) -> None:
        self.messages: list[dict[str, Any]] = (
            [{"role": "system", "content": self.system}] if self.system else [])
        self.cache = self.model.new_cache()
        self.rendered = ""  # the template text of self.messages, which the cache holds
        self.pending: list[int] = []  # sampled but not yet run through the model
        self.in_sync = False  # whether cache + pending is exactly self.rendered

    def prompt_for(self, user: str) -> list[int]:
        """Ids to run next: the part of the rendered conversation the cache lacks."""
        messages = self.messages + [{"role": "user", "content": user}]
        text = self.tokenizer.chat_text(messages)
        if self.in_sync and text.startswith(self.rendered):
            return self.pending + self.tokenizer.encode(text[len(self.rendered):])
        # the first turn, a reply cut short, or a template that rewrites earlier turns:
        # start the cache again from the whole conversation, BOS first
        self.cache = self.model.new_cache()
        return self.tokenizer.chat_prompt(messages)

    def add_turn(self, user: str, reply: Reply, stop_ids: set[int]) -> None:
        ended = bool(reply.ids) and reply.ids[-1] in stop_ids
        text = self.tokenizer.decode(reply.ids[:-1] if ended else reply.ids)
        self.messages += [{"role": "user", "content": user},
                          {"role": "assistant", "content": text}]
        self.rendered = self.tokenizer.chat_text(self.messages, add_generation_prompt=False)
        # the stream never runs its last token through the model
        self.pending = reply.ids[-1:]
        self.in_sync = ended


def _read_line() -> str | None:
    """The next line typed, or None at Ctrl-D / Ctrl-C."""
    try:
        return input("> ")
    except (EOFError, KeyboardInterrupt):
        print()
        return None


def run(args: argparse.Namespace) -> int:
    model, tokenizer = load_model(args)
    try:
        import readline  # noqa: F401  line editing and history for input(), where available
    except ImportError:
        pass
    conversation = Conversation(model, tokenizer, args.system)
    stop_ids = set(tokenizer.eos_ids) | set(model.config.eos_token_ids)
    seed = pick_seed(args)
    if not args.quiet:
        print(HELP, file=sys.stderr, flush=True)
    turn = 0
    while (line := _read_line()) is not None:
        user = line.strip()
        if user in ("/exit", "/quit"):
            break
        if user == "/reset":
            conversation.reset()
            print("(conversation reset)", file=sys.stderr, flush=True)
            continue
        if not user:
            continue
        try:
            prompt = conversation.prompt_for(user)
            reply = stream_reply(model, tokenizer, prompt, args, seed + turn, stop_ids,
                                 conversation.cache, sys.stdout)
        except ContextLengthError:
            print(f"minibitnet: the conversation no longer fits the context of "
                  f"{model.config.max_position_embeddings} tokens; /reset to start over",
                  file=sys.stderr, flush=True)
            conversation.in_sync = False
            continue
        sys.stdout.write("\n")
        sys.stdout.flush()
        turn += 1
        if reply.ids:
            conversation.add_turn(user, reply, stop_ids)
        else:  # Ctrl-C before the first token: the cache may or may not hold the prompt
            conversation.in_sync = False
        if reply.stopped_by == "interrupted":
            print("(reply interrupted)", file=sys.stderr, flush=True)
        if reply.stopped_by == "context":
            print("minibitnet: the reply reached the context length; /reset to start over",
                  file=sys.stderr, flush=True)
        if not args.quiet:
            print(summary(len(prompt), reply, seed + turn - 1), file=sys.stderr, flush=True)
    return 0
