"""The model that ships inside the package: it loads with no path, every backend and
transformers agree on it, the commands use it by default, and its model card's score reproduces.

The golden run (the idea of llama2.c's test_all.py): greedy from a fixed prompt, the exact ids
and text are written below, and every backend, the kernels' interpreted sources and the
``generate`` command must give them. The prompt is chosen so that at each of the 40 steps the
best logit leads the second by at least 0.08, while float32 sums rounded in another order (on
another CPU, or through the KV cache) move a logit by 0.03 at most (tutorial 8 measures it): the
text is the model's, not the machine's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibitnet
from minibitnet import tokenizer
from minibitnet.kernels.registry import available_backends
from minibitnet.loader import builtin_model_dir
from minibitnet_testing import TEST_DATA

EXCERPT = TEST_DATA / "hamlet_excerpt.txt"
PROMPT = "ROMEO:\nWhat light through yonder window breaks? It is the east,"

GOLDEN_PROMPT = "MACBETH."
GOLDEN_PROMPT_IDS = [2048, 1736, 1345, 46]  # <|begin_of_text|> 'MAC' 'BETH' '.'
GOLDEN_IDS = [549, 73, 487, 721, 290, 44, 546, 44, 295, 385, 327, 308, 258, 454, 280, 1736, 1345,
              259, 73, 466, 327, 258, 454, 44, 295, 385, 327, 308, 258, 454, 280, 1736, 1345, 259,
              73, 466, 327, 258, 454, 44]
GOLDEN_TEXT = (" \nI'll tell you, sir, I will not be a man.\n\nMACBETH.\nI am not a man, I will not "
               "be a man.\n\nMACBETH.\nI am not a man,")


@pytest.fixture(scope="module")
def folder() -> Path:
    return builtin_model_dir()


@pytest.fixture(scope="module")
def prompt_ids(folder: Path) -> list[int]:
    return tokenizer.load(folder).encode(PROMPT, bos=True)


def test_the_package_ships_a_complete_small_model(folder: Path) -> None:
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "README.md", "training.csv"} <= names
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 6_000_000, f"{total} bytes: the built-in model should stay a few MB"


def test_load_without_a_path_is_the_builtin_model(folder: Path, prompt_ids: list[int]) -> None:
    model = minibitnet.load()
    assert model.backend == "fast"  # as on the command line
    assert model.config == minibitnet.load(folder).config
    logits = model.logits(prompt_ids)
    assert logits.shape == (len(prompt_ids), model.config.vocab_size)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()


@pytest.mark.parametrize("backend", [b.name for b in available_backends()
                                     if b.name != "reference"])
def test_every_backend_gives_the_reference_logits(backend: str, prompt_ids: list[int]) -> None:
    reference = minibitnet.load(backend="reference")
    fast = minibitnet.load(backend=backend)
    assert np.array_equal(fast.logits(prompt_ids), reference.logits(prompt_ids))


@pytest.mark.parametrize("backend", [b.name for b in available_backends()])
def test_golden_greedy_run_on_every_backend(backend: str, folder: Path) -> None:
    tokens = tokenizer.load(folder)
    assert tokens.encode(GOLDEN_PROMPT, bos=True) == GOLDEN_PROMPT_IDS
    model = minibitnet.load(backend=backend)
    ids = model.generate(GOLDEN_PROMPT_IDS, len(GOLDEN_IDS), temperature=0.0)  # config's stops
    assert ids == GOLDEN_IDS
    assert tokens.decode(ids) == GOLDEN_TEXT


# Every backend in a fresh process with MINIBITNET_INTERPRETED=1; the kernels' .py sources take
# about a second for the prompt and 0.15 s a token on 2 cores, so this run checks the first
# GOLDEN_PREFIX tokens.
GOLDEN_PREFIX = 8
INTERPRETED_PROBE = f"""
import json, minibitnet, minibitnet.kernels.mypyc
from minibitnet.kernels.registry import available_backends
print(json.dumps({{"compiled": minibitnet.kernels.mypyc.is_compiled(), "ids": {{
    info.name: minibitnet.load(backend=info.name).generate({GOLDEN_PROMPT_IDS}, {GOLDEN_PREFIX},
                                                           temperature=0.0)
    for info in available_backends()}}}}))
"""


@pytest.mark.slow
def test_golden_run_with_the_interpreted_kernels(tmp_path: Path) -> None:
    env = {**os.environ, "MINIBITNET_INTERPRETED": "1", "OPENBLAS_NUM_THREADS": "1"}
    # subtle: `python -c` puts its working directory first on sys.path; tmp_path holds no package
    result = subprocess.run([sys.executable, "-c", INTERPRETED_PROBE], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["compiled"] is False
    assert set(report["ids"]) == {b.name for b in available_backends()}
    for backend, ids in report["ids"].items():
        assert ids == GOLDEN_IDS[:GOLDEN_PREFIX], backend


@pytest.mark.oracle
def test_transformers_loads_it_and_agrees(folder: Path, prompt_ids: list[int]) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    torch._dynamo.config.disable = True
    theirs = transformers.BitNetForCausalLM.from_pretrained(folder, dtype=torch.float32)
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.tensor([prompt_ids])).logits[0].numpy()
    worst = float(np.abs(minibitnet.load().logits(prompt_ids) - expected).max())
    print(f"built-in model vs transformers: max |logit difference| {worst:.3g}")
    assert worst < 1e-3


def test_generate_uses_it_when_no_model_is_given() -> None:
    """`minibitnet generate` with no -m prints the golden text, then one newline."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "minibitnet.cli", "generate", "-p",
                             GOLDEN_PROMPT, "-n", str(len(GOLDEN_IDS)), "--temp", "0", "--quiet"],
                            capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == GOLDEN_TEXT + "\n"
    assert result.stderr == ""


@pytest.mark.slow
def test_the_model_cards_score_reproduces(folder: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    """The card states the score on tests/data/hamlet_excerpt.txt; `eval` must give it again."""
    card = (folder / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"hamlet_excerpt\.txt`?\s*\|\s*([0-9.]+) bits per character", card)
    assert stated, "the model card states the excerpt's score"
    from minibitnet.cli import main

    assert main(["eval", "--text", str(EXCERPT), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bits_per_char"] == pytest.approx(float(stated.group(1)), abs=5e-5)
