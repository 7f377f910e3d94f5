"""A debugger steps from ``Model.forward`` into a kernel's source when the kernels run
interpreted (``MINIBITNET_INTERPRETED=1``): a pdb breakpoint on the first line of the LUT
kernel's ``ternary_matmul`` stops there, called from the model's own forward pass."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import minibitnet
from minibitnet.kernels import mypyc

LUT_SOURCE = Path(minibitnet.__file__).parent / "kernels" / "mypyc" / "lut.py"
SCRIPT = """
import minibitnet
from minibitnet.kernels import mypyc
model = minibitnet.load(backend="fast:lut")
print(model.logits([1, 2, 3]).shape)
"""


def first_body_line(path: Path, function: str) -> int:
    """The line number of the first statement of ``def function`` in ``path``, docstring skipped."""
    import ast  # noqa: PLC0415

    tree = ast.parse(path.read_text(encoding="utf-8"))
    [node] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # after the docstring
    return body[0].lineno


def run_pdb(tmp_path: Path, commands: list[str], **env_vars: str) -> str:
    script = tmp_path / "run_model.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, **env_vars}
    arguments = [argument for command in commands for argument in ("-c", command)]
    result = subprocess.run([sys.executable, "-m", "pdb", *arguments, str(script)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300, input="")
    return result.stdout


def test_a_breakpoint_in_the_kernel_source_stops_inside_the_forward_pass(tmp_path):
    line = first_body_line(LUT_SOURCE, "ternary_matmul")
    output = run_pdb(tmp_path, [f"break {LUT_SOURCE}:{line}", "continue", "where", "quit"],
                     MINIBITNET_INTERPRETED="1")
    stop = f"> {LUT_SOURCE}({line})ternary_matmul()"
    assert stop in output, output  # stopped on that line ...
    stack = output[:output.index(stop)]  # `where`: the frames above it, outermost first
    assert "core/model.py" in stack and ")forward()" in stack  # ... called from Model.forward
    assert stack.index(")forward()") < stack.index("core/bitlinear.py")


def test_compiled_kernels_have_no_source_line_to_stop_on(tmp_path):
    if not mypyc.is_compiled():
        return  # this install runs the sources anyway
    line = first_body_line(LUT_SOURCE, "ternary_matmul")
    output = run_pdb(tmp_path, [f"break {LUT_SOURCE}:{line}", "continue", "quit"])
    assert f"> {LUT_SOURCE}({line})ternary_matmul()" not in output
    assert "(3, " in output  # ran to the end without stopping in the kernel


# ---- the pdb session of docs/tutorials/05-bitplane-kernel.md, run as the page shows it ----

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL_PAGE = ROOT / "docs" / "tutorials" / "05-bitplane-kernel.md"
SESSION = re.compile(r"^## Step through the kernel in pdb\n.*?^```console\n(.*?)^```", re.M | re.S)


def page_session() -> tuple[dict[str, str], list[str], list[str], list[str], list[str]]:
    """The page's pdb session: the environment and arguments of its `$` line, the commands typed
    at its `(Pdb)` prompts, and what it says pdb prints: the stop locations (from the last `/`
    on, so that the install's folder does not matter), where it says a breakpoint was set, and
    the values `p` shows."""
    found = SESSION.search(TUTORIAL_PAGE.read_text(encoding="utf-8"))
    assert found, f"{TUTORIAL_PAGE.name}: no console block under 'Step through the kernel in pdb'"
    lines = found.group(1).splitlines()
    words = shlex.split(lines[0].removeprefix("$ "))
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    arguments = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
    commands, locations, values = [], [], []
    for line, following in zip(lines, lines[1:] + [""]):
        if line.startswith("(Pdb) "):
            commands.append(line.removeprefix("(Pdb) "))
            if line.startswith("(Pdb) p ") and not following.startswith("(Pdb)"):
                values.append(following)
        elif line.startswith(("> ", "Breakpoint ")):
            locations.append(line.rsplit("/", 1)[-1])
    return env, arguments, commands, locations, values


def test_the_pdb_session_on_the_tutorial_page_stops_where_the_page_says(tmp_path):
    env, arguments, commands, locations, values = page_session()
    assert arguments[:3] == ["python", "-m", "pdb"] and arguments[-2] == "--out", arguments
    # the page's command, with this interpreter and a temporary folder for the figures
    arguments = [sys.executable, *arguments[1:-1], str(tmp_path)]
    result = subprocess.run(arguments, cwd=ROOT, env={**os.environ, **env, "MPLBACKEND": "Agg"},
                            input="\n".join(commands) + "\n", capture_output=True, text=True,
                            timeout=300)
    assert any("bitplane.py(" in location and "matvec_into()" in location
               for location in locations), locations  # the page stops inside the kernel ...
    for expected in locations + values:  # ... and pdb stops, and prints, as the page says
        assert expected in result.stdout, f"{expected!r} not in pdb's output:\n{result.stdout}"
