"""``minibitnet ops``: operations, bytes and energy of one forward token, ternary vs FP16."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import load_config
from ..errors import ArgumentError
from ..formats.locate import resolve_model
from ..tools.opcount import ENERGY_SOURCE, HOROWITZ_45NM_PJ, ModelCost, OpReport, count_model_ops
from ..tools.wording import plural

DEFAULT_CONTEXT = 512
ROWS = [  # (label, TokenCost attribute)
    ("integer adds/subtracts", "int_add"),
    ("integer multiplies", "int_mult"),
    ("float adds", "float_add"),
    ("float multiplies", "float_mult"),
    ("bytes of weights read", "weight_bytes"),
    ("bytes of KV cache read", "kv_bytes"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "ops",
        help="count adds, multiplies, bytes read and energy per token, ternary vs FP16",
        description="Count what one forward token costs in a model folder: integer adds and "
                    "subtracts (one per non-zero ternary weight, read from the checkpoint), "
                    "multiplies, bytes of weights read, and an energy estimate from published "
                    "per-operation figures (Horowitz, ISSCC 2014, 45 nm), beside an FP16 model "
                    "of the same shape. Nothing is run: the counts follow from the shapes and "
                    "the weights.",
    )
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder with config.json and model.safetensors, or a Hugging "
                             "Face repo id already in the local cache (default: the built-in "
                             "model)")
    parser.add_argument("--context", type=int, default=None, metavar="S",
                        help="keys the token attends to, i.e. its position + 1 (default 512, "
                             "or the model's context length if shorter)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.set_defaults(run=run)


def _totals(cost: ModelCost) -> dict[str, float]:
    total = cost.total
    out: dict[str, float] = {attr: getattr(total, attr) for _, attr in ROWS}
    out["arithmetic_uj"] = total.arithmetic_pj() / 1e6
    out["memory_uj"] = total.memory_pj() / 1e6
    out["energy_uj"] = out["arithmetic_uj"] + out["memory_uj"]
    return out


def report_dict(report: OpReport) -> dict[str, object]:
    """The JSON form: totals per model, per-part counts, and the energy table used."""
    def parts(cost: ModelCost) -> dict[str, dict[str, int]]:
        return {name: {attr: getattr(part, attr) for _, attr in ROWS}
                for name, part in cost.parts.items()}
    return {
        "context": report.context,
        "ternary_weights": report.ternary_weights,
        "nonzero_weights": report.nonzero_weights,
        "ternary": _totals(report.ternary),
        "fp16": _totals(report.fp16),
        "ternary_parts": parts(report.ternary),
        "fp16_parts": parts(report.fp16),
        "energy_pj_per_op": HOROWITZ_45NM_PJ,
        "energy_source": ENERGY_SOURCE,
    }


def _print_table(report: OpReport, model_dir: Path) -> None:
    c = report.config
    ternary, fp16 = _totals(report.ternary), _totals(report.fp16)
    print(f"model: {model_dir}")
    print(f"shape: hidden {c.hidden_size}, intermediate {c.intermediate_size}, "
          f"{plural(c.num_hidden_layers, 'layer')}, {plural(c.num_attention_heads, 'head')} / "
          f"{plural(c.num_key_value_heads, 'KV head')}, vocabulary {c.vocab_size}")
    zero_share = 1 - report.nonzero_weights / report.ternary_weights
    print(f"ternary weights: {report.ternary_weights:,} ({zero_share:.1%} zeros, which cost "
          "nothing)")
    print(f"one forward token attending to {plural(report.context, 'position')}:")
    print(f"  {'':26s} {'ternary':>18s} {'FP16, same shape':>18s}")
    for label, attr in ROWS:
        print(f"  {label:26s} {int(ternary[attr]):>18,d} {int(fp16[attr]):>18,d}")
    for label, key in (("energy, arithmetic (uJ)", "arithmetic_uj"),
                       ("energy, DRAM reads (uJ)", "memory_uj"),
                       ("energy, total (uJ)", "energy_uj")):
        print(f"  {label:26s} {ternary[key]:>18,.2f} {fp16[key]:>18,.2f}")
    ternary_proj = report.ternary.parts["ternary projections"].arithmetic_pj()
    fp16_proj = report.fp16.parts["FP16 projections"].arithmetic_pj()
    print(f"  {'energy, projections (uJ)':26s} {ternary_proj / 1e6:>18,.2f} {fp16_proj / 1e6:>18,.2f}"
          f"  ({fp16_proj / ternary_proj:.0f}x less arithmetic energy in the linear layers)")
    print("where the ternary model's arithmetic energy goes:")
    total_pj = report.ternary.total.arithmetic_pj()
    for name, part in report.ternary.parts.items():
        share = part.arithmetic_pj() / total_pj if total_pj else 0.0
        print(f"  {name:26s} {part.arithmetic_pj() / 1e6:>12,.2f} uJ  {share:6.1%}")
    t = HOROWITZ_45NM_PJ
    print(f"energy per operation: {ENERGY_SOURCE}: int32 add {t['int32_add']} pJ, FP16 add "
          f"{t['fp16_add']} pJ, FP16 multiply {t['fp16_mult']} pJ, DRAM "
          f"{t['dram_byte']:.1f} pJ/byte (1.3 nJ per 64 bits)")
    print("not counted: element-wise work (norms, RoPE, softmax exponentials, squared ReLU, "
          "residual adds), under 1% of the operations")


def run(args: argparse.Namespace) -> int:
    if args.context is not None and args.context < 1:
        raise ArgumentError(f"--context is {args.context}, expected an integer >= 1")
    model_dir = resolve_model(args.model)
    limit = load_config(model_dir).max_position_embeddings
    context = min(DEFAULT_CONTEXT, limit) if args.context is None else args.context
    if context > limit:
        raise ArgumentError(f"--context is {context}, expected at most the model's "
                            f"{limit} positions (max_position_embeddings)")
    report = count_model_ops(model_dir, context=context)
    if args.json:
        print(json.dumps(report_dict(report)))
    else:
        _print_table(report, model_dir)
    return 0
