"""Fuzzing the GGUF reader by the structure of its metadata, not only its bytes.

A valid tiny GGUF model with its tokenizer (gguf_cases.gguf_file_with_tokenizer) is rewritten
with its metadata mutated the ways a converter bug or a hostile file would: a key given another
value type, an array given another element type or length, a key deleted, every token type made
one value, a token id out of range, a token duplicated, a merge that is not "a b", a RoPE or
epsilon number no model uses. The property: ``minibitnet.load``, ``minibitnet.tokenizer.load``
and ``minibitnet info -m`` either succeed or fail with a MinibitnetError (one clean line from the
command); any other exception is a bug.

The "ci" Hypothesis profile runs a few dozen examples; for a longer search run locally::

    HYPOTHESIS_PROFILE=long pytest tests/formats/test_fuzz_gguf.py
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minibitnet
import minibitnet.tokenizer
from minibitnet.cli import main
from minibitnet.errors import MinibitnetError
from minibitnet.formats.gguf.container import (
    ARRAY, BOOL, FLOAT32, FLOAT64, INT8, INT16, INT32, INT64, STRING, UINT8, UINT16, UINT32,
    UINT64, GGUFFile,
)
from minibitnet_testing.gguf_cases import gguf_file_with_tokenizer, read_metadata, rewrite_gguf

GGUF_NAME = "ggml-model-i2_s.gguf"
fuzz_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])
_counter = itertools.count()

# ---- values of every GGUF type ----

INTEGER_RANGES = {UINT8: (0, 2**8 - 1), INT8: (-2**7, 2**7 - 1), UINT16: (0, 2**16 - 1),
                  INT16: (-2**15, 2**15 - 1), UINT32: (0, 2**32 - 1), INT32: (-2**31, 2**31 - 1),
                  UINT64: (0, 2**64 - 1), INT64: (-2**63, 2**63 - 1)}
# numbers where checks live: zero, one past a small vocabulary, the ends of the type
EDGE_FLOATS = [0.0, -0.0, 1e-45, -1.0, 1.0, 1e-30, 1e15, 1e38, 1e308, math.inf, -math.inf,
               math.nan]


def integers_of(kind: int) -> st.SearchStrategy[int]:
    low, high = INTEGER_RANGES[kind]
    edges = [v for v in (0, 1, 2, 3, 4, 255, 299, 300, 555, 556, 557, 2**31 - 1, 2**32 - 1,
                         2**63 - 1, -1, low, high) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def values_of(kind: int) -> st.SearchStrategy[Any]:
    """A value that write_gguf packs as ``kind`` (not ARRAY)."""
    if kind in INTEGER_RANGES:
        return integers_of(kind)
    if kind == FLOAT32:
        return st.one_of(st.sampled_from([v for v in EDGE_FLOATS if abs(v) < 3.4e38
                                          or not math.isfinite(v)]),
                         st.floats(width=32))
    if kind == FLOAT64:
        return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats())
    if kind == BOOL:
        return st.booleans()
    return st.one_of(st.sampled_from(["", " ", "gpt2", "llama-bpe", "linear", "none", "a b",
                                      "bitnet-b1.58", "bitnet", "llama", "<|begin_of_text|>"]),
                     st.text(max_size=12))


SCALAR_KINDS = [*INTEGER_RANGES, FLOAT32, FLOAT64, BOOL, STRING]


@st.composite
def typed_values(draw: st.DrawFn, length: int = 4) -> tuple[int, Any]:
    """(value type, value) of any type, arrays of about ``length`` elements included."""
    kind = draw(st.sampled_from([*SCALAR_KINDS, ARRAY]))
    if kind != ARRAY:
        return kind, draw(values_of(kind))
    element = draw(st.sampled_from(SCALAR_KINDS))
    count = draw(st.sampled_from([0, 1, max(length - 1, 0), length, length + 1]))
    return ARRAY, (element, draw(st.lists(values_of(element), min_size=count, max_size=count)))


# ---- structural mutations of the metadata ----

# keys a reader may look for that the base file lacks
OPTIONAL_KEYS = ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.add_bos_token",
                 "tokenizer.chat_template", "bitnet-b1.58.rope.scaling.type",
                 "bitnet-b1.58.rope.scaling.factor", "bitnet-b1.58.attention.key_length",
                 "bitnet-b1.58.attention.value_length", "minibitnet.weight_scales",
                 "general.alignment"]


def _array_length(value: tuple[int, Any]) -> int:
    return len(value[1][1]) if value[0] == ARRAY else 1


@st.composite
def mutations(draw: st.DrawFn, metadata: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    """``metadata`` (write_gguf's form) with one structural change."""
    metadata = dict(metadata)
    keys = sorted(metadata)
    arrays = [k for k in keys if metadata[k][0] == ARRAY]
    kind, value = metadata.get("tokenizer.ggml.tokens", (None, None))
    tokens = list(value[1]) if kind == ARRAY and value[0] == STRING and value[1] else []
    merges_value = metadata.get("tokenizer.ggml.merges", (None, None))
    actions = ["retype", "delete", "number", "add"]
    actions += ["element-type", "length"] if arrays else []
    actions += ["uniform", "token"] if tokens else []
    actions += ["merge"] if merges_value[0] == ARRAY and merges_value[1][0] == STRING else []
    action = draw(st.sampled_from(actions))
    if action == "retype":  # a key's value of another type
        key = draw(st.sampled_from(keys))
        metadata[key] = draw(typed_values(_array_length(metadata[key])))
    elif action == "element-type":  # an array of the same length, other elements
        key = draw(st.sampled_from(arrays))
        element = draw(st.sampled_from(SCALAR_KINDS))
        length = _array_length(metadata[key])
        metadata[key] = (ARRAY, (element, draw(st.lists(values_of(element), min_size=length,
                                                        max_size=length))))
    elif action == "length":  # an array cut short, emptied or grown
        key = draw(st.sampled_from(arrays))
        element, items = metadata[key][1]
        length = draw(st.sampled_from([0, 1, len(items) - 1, len(items) + 1, 2 * len(items)]))
        grown = list(itertools.islice(itertools.cycle(items), length)) if items else []
        metadata[key] = (ARRAY, (element, grown))
    elif action == "delete":
        del metadata[draw(st.sampled_from(keys))]
    elif action == "uniform":  # every token type one value (all CONTROL, all NORMAL, ...)
        kind = draw(st.sampled_from([INT32, UINT8, INT64]))
        value = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, -1]).filter(
            lambda v: v >= INTEGER_RANGES[kind][0]))
        metadata["tokenizer.ggml.token_type"] = (ARRAY, (kind, [value] * len(tokens)))
    elif action == "number":  # a scalar of its own type, any value
        key = draw(st.sampled_from([k for k in keys if metadata[k][0] != ARRAY]))
        metadata[key] = (metadata[key][0], draw(values_of(metadata[key][0])))
    elif action == "add":
        key = draw(st.sampled_from(OPTIONAL_KEYS))
        metadata[key] = draw(typed_values(4))
    elif action == "token":  # a token made empty, a duplicate, a space, a special's text
        at = draw(st.integers(0, len(tokens) - 1))
        tokens[at] = draw(st.one_of(st.sampled_from(["", " ", "a b", *tokens[:3], tokens[-1]]),
                                    st.text(max_size=4)))
        metadata["tokenizer.ggml.tokens"] = (ARRAY, (STRING, tokens))
    else:  # merges that are not two tokens joined by one space
        merges = list(merges_value[1][1])
        merges.append(draw(st.one_of(st.sampled_from(["", " ", "a", "a  b", " a", "a ", "a b c",
                                                      "zz qq", "Ā Ā"]),
                                     st.text(max_size=6))))
        metadata["tokenizer.ggml.merges"] = (ARRAY, (STRING, merges))
    return metadata


@pytest.fixture(scope="module")
def base_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gguf_file_with_tokenizer(tmp_path_factory.mktemp("gguf") / "model")


def test_the_base_file_loads_in_every_way(base_gguf):
    folder = base_gguf.parent
    assert minibitnet.load(folder).config.vocab_size == 556
    assert minibitnet.tokenizer.load(folder).encode("hello") != []
    assert main(["info", "-m", str(folder)]) == 0


def _loads_or_fails_cleanly(folder: Path) -> None:
    for load in (minibitnet.load, minibitnet.tokenizer.load):
        try:
            load(folder)
        except MinibitnetError:
            pass
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["info", "-m", str(folder)])
    assert code in (0, 1) and "internal error" not in stderr.getvalue(), stderr.getvalue()


@fuzz_settings
@given(data=st.data())
def test_mutated_metadata_loads_or_gives_one_clean_error(base_gguf, tmp_path_factory, data):
    metadata = read_metadata(base_gguf)
    for _ in range(data.draw(st.integers(1, 3))):
        metadata = data.draw(mutations(metadata))
    alignment = metadata.get("general.alignment", (UINT32, 32))[1]
    if isinstance(alignment, (int, float)) and abs(alignment) > 4096:
        return  # the writer would pad to it: gigabytes of zeros (the reader is fuzzed by bytes)
    folder = tmp_path_factory.getbasetemp() / "fuzz-gguf" / str(next(_counter))
    try:
        rewrite_gguf(base_gguf, folder / GGUF_NAME, metadata)
    except (struct.error, OverflowError, ValueError, TypeError, ZeroDivisionError):
        return  # a value the writer itself cannot pack (NaN as an int, an alignment of 0, ...)
    try:
        _loads_or_fails_cleanly(folder)
    finally:
        shutil.rmtree(folder)  # thousands of examples in the long profile


# ---- hand-picked shapes of valid-looking files ----


def _variant(base: Path, folder: Path, changes: dict[str, tuple[int, Any]]) -> Path:
    """The folder of ``base`` rewritten with ``changes`` to its metadata."""
    return rewrite_gguf(base, folder / GGUF_NAME, {**read_metadata(base), **changes}).parent


def _token_count(base: Path) -> int:
    return len(GGUFFile(base).metadata["tokenizer.ggml.tokens"])


@pytest.mark.parametrize("kind", [3, 0, 4], ids=["all-control", "all-undefined", "all-user"])
def test_a_vocabulary_without_normal_tokens_is_refused(base_gguf, tmp_path, kind):
    types = (ARRAY, (INT32, [kind] * _token_count(base_gguf)))
    folder = _variant(base_gguf, tmp_path, {"tokenizer.ggml.token_type": types})
    with pytest.raises(MinibitnetError, match=r"'tokenizer.ggml.token_type' has no normal token"):
        minibitnet.tokenizer.load(folder)


def test_a_token_type_llama_cpp_does_not_define_is_refused(base_gguf, tmp_path):
    types = [1] * _token_count(base_gguf)
    types[7] = 9
    folder = _variant(base_gguf, tmp_path, {"tokenizer.ggml.token_type": (ARRAY, (INT32, types))})
    with pytest.raises(MinibitnetError, match=r"gives token 7 type 9, expected 0 to 6"):
        minibitnet.tokenizer.load(folder)


def test_a_token_listed_twice_is_refused(base_gguf, tmp_path):
    tokens = list(GGUFFile(base_gguf).metadata["tokenizer.ggml.tokens"])
    tokens[9] = tokens[4]
    folder = _variant(base_gguf, tmp_path, {"tokenizer.ggml.tokens": (ARRAY, (STRING, tokens))})
    with pytest.raises(MinibitnetError, match=rf"holds {tokens[4]!r} at ids 4 and 9"):
        minibitnet.tokenizer.load(folder)


@pytest.mark.parametrize("suffix, kind, value", [
    ("rope.freq_base", FLOAT32, 1e-45), ("rope.freq_base", FLOAT32, 0.0),
    ("rope.freq_base", FLOAT32, -1.0), ("rope.freq_base", FLOAT32, math.inf),
    ("rope.freq_base", FLOAT32, math.nan), ("rope.freq_base", FLOAT64, 1e308),
    ("attention.layer_norm_rms_epsilon", FLOAT32, 1e-45),
    ("attention.layer_norm_rms_epsilon", FLOAT32, math.nan),
    ("attention.layer_norm_rms_epsilon", FLOAT64, 10.0),
])
def test_a_number_the_maths_cannot_use_is_refused_by_its_gguf_key(base_gguf, tmp_path, suffix,
                                                                   kind, value):
    key = f"bitnet-b1.58.{suffix}"
    folder = _variant(base_gguf, tmp_path, {key: (kind, value)})
    with pytest.raises(MinibitnetError, match=re.escape(f"(metadata '{key}')")):
        minibitnet.load(folder)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["info", "-m", str(folder)]) == 1
    assert stderr.getvalue().startswith("minibitnet: error: ") and key in stderr.getvalue()


@pytest.mark.parametrize("changes, expect", [
    ({"bitnet-b1.58.rope.scaling.type": (STRING, "linear"),
      "bitnet-b1.58.rope.scaling.factor": (FLOAT32, math.nan)}, "RoPE scaling 'linear'"),
    ({"bitnet-b1.58.attention.head_count": (UINT32, 0)}, "'num_attention_heads' is 0"),
    ({"bitnet-b1.58.attention.head_count_kv": (UINT32, 3)}, "does not divide"),
    ({"tokenizer.ggml.eos_token_id": (UINT32, 556)}, "'eos_token_id' is [556]"),
])
def test_other_numbers_out_of_range_are_refused(base_gguf, tmp_path, changes, expect):
    with pytest.raises(MinibitnetError, match=re.escape(expect)):
        minibitnet.load(_variant(base_gguf, tmp_path, changes))
