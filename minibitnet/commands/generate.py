"""``minibitnet generate``: continue a prompt, streaming the new text to stdout.

Only the continuation goes to stdout, as it is produced (never half a UTF-8 character), so the
output can be piped; loading messages and the speed summary go to stderr. The prompt gets the
tokenizer's BOS in front, as Hugging Face does for LLaMA-3 text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ArgumentError
from ..files import read_text_argument, read_text_stream
from .running import (
    add_model_flags,
    add_sampling_flags,
    load_model,
    pick_seed,
    stream_reply,
    summary,
)

# A prompt must fit the context: 128k tokens, the longest of the supported models, is ~0.5 MB
# of text. 16 MB allows any prompt that could fit and refuses /dev/zero before reading it.
MAX_PROMPT_FILE_BYTES = 16 * 1024 * 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "generate",
        help="continue a prompt, streaming the text to stdout",
        description="Continue a prompt with a BitNet b1.58 model, printing the new text to "
                    "stdout as it is generated. With --seed the same command prints the same "
                    "text. Loading messages and a speed summary go to stderr (see --quiet).",
        epilog="example: minibitnet generate -m microsoft/bitnet-b1.58-2B-4T "
               "-p 'The capital of France is' -n 20 --temp 0",
    )
    add_model_flags(parser)
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("-p", "--prompt", metavar="PROMPT",
                        help="the text to continue (default: standard input when it is not a "
                             "terminal, else an empty prompt)")
    prompt.add_argument("-f", "--file", metavar="FILE", type=Path,
                        help="read the prompt from FILE (UTF-8)")
    add_sampling_flags(parser, max_tokens=128)
    parser.set_defaults(run=run)


def read_prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None:
        return str(args.prompt)
    if args.file is not None:
        return read_text_argument(args.file, MAX_PROMPT_FILE_BYTES, "-f/--file")
    if not sys.stdin.isatty():
        # the same budget as -f: '< /dev/zero' is refused, never read into memory
        return read_text_stream(sys.stdin.buffer, MAX_PROMPT_FILE_BYTES, "standard input",
                                "a UTF-8 prompt")
    return ""


def run(args: argparse.Namespace) -> int:
    text = read_prompt(args)
    model, tokenizer = load_model(args)
    prompt = tokenizer.encode(text, bos=True)
    if not prompt:
        raise ArgumentError("the prompt is empty and the tokenizer has no BOS token; "
                            "give one with -p or -f")
    seed = pick_seed(args)
    stop_ids = set(model.config.eos_token_ids) | set(tokenizer.eos_ids)
    reply = stream_reply(model, tokenizer, prompt, args, seed, stop_ids, model.new_cache(),
                         sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if reply.stopped_by == "interrupted":
        print("minibitnet: interrupted", file=sys.stderr)
    if reply.stopped_by == "context":
        print(f"minibitnet: stopped at the context length of "
              f"{model.config.max_position_embeddings} tokens", file=sys.stderr)
    if not args.quiet:
        print(summary(len(prompt), reply, seed), file=sys.stderr)
    return 130 if reply.stopped_by == "interrupted" else 0
