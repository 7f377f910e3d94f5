"""Griffe extension for the API reference: keep the docstrings' shape blocks as written.

The package's docstrings list arguments and results one per line, aligned, with shapes and
dtypes (``x_q:  (T, in) int8``). Markdown would join those lines into one paragraph; this turns
each such block into a plain-text code block so that the columns survive.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# "w:", "x_q:", "returns:", "cos, sin:" at the start of a line: lower-case names, then a colon
FIELD = re.compile(r"^[a-z_][a-z0-9_]*(, [a-z_][a-z0-9_]*)*:(\s|$)")
# Sphinx roles (:func:`name`, :class:`~pkg.Name`) read as plain code in Markdown
ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|obj):`~?([^`]+)`")


def fence_shape_blocks(text: str) -> str:
    """Wrap every run of field lines (and their indented continuations) in a text fence."""
    lines = text.splitlines()
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            if out and out[-1].strip():
                out.append("")
            out.extend(["```text", *block, "```", ""])
            block.clear()

    for line in lines:
        # a block starts after a blank line (a field list, not a sentence that wraps onto a
        # line beginning with "word:"), and goes on with more fields or indented lines
        starts = FIELD.match(line) and (not out or out[-1] == "")
        continues = block and (FIELD.match(line) or (line.startswith((" ", "\t")) and line.strip()))
        if starts or continues:
            block.append(line)
        else:
            flush()
            if not (line == "" and out and out[-1] == ""):
                out.append(line)
    flush()
    return "\n".join(out).rstrip() + "\n"


class ShapeBlocks(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(lambda match: f"`{match.group(1)}`", obj.docstring.value)
            obj.docstring.value = fence_shape_blocks(text)
