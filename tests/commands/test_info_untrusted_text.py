"""``minibitnet info`` prints keys and values read from a model folder: untrusted text. An escape
sequence in them must reach the terminal escaped, and a lone surrogate (valid JSON, not valid
UTF-8) must print, not end in an internal error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from minibitnet_testing.builders import build_checkpoint

# OSC 0 (set the window title), then CSI 2J (clear the screen), then a bell
TERMINAL_ATTACK = "\x1b]0;owned\x07\x1b[2J\x07"


def test_config_keys_and_values_are_printed_escaped(tmp_path: Path) -> None:
    model = build_checkpoint(tmp_path / "model", "tiny", seed=1)
    config = json.loads((model / "config.json").read_text())
    config["comment"] = TERMINAL_ATTACK
    config["nested"] = {"note": TERMINAL_ATTACK}
    text = json.dumps(config)  # ensure_ascii: the key below stays the JSON escape \\ud800
    text = text[:-1] + ', "lone\\ud800surrogate": 1}'
    (model / "config.json").write_text(text)

    result = subprocess.run([sys.executable, "-m", "minibitnet.cli", "info", "-m", str(model)],
                            cwd=tmp_path, capture_output=True, timeout=120)

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = result.stdout.decode("utf-8")  # strict: every byte printed is valid UTF-8
    assert "\x1b" not in out and "\x07" not in out
    assert "comment" in out and "\\x1b]0;owned\\x07\\x1b[2J" in out
    assert "lone\\ud800surrogate" in out
