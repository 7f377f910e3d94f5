"""Budgets for running a chat template: the template is a program read from an untrusted file.

Jinja's sandbox keeps a template away from Python's internals, but not from the memory and time
of the machine: ``{{ "x" * 5000000000 }}`` asks for 5 GB, ``{{ 10 ** (10 ** 9) }}`` and three
nested ``range(100000)`` loops never end. A :class:`TemplateBudget` holds the limits of one rendering and
what it has used; :mod:`.template_sandbox` counts every way of making a large value or a long
loop against it:

- steps:  lines of the template's compiled code run (a trace hook that counts only the template's
          own frames), plus the items looked at when sizing a value; bounds loops and recursion
- output: characters of the rendered text, and of any single value an operation may make
- work:   characters copied or scanned by operations (``+ * % ~``, slices, comparisons, filters,
          method calls); bounds a loop that copies a large value each time round
- depth:  macros calling macros; ints: bits of any integer made by ``+ * **``

Every budget is a count, never a clock, so a template is refused the same way on every machine.
Each operation that could make a large value is checked *before* it runs, from its operands'
sizes (:mod:`.template_sizes`), then its result is charged; Python-level work between those
points is counted by the step hook.
A blown budget raises :class:`TemplateBudgetError`; the caller turns it into one line naming the
file. KeyboardInterrupt is never caught here.

Left out: a wall-clock limit (machine dependent) and a memory probe (the sizes above bound memory
to a small multiple of the output budget).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

import jinja2
from jinja2.utils import Namespace

# A real template (2B4T, LLaMA-3, Qwen, Mistral, Gemma) runs tens of lines per message and
# prints the messages plus a few dozen characters each; tests/tokenizer/test_chat_template_budget.py
# checks that each renders a conversation in well under 1% of every budget below.
TEMPLATE_STEPS = 1_000_000  # template lines run, whatever the conversation: traced, 0.2 to 5 s
TEMPLATE_STEPS_PER_MESSAGE = 1_000  # more for each message: templates loop over them
TEMPLATE_OUTPUT_CHARS = 1_000_000  # rendered characters, whatever the conversation
TEMPLATE_OUTPUT_CHARS_PER_INPUT_CHAR = 16  # more for each character of the messages
TEMPLATE_WORK_PER_OUTPUT_CHAR = 16  # characters copied or scanned, per character of output budget
TEMPLATE_CALL_DEPTH = 100  # macros inside macros; real templates recurse a few levels at most
# 2 ** 65536 is far beyond any number a template prints (Python refuses to print an int of more
# than 4300 digits, about 14,000 bits), and arithmetic at that size takes microseconds
TEMPLATE_INT_BITS = 65_536

# sizes of values whose text is short and fixed, used when estimating how long a value prints
_SCALAR_CHARS = 24  # a float, bool or None
_OBJECT_CHARS = 100  # a macro, loop, cycler or other object: its repr is a short fixed line


class TemplateBudgetError(Exception):
    """A template went over a budget; ``str()`` is the one-line reason."""


class TemplateBudget:
    """Limits for one rendering and what it has used of each.

    steps, output, work, depth: limits, as in the module docstring; ``*_used`` count up to them
    int_bits:                   the most bits an integer made by ``+ * **`` may have
    exceeded:                   None, or the reason once a budget is blown (it stays blown)
    """

    def __init__(self, steps: int = TEMPLATE_STEPS, output: int = TEMPLATE_OUTPUT_CHARS,
                 work: int | None = None, depth: int = TEMPLATE_CALL_DEPTH,
                 int_bits: int = TEMPLATE_INT_BITS) -> None:
        self.steps = steps
        self.output = output
        self.work = work if work is not None else TEMPLATE_WORK_PER_OUTPUT_CHAR * output
        self.depth = depth
        self.int_bits = int_bits
        self.steps_used = 0
        self.output_used = 0
        self.work_used = 0
        self.depth_used = 0  # the deepest the template frames went
        self.exceeded: str | None = None  # the reason, once any budget is blown
        self._depth_now = 0
        self._sizes: dict[int, tuple[object, int]] = {}  # id -> (value kept alive, size)

    @classmethod
    def for_conversation(cls, messages: Iterable[Mapping[str, Any]],
                         variables: Mapping[str, Any]) -> TemplateBudget:
        """The default budget, grown with the number and length of the messages."""
        count = 0
        chars = sum(len(v) for v in variables.values() if isinstance(v, str))
        for message in messages:
            count += 1
            chars += sum(len(v) for v in message.values() if isinstance(v, str))
        return cls(steps=TEMPLATE_STEPS + TEMPLATE_STEPS_PER_MESSAGE * count,
                   output=TEMPLATE_OUTPUT_CHARS + TEMPLATE_OUTPUT_CHARS_PER_INPUT_CHAR * chars)

    def refuse(self, reason: str) -> None:
        """Latch ``reason`` and raise: every later check raises again, so nothing can go on."""
        if self.exceeded is None:
            self.exceeded = reason
        raise TemplateBudgetError(self.exceeded)

    def check_open(self) -> None:
        if self.exceeded is not None:
            raise TemplateBudgetError(self.exceeded)

    def charge_steps(self, count: int) -> None:
        self.steps_used += count
        if self.steps_used > self.steps:
            self.refuse(f"ran more than {self.steps} steps (the step budget)")

    def charge_work(self, chars: int) -> None:
        self.check_open()
        self.work_used += chars
        if self.work_used > self.work:
            self.refuse(f"copied or scanned more than {self.work} characters (the work budget)")

    def check_limit(self, chars: int) -> None:
        """Refuse a value of ``chars`` characters (or items): no value may outgrow the output."""
        if chars > self.output:
            self.refuse(f"would make a value of {chars} characters, more than the output "
                        f"budget of {self.output}")

    def check_size(self, chars: int) -> None:
        """Refuse a value of ``chars`` characters before it is made; charge its making."""
        self.check_limit(chars)
        self.charge_work(chars)

    def check_int(self, bits: int) -> None:
        self.check_open()
        if bits > self.int_bits:
            self.refuse(f"would make an integer of about {bits} bits, more than the integer "
                        f"budget of {self.int_bits}")

    def charge_output(self, chars: int) -> None:
        self.output_used += chars
        if self.output_used > self.output:
            self.refuse(f"printed more than {self.output} characters (the output budget)")

    def enter_frame(self) -> None:
        self._depth_now += 1
        self.depth_used = max(self.depth_used, self._depth_now)
        if self._depth_now > self.depth:
            self.refuse(f"called macros more than {self.depth} deep (the call-depth budget)")

    def leave_frame(self) -> None:
        self._depth_now -= 1

    def printed_size(self, value: object) -> int:
        """About how many characters ``str(value)`` has, found without making it.

        Stops once past the output budget (returning more than it), so the walk is bounded;
        each item looked at is a step. Containers are remembered by id: in the sandbox they
        cannot change, and a list built of copies of one list is sized once.
        """
        total = 0
        pending: list[object] = [value]
        while pending and total <= self.output:
            item = pending.pop()
            self.charge_steps(1)
            if isinstance(item, str):
                total += len(item)
            elif isinstance(item, bool) or item is None or isinstance(item, float):
                total += _SCALAR_CHARS
            elif isinstance(item, int):
                total += item.bit_length() // 3 + 2  # ~ digits: log10(2) ~ 0.30
            elif isinstance(item, Namespace):
                pending.append(object.__getattribute__(item, "_Namespace__attrs"))
            elif isinstance(item, (range, jinja2.Undefined)) or not isinstance(item, Sized):
                total += _OBJECT_CHARS
            elif id(item) in self._sizes:
                total += self._sizes[id(item)][1]
            else:
                total += self._container_size(item)
        return total

    def _container_size(self, container: Sized) -> int:
        entries: Iterable[object]
        if isinstance(container, Mapping):
            entries = [part for pair in container.items() for part in pair]
        elif isinstance(container, Iterable):
            entries = container
        else:
            return _OBJECT_CHARS
        size = 2  # brackets
        for entry in entries:
            size += 2 + self.printed_size(entry)  # separator, then the entry
            if size > self.output:
                break
        self._sizes[id(container)] = (container, size)
        return size


# ---- the budget of the rendering under way ----

_current: contextvars.ContextVar[TemplateBudget | None] = contextvars.ContextVar(
    "template_budget", default=None)


@contextlib.contextmanager
def in_force(budget: TemplateBudget) -> Iterator[None]:
    """Make ``budget`` the one every check of the sandbox charges, for the rendering."""
    token = _current.set(budget)
    try:
        yield
    finally:
        _current.reset(token)


def current_budget() -> TemplateBudget:
    """The budget of the rendering under way.

    subtle: Jinja tries filters and output on constant arguments while compiling, to fold them;
    there is no budget then, and the RuntimeError makes Jinja leave them for the rendering.
    """
    budget = _current.get()
    if budget is None:
        raise RuntimeError("a budgeted template runs only inside render_within")
    return budget
