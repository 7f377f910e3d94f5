"""How large an operation's result will be, worked out from its operands before it runs.

A chat template can make a huge value from small ones in one step: ``"x" * 10 ** 9``,
``"%0999999999d" % 1``, ``s.replace("x", s)``, ``"-".join(...)``, ``text|indent(width)``. Each
function here bounds the result's size from the operands' sizes (never by making it) and refuses
it through the :class:`~.template_budget.TemplateBudget` when it would pass the output budget,
or charges it as work when it would not. ``b ** e`` is sized in bits: about ``e * bits(b)``.

Worked example: ``"%5s|%s" % ("ab", "cde")`` is bounded by the pattern (7) plus, for each of the
two conversions, the longest argument (3) and its width (5 and 0): 7 + 3 + 5 + 3 = 18 >= 9, the
length of ``"   ab|cde"``. Bounds are loose on purpose: exact only matters near the budget, and
the budget is a hundred times what a real template needs.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from .template_budget import TemplateBudget

# printf-style conversions: %(key)flags width.precision length type
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")
_MAX_WIDTH_DIGITS = 9  # a width or precision of more digits is refused before int() reads it


def _width_chars(digits: str, budget: TemplateBudget) -> int:
    if len(digits) > _MAX_WIDTH_DIGITS:
        budget.refuse(f"asks for a field width of {len(digits)} digits, more than the "
                      f"output budget of {budget.output} characters")
    return int(digits)


def _args_size(args: object, budget: TemplateBudget) -> int:
    """The largest printed size among a format's arguments (one value, a tuple or a dict)."""
    if isinstance(args, tuple):
        return max((budget.printed_size(a) for a in args), default=0)
    if isinstance(args, Mapping):
        return max((budget.printed_size(a) for a in args.values()), default=0)
    return budget.printed_size(args)


def percent_format_size(pattern: str, args: object, budget: TemplateBudget) -> int:
    """Characters of ``pattern % args`` at most: each conversion prints the largest argument
    padded to its width and precision."""
    largest = _args_size(args, budget)
    # a "*" width or precision is read from the arguments: count the largest int among them
    star = max((abs(a) for a in (args if isinstance(args, tuple) else (args,)) if is_int(a)),
               default=0)
    size = len(pattern)
    for width, precision, _ in _PERCENT_SPEC.findall(pattern):
        size += largest
        for digits in (width, precision):
            if digits == "*":
                size += star
            elif digits:
                size += _width_chars(digits, budget)
    return size


def brace_format_size(pattern: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                      budget: TemplateBudget) -> int:
    """Characters of ``pattern.format(*args, **kwargs)`` at most, as for ``%``."""
    largest = max(_args_size(args, budget), _args_size(kwargs, budget))
    size = len(pattern)
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError:  # a malformed pattern: str.format raises the same error itself
        return size
    for _, field, spec, _ in fields:
        if field is not None:
            size += largest + sum(_width_chars(d, budget) for d in _DIGITS.findall(spec or ""))
    return size


def replace_size(text: str, old: str, new: str) -> int:
    """Characters of ``text.replace(old, new)`` at most."""
    if not old:
        return len(text) + (len(text) + 1) * len(new)
    return len(text) + (len(text) // len(old)) * max(0, len(new) - len(old))


def join_size(separator: object, items: list[Any], budget: TemplateBudget) -> int:
    """Characters of ``separator`` joined between the printed ``items``."""
    return (budget.printed_size(separator) * max(0, len(items) - 1)
            + sum(budget.printed_size(item) for item in items))


# ---- binary operators, checked before they run ----

def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_binop(operator: str, left: Any, right: Any, budget: TemplateBudget) -> None:
    """Refuse ``left <operator> right`` when its result would be over budget."""
    budget.check_open()
    sequences = (str, list, tuple)
    if is_int(left) and is_int(right):
        if operator == "*":
            budget.check_int(left.bit_length() + right.bit_length())
        elif operator == "**" and right > 0 and abs(left) > 1:
            budget.check_int(left.bit_length() * right)
        elif operator == "+":
            budget.check_int(max(left.bit_length(), right.bit_length()) + 1)
    elif operator == "*" and isinstance(left, sequences) and is_int(right):
        budget.check_size(len(left) * max(right, 0))
    elif operator == "*" and isinstance(right, sequences) and is_int(left):
        budget.check_size(len(right) * max(left, 0))
    elif operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
        budget.check_size(len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        budget.check_size(percent_format_size(left, right, budget))


# ---- calls and filters ----

def check_int_arguments(values: Iterable[object], budget: TemplateBudget) -> None:
    """An int argument is a width, a count or an index: more than the output budget is refused
    (``"x".center(10 ** 10)``, ``batch(10 ** 9, "x")``)."""
    for value in values:
        if isinstance(value, int) and is_int(value) and abs(value) > budget.output:
            budget.refuse(f"passes {value} to a call, more than the output budget of "
                          f"{budget.output} characters")


def bound_str_method(function: Any) -> tuple[str, str] | None:
    """(text, name) when ``function`` is a method of a str (the sandbox wraps ``format``)."""
    method = getattr(function, "__wrapped__", function)
    owner = getattr(method, "__self__", None)
    if isinstance(owner, str):
        return owner, getattr(method, "__name__", "")
    return None


def check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                     budget: TemplateBudget) -> None:
    """Refuse the str methods whose result can be far larger than their inputs."""
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(
            args[1], str):
        budget.check_size(replace_size(text, args[0], args[1]))
    elif name in ("format", "format_map"):
        fields = args[0] if name == "format_map" and args else kwargs
        budget.check_size(brace_format_size(text, args if name == "format" else (),
                                            fields, budget))
    elif name == "expandtabs":
        tab = args[0] if args and is_int(args[0]) else kwargs.get("tabsize", 8)
        budget.check_size(len(text) * max(1, tab if is_int(tab) else 8))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((budget.printed_size(v) for v in args[0].values()), default=1)
        budget.check_size(len(text) * max(1, longest))
    else:
        budget.charge_work(len(text))


def check_lipsum(args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 budget: TemplateBudget) -> None:
    """``lipsum(n, html, min, max)``: n paragraphs of up to max words of up to 12 characters."""
    named = dict(zip(("n", "html", "min", "max"), args)) | dict(kwargs)
    paragraphs, words = named.get("n", 5), named.get("max", 100)
    if is_int(paragraphs) and is_int(words):
        budget.check_size(max(0, paragraphs) * max(0, words) * 12)


def result_size(value: object) -> int:
    """What a result is charged as work: its length (str, list, ...), else 1."""
    return len(value) if isinstance(value, (str, list, tuple, dict)) else 1


def check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                        budget: TemplateBudget) -> None:
    """Pre-checks for the filters whose output can dwarf their input; ``args[0]`` is the value."""
    value = args[0] if args else ""
    size = budget.printed_size(value)
    if name == "replace" and len(args) >= 3:
        if all(isinstance(a, str) for a in args[:3]):
            budget.check_size(replace_size(args[0], args[1], args[2]))
        else:
            budget.check_size(size * max(1, budget.printed_size(args[2])))
    elif name == "indent":
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        width_chars = width if is_int(width) else budget.printed_size(width)
        lines = str(value).count("\n") + 1 if isinstance(value, str) else size
        budget.check_size(size + lines * max(0, width_chars))
    elif name == "wordwrap":
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
        budget.check_size(size * (1 + budget.printed_size(wrap)))
    elif name == "format":
        budget.check_size(percent_format_size(str(value), kwargs or args[1:], budget)
                          if isinstance(value, str) else size)
    elif name in ("batch", "slice"):
        count = args[1] if len(args) > 1 and is_int(args[1]) else 1
        budget.check_size(size + count)
    else:  # the other filters print their input at most once (upper, trim, string, ...)
        budget.check_limit(size)
