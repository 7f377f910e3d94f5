"""Tutorial 7: the BitNet b1.58 block, step by step.

A block is a LLaMA block with two extra RMSNorms and a squared ReLU::

    h = h + o_proj(attn_sub_norm(attention(rope(q_proj(x)), rope(k_proj(x)), v_proj(x))))
        where x = input_layernorm(h)
    h = h + down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)))
        where x = post_attention_layernorm(h)

Every projection is a BitLinear (tutorial 3). This tutorial runs block 0 of a model one step at
a time with the package's own functions, checks the result equals the model's block bit for bit,
shows the RoPE relative-position property and draws the attention maps. Then it measures what
the two sub-norms do. Not what they are often said to do: per-token absmax quantisation divides
each token by its own largest entry, so scaling a token, which is all a unit-gain RMSNorm does,
changes none of its int8 codes (shown below on about a million values). What they do set is the
scale of the projection's *output* (o_proj and down_proj see a bounded input however large the
residual stream grows) and, through the learned per-channel gain, which channels take how much
of the int8 range: the training-stability argument of SubLN ("Foundation Transformers",
arXiv 2210.06423) that BitNet adopts.

    python tutorials/07_bitnet_block.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: figures go to files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

import minibitnet  # noqa: E402
from minibitnet import tokenizer  # noqa: E402
from minibitnet.core.attention import grouped_query_attention, softmax  # noqa: E402
from minibitnet.loader import builtin_model_dir  # noqa: E402
from minibitnet.core.mlp import relu_squared  # noqa: E402
from minibitnet.core.norm import rms_norm  # noqa: E402
from minibitnet.core.quant import quantize_activations  # noqa: E402
from minibitnet.core.rope import apply_rope, rope_tables  # noqa: E402
from minibitnet.core.bfloat16 import bf16_to_float32  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
PROMPT = "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer"
TEXT = Path(__file__).resolve().parent / "data" / "sonnets_18_116.txt"  # real text to measure on
# The sub-norm measurements run the model as loaded (None), or with every gain of both sub-norms
# of every layer set to this number.
SUB_NORM_GAIN = None
# True: remove both sub-norms from every block, as a LLaMA block has none.
DROP_SUB_NORMS = False


def rms(a: np.ndarray) -> float:
    """Root-mean-square of every entry of ``a``."""
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


class Recorder:
    """Stands in for one callable of the model (a block, a projection) and keeps the input and
    output of every call. The model still runs its own forward pass; the recorder only reads
    what that pass hands over (checked below: the logits are the same bit for bit)."""

    def __init__(self, wrapped: Callable[..., np.ndarray]) -> None:
        self.wrapped = wrapped
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def __call__(self, x: np.ndarray, *args, **kwargs) -> np.ndarray:
        self.inputs.append(x)
        self.outputs.append(self.wrapped(x, *args, **kwargs))
        return self.outputs[-1]


def load_model(tmp: Path) -> tuple[minibitnet.Model, list[int], list[str], list[int], str]:
    """The built-in model, the prompt's tokens and their labels, up to a context of tokens of
    TEXT and its name; a random model and random ids if the built-in model is absent."""
    try:
        model = minibitnet.load()
        tok = tokenizer.load(builtin_model_dir())
        ids = tok.encode(PROMPT)
        text = TEXT.read_text(encoding="utf-8")
        text_ids = tok.encode(text)[:model.config.max_position_embeddings]  # one full context
        print(f"model: the built-in model, {builtin_model_dir().name}")
        return model, ids, [tok.decode([i]) for i in ids], text_ids, TEXT.name
    except minibitnet.MinibitnetError:
        config = tiny_config(vocab_size=512, hidden_size=128, intermediate_size=256,
                             num_attention_heads=8, num_key_value_heads=2)
        model = minibitnet.load(write_checkpoint(tmp / "model", config, seed=7))
        ids = [int(i) for i in np.random.default_rng(7).integers(3, 512, size=20)]
        text_ids = [int(i) for i in np.random.default_rng(8).integers(3, 512, size=128)]
        print("model: the built-in model is not installed here, so this run uses a random "
              "synthetic model; its attention maps show the causal mask and RoPE, not language")
        return model, ids, [str(i) for i in ids], text_ids, "random token ids"


# ---- the sub-norms: what they do not do, and what they do ----

def count_scaled_code_changes(rng: np.random.Generator) -> None:
    """Quantise tokens, then the same tokens scaled, and count the int8 codes that differ."""
    loudness = np.exp(rng.normal(0.0, 1.0, size=(64, 1)))  # (T, 1) tokens of varied magnitude
    x = (rng.standard_normal((64, 688)) * loudness).astype(np.float32)  # (T, F)
    codes, _ = quantize_activations(x)  # (T, F) int8
    factors = np.logspace(-3, 3, 21)
    differing = sum(int(np.count_nonzero(quantize_activations(x * np.float32(f))[0] != codes))
                    for f in factors)
    unit_gain = rms_norm(x, np.ones(x.shape[1], np.float32), 1e-5)  # (T, F) every token at rms 1
    after_norm = int(np.count_nonzero(quantize_activations(unit_gain)[0] != codes))
    print(f"\n{x.shape[0]} tokens x {x.shape[1]} channels, each token scaled by {len(factors)} "
          f"factors from 0.001 to 1000: {differing} of {len(factors) * codes.size:,} int8 codes "
          f"differ; after a unit-gain RMSNorm: {after_norm} of {codes.size:,}")


def adjust_sub_norms(model: minibitnet.Model) -> None:
    """Apply SUB_NORM_GAIN and DROP_SUB_NORMS to every block of ``model``."""
    for block in model.blocks:
        attn, ffn = block.attention, block.feed_forward
        if DROP_SUB_NORMS:
            attn.attn_sub_norm, ffn.ffn_sub_norm = None, None
        elif SUB_NORM_GAIN is not None and attn.attn_sub_norm is not None:
            attn.attn_sub_norm = np.full_like(attn.attn_sub_norm, SUB_NORM_GAIN)
            ffn.ffn_sub_norm = np.full_like(ffn.ffn_sub_norm, SUB_NORM_GAIN)


def next_token_loss(logits: np.ndarray, ids: list[int]) -> float:
    """Mean cross-entropy (nats) of each next token of ``ids`` under ``logits`` (T, V)."""
    shifted = logits[:-1].astype(np.float64)  # (T-1, V) predictions of tokens 1..T-1
    peak = shifted.max(axis=-1, keepdims=True)  # (T-1, 1)
    log_norm = peak[:, 0] + np.log(np.exp(shifted - peak).sum(axis=-1))  # (T-1,)
    return float(np.mean(log_norm - shifted[np.arange(len(ids) - 1), ids[1:]]))


def record_forward(model: minibitnet.Model, ids: list[int]
                   ) -> tuple[np.ndarray, list[Recorder], list[Recorder], list[Recorder]]:
    """The model's own forward pass over ``ids``, with a Recorder around every block, o_proj and
    down_proj; returns the logits and the recorders, which are then taken out again."""
    blocks = [Recorder(block) for block in model.blocks]
    o_projs = [Recorder(block.attention.o_proj) for block in model.blocks]
    down_projs = [Recorder(block.feed_forward.down_proj) for block in model.blocks]
    originals = list(model.blocks)
    for block, o_proj, down_proj in zip(originals, o_projs, down_projs):
        block.attention.o_proj, block.feed_forward.down_proj = o_proj, down_proj
    model.blocks = blocks
    try:
        logits = model.logits(ids)  # (T, V)
    finally:
        model.blocks = originals
        for block, o_proj, down_proj in zip(originals, o_projs, down_projs):
            block.attention.o_proj, block.feed_forward.down_proj = o_proj.wrapped, down_proj.wrapped
    return logits, blocks, o_projs, down_projs


def code_share_by_gain(x: np.ndarray, gain: np.ndarray) -> tuple[float, float, float, float]:
    """Mean |int8 code| of the channels in the top and the bottom quarter of ``gain``, for x as
    the model quantises it and for x / gain (the same sub-norm with every gain 1).

    x: (T, N) float32, a sub-norm's output; gain: (N,) float32
    """
    order = np.argsort(gain)  # channels, smallest gain first
    quarter = len(gain) // 4
    low, high = order[:quarter], order[-quarter:]
    learned = np.abs(quantize_activations(x)[0].astype(np.int32))  # (T, N)
    unit = np.abs(quantize_activations(x / gain)[0].astype(np.int32))  # (T, N)
    return (float(learned[:, high].mean()), float(learned[:, low].mean()),
            float(unit[:, high].mean()), float(unit[:, low].mean()))


def show_sub_norms(model: minibitnet.Model, hidden: np.ndarray, ids: list[int], text_name: str,
                   out: Path) -> None:
    """Why BitNet has sub-norms, measured: int8 codes ignore a token's scale; the sub-norm fixes
    the scale of the projection's output, and its gains share out the int8 range by channel.

    hidden: (T, F) float32, block 0's gated product before ffn_sub_norm, on the prompt
    ids:    the tokens of real text to measure the whole model on, from the file text_name
    """
    c = model.config
    print("\n---- sub-norms ----")
    count_scaled_code_changes(np.random.default_rng(3))
    down_proj = model.blocks[0].feed_forward.down_proj
    unit_gain = rms_norm(hidden, np.ones(hidden.shape[1], np.float32), c.rms_norm_eps)  # (T, F)
    changed = int(np.count_nonzero(quantize_activations(hidden)[0]
                                   != quantize_activations(unit_gain)[0]))
    print(f"layer 0 down_proj on the prompt, fed the gated product as it is "
          f"(rms {rms(hidden):.2f}) or after a unit-gain RMSNorm: {changed} of {hidden.size:,} int8 codes differ, but "
          f"its output rms is {rms(down_proj(hidden)):.2f} against {rms(down_proj(unit_gain)):.3f}")

    reference_loss = next_token_loss(model.logits(ids), ids)
    adjust_sub_norms(model)
    plain = model.logits(ids)  # (T, V) the model as adjusted, without recorders
    logits, blocks, o_projs, down_projs = record_forward(model, ids)
    print(f"\n{len(ids)} tokens of {text_name}; recorders around every block, o_proj and "
          f"down_proj leave the logits equal bit for bit: {np.array_equal(plain, logits)}")
    if DROP_SUB_NORMS or SUB_NORM_GAIN is not None:
        print(f"sub-norms {'dropped' if DROP_SUB_NORMS else f'with every gain {SUB_NORM_GAIN}'}: "
              f"next-token loss {next_token_loss(logits, ids):.3f} nats, against "
              f"{reference_loss:.3f} with the learned gains")
    else:
        print(f"next-token loss: {reference_loss:.3f} nats")
    residual = [rms(block.inputs[0]) for block in blocks] + [rms(blocks[-1].outputs[0])]
    o_in = [rms(o_proj.inputs[0]) for o_proj in o_projs]
    down_in = [rms(down_proj.inputs[0]) for down_proj in down_projs]
    print("rms over all tokens:  layer  residual stream in  o_proj input  down_proj input")
    for index in range(c.num_hidden_layers):
        print(f"{index:>27d}  {residual[index]:>18.3f}  {o_in[index]:>12.3f}  "
              f"{down_in[index]:>15.3f}")
    print(f"residual stream after the last block: rms {residual[-1]:.3f}, "
          f"{residual[-1] / residual[0]:.0f} times the embedding's")

    gains = [(block.attention.attn_sub_norm, block.feed_forward.ffn_sub_norm)
             for block in model.blocks]
    if gains[0][0] is not None:
        print("learned gains, min / median / max, and the mean |int8 code| of the quarter of "
              "channels with the largest gains vs the quarter with the smallest (in brackets: "
              "the same inputs with every gain 1):")
        for index, (attn_gain, ffn_gain) in enumerate(gains):
            for name, gain, x in (("attn_sub_norm", attn_gain, o_projs[index].inputs[0]),
                                  ("ffn_sub_norm", ffn_gain, down_projs[index].inputs[0])):
                high, low, unit_high, unit_low = code_share_by_gain(x, gain)
                print(f"  layer {index} {name:13s} {gain.min():5.2f} / {np.median(gain):4.2f} / "
                      f"{gain.max():4.2f}   codes {high:5.1f} vs {low:5.1f}  "
                      f"({unit_high:5.1f} vs {unit_low:5.1f})")

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
    layers = np.arange(c.num_hidden_layers)
    ax1.semilogy(np.arange(c.num_hidden_layers + 1), residual, "o-", color="#555",
                 label="residual stream (block input; last: output)")
    ax1.semilogy(layers, o_in, "s-", color="#2e86de", label="o_proj input (after attn_sub_norm)")
    ax1.semilogy(layers, down_in, "^-", color="#e67e22",
                 label="down_proj input (after ffn_sub_norm)")
    ax1.set_xlabel("layer")
    ax1.set_ylabel("rms over the tokens (log scale)")
    ax1.set_title(f"Activation scale on {len(ids)} tokens of {text_name}")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.legend(fontsize=7)
    if gains[0][0] is not None:
        colours = plt.cm.viridis(np.linspace(0, 0.85, c.num_hidden_layers))
        for index, (attn_gain, ffn_gain) in enumerate(gains):
            ax2.plot(np.sort(attn_gain)[::-1], color=colours[index], label=f"layer {index} attn")
            ax2.plot(np.sort(ffn_gain)[::-1], "--", color=colours[index],
                     label=f"layer {index} ffn")
            codes = np.abs(quantize_activations(o_projs[index].inputs[0])[0].astype(np.int32))
            ax3.scatter(attn_gain, codes.mean(axis=0), s=4, color=colours[index],
                        label=f"layer {index}")
        ax2.legend(fontsize=6, ncol=2)
        ax3.legend(fontsize=7, markerscale=3)
    ax2.set_xlabel("channel, sorted by gain")
    ax2.set_ylabel("learned gain γ")
    ax2.set_title("Sub-norm gains by channel (solid: attn, dashed: ffn)")
    ax3.set_xlabel("attn_sub_norm gain γ of the channel")
    ax3.set_ylabel("mean |int8 code| in o_proj's input")
    ax3.set_title("A channel's gain and its share of the int8 range")
    fig.suptitle("Tutorial 7: what the sub-norms do — output scale and per-channel gain")
    fig.tight_layout()
    fig.savefig(out / "07_sub_norms.png", dpi=80)
    plt.close(fig)
    print(f"figure: {out / '07_sub_norms.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description="The BitNet b1.58 block, step by step.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        model, ids, labels, text_ids, text_name = load_model(Path(tmp))
        c = model.config
        print(f"shape: D={c.hidden_size}, F={c.intermediate_size}, {c.num_hidden_layers} layers, "
              f"H={c.num_attention_heads} query heads sharing K={c.num_key_value_heads} "
              f"key/value heads (groups of {c.num_attention_heads // c.num_key_value_heads}), "
              f"Hd={c.head_dim}")
        print(f"prompt: {len(ids)} tokens")

        # ---- block 0, one step at a time ----
        block = model.blocks[0]
        attn, ffn = block.attention, block.feed_forward
        T = len(ids)
        h = bf16_to_float32(model.embed_tokens[np.array(ids)])  # (T, D) embeddings
        cos, sin = rope_tables(np.arange(T), c.head_dim, c.rope_theta)  # (T, Hd) each

        x = rms_norm(h, block.input_layernorm, c.rms_norm_eps)  # (T, D)
        print(f"\nembedding rms {rms(h):.4f} -> input_layernorm -> rms {rms(x):.3f}")
        q = attn.q_proj(x).reshape(T, c.num_attention_heads, c.head_dim)  # (T, H, Hd)
        k = attn.k_proj(x).reshape(T, c.num_key_value_heads, c.head_dim)  # (T, K, Hd)
        v = attn.v_proj(x).reshape(T, c.num_key_value_heads, c.head_dim)  # (T, K, Hd)
        q = apply_rope(q.transpose(1, 0, 2), cos, sin)  # (H, T, Hd)
        k = apply_rope(k.transpose(1, 0, 2), cos, sin)  # (K, T, Hd)
        v = v.transpose(1, 0, 2)  # (K, T, Hd)
        print(f"q, k, v (ternary BitLinear, then RoPE on q and k): {q.shape}, {k.shape}, "
              f"{v.shape}")
        attended = grouped_query_attention(q, k, v, start=0)  # (T, H*Hd)
        normed = rms_norm(attended, attn.attn_sub_norm, c.rms_norm_eps)  # (T, H*Hd)
        print(f"attention output rms {rms(attended):.4f} -> attn_sub_norm -> rms "
              f"{rms(normed):.3f} (what o_proj's int8 quantiser sees)")
        h = h + attn.o_proj(normed)  # (T, D) residual
        x = rms_norm(h, block.post_attention_layernorm, c.rms_norm_eps)  # (T, D)
        gate = relu_squared(ffn.gate_proj(x))  # (T, F)
        hidden = gate * ffn.up_proj(x)  # (T, F)
        print(f"squared ReLU: {np.mean(gate == 0):.0%} of the gate activations are exactly 0")
        hidden_normed = rms_norm(hidden, ffn.ffn_sub_norm, c.rms_norm_eps)  # (T, F)
        print(f"gated hidden rms {rms(hidden):.4f} -> ffn_sub_norm -> rms {rms(hidden_normed):.3f}")
        h = h + ffn.down_proj(hidden_normed)  # (T, D)

        # the same block, as the model runs it
        cache = model.new_cache()
        h_model = block(bf16_to_float32(model.embed_tokens[np.array(ids)]), cos, sin, cache, 0)
        print(f"step by step == model's block: {np.array_equal(h, h_model)} (bit for bit)")

        # ---- RoPE: the score depends on the distance only ----
        rng = np.random.default_rng(0)
        qv = rng.standard_normal((1, 1, c.head_dim)).astype(np.float32)  # (heads, T, Hd)
        kv = rng.standard_normal((1, 1, c.head_dim)).astype(np.float32)
        print("\nRoPE: q at position p + 3, k at position p; q.k for several p:")
        for p in (0, 10, 100):
            cos_q, sin_q = rope_tables(np.array([p + 3]), c.head_dim, c.rope_theta)
            cos_k, sin_k = rope_tables(np.array([p]), c.head_dim, c.rope_theta)
            score = float(np.sum(apply_rope(qv, cos_q, sin_q) * apply_rope(kv, cos_k, sin_k)))
            print(f"  p = {p:3d}: q.k = {score:.5f}")

        # ---- attention maps: first and last layer ----
        maps = []
        for index in (0, c.num_hidden_layers - 1):
            cache = model.new_cache()
            h_in = bf16_to_float32(model.embed_tokens[np.array(ids)])  # (T, D)
            for earlier in model.blocks[:index]:
                h_in = earlier(h_in, cos, sin, cache, model.blocks.index(earlier))
            layer = model.blocks[index]
            x = rms_norm(h_in, layer.input_layernorm, c.rms_norm_eps)
            q = layer.attention.q_proj(x).reshape(T, c.num_attention_heads, c.head_dim)
            k = layer.attention.k_proj(x).reshape(T, c.num_key_value_heads, c.head_dim)
            q = apply_rope(q.transpose(1, 0, 2), cos, sin)  # (H, T, Hd)
            k = apply_rope(k.transpose(1, 0, 2), cos, sin)  # (K, T, Hd)
            group = c.num_attention_heads // c.num_key_value_heads
            k_per_head = np.repeat(k, group, axis=0)  # (H, T, Hd): head h reads kv head h//group
            scores = q @ k_per_head.transpose(0, 2, 1) / np.sqrt(c.head_dim)  # (H, T, T)
            scores = np.where(np.tril(np.ones((T, T), bool)), scores, -np.inf)  # causal
            maps.append((index, softmax(scores)))  # (H, T, T)

        heads = min(4, c.num_attention_heads)
        fig, axes = plt.subplots(2, heads, figsize=(3.0 * heads, 6.4), squeeze=False)
        for row, (index, probs) in enumerate(maps):
            for head in range(heads):
                ax = axes[row, head]
                image = ax.imshow(probs[head], cmap="viridis", vmin=0, vmax=1)
                ax.set_title(f"layer {index}, head {head}", fontsize=9)
                ax.set_xlabel("key position (token)", fontsize=8)
                if head == 0:
                    ax.set_ylabel("query position (token)", fontsize=8)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=axes, fraction=0.02, label="attention probability")
        fig.suptitle("Tutorial 7: attention maps (row = a query token, its weights over "
                     "earlier tokens)")
        fig.savefig(out / "07_attention_maps.png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        first = maps[-1][1]
        top = np.argmax(first[:, -1, :], axis=-1)  # (H,) most attended key of the last query
        print(f"\nlast layer, last token {labels[-1]!r}: most attended earlier tokens by head: "
              + ", ".join(repr(labels[t]) for t in top[:heads]))
        print(f"figure: {out / '07_attention_maps.png'}")

        show_sub_norms(model, hidden, text_ids, text_name, out)


if __name__ == "__main__":
    main()
