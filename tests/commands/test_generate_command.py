"""``minibitnet generate`` end to end, in a subprocess, on a random model with a tokenizer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from minibitnet_testing.tokenizer_builders import build_model_with_tokenizer

import minibitnet
from minibitnet.kernels.numba_kernel import numba_missing
from minibitnet.tokenizer import load as load_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_with_tokenizer(tmp_path_factory.mktemp("model"), seed=4,
                                      max_position_embeddings=48)


def minibitnet_cli(*args: str, stdin: str | None = None, cwd: Path | None = None,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would; cwd outside the repository, so the installed package runs."""
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "minibitnet.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd or Path("/"), env=full_env,
                          timeout=120)


def expected_greedy_text(model_dir: Path, prompt: str, n: int) -> str:
    """What greedy generation prints, computed in-process through the public API."""
    model, tokenizer = minibitnet.load(model_dir), load_tokenizer(model_dir)
    stops = set(model.config.eos_token_ids) | set(tokenizer.eos_ids)
    ids = model.generate(tokenizer.encode(prompt, bos=True), n, temperature=0.0,
                         stop_ids=sorted(stops))
    shown = [i for i in ids if i not in tokenizer.special_ids.values()]
    return tokenizer.decode(shown)


def test_greedy_prints_the_models_continuation(model_dir: Path) -> None:
    result = minibitnet_cli("generate", "-m", str(model_dir), "-p", "Hello world", "-n", "12",
                            "--temp", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_greedy_text(model_dir, "Hello world", 12) + "\n"
    assert "loading" in result.stderr
    assert "prompt tokens" in result.stderr and "tokens/s" in result.stderr


def test_same_seed_same_text(model_dir: Path) -> None:
    runs = [minibitnet_cli("generate", "-m", str(model_dir), "-p", "Once", "-n", "16",
                           "--seed", "7", "--temp", "1.5", "--quiet") for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.strip()
    assert runs[0].stderr == ""  # --quiet: no loading lines, no summary


def test_prompt_from_file_and_stdin(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("The cat sat", encoding="utf-8")
    flags = ["generate", "-m", str(model_dir), "-n", "6", "--temp", "0", "--quiet"]
    from_file = minibitnet_cli(*flags, "-f", str(tmp_path / "prompt.txt"))
    from_stdin = minibitnet_cli(*flags, stdin="The cat sat")
    from_flag = minibitnet_cli(*flags, "-p", "The cat sat")
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == from_stdin.stdout == from_flag.stdout


def test_stops_at_context_length(model_dir: Path) -> None:
    result = minibitnet_cli("generate", "-m", str(model_dir), "-p", "a b", "-n", "100",
                            "--temp", "0")
    assert result.returncode == 0, result.stderr
    assert "stopped at the context length of 48 tokens" in result.stderr
    assert "100 new tokens" not in result.stderr


def test_model_from_hugging_face_cache(model_dir: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / "0123abcd"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(model_dir, target_is_directory=True)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0123abcd")
    result = minibitnet_cli("generate", "-m", "org/tiny", "-p", "Hi", "-n", "3", "--temp", "0",
                            env={"HF_HUB_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert str(snapshot) in result.stderr


@pytest.mark.parametrize("flags, expected", [
    (["-n", "-1"], "-n/--n-predict: -1 is out of range"),
    (["--temp", "-0.5"], "--temp: -0.5 is out of range"),
    (["--temp", "nan"], "--temp: nan is out of range"),
    (["--top-p", "0"], "--top-p: 0 is out of range"),
    (["--top-p", "1.5"], "--top-p: 1.5 is out of range"),
    (["--top-k", "0"], "--top-k: 0 is out of range"),
    (["--seed", "x"], "--seed: 'x' is not an integer"),
    (["-p", "a", "-f", "b"], "not allowed with argument"),
])
def test_bad_flags_are_one_line_usage_errors(model_dir: Path, flags: list[str], expected: str) -> None:
    result = minibitnet_cli("generate", "-m", str(model_dir), *flags)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("model, expected", [
    ("org/absent", "models--org--absent"),
    ("/no/such/folder", "/no/such/folder: no such folder, expected a model folder"),
])
def test_missing_model(model: str, expected: str, tmp_path: Path) -> None:
    result = minibitnet_cli("generate", "-m", model, "-p", "x",
                            env={"HF_HUB_CACHE": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minibitnet: error:") and expected in lines[0]


def test_folder_without_tokenizer(tmp_path: Path) -> None:
    from minibitnet_testing.builders import build_checkpoint

    build_checkpoint(tmp_path)
    result = minibitnet_cli("generate", "-m", str(tmp_path), "-p", "x")
    assert result.returncode == 1
    assert "tokenizer.json: not found" in result.stderr


def test_help_lists_the_flags() -> None:
    result = minibitnet_cli("generate", "--help")
    assert result.returncode == 0
    for flag in ("--model", "--prompt", "--file", "--n-predict", "--temp", "--top-k", "--top-p",
                 "--seed", "--backend", "--quiet"):
        assert flag in result.stdout


def ctrl_c_once_generating(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run ``minibitnet generate ARGS``, press Ctrl-C (SIGINT) as soon as the first generated
    text arrives, and wait at most 60 s for the process to end: (exit code, stdout, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "minibitnet.cli", "generate", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=cwd, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    try:
        assert process.stdout is not None
        # the command flushes each token's text as it comes: once a byte arrives, it is generating
        first = os.read(process.stdout.fileno(), 4096)
        assert first, "the command ended before printing any text"
        process.send_signal(signal.SIGINT)
        rest, stderr_bytes = process.communicate(timeout=60)  # a stuck thread fails here
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, (first + rest).decode(), stderr_bytes.decode()


def test_ctrl_c_keeps_the_text_and_exits_cleanly(tmp_path: Path) -> None:
    build_model_with_tokenizer(tmp_path, seed=4, max_position_embeddings=4096)
    returncode, stdout, stderr = ctrl_c_once_generating("-m", str(tmp_path), "-p", "x",
                                                        "-n", "4000", "--temp", "0", cwd=Path("/"))
    assert returncode == 130, stderr
    assert "minibitnet: interrupted" in stderr
    assert "Traceback" not in stderr
    counted = re.search(r"(\d+) new tokens?;", stderr)  # the summary; "1 new token" is possible
    assert counted, stderr
    assert 0 < int(counted.group(1)) < 4000
    assert stdout.endswith("\n")


@pytest.mark.skipif(numba_missing() is not None, reason="fast:numba needs numba (the numba extra)")
def test_ctrl_c_during_a_threaded_decode_exits_cleanly(tmp_path: Path) -> None:
    """numba's threads run each kernel call without the GIL; the KeyboardInterrupt comes between
    two calls, in the main thread, and ends the command as on one thread: no thread is left."""
    # a 4096-position context, so that the run cannot end by itself before the signal arrives
    build_model_with_tokenizer(tmp_path, seed=4, max_position_embeddings=4096)
    returncode, stdout, stderr = ctrl_c_once_generating(
        "-m", str(tmp_path), "--backend", "fast:numba", "-t", "2", "--quiet", "-p", "x", "-n",
        "4000", "--temp", "0", cwd=Path("/"))
    assert returncode == 130, stderr
    assert stderr.splitlines()[-1:] == ["minibitnet: interrupted"], stderr
    assert "Traceback" not in stderr
    assert stdout.strip()


def test_prompt_longer_than_the_context(model_dir: Path) -> None:
    result = minibitnet_cli("generate", "-m", str(model_dir), "-p", "word " * 200, "-n", "4")
    assert result.returncode == 1
    assert "exceeds the context length of 48 tokens" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokenizer_larger_than_the_model(tmp_path: Path) -> None:
    from minibitnet_testing.builders import build_checkpoint
    from minibitnet_testing.tokenizer_builders import synthetic_vocab, write_tokenizer

    build_checkpoint(tmp_path, vocab_size=256)
    write_tokenizer(tmp_path, synthetic_vocab(500))  # 756 ids with the special tokens
    result = minibitnet_cli("generate", "-m", str(tmp_path), "-p", "x")
    assert result.returncode == 1
    assert "756 tokens, but config.json has vocab_size 256" in result.stderr
