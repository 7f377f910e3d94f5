"""Helpers shared by the tests: checkpoint builders, Hypothesis strategies, kernel cases.

subtle: this folder (tests/support/) is the only one on the tests' import path (pytest's
``pythonpath``), and the package's name is one no PyPI distribution uses. A helper module named
like an installed package (``kernels``, say) would shadow it for every library the tests import;
``tests/test_support_names.py`` checks that none does.
"""

from pathlib import Path

TEST_DATA = Path(__file__).parents[2] / "data"  # tests/data: small text excerpts the tests read
