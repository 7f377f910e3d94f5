"""The model that ships inside the package: it loads with no path, every backend and
transformers agree on it, the commands use it by default, and its model card's score reproduces.
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
from minibitnet.backend import available_backends
from minibitnet.loader import builtin_model_dir

EXCERPT = Path(__file__).parent / "data" / "hamlet_excerpt.txt"
PROMPT = "ROMEO:\nWhat light through yonder window breaks? It is the east,"


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
    assert model.backend == "reference"
    assert model.config == minibitnet.load(folder).config
    logits = model.logits(prompt_ids)
    assert logits.shape == (len(prompt_ids), model.config.vocab_size)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()


@pytest.mark.parametrize("backend", [b.name for b in available_backends()
                                     if b.name != "reference"])
def test_every_backend_gives_the_reference_logits(backend: str, prompt_ids: list[int]) -> None:
    reference = minibitnet.load()
    fast = minibitnet.load(backend=backend)
    assert np.array_equal(fast.logits(prompt_ids), reference.logits(prompt_ids))
    assert (fast.generate(prompt_ids, 24, temperature=0.0, stop_ids=[])
            == reference.generate(prompt_ids, 24, temperature=0.0, stop_ids=[]))


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
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    runs = [subprocess.run([sys.executable, "-m", "minibitnet.cli", "generate", "-p", "ROMEO:",
                            "-n", "30", "--seed", "1", "--quiet"], capture_output=True,
                           text=True, cwd="/", env=env, timeout=120) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout  # seeded: the same text twice
    assert len(runs[0].stdout.strip()) > 30


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
