"""The fast kernels never run interpreted without a word.

Each case runs a subprocess with a controlled environment and working folder. A copy of the
package without its compiled modules stands for the source tree of a clone; a folder holding a
``.dist-info`` whose RECORD lists a compiled kernel (an empty file with the extension suffix,
never imported) stands for a ``pip install .`` that the clone shadows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import minibitnet
from minibitnet.kernels import mypyc as fast
from minibitnet.kernels import registry as backend

WARNING = "minibitnet: warning: "
# Every backend name but fast:numba, the mypyc ones twice ("fast" runs them without numba): one
# warning per process all the same. The description is fast:lut's, which always runs them.
PROBE = """
from minibitnet.kernels import mypyc as fast
from minibitnet.kernels import registry as backend
for name in ("reference", "fast:dense", "fast", "fast:lut", "fast:bitplane", "fast", "fast:lut"):
    backend.get_backend(name)
print(fast.compiled_install())
print({info.name: info.description for info in backend.available_backends()}["fast:lut"])
"""


def source_tree(tmp_path: Path) -> Path:
    """A copy of the imported package's .py files, data included, without compiled modules:
    what a clone holds before anything is built in it. Returns the folder to put on the path."""
    root = tmp_path / "clone"
    shutil.copytree(Path(minibitnet.__file__).parent, root / "minibitnet",
                    ignore=shutil.ignore_patterns(*(f"*{s}" for s in EXTENSION_SUFFIXES),
                                                  "__pycache__"))
    return root


def compiled_install(tmp_path: Path) -> Path:
    """A site folder whose minibitnet distribution lists a compiled lut kernel that exists."""
    site = tmp_path / "site"
    kernel = Path("minibitnet", "kernels", "mypyc", f"lut{EXTENSION_SUFFIXES[0]}")
    (site / kernel).parent.mkdir(parents=True)
    (site / kernel).write_bytes(b"")
    info = site / "minibitnet-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: minibitnet\nVersion: 0.1.0\n")
    (info / "RECORD").write_text(f"{kernel.as_posix()},,\n")
    return site


def run_python(tmp_path: Path, args: list[str], path: list[Path],
               **env_vars: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in tmp_path with ``path`` first on sys.path and only ``env_vars`` of
    the two switches set (CI exports MINIBITNET_REQUIRE_COMPILED=1 to this process)."""
    env = {key: value for key, value in os.environ.items()
           if key not in (fast.INTERPRETED_ENV, backend.REQUIRE_COMPILED_ENV, "PYTHONPATH")}
    env.update(env_vars, OPENBLAS_NUM_THREADS="1")
    if path:
        env["PYTHONPATH"] = os.pathsep.join(str(folder) for folder in path)
    # subtle: the working folder is tmp_path, so `python -c` itself adds no clone to sys.path
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(WARNING)]


def test_a_shadowing_source_tree_warns_once_saying_why_and_what_to_do(tmp_path):
    clone, site = source_tree(tmp_path), compiled_install(tmp_path)
    result = run_python(tmp_path, ["-c", PROBE], [clone, site])
    assert result.returncode == 0, result.stderr
    lines = warnings_of(result.stderr)
    assert len(lines) == 1, result.stderr
    assert (f"the source tree {(clone / 'minibitnet').resolve()} shadows the compiled install "
            f"at {(site / 'minibitnet').resolve()}") in lines[0]
    assert "run from outside the clone" in lines[0]
    assert f"{fast.INTERPRETED_ENV}=1" in lines[0]
    installed, description = result.stdout.splitlines()
    assert installed == str((site / "minibitnet").resolve())
    assert description.endswith("(interpreted: slow, the source tree shadows the compiled "
                                "install)")


def test_a_package_without_compiled_kernels_warns_once(tmp_path):
    clone = source_tree(tmp_path)
    result = run_python(tmp_path, ["-c", PROBE], [clone])
    assert result.returncode == 0, result.stderr
    lines = warnings_of(result.stderr)
    assert len(lines) == 1, result.stderr
    installed = result.stdout.splitlines()[0]
    if installed == "None":  # nothing compiled anywhere: the reinstall advice
        assert f"{(clone / 'minibitnet').resolve()} has no compiled kernels" in lines[0]
        assert "pip install ." in lines[0]
    else:  # a compiled install of this environment (a CI run) is shadowed by the copy
        assert f"shadows the compiled install at {installed}" in lines[0]


def test_interpreted_on_request_says_nothing(tmp_path):
    clone, site = source_tree(tmp_path), compiled_install(tmp_path)
    # asked for, so not an error under MINIBITNET_REQUIRE_COMPILED=1 either
    result = run_python(tmp_path, ["-c", PROBE], [clone, site],
                        **{fast.INTERPRETED_ENV: "1", backend.REQUIRE_COMPILED_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[1].endswith(f"(interpreted: {fast.INTERPRETED_ENV}=1)")


def test_require_compiled_turns_the_warning_into_an_error(tmp_path):
    clone, site = source_tree(tmp_path), compiled_install(tmp_path)
    probe = ("from minibitnet import errors\nfrom minibitnet.kernels import registry as backend\n"
             "backend.get_backend('reference'); backend.get_backend('fast:dense')\n"
             "try:\n"
             "    backend.get_backend('fast:lut')\n"
             "except errors.InstallationError as exc:\n"
             "    print(exc)\n")
    result = run_python(tmp_path, ["-c", probe], [clone, site],
                        **{backend.REQUIRE_COMPILED_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # an error instead of the warning, not both
    [message] = result.stdout.splitlines()
    assert message.startswith(f"{backend.REQUIRE_COMPILED_ENV}=1, but the fast kernels run "
                              "interpreted")
    assert f"the source tree {(clone / 'minibitnet').resolve()} shadows" in message


def test_require_compiled_is_one_error_line_on_the_command_line(tmp_path):
    clone, site = source_tree(tmp_path), compiled_install(tmp_path)
    result = run_python(tmp_path, ["-m", "minibitnet.cli", "generate", "-p", "ROMEO:", "-n", "1",
                                   "--backend", "fast:lut", "--quiet"], [clone, site],
                        **{backend.REQUIRE_COMPILED_ENV: "1"})
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"minibitnet: error: {backend.REQUIRE_COMPILED_ENV}=1, but ")


def test_compiled_kernels_say_nothing(tmp_path):
    if not fast.is_compiled():
        pytest.skip("this process runs the kernels interpreted")
    result = run_python(tmp_path, ["-c", PROBE], [], **{backend.REQUIRE_COMPILED_ENV: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[1].endswith("(compiled)")


def test_this_run_is_compiled_when_required():
    # the CI gate: .ci/run exports MINIBITNET_REQUIRE_COMPILED=1, so a build that silently
    # skipped mypyc fails here with the reason, not only where a test asks for "fast"
    if os.environ.get(backend.REQUIRE_COMPILED_ENV) != "1":
        pytest.skip(f"{backend.REQUIRE_COMPILED_ENV} is not set")
    backend.check_compiled()
