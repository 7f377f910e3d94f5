"""A chat template is a program from an untrusted file: it runs within counted budgets.

Each hostile template is refused with one line naming tokenizer_config.json's chat_template and
the budget, which the budget's own counters confirm (no clocks); real templates render exactly
as Jinja's plain sandbox renders them, using well under 1% of every budget.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from minibitnet.errors import TokenizerError
from minibitnet.tokenizer import chat_template
from minibitnet.tokenizer.chat_template import BITNET_2B4T_TEMPLATE, render_chat
from minibitnet.tokenizer.template_budget import (
    TEMPLATE_CALL_DEPTH,
    TEMPLATE_INT_BITS,
    TemplateBudget,
)

ORIGIN = "tokenizer_config.json"
HELLO = [{"role": "user", "content": "hi"}]

# a hang detector only: every refusal below comes from a count, long before this
pytestmark = pytest.mark.timeout(60)

LLAMA_3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN_2_5 = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)
# Qwen3's way of finding the last user query and stripping <think>: slices, methods, namespace
QWEN_3_THINKING = (
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
    "{%- for message in messages[::-1] %}\n"
    "    {%- set index = (messages|length - 1) - loop.index0 %}\n"
    "    {%- if ns.multi_step_tool and message.role == \"user\" and not "
    "(message.content.startswith('<tool_response>') and "
    "message.content.endswith('</tool_response>')) %}\n"
    "        {%- set ns.multi_step_tool = false %}\n"
    "        {%- set ns.last_query_index = index %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- for message in messages %}\n"
    "    {%- set content = message.content %}\n"
    "    {%- if message.role == \"assistant\" and '</think>' in content %}\n"
    "        {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n"
    "    {%- endif %}\n"
    "    {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n"
    "{{- ns.last_query_index|string|center(3) }}{{ messages[0]|tojson(indent=2) }}"
    "{{ '%s-%d' % ('x', 1) }}{{ '{}|{:>4}'.format('a', 7) }}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}"
    "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
REAL_TEMPLATES = {"2B4T": BITNET_2B4T_TEMPLATE, "LLaMA-3": LLAMA_3, "Qwen2.5": QWEN_2_5,
                  "Qwen3": QWEN_3_THINKING, "Mistral": MISTRAL, "Gemma": GEMMA}
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>"}


def conversation(turns: int) -> list[dict[str, str]]:
    """User and assistant in turn, as Mistral and Gemma require; the replies think first."""
    messages = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: what is {turn} + 1? " * 3})
        messages.append({"role": "assistant",
                         "content": f"<think>\nadd one\n</think>\n\nIt is {turn + 1}. " * 2})
    return messages


def plain_render(source: str, messages: list[dict[str, str]]) -> str:
    """The oracle: transformers' environment, Jinja's plain sandbox without any budget."""
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent)
    environment.globals["raise_exception"] = chat_template._raise_exception
    return environment.from_string(source).render(messages=messages, add_generation_prompt=True,
                                                  **SPECIALS)


@pytest.mark.parametrize("name", REAL_TEMPLATES)
def test_real_templates_render_as_before_within_one_percent(name: str) -> None:
    messages = conversation(20)
    budget = TemplateBudget.for_conversation(messages, SPECIALS)
    text = render_chat(REAL_TEMPLATES[name], messages, True, SPECIALS, ORIGIN, budget=budget)
    assert text == plain_render(REAL_TEMPLATES[name], messages)
    assert budget.exceeded is None
    assert budget.steps_used < budget.steps / 100
    assert budget.output_used == len(text) < budget.output / 100
    assert budget.work_used < budget.work / 100
    assert budget.depth_used < TEMPLATE_CALL_DEPTH / 10


def refusal(source: str, budget: TemplateBudget | None = None) -> str:
    """The one line a hostile template is refused with."""
    budget = budget if budget is not None else TemplateBudget.for_conversation(HELLO, {})
    with pytest.raises(TokenizerError) as info:
        render_chat(source, HELLO, True, {}, ORIGIN, budget=budget)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{ORIGIN}: chat_template ")
    assert budget.exceeded is not None and budget.exceeded in message
    return message


# template, which budget refuses it (the word in the message)
VALUE_TOO_LARGE = {
    "string repetition": '{{ "x" * 5000000000 }}',
    "list repetition": "{{ [1, 2] * 10000000 }}",
    "doubling by +": ('{% set ns = namespace(s="x") %}{% for i in range(100) %}'
                      "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"),
    "doubling by ~": ('{% set ns = namespace(s="x") %}{% for i in range(100) %}'
                      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
    "nested lists printed": ('{% set ns = namespace(a=["x"]) %}{% for i in range(60) %}'
                             '{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ (ns.a ~ "")|length }}'),
    "huge join": '{{ range(100000)|join("x" * 1000000) }}',
    "huge str.join": '{{ ("x" * 1000000).join(range(100000)|map("string")) }}',
    "join of joins": ('{% set ns = namespace(s="ab") %}{% for i in range(40) %}'
                      '{% set ns.s = ns.s.join([ns.s, ns.s]) %}{% endfor %}'),
    "percent width": '{{ "%0999999999d" % 1 }}',
    "percent star width": '{{ "%*d" % (10 ** 10, 1) }}',
    "percent of a large value": '{{ "%s%s%s%s%s%s%s%s%s%s" % (("x" * 500000,) * 10) }}',
    "format width": '{{ "{:>999999999}".format(1) }}',
    "replace": '{% set s = "x" * 100000 %}{{ s.replace("x", s) }}',
    "indent": '{{ ("a\n" * 100000)|indent("x" * 1000) }}',
    "lipsum": "{{ lipsum(1000000) }}",
    "macro output": ('{% set s = "x" * 500000 %}{% macro f() %}{% for i in range(100000) %}'
                     "{{ s }}{% endfor %}{% endmacro %}{{ f()|length }}"),
}


@pytest.mark.parametrize("name", VALUE_TOO_LARGE)
def test_large_values_are_refused_before_they_are_made(name: str) -> None:
    budget = TemplateBudget.for_conversation(HELLO, {})
    message = refusal(VALUE_TOO_LARGE[name], budget)
    assert "output budget" in message
    # refused up front: nothing near the refused size was ever copied
    assert budget.work_used <= budget.work and budget.output_used == 0


def test_huge_power_is_refused_by_its_bits() -> None:
    budget = TemplateBudget()
    assert "integer budget" in refusal("{{ 10 ** (10 ** 9) }}", budget)
    assert str(TEMPLATE_INT_BITS) in budget.exceeded  # type: ignore[operator]
    assert budget.steps_used < 100


@pytest.mark.parametrize("source", ['{{ "x".center(10 ** 10) }}', '{{ "x".ljust(10000000000) }}',
                                    '{{ "x"|center(10000000000) }}',
                                    '{{ [1]|batch(10000000000, "x") }}'])
def test_huge_widths_are_refused(source: str) -> None:
    budget = TemplateBudget()
    assert "passes 10000000000 to a call" in refusal(source, budget)
    assert budget.work_used == 0


SMALL_STEPS = 20_000  # the step budget of the loop tests: the same refusal, sooner


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}"
    "{{ k }}{% endfor %}{% endfor %}{% endfor %}",
    # two calls a level: 2 ** 60 calls, never deeper than 61
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}x{% endmacro %}{{ f(60) }}",
], ids=["two loops", "three loops", "macro doubling"])
def test_long_loops_and_recursion_stop_at_the_step_budget(source: str) -> None:
    budget = TemplateBudget(steps=SMALL_STEPS)
    assert f"ran more than {SMALL_STEPS} steps (the step budget)" in refusal(source, budget)
    assert budget.steps_used == SMALL_STEPS + 1


def test_default_step_budget_stops_nested_loops() -> None:
    budget = TemplateBudget.for_conversation(HELLO, {})
    refusal("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            budget)
    assert budget.steps_used == budget.steps + 1


def test_self_recursion_stops_at_the_depth_budget() -> None:
    budget = TemplateBudget()
    message = refusal("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", budget)
    assert f"more than {TEMPLATE_CALL_DEPTH} deep (the call-depth budget)" in message
    assert budget.depth_used == TEMPLATE_CALL_DEPTH + 1


@pytest.mark.parametrize("source", [
    '{% set s = "x" * 900000 %}{% for i in range(100000) %}{% set t = s ~ i %}{% endfor %}',
    '{% set s = "x" * 900000 %}{% for i in range(100000) %}{% set t = s[1:] %}{% endfor %}',
    '{% set s = "x" * 900000 %}{% for i in range(100000) %}{% if "y" in s %}{% endif %}'
    "{% endfor %}",
    "{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}",
], ids=["concatenate", "slice", "search", "sum"])
def test_repeated_large_copies_stop_at_the_work_budget(source: str) -> None:
    budget = TemplateBudget()
    assert "(the work budget)" in refusal(source, budget)
    # each round costs about a million characters: refused after a few dozen rounds
    assert budget.work < budget.work_used <= budget.work + 1_100_000
    assert budget.steps_used < 10_000


def test_output_budget_counts_the_printed_text() -> None:
    budget = TemplateBudget(output=50_000)
    message = refusal('{% for i in range(1000) %}{{ "x" * 1000 }}{% endfor %}', budget)
    assert "printed more than 50000 characters (the output budget)" in message
    assert 50_000 < budget.output_used <= 51_000


def test_budget_grows_with_the_conversation() -> None:
    long = [{"role": "user", "content": "y" * 3_000_000}]
    text = render_chat(LLAMA_3, long, True, SPECIALS, ORIGIN)
    assert len(text) > 3_000_000
    with pytest.raises(TokenizerError, match="output budget"):
        render_chat("{{ messages[0].content * 100 }}", long, True, SPECIALS, ORIGIN)


def test_refusal_reaches_the_cli_as_one_line(tmp_path: Path) -> None:
    from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

    model = build_model_with_tokenizer(tmp_path / "model")
    config_path = model / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = '{{ "x" * 5000000000 }}'
    config_path.write_text(json.dumps(config))
    result = subprocess.run([sys.executable, "-m", "minibitnet.cli", "chat", "-m", str(model),
                             "--quiet"], input="hello\n", cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("minibitnet: error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "tokenizer_config.json: chat_template would make a value of 5000000000" in (
        result.stderr)
    assert "Traceback" not in result.stderr


def test_ctrl_c_during_rendering_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT in the middle of a long loop: Python's handler raises KeyboardInterrupt
    wherever the loop is (template code, the step hook or a check), and it reaches the caller."""
    def press_ctrl_c(format: str) -> str:
        signal.raise_signal(signal.SIGINT)
        return "2026"
    monkeypatch.setattr(chat_template, "_strftime_now", press_ctrl_c)
    chat_template._compile.cache_clear()  # the environment picks up the helper when compiled
    previous = sys.gettrace()
    budget = TemplateBudget()
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # what the CLI runs with
    try:
        with pytest.raises(KeyboardInterrupt):
            render_chat("{{ strftime_now('%Y') }}{% for i in range(100000) %}"
                        "{% for j in range(100000) %}{% endfor %}{% endfor %}", HELLO, True, {},
                        ORIGIN, budget=budget)
    finally:
        signal.signal(signal.SIGINT, handler)
        chat_template._compile.cache_clear()
    assert sys.gettrace() is previous  # the step counter is gone again
    assert budget.exceeded is None


def test_template_errors_within_budget_are_still_reported() -> None:
    with pytest.raises(TokenizerError, match=r"chat_template failed: ZeroDivisionError"):
        render_chat("{{ 1 // 0 }}", HELLO, True, {}, ORIGIN)


def test_a_tracer_already_there_keeps_working() -> None:
    """A debugger's or coverage tracer still sees every frame but the template's own."""
    seen: list[str] = []

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        seen.append(frame.f_code.co_name)
        return None
    outer = sys.gettrace()
    sys.settrace(tracer)
    try:
        render_chat(LLAMA_3, HELLO, True, SPECIALS, ORIGIN)
        inside = sys.gettrace()
    finally:
        sys.settrace(outer)
    assert inside is tracer
    assert "finalize_value" in seen  # the sandbox's own Python frames
    assert "root" not in seen  # the template's compiled code is counted, not handed on
