"""Shared test setup: Hypothesis profiles and the header line saying which fast path is loaded."""

from __future__ import annotations

import os
import signal

from hypothesis import HealthCheck, settings

# subtle: `python -m minibitnet.cli` and `python -c` put the working directory first on sys.path,
# and pytest runs in the clone's root, so a subprocess would import the source tree (no compiled
# kernels) instead of the installed package. PYTHONSAFEPATH=1 (Python 3.11+) stops that for every
# subprocess the tests start; tests that want a source tree name it on PYTHONPATH.
os.environ["PYTHONSAFEPATH"] = "1"

# A suite started in the background by a shell without job control (`pytest &` in a script)
# inherits SIGINT ignored, and so would every command a test starts: the tests that press Ctrl-C
# in a child would then wait in vain. A handled signal is reset to the default at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# "ci" (default) keeps the suite within minutes on 2 cores; "long" is for local runs:
#   HYPOTHESIS_PROFILE=long python -m pytest
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header() -> list[str]:
    lines = []
    try:
        import minibitnet.kernels.mypyc as fast

        is_compiled = getattr(fast, "is_compiled", None)
        if is_compiled is not None:
            lines.append(f"minibitnet.kernels.mypyc compiled: {is_compiled()}")
    except ImportError as exc:  # pragma: no cover - shown in the header only
        lines.append(f"minibitnet.kernels.mypyc not importable: {exc}")
    try:
        from minibitnet.kernels.numba_kernel import numba_missing

        lines.append(f"numba kernel: {numba_missing() or 'installed'}")
    except ImportError as exc:  # pragma: no cover - shown in the header only
        lines.append(f"minibitnet.kernels.numba_kernel not importable: {exc}")
    return lines
