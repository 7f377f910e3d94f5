"""MINIBITNET_INTERPRETED=1 runs the kernels from their .py sources, compiled install or not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minibitnet.kernels import mypyc as fast

PROBE = ("import minibitnet.kernels.mypyc as f, minibitnet.kernels.mypyc.lut as lut; "
         "print(f.is_compiled(), lut.__spec__.origin.endswith('.py'), f.lut is lut)")


def run_probe(folder, env: dict[str, str]) -> str:
    # subtle: `python -c` puts the working directory first on sys.path; run it elsewhere so the
    # probe imports the installed package, as this test process does
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=env, cwd=folder, check=True)
    return result.stdout.strip()


def test_interpreted_env_loads_the_sources(tmp_path):
    assert run_probe(tmp_path, {**os.environ, fast.INTERPRETED_ENV: "1"}) == "False True True"


def test_default_is_what_was_installed(tmp_path):
    if os.environ.get(fast.INTERPRETED_ENV) == "1":
        pytest.skip("this process itself runs interpreted")
    env = {key: value for key, value in os.environ.items() if key != fast.INTERPRETED_ENV}
    assert run_probe(tmp_path, env).split()[0] == str(fast.is_compiled())


def test_interpreted_module_is_python():
    for name in fast.KERNEL_MODULES:
        module = fast.interpreted_module(name)
        assert module.__spec__.origin.endswith(f"{name}.py")
        assert module is fast.interpreted_module(name)  # loaded once
