"""Jinja's sandbox with a budget: every way a template makes a value or a loop is counted.

:class:`BudgetedSandbox` is Jinja's ImmutableSandboxedEnvironment (what transformers renders
chat templates with) with these hooks, each charging the
:class:`~.template_budget.TemplateBudget` of the rendering under way:

- the binary operators ``+ * ** %`` (``intercepted_binops``) and every call are sized before
  they run (:mod:`.template_sizes`); an int argument larger than the output budget is refused
- every filter is wrapped the same way; ``join`` and ``tojson`` are sized item by item
- ``~``, slices and comparisons, which Jinja compiles to bare Python, are compiled to calls of
  the environment instead (:class:`BudgetedCodeGenerator`)
- each ``{{ value }}`` is sized before it is printed (``finalize``), and joined output
  (macros, ``{% set %}`` blocks) before it is joined (``concat``)
- :func:`render_within` counts the lines the template's compiled code runs with a
  ``sys.settrace`` hook that looks only at the template's own frames, and renders piece by
  piece (``Template.generate``), counting the output as it comes

Jinja compiles a template from a string into Python code named ``<template>``; those frames are
the template's steps. Everything else (Jinja's runtime, the filters) runs untraced, bounded by
the sizes its inputs were checked against.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sized
from types import FrameType
from typing import Any

import jinja2
import jinja2.compiler
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .template_budget import TemplateBudget, current_budget, in_force
from .template_sizes import (
    bound_str_method,
    check_binop,
    check_filter,
    check_int_arguments,
    check_lipsum,
    check_str_method,
    join_size,
    result_size,
)

TEMPLATE_FILENAME = "<template>"  # what Jinja names the code compiled from a string


# ---- filters ----

def _budgeted_join(join: Callable[..., str]) -> Callable[..., str]:
    """Jinja's ``join`` filter, its items read into a list and the joined size checked first."""
    @functools.wraps(join)
    def join_within_budget(eval_ctx: Any, value: Iterable[Any], d: str = "",
                           attribute: str | int | None = None) -> str:
        budget = current_budget()
        items = list(value)
        budget.charge_work(len(items))
        budget.check_size(join_size(d, items, budget))
        return join(eval_ctx, items, d, attribute)
    return join_within_budget


def _budgeted_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with its int arguments and input size checked first, its result charged."""
    # the Jinja-supplied first argument (context, eval context, environment) is not the value
    passes_context = getattr(function, "jinja_pass_arg", None) is not None

    @functools.wraps(function)  # keeps jinja_pass_arg, so Jinja still passes the context
    def filter_within_budget(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        own = args[1:] if passes_context else args
        check_int_arguments([*own, *kwargs.values()], budget)
        if own and isinstance(own[0], Sized):
            budget.charge_work(len(own[0]))  # the filter reads its input at least once
        check_filter(name, own, kwargs, budget)
        result = function(*args, **kwargs)
        budget.charge_work(result_size(result))
        return result
    return filter_within_budget


def tojson_within_budget(value: Any, ensure_ascii: bool = False, indent: int | None = None,
                         separators: tuple[str, str] | None = None,
                         sort_keys: bool = False) -> str:
    """transformers' ``tojson`` (plain json.dumps), built piece by piece and stopped once over
    the output budget: indentation can make it far longer than the value's own text."""
    budget = current_budget()
    encoder = json.JSONEncoder(ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                               sort_keys=sort_keys)
    pieces = []
    size = 0
    for piece in encoder.iterencode(value):  # pure Python with _one_shot False: checked as it goes
        size += len(piece)
        budget.check_limit(size)
        budget.charge_work(len(piece))
        pieces.append(piece)
    return "".join(pieces)


# ---- the compiled code: `~`, slices and comparisons go through the environment ----

class BudgetedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the three operations it compiles to bare Python routed
    through :class:`BudgetedSandbox`: ``a ~ b`` (joined text), ``s[i:j]`` (a copy), and
    comparisons (``in`` and ``==`` scan their operands)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if isinstance(node.arg, nodes.Slice):
            self.write("environment.charge_scan(")
            self.visit(node.node, frame)
            self.write(")[")
            self.visit(node.arg, frame)
            self.write("]")
        else:
            super().visit_Getitem(node, frame)

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("(environment.charge_scan(")
        self.visit(node.expr, frame)
        self.write(")")
        for op in node.ops:
            self.visit(op, frame)
        self.write(")")

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        self.write(f" {jinja2.compiler.operators[node.op]} environment.charge_scan(")
        self.visit(node.expr, frame)
        self.write(")")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every value-making operation checked against the budget
    of the rendering under way (:func:`render_within`)."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self.finalize_value, **options)
        for name, function in list(self.filters.items()):
            self.filters[name] = _budgeted_filter(name, function)
        self.filters["join"] = _budgeted_join(jinja2.filters.do_join)
        self.filters["tojson"] = tojson_within_budget

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        check_binop(operator, left, right, current_budget())
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,  # noqa: N805
             *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        check_int_arguments([*args, *kwargs.values()], budget)
        method = bound_str_method(__obj)
        if method is not None and method[1] == "join" and len(args) == 1:
            # sized item by item, so a generator is read once, here, and joined as a list
            args = (list(args[0]),)
            budget.charge_work(len(args[0]))
            budget.check_size(join_size(method[0], args[0], budget))
        elif method is not None:
            check_str_method(method[0], method[1], args, kwargs, budget)
        elif __obj is jinja2.utils.generate_lorem_ipsum:
            check_lipsum(args, kwargs, budget)
        result = super().call(__context, __obj, *args, **kwargs)
        budget.charge_work(result_size(result))
        return result

    def concat(self, parts: Iterable[str]) -> str:
        """Joins a macro's or a block's printed pieces (Jinja's ``"".join``), within budget."""
        pieces = list(parts)
        current_budget().check_size(sum(len(piece) for piece in pieces))
        return "".join(pieces)

    def concat_values(self, values: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: the values printed and joined, sized before ``str`` runs."""
        budget = current_budget()
        budget.check_size(sum(budget.printed_size(value) for value in values))
        return "".join(str(value) for value in values)

    def charge_scan(self, value: Any) -> Any:
        """``value`` unchanged, its length charged: it is about to be copied or compared."""
        current_budget().charge_work(result_size(value))
        return value

    def finalize_value(self, value: Any) -> Any:
        """Each ``{{ value }}`` is sized before Jinja prints it."""
        budget = current_budget()
        budget.check_limit(budget.printed_size(value))  # then counted by the output budget
        return value


# ---- the step hook and the rendering loop ----

def _step_counter(budget: TemplateBudget,
                  previous: Callable[..., Any] | None) -> Callable[..., Any]:
    """A ``sys.settrace`` function that counts the lines of template frames and hands every
    other frame to the tracer that was there before (a debugger or coverage keeps working)."""
    def count_lines(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            budget.charge_steps(1)
        elif event == "return":
            budget.leave_frame()
        return count_lines

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == TEMPLATE_FILENAME:
            budget.enter_frame()
            return count_lines
        return previous(frame, event, arg) if previous is not None else None
    return trace


def render_within(template: jinja2.Template, budget: TemplateBudget,
                  variables: Mapping[str, Any]) -> str:
    """``template`` rendered with ``variables``, piece by piece, within ``budget``.

    raises TemplateBudgetError (with the reason) when a budget is blown; whatever else the
    template raises passes through, KeyboardInterrupt included.
    """
    previous = sys.gettrace()
    pieces: list[str] = []
    with in_force(budget):
        sys.settrace(_step_counter(budget, previous))
        try:
            for piece in template.generate(**variables):
                budget.charge_output(len(piece))
                pieces.append(piece)
        finally:
            sys.settrace(previous)
    budget.check_open()  # a refusal that something inside swallowed still counts
    return "".join(pieces)
