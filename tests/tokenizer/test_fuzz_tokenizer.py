"""Fuzzing the tokenizer loader: tokenizer.json and tokenizer_config.json are untrusted input.

Arbitrary bytes, arbitrary JSON, and structured mutations of a valid LLaMA-3-style file (a
vocabulary id changed or dropped, a merge dropped, swapped or replaced, a special token's id
clashing with the vocabulary, the Split regex replaced, any field replaced by any JSON value),
and structural ones of either file: any node at any JSON path replaced by any JSON value, a key
or entry dropped, an entry or a value duplicated.
The loader either returns a working Tokenizer or raises TokenizerError naming the file; nothing
else may escape. ``HYPOTHESIS_PROFILE=long`` runs 2000 examples per test.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibitnet_testing import tokenizer_builders
from minibitnet import tokenizer
from minibitnet.tokenizer.chat_template import render_chat
from minibitnet.errors import TokenizerError
from minibitnet.tokenizer.pretokenize import TRUST_REGEX_ENV
from minibitnet_testing.strategies import INTERESTING_INTS, json_values


fuzz_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])


def fresh_file(folder: Path, name: str, content: bytes) -> Path:
    """Write ``content`` to a new inode (as in test_fuzz.py)."""
    path = folder / name
    path.unlink(missing_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-tokenizer")


class TokenizerFiles(tuple[bytes, bytes]):
    """(tokenizer.json, tokenizer_config.json) bytes, with a short repr for failure reports."""

    def __repr__(self) -> str:
        return "TokenizerFiles(<a valid 300-token tokenizer>)"


@pytest.fixture(scope="module")
def valid_tokenizer_files(tmp_path_factory: pytest.TempPathFactory) -> TokenizerFiles:
    folder = tokenizer_builders.write_tokenizer(tmp_path_factory.mktemp("tok") / "t",
                                                tokenizer_builders.synthetic_vocab(300, seed=1))
    tokenizer.load(folder)  # the unmutated files load
    return TokenizerFiles(((folder / "tokenizer.json").read_bytes(),
                           (folder / "tokenizer_config.json").read_bytes()))


def load_tokenizer(folder: Path) -> None:
    try:
        loaded = tokenizer.load(folder)
    except TokenizerError as exc:
        assert "\n" not in str(exc)
        assert str(folder / "tokenizer.json") in str(exc) or \
            str(folder / "tokenizer_config.json") in str(exc)
    else:  # accepted: it encodes (the regex decides which text survives, so no round trip)
        ids = loaded.encode("Hi there")
        assert all(isinstance(i, int) and i >= 0 for i in ids)


def set_path(document: Any, path: list[Any], value: Any) -> None:
    """document[path[0]][path[1]]... = value, if that place exists."""
    for key in path[:-1]:
        if isinstance(document, dict) and key in document:
            document = document[key]
        elif isinstance(document, list) and isinstance(key, int) and key < len(document):
            document = document[key]
        else:
            return
    last = path[-1]
    if isinstance(document, dict) or (isinstance(document, list) and isinstance(last, int)
                                      and last < len(document)):
        document[last] = value


TOKENIZER_PLACES: list[list[Any]] = [
    ["model"], ["model", "type"], ["model", "vocab"], ["model", "merges"],
    ["model", "ignore_merges"], ["model", "byte_fallback"], ["model", "unk_token"],
    ["pre_tokenizer"], ["pre_tokenizer", "type"], ["pre_tokenizer", "pretokenizers"],
    ["pre_tokenizer", "pretokenizers", 0, "pattern"],
    ["pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"],
    ["pre_tokenizer", "pretokenizers", 0, "behavior"],
    ["pre_tokenizer", "pretokenizers", 1, "use_regex"],
    ["added_tokens"], ["added_tokens", 0], ["added_tokens", 0, "id"],
    ["added_tokens", 0, "content"], ["added_tokens", 1, "special"], ["normalizer"],
]


def mutated_structure(draw: st.DrawFn, document: Any, op: str) -> Any:
    """``document`` with one node, at any JSON path, replaced by any JSON value ("node"), a key
    or list entry dropped ("drop"), or a list entry or object value doubled ("duplicate")."""
    path = draw(st.sampled_from(tokenizer_builders.json_paths(document)))
    if op == "node":
        if not path:
            return draw(json_values)
        set_path(document, path, draw(json_values))
        return document
    if not path:
        return document
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "drop":
        del parent[last]
    elif isinstance(parent, list):
        parent.insert(last, json.loads(json.dumps(parent[last])))
    else:  # an object: the value also under a second key (another token, another field)
        parent[f"{last}2" if isinstance(last, str) else last] = parent[last]
    return document


@st.composite
def mutated_tokenizer(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    spec = json.loads(json.dumps(spec))
    tokens = sorted(spec["model"]["vocab"])
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(spec, dict):
            break
        model = spec.get("model") if isinstance(spec.get("model"), dict) else {}
        vocab = model.get("vocab") if isinstance(model.get("vocab"), dict) else {}
        added = spec.get("added_tokens") if isinstance(spec.get("added_tokens"), list) else []
        op = draw(st.sampled_from(["place", "node", "node", "drop", "duplicate", "vocab_id",
                                   "vocab_drop", "vocab_add", "merge_drop", "merge_swap",
                                   "merge_add", "special_id", "regex"]))
        if op == "place":
            set_path(spec, draw(st.sampled_from(TOKENIZER_PLACES)), draw(json_values))
        elif op in ("node", "drop", "duplicate"):
            spec = mutated_structure(draw, spec, op)
        elif op == "vocab_id":
            vocab[draw(st.sampled_from(tokens))] = draw(st.sampled_from(INTERESTING_INTS)
                                                        | st.integers(-2, 600))
        elif op == "vocab_drop":
            vocab.pop(draw(st.sampled_from(tokens)), None)
        elif op == "vocab_add":
            vocab[draw(st.text(min_size=1, max_size=4))] = draw(st.integers(-2, 600))
        elif op == "special_id":  # a special token clashing with a vocabulary id, or past it
            set_path(added, [draw(st.integers(0, 5)), "id"], draw(st.integers(-1, 600)))
        elif op == "regex":
            set_path(spec, ["pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"],
                     draw(st.sampled_from(["(", "[a-", "\\", "(?<=a+)b", "\\p{Nope}", "", "a",
                                          "a*", "\\b", "(?=a)", "x|"])
                          | st.text(max_size=8)))
        else:
            merges = model.get("merges")
            if not isinstance(merges, list) or not merges:
                continue
            at = draw(st.integers(0, len(merges) - 1))
            if op == "merge_drop":
                merges.pop(at)
            elif op == "merge_swap":
                other = draw(st.integers(0, len(merges) - 1))
                merges[at], merges[other] = merges[other], merges[at]
            else:
                merges.insert(at, draw(json_values))
    return spec


@fuzz_settings
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_tokenizer_arbitrary_bytes(workdir: Path, raw: bytes) -> None:
    folder = workdir / "tok-bytes"
    folder.mkdir(exist_ok=True)
    fresh_file(folder, "tokenizer.json", raw)
    load_tokenizer(folder)


@fuzz_settings
@given(data=st.data())
def test_tokenizer_mutations(workdir: Path, valid_tokenizer_files: TokenizerFiles,
                             data: st.DataObject) -> None:
    spec_bytes, config_bytes = valid_tokenizer_files
    folder = workdir / "tok-mutated"
    folder.mkdir(exist_ok=True)
    spec = json.loads(spec_bytes)
    config = json.loads(config_bytes)
    target = data.draw(st.sampled_from(["tokenizer", "config", "config_node", "config_bytes"]))
    if target == "tokenizer":
        spec = data.draw(mutated_tokenizer(spec))
    elif target == "config":
        key = data.draw(st.sampled_from(["bos_token", "eos_token", "chat_template", "add_bos_token",
                                         "other"]))
        config[key] = data.draw(json_values)
    elif target == "config_node":
        config = mutated_structure(data.draw, config,
                                   data.draw(st.sampled_from(["node", "drop", "duplicate"])))
    fresh_file(folder, "tokenizer.json", json.dumps(spec, ensure_ascii=False).encode("utf-8"))
    config_raw = (data.draw(st.binary(max_size=64)) if target == "config_bytes"
                  else json.dumps(config).encode("utf-8"))
    fresh_file(folder, "tokenizer_config.json", config_raw)
    # an unpublished regex is refused unless trusted: half the runs trust it, to reach the rest
    with trusted_regex(data.draw(st.booleans())):
        load_tokenizer(folder)


@contextlib.contextmanager
def trusted_regex(trusted: bool) -> Iterator[None]:
    """MINIBITNET_TRUST_TOKENIZER_REGEX=1 for the block when ``trusted`` (monkeypatch is per
    test, and Hypothesis runs many examples in one test)."""
    saved = os.environ.pop(TRUST_REGEX_ENV, None)
    if trusted:
        os.environ[TRUST_REGEX_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(TRUST_REGEX_ENV, None)
        if saved is not None:
            os.environ[TRUST_REGEX_ENV] = saved


def test_tokenizer_file_is_a_folder(workdir: Path) -> None:
    folder = workdir / "tok-folder"
    (folder / "tokenizer.json").mkdir(parents=True)
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        tokenizer.load(folder)


def test_tokenizer_nested_too_deeply(workdir: Path) -> None:
    folder = workdir / "tok-deep"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        tokenizer.load(folder)



TEMPLATE_PIECES = [
    "{{ bos_token }}", "{% for m in messages %}", "{% endfor %}", "{{ m['content'] }}",
    "{{ m.role | capitalize }}", "{% if add_generation_prompt %}", "{% endif %}", "{{ 1/0 }}",
    "{{ 'a' + 1 }}", "{{ messages[9].x }}", "{% for i in range(10**9) %}", "{{ raise_exception('no') }}",
    "{{ ().__class__.__mro__ }}", "{% if %}", "{{ messages | tojson }}", "{{ '%d' % 'x' }}",
    "{{ m }}", "{% set x = 1 %}", "{{ x.y.z }}", "{{", "}}", "{%", "%}",
]


@fuzz_settings
@given(pieces=st.lists(st.sampled_from(TEMPLATE_PIECES) | st.text(max_size=6), max_size=6),
       content=st.text(max_size=10))
def test_chat_template_errors(pieces: list[str], content: str) -> None:
    """A template from tokenizer_config.json is a program: any failure is a TokenizerError."""
    messages = [{"role": "user", "content": content}, {"role": "assistant", "content": "ok"}]
    try:
        text = render_chat("".join(pieces), messages, True, {"bos_token": "<s>"}, "cfg.json")
    except TokenizerError as exc:
        assert str(exc).startswith("cfg.json: ") and "\n" not in str(exc)
    else:
        assert isinstance(text, str)
