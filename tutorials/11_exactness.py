"""Tutorial 11: exactness, and how Hypothesis proves the fast path equals the reference.

Every backend computes the same thing: the int32 sums of int8 activations times ternary weights.
Integers are exact, so "fast equals reference" is a yes-or-no question, and the answer must be
yes for *every* matrix and vector, not just typical ones. Hypothesis (property-based testing)
generates inputs aimed at the edges -- widths that are not multiples of 64, 40 or 5, all-zero
rows, -128 everywhere -- and, when a property fails, shrinks the input to the smallest one that
still fails. This tutorial runs the property against every registered backend, then against a
kernel with a deliberate overflow bug, to show Hypothesis finding and shrinking it.

    python tutorials/11_exactness.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet.kernels.registry import available_backends, get_backend  # noqa: E402
from minibitnet.core.packing import pack_ternary, unpack_ternary  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
EXAMPLES = 150  # per backend; the test suite runs more (tests/kernels/)


@st.composite
def ternary_problem(draw: st.DrawFn, max_in: int = 640) -> tuple[np.ndarray, np.ndarray]:
    """A ternary matrix (out, in) and int8 activations (T, in), of awkward shapes and values.

    Besides random entries, whole arrays of one value are drawn on purpose (all-zero or all +1
    rows, -128 everywhere): that is where sums are largest and overflows hide.
    """
    out_features = 4 * draw(st.integers(1, 6))  # packed checkpoints hold 4 rows per byte
    in_features = draw(st.integers(1, max_in))
    tokens = draw(st.integers(1, 3))
    w_shape, x_shape = (out_features, in_features), (tokens, in_features)
    w = draw(st.one_of(
        arrays(np.int8, w_shape, elements=st.integers(-1, 1)),
        st.integers(-1, 1).map(lambda v: np.full(w_shape, v, dtype=np.int8))))
    x_q = draw(st.one_of(
        arrays(np.int8, x_shape, elements=st.integers(-128, 127)),
        st.integers(-128, 127).map(lambda v: np.full(x_shape, v, dtype=np.int8))))
    return w, x_q


def expected(w: np.ndarray, x_q: np.ndarray) -> np.ndarray:
    """The definition, in int64 so that nothing can overflow: (T, in) x (out, in) -> (T, out)."""
    return x_q.astype(np.int64) @ w.T.astype(np.int64)


class Int16Kernel:
    """A plausible bug: accumulate in int16 "to save memory". Wrong once |sum| > 32767."""

    name = "int16-accumulator (deliberately wrong)"

    def prepare(self, packed: np.ndarray) -> np.ndarray:
        return unpack_ternary(packed)

    def matmul(self, prepared: np.ndarray, x_q: np.ndarray) -> np.ndarray:
        return (x_q.astype(np.int16) @ prepared.T.astype(np.int16)).astype(np.int32)


def check_kernel(kernel: object, tried: list[tuple[int, int, bool]]) -> str | None:
    """Run the property; returns None if it held, else the shrunk counterexample, described."""
    failure: dict[str, str] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True)
    @given(ternary_problem())
    def kernel_equals_definition(problem: tuple[np.ndarray, np.ndarray]) -> None:
        w, x_q = problem
        prepared = kernel.prepare(pack_ternary(w))  # type: ignore[attr-defined]
        got = np.asarray(kernel.matmul(prepared, x_q))  # type: ignore[attr-defined]
        ok = got.shape == (x_q.shape[0], w.shape[0]) and np.array_equal(got, expected(w, x_q))
        tried.append((w.shape[1], int(np.abs(expected(w, x_q)).max()), ok))
        if not ok:
            failure["example"] = (
                f"W {w.shape} with values {sorted(set(w.ravel().tolist()))}, x {x_q.shape} with "
                f"values {sorted(set(x_q.ravel().tolist()))[:4]}: largest |sum| "
                f"{int(np.abs(expected(w, x_q)).max()):,}, past the int16 limit 32,767")
        assert ok

    try:
        kernel_equals_definition()
    except AssertionError:
        return failure.get("example", "failed")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Exactness with Hypothesis.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    fast_module = None
    try:
        import minibitnet.kernels.mypyc as fast_module  # noqa: PLC0415
    except ImportError:
        pass
    is_compiled = getattr(fast_module, "is_compiled", None)
    if is_compiled is not None:
        print(f"fast kernels compiled by mypyc: {is_compiled()}")

    # 1. the property, against every backend this installation registers
    backends = [info.name for info in available_backends()]
    tried_by_backend: dict[str, list[tuple[int, int, bool]]] = {}
    print(f"property: kernel(W, x) == x @ W.T in int64, {EXAMPLES} generated examples each")
    for name in backends:
        tried: list[tuple[int, int, bool]] = []
        result = check_kernel(get_backend(name), tried)
        tried_by_backend[name] = tried
        widths = [t[0] for t in tried]
        awkward = sum(1 for wd in widths if wd % 64 and wd % 40 and wd % 5)
        print(f"  {name:14s} {'holds' if result is None else 'FAILS: ' + result}"
              f" ({len(tried)} examples, widths {min(widths)}..{max(widths)}, {awkward} of them "
              "not a multiple of 64, 40 or 5)")

    # 2. a wrong kernel: Hypothesis finds the overflow and shrinks it
    bad: list[tuple[int, int, bool]] = []
    counterexample = check_kernel(Int16Kernel(), bad)
    first_failure = next(i for i, t in enumerate(bad) if not t[2]) if counterexample else None
    print(f"\n{Int16Kernel.name}:")
    if counterexample is None:
        print(f"  not caught: the property held for all {len(bad)} examples")
    else:
        print(f"  first failure at example {first_failure}; after {len(bad)} examples in all, "
              f"shrunk to: {counterexample}")
    random_rng = np.random.default_rng(0)
    misses = 0
    for _ in range(EXAMPLES):  # the same number of plain random tests, typical values
        w = random_rng.integers(-1, 2, size=(8, 256)).astype(np.int8)
        x_q = np.clip(random_rng.normal(0, 30, size=(1, 256)), -128, 127).astype(np.int8)
        misses += np.array_equal(Int16Kernel().matmul(w, x_q), expected(w, x_q))
    print(f"  {EXAMPLES} plain random tests with typical activations: {misses} passed, "
          f"{EXAMPLES - misses} caught the bug")

    # 3. whole models: equal integers give bit-identical logits
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_checkpoint(Path(tmp) / "model", tiny_config(hidden_size=72,
                                  num_attention_heads=6, num_key_value_heads=2,
                                  intermediate_size=100), seed=11)
        ids = [1, 17, 42, 99, 3, 250]
        reference = minibitnet.load(folder, backend="reference").logits(ids)
        print("\nwhole model, logits of 6 tokens, against the reference backend:")
        for name in backends[1:]:
            same = np.array_equal(minibitnet.load(folder, backend=name).logits(ids), reference)
            print(f"  {name:14s} bit-identical: {same}")
        if len(backends) == 1:
            print("  (only the reference backend is registered in this installation)")

    # Figure: what Hypothesis tried, and how it shrank the failure.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    reference_tried = tried_by_backend[backends[-1]]
    ax1.hist([t[0] for t in reference_tried], bins=30, color="#2e86de")
    for multiple, colour in ((64, "#c0392b"), (40, "#27ae60")):
        for edge in range(multiple, 641, multiple):
            ax1.axvline(edge, color=colour, linewidth=0.6, alpha=0.6)
    ax1.set_xlabel("input width (columns); lines: multiples of 64 (red), 40 (green)")
    ax1.set_ylabel("examples generated")
    ax1.set_title(f"Shapes tried for {backends[-1]!r}")
    sizes = [t[1] for t in bad]
    colours = ["#c0392b" if not t[2] else "#95a5a6" for t in bad]
    ax2.scatter(range(len(bad)), sizes, c=colours, s=10)
    ax2.axhline(32767, color="black", linestyle="--", linewidth=0.8, label="int16 limit 32767")
    ax2.set_ylim(0, max(sizes + [32767]) * 1.15)
    ax2.set_xlabel("example number (in the order Hypothesis tried them)")
    ax2.set_ylabel("largest |sum| in the example")
    ax2.set_title("Int16 bug: failures (red), then shrinking")
    ax2.legend(loc="center right", fontsize=8)
    fig.suptitle("Tutorial 11: property-based testing of the ternary kernels")
    fig.tight_layout()
    fig.savefig(out / "11_hypothesis.png", dpi=90)
    plt.close(fig)
    print(f"\nfigure: {out / '11_hypothesis.png'}")


if __name__ == "__main__":
    main()
