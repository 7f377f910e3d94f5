"""Tutorial 7: the BitNet b1.58 block, step by step.

A block is a LLaMA block with two extra RMSNorms and a squared ReLU::

    h = h + o_proj(attn_sub_norm(attention(rope(q_proj(x)), rope(k_proj(x)), v_proj(x))))
        where x = input_layernorm(h)
    h = h + down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)))
        where x = post_attention_layernorm(h)

Every projection is a BitLinear (tutorial 3). The sub-norms matter for ternary models: they
bring the input of o_proj and down_proj back to unit scale before its int8 quantisation. This
tutorial runs block 0 of a model one step at a time with the package's own functions, checks the
result equals the model's block bit for bit, shows the RoPE relative-position property, and draws
the attention maps.

    python tutorials/07_bitnet_block.py --out docs/tutorials/figures
"""

from __future__ import annotations

import argparse
import tempfile
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
from minibitnet.core.rope import apply_rope, rope_tables  # noqa: E402
from minibitnet.core.bfloat16 import bf16_to_float32  # noqa: E402
from minibitnet.tools.synthetic import tiny_config, write_checkpoint  # noqa: E402

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "figures"
PROMPT = "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer"


def load_model(tmp: Path) -> tuple[minibitnet.Model, list[int], list[str]]:
    """The built-in model and the prompt's tokens; a random model and ids if it is absent."""
    try:
        model = minibitnet.load()
        tok = tokenizer.load(builtin_model_dir())
        ids = tok.encode(PROMPT)
        print(f"model: the built-in model, {builtin_model_dir().name}")
        return model, ids, [tok.decode([i]) for i in ids]
    except minibitnet.MinibitnetError:
        config = tiny_config(vocab_size=512, hidden_size=128, intermediate_size=256,
                             num_attention_heads=8, num_key_value_heads=2)
        model = minibitnet.load(write_checkpoint(tmp / "model", config, seed=7))
        ids = [int(i) for i in np.random.default_rng(7).integers(3, 512, size=20)]
        print("model: the built-in model is not installed here, so this run uses a random "
              "synthetic model; its attention maps show the causal mask and RoPE, not language")
        return model, ids, [str(i) for i in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description="The BitNet b1.58 block, step by step.")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        model, ids, labels = load_model(Path(tmp))
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

        def rms(a: np.ndarray) -> float:
            return float(np.sqrt(np.mean(np.square(a))))

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


if __name__ == "__main__":
    main()
