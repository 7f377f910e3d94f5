"""Without numba: "fast" runs the mypyc kernels, and asking for fast:numba is one error line that
says what to install. Simulated in a fresh process whose ``import numba`` fails
(``sys.modules["numba"] = None``), so this runs with numba installed or not."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

from minibitnet.kernels.numba_kernel import INSTALL_HINT, numba_missing

NO_NUMBA = "import sys\nsys.modules['numba'] = None  # `import numba` now raises ImportError\n"


def run_without_numba(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", NO_NUMBA + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_numba_missing_says_whether_numba_imports():
    if importlib.util.find_spec("numba") is None:
        assert numba_missing() == f"numba is not installed; {INSTALL_HINT}"
    else:
        assert numba_missing() is None
    assert 'pip install "minibitnet[numba]"' in INSTALL_HINT


def test_asking_for_fast_numba_is_one_argument_error():
    result = run_without_numba("""
        import minibitnet
        from minibitnet.errors import ArgumentError
        try:
            minibitnet.load(backend="fast:numba")
        except ArgumentError as error:
            print(error)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"backend fast:numba: numba is not installed; "
                                          f"{INSTALL_HINT}"]


def test_on_the_command_line_it_is_one_error_line():
    result = run_without_numba("""
        from minibitnet.cli import main
        sys.exit(main(["generate", "--backend", "fast:numba", "-p", "ROMEO:", "-n", "1",
                       "--quiet"]))
    """)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"minibitnet: error: backend fast:numba: numba is not "
                                          f"installed; {INSTALL_HINT}"]


def test_fast_falls_back_to_the_mypyc_kernels_with_the_same_logits():
    result = run_without_numba("""
        import numpy as np
        import minibitnet
        from minibitnet.kernels.registry import available_backends
        ids = list(range(1, 30))  # long enough for the dense prefill
        model = minibitnet.load(backend="fast", threads=2)
        reference = minibitnet.load(backend="reference")
        print(type(model.kernel).__name__, model.backend)
        print(np.array_equal(model.logits(ids), reference.logits(ids)))
        print(" ".join(info.name for info in available_backends()))
        [numba_info] = [b for b in available_backends(include_missing=True)
                        if b.name == "fast:numba"]
        print(numba_info.missing)
    """)
    assert result.returncode == 0, result.stderr
    kernel, equal, names, missing = result.stdout.splitlines()
    assert kernel == "FastKernel fast"
    assert equal == "True"
    assert "fast:numba" not in names.split() and "fast" in names.split()
    assert missing == f"numba is not installed; {INSTALL_HINT}"


def test_info_lists_fast_numba_as_not_available():
    result = run_without_numba("""
        from minibitnet.cli import main
        sys.exit(main(["info"]))
    """)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.split()[:1] == ["fast:numba"]]
    assert line.endswith(f"[not available: numba is not installed; {INSTALL_HINT}]")
    [fast] = [line for line in result.stdout.splitlines() if line.split()[:1] == ["fast"]]
    assert "LUT kernel for decode" in fast and 'pip install "minibitnet[numba]"' in fast


def test_importing_the_registry_does_not_import_numba():
    # numba takes about half a second to import: only a numba backend's kernel imports it
    result = subprocess.run([sys.executable, "-c", "import sys, minibitnet.kernels.registry; "
                             "print('numba' in sys.modules)"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_numba_that_fails_to_import_leaves_fast_on_the_mypyc_kernels(tmp_path):
    """Installed but broken (a numba built for another NumPy raises ImportError): ``fast`` warns
    once and runs the mypyc kernels, as without numba; ``fast:numba`` is one error line."""
    broken = tmp_path / "numba"
    broken.mkdir()
    (broken / "__init__.py").write_text('raise ImportError("Numba needs NumPy 2.5 or less")\n')
    # subtle: no empty entry on the path ("DIR:" with an empty PYTHONPATH), which would put the
    # working directory, the clone's root, ahead of the installed package
    path = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(path)}
    code = textwrap.dedent("""
        import numpy as np
        import minibitnet
        from minibitnet.errors import ArgumentError
        model = minibitnet.load(backend="fast")
        again = minibitnet.load(backend="fast")  # warned once per process
        print(type(model.kernel).__name__, model.backend)
        ids = [1, 2, 3]
        print(np.array_equal(model.logits(ids), minibitnet.load(backend="reference").logits(ids)))
        try:
            minibitnet.load(backend="fast:numba")
        except ArgumentError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    kernel, equal, refused = result.stdout.splitlines()
    assert (kernel, equal) == ("FastKernel fast", "True")
    reason = ("numba does not import (Numba needs NumPy 2.5 or less); "
              f"{INSTALL_HINT}")
    assert refused == f"backend fast:numba: {reason}"
    assert result.stderr.splitlines() == [
        f"minibitnet: warning: backend fast:numba: {reason}; backend fast runs the mypyc kernels "
        "instead"]
