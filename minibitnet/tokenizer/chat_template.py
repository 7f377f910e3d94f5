"""Chat templates: a list of messages -> the prompt text a chat model was trained on.

Models ship their template as Jinja source in tokenizer_config.json (``chat_template``), and
transformers renders it with a sandboxed Jinja environment (``apply_chat_template``); this module
renders it the same way (same environment options, same helper functions), so the text, and so the
token ids, are the ones the model expects. jinja2 is a dependency because templates are programs
in that language; a reimplementation would agree only on the templates it was tested with.

BitNet b1.58 2B4T's template (:data:`BITNET_2B4T_TEMPLATE`, also used when a model folder has no
template) gives, for a system and a user message::

    System: Be brief.<|eot_id|>User: Hi!<|eot_id|>Assistant:\x20

It writes no ``<|begin_of_text|>``: the tokenizer's post-processor puts BOS before the text, so
the prompt's ids start with it (:meth:`minibitnet.tokenizer.Tokenizer.chat_prompt`).

A template is a program from a file that may not be trusted: it runs in Jinja's sandbox with a
budget of steps, output and work (:mod:`minibitnet.tokenizer.template_budget`), and a template
over budget is refused with one line naming the file and the budget.

Left out: the ``{% generation %}`` tag of transformers (it marks assistant text for training
masks), tools and documents (retrieval-augmented prompts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext

from ..errors import ArgumentError, TokenizerError
from .template_budget import TemplateBudget, TemplateBudgetError
from .template_sandbox import BudgetedSandbox, render_within

# The chat_template of microsoft/bitnet-b1.58-2B-4T's tokenizer_config.json, verbatim: role
# capitalised, ": ", the trimmed content, <|eot_id|>; no bos_token (the tokenizer adds BOS).
BITNET_2B4T_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = message['role'] | capitalize + ': '+ message['content'] | trim"
    " + '<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@lru_cache(maxsize=8)
def _compile(source: str) -> jinja2.Template:
    # transformers' environment, with every operation counted (tojson is the budget's own:
    # transformers' json.dumps, stopped once over budget)
    environment = BudgetedSandbox(trim_blocks=True, lstrip_blocks=True,
                                  extensions=[jinja2.ext.loopcontrols])
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(source)


def check_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as plain dicts; ArgumentError unless each has a str ``role`` and ``content``."""
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ArgumentError(f"messages[{index}] is {type(message).__name__}, expected a dict "
                                "with 'role' and 'content'")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise ArgumentError(f"messages[{index}]['{key}'] is "
                                    f"{type(message.get(key)).__name__}, expected str")
        checked.append(dict(message))
    return checked


def render_chat(source: str, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool,
                special_tokens: Mapping[str, str], origin: str,
                budget: TemplateBudget | None = None) -> str:
    """The template ``source`` applied to ``messages``.

    special_tokens: template variables such as ``bos_token`` and ``eos_token``
    origin:         the file the template came from, named in errors
    budget:         the limits of this rendering (and what it used, afterwards); None: the
                    default for this conversation (TemplateBudget.for_conversation)
    """
    checked = check_messages(messages)
    if budget is None:
        budget = TemplateBudget.for_conversation(checked, special_tokens)
    variables = {**special_tokens, "messages": checked,
                 "add_generation_prompt": add_generation_prompt}
    try:
        return render_within(_compile(source), budget, variables)
    except TemplateBudgetError as exc:
        raise TokenizerError(f"{origin}: chat_template {exc}; expected a template that renders "
                             "a conversation within its budgets") from None
    # the template is a program read from a file: whatever it raises (1/0, "a" + 1, a range
    # over the sandbox's limit) is the file's fault, reported as such
    except Exception as exc:
        message = str(exc).replace("\n", " ")
        raise TokenizerError(f"{origin}: chat_template failed: {type(exc).__name__}: "
                             f"{message}") from None
