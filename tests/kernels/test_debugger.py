"""A debugger steps from ``Model.forward`` into a kernel's source when the kernels run
interpreted (``MINIBITNET_INTERPRETED=1``): a pdb breakpoint on the first line of the LUT
kernel's ``ternary_matmul`` stops there, called from the model's own forward pass."""

from __future__ import annotations

import os
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
