"""minibitnet.tokenizer.bpe_file: count budgets checked before the loops, and loops that are linear.

No wall-clock assertions: a budget is shown to act before any entry is looked at (entries that
would fail the per-entry check give the count message instead), and the 200,000-token load runs
in a subprocess whose generous timeout only detects a hang (the quadratic check took minutes).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from minibitnet_testing.tokenizer_builders import synthetic_vocab, tokenizer_json

from minibitnet.errors import TokenizerError
from minibitnet.tokenizer import bpe_file
from minibitnet.tokenizer.bpe_file import MAX_ADDED_TOKENS, mergeable_ranks, special_tokens


def test_added_tokens_over_budget_are_refused_before_the_loop() -> None:
    not_entries = [None] * (MAX_ADDED_TOKENS + 1)  # the loop would complain about entry 0
    with pytest.raises(TokenizerError, match=f"t.json: {MAX_ADDED_TOKENS + 1} added tokens, "
                                             f"expected at most {MAX_ADDED_TOKENS}"):
        special_tokens(not_entries, {}, "t.json")


def test_vocabulary_over_budget_is_refused_before_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tokenizer_json(synthetic_vocab(300))["model"]
    model["vocab"]["not byte-level"] = -1  # the loops would refuse this token first
    monkeypatch.setattr(bpe_file, "MAX_VOCAB_SIZE", 100)
    with pytest.raises(TokenizerError, match="t.json: 301 vocabulary tokens and .* merges, "
                                             "expected at most 100"):
        mergeable_ranks(model, "t.json")


def test_200k_added_tokens_load() -> None:
    """200,000 added tokens: each check per entry is a set or dict lookup, so the load is linear."""
    script = textwrap.dedent("""
        from minibitnet_testing.tokenizer_builders import synthetic_vocab, tokenizer_json
        from minibitnet.tokenizer.tokenizer import tokenizer_from_json
        spec = tokenizer_json(synthetic_vocab(300, seed=1))
        first = max(t["id"] for t in spec["added_tokens"]) + 1
        spec["added_tokens"] += [{"id": first + i, "content": f"<|extra_{i}|>"}
                                 for i in range(200_000)]
        tokenizer = tokenizer_from_json(spec, {}, "tokenizer.json", "tokenizer_config.json")
        text = "hi <|extra_199999|> " * 100
        ids = tokenizer.encode(text)
        assert ids.count(first + 199_999) == 100, ids[:10]
        assert tokenizer.decode(ids) == text
        print(len(tokenizer.special_ids))
    """)
    import minibitnet_testing

    support = minibitnet_testing.__path__[0].rsplit("/", 1)[0]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": support, "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(200_000 + 256)]
