"""Running the ``minibitnet`` command line in the test process."""

from __future__ import annotations

import pytest

from minibitnet.cli import main


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one stderr line of a command line argparse rejects (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1, err
    return err
