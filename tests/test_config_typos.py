"""A config.json key one edit away from a key config.py reads gets one warning naming that key.

Without it the file still loads and the key meant silently takes its default: ``rope_thetta``
leaves rope_theta at 500000, ``max_position_embedings`` leaves the context at 4096.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibitnet.config import (
    IGNORED_KEYS,
    READ_KEYS,
    ModelConfig,
    config_from_dict,
    load_config,
    one_edit_apart,
)
from minibitnet.loader import BUILTIN_MODEL_DIR
from minibitnet_testing.builders import SHAPES
from minibitnet_testing.family_builders import FAMILY_SHAPES

WARNING = "minibitnet: warning: "


def builtin_raw() -> dict[str, object]:
    return json.loads((BUILTIN_MODEL_DIR / "config.json").read_text())


def write_config(folder: Path, raw: dict[str, object]) -> Path:
    (folder / "config.json").write_text(json.dumps(raw))
    return folder / "config.json"


def renamed(raw: dict[str, object], old: str, new: str) -> dict[str, object]:
    return {(new if key == old else key): value for key, value in raw.items()}


def warnings_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(WARNING)]


@pytest.mark.parametrize("typo, meant, fallback", [
    ("rope_thetta", "rope_theta", ("rope_theta", 500000.0)),
    ("max_position_embedings", "max_position_embeddings", ("max_position_embeddings", 4096)),
])
def test_typo_warns_once_naming_the_file_and_the_key(tmp_path, capsys, typo, meant, fallback):
    raw = renamed(builtin_raw(), meant, typo)
    path = write_config(tmp_path, raw)
    config = load_config(tmp_path)
    load_config(tmp_path)  # a second read in the same process says nothing more
    lines = warnings_of(capsys.readouterr().err)
    assert lines == [f"{WARNING}{path}: unknown key '{typo}' is ignored; did you mean '{meant}'?"]
    # what the warning is about: the file loads, with the key meant at its default
    field, default = fallback
    assert getattr(config, field) == default != builtin_raw()[meant]


@pytest.mark.parametrize("meant, typo", [
    ("num_key_value_heads", "num_key_value_headss"),  # insertion
    ("rms_norm_eps", "rms_norm_ep"),  # deletion
    ("rms_norm_eps", "rms_norm_eqs"),  # substitution
    ("tie_word_embeddings", "tie_word_embeddnigs"),  # transposition
])
def test_every_kind_of_single_edit_is_caught(tmp_path, capsys, meant, typo):
    source = str(tmp_path / "config.json")
    config_from_dict(renamed(builtin_raw(), meant, typo), source)
    assert warnings_of(capsys.readouterr().err) == [
        f"{WARNING}{source}: unknown key '{typo}' is ignored; did you mean '{meant}'?"]


def test_a_missing_required_key_is_named_too(tmp_path, capsys):
    source = str(tmp_path / "config.json")
    with pytest.raises(ValueError, match="missing required key 'hidden_size'"):
        config_from_dict(renamed(builtin_raw(), "hidden_size", "hidden_sise"), source)
    assert "did you mean 'hidden_size'?" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["architectures", "torch_dtype", "_name_or_path",
                                 "transformers_version", "pad_token_id", "auto_map",
                                 "my_own_note"])
def test_known_or_unrelated_keys_do_not_warn(tmp_path, capsys, key):
    raw = {**builtin_raw(), key: "x" if key != "architectures" else ["BitNetForCausalLM"]}
    config_from_dict(raw, str(tmp_path / "config.json"))
    assert capsys.readouterr().err == ""


def test_no_warning_when_the_key_meant_is_present_too(tmp_path, capsys):
    # the model is not changed: rope_theta is read, the stray key is only kept
    config_from_dict({**builtin_raw(), "rope_thetas": 10000.0}, str(tmp_path / "config.json"))
    assert capsys.readouterr().err == ""


def test_builtin_model_config_does_not_warn(capsys):
    load_config(BUILTIN_MODEL_DIR)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("config", [*SHAPES.values(), *FAMILY_SHAPES.values()],
                         ids=[*SHAPES, *FAMILY_SHAPES])
def test_every_family_file_we_write_reads_without_warning(tmp_path, capsys, config: ModelConfig):
    config_from_dict(config.to_json_dict(), str(tmp_path / "config.json"))
    assert capsys.readouterr().err == ""


def test_no_accepted_key_is_a_typo_of_a_read_key():
    # bos_token_id / eos_token_id are one edit apart, but both are read: neither is flagged
    assert not [(ignored, read) for ignored in IGNORED_KEYS for read in READ_KEYS
                if one_edit_apart(ignored, read)]


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    neighbours, each costing 1 (the textbook dynamic programme, the oracle for the fast check)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


words = st.text(alphabet="ab_", max_size=6)


@given(a=words, b=words)
def test_one_edit_apart_is_distance_one(a, b):
    assert one_edit_apart(a, b) == (edit_distance(a, b) == 1)
