"""The training loop: batches, loss and gradients, AdamW, a progress bar, checkpoints, resume.

A run lives in one folder::

    OUT/tokenizer.json, tokenizer_config.json   the byte-level BPE trained on --data at the start
    OUT/checkpoint.npz                          latest state, written atomically every N steps
    OUT/loss.csv                                step, tokens, loss, lr, seconds, validation loss
    OUT/model/                                  the exported model (ternary runs) at the end
    OUT/model-float.safetensors                 the latent weights unquantised (--no-quant runs)

checkpoint.npz is a plain NumPy archive (read with ``allow_pickle=False``): ``param/NAME``,
``adam_m/NAME``, ``adam_v/NAME`` float32 arrays, ``step`` and ``adam_t``, the ``history``
table, and ``meta``, a JSON string with the config and the run settings. The batch of each step
is a function of (seed, step) (:func:`data.sample_batch`), so a resumed run takes exactly the
steps the uninterrupted run would have taken, and ends with the same weights bit for bit.
"""

from __future__ import annotations

import json
import math
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from ..config import ModelConfig, config_from_dict
from ..errors import ArgumentError, CheckpointError, TokenizerError, one_line
from ..files import atomic_write, atomic_write_text, open_regular, read_bounded
from ..tokenizer.bpe_file import MAX_TOKENIZER_CONFIG_BYTES, MAX_TOKENIZER_JSON_BYTES
from ..tools.progress import ProgressBar
from ..tools.wording import plural
from . import bpe
from .data import read_texts, sample_batch, tokenize_texts
from .export import export_float, export_model
from .model import Params, forward_logits, init_params, is_matrix, loss_and_grads
from .optim import AdamW, Schedule

CHECKPOINT_FILE = "checkpoint.npz"
FLOAT_WEIGHTS_FILE = "model-float.safetensors"  # the exported weights of a --no-quant run
HISTORY_COLUMNS = ("step", "tokens", "loss", "lr", "seconds", "val_loss")
# A NumPy training run keeps three float32 copies of its parameters (weights, Adam's m and v):
# 16 GiB is 1.4 billion parameters, far past what it can train in days.
MAX_CHECKPOINT_BYTES = 16 * 2**30
VOCAB_MULTIPLE = 64  # the embedding is padded to a multiple of 64 rows (aligned matmuls)


@dataclass(frozen=True)
class Settings:
    """Everything that decides the result of a run (saved in the checkpoint)."""

    data: tuple[str, ...]  # training text files
    steps: int  # optimiser steps
    batch_size: int  # sequences per step (B)
    context: int  # tokens per sequence (T), also max_position_embeddings
    lr: float  # peak learning rate
    warmup: int  # warm-up steps
    weight_decay: float  # peak weight decay (stage 1)
    seed: int  # initial weights, and the batches through (seed, step)
    quantize: bool  # ternary weights and int8 activations in the forward pass
    bpe_vocab: int  # BPE tokens (single bytes + merges), before the special tokens
    checkpoint_every: int  # steps between checkpoints
    val: str | None = None  # held-out text for the validation loss in loss.csv
    val_every: int = 100  # steps between validation losses
    val_windows: int = 16  # windows of the context length scored each time


def model_config(shape: dict[str, Any], vocab_size: int, context: int, bos_id: int,
                 eos_ids: list[int]) -> ModelConfig:
    """A validated ModelConfig from the shape fields (hidden_size, layers, heads ...)."""
    raw = {"model_type": "bitnet", "vocab_size": vocab_size, "max_position_embeddings": context,
           "bos_token_id": bos_id, "eos_token_id": eos_ids, "rope_theta": 10000.0, **shape}
    return config_from_dict(raw, "--config")


# ---- checkpoints ----


def save_checkpoint(out_dir: Path, params: Params, optimizer: AdamW, step: int,
                    history: list[list[float]], meta: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {"step": np.array(step), "adam_t": np.array(optimizer.t),
                                     "history": np.array(history, dtype=np.float64).reshape(
                                         -1, len(HISTORY_COLUMNS)),
                                     "meta": np.array(json.dumps(meta))}
    for name in params:
        arrays[f"param/{name}"] = params[name]
        arrays[f"adam_m/{name}"] = optimizer.m[name]
        arrays[f"adam_v/{name}"] = optimizer.v[name]
    with atomic_write(out_dir / CHECKPOINT_FILE) as handle:
        np.savez(handle, **arrays)
    lines = [",".join(HISTORY_COLUMNS)]
    lines += [f"{int(r[0])},{int(r[1])},{r[2]:.5f},{r[3]:.3e},{r[4]:.1f},"
              + ("" if math.isnan(r[5]) else f"{r[5]:.5f}") for r in history]
    atomic_write_text(out_dir / "loss.csv", "\n".join(lines) + "\n")


def _check_array_sizes(handle: BinaryIO) -> None:
    """Every array of the .npz archive on ``handle`` holds no more than its member's bytes, and
    all of them together at most MAX_CHECKPOINT_BYTES, checked from the headers before any
    array is read (a header may declare a shape of terabytes over a few bytes of data).

    raises: ValueError (or zipfile.BadZipFile) saying what is wrong; ``handle`` is left at 0
    """
    with zipfile.ZipFile(handle) as archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        total = sum(info.file_size for info in members)
        if total > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"its arrays hold {total:,} bytes, more than the "
                             f"{MAX_CHECKPOINT_BYTES:,}-byte limit")
        for info in members:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:  # 3.0 only for structured dtypes with non-Latin-1 field names
                    raise ValueError(f"{info.filename} is .npy version {version}, expected "
                                     "1.0 or 2.0")
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise ValueError(f"{info.filename} declares {shape} {dtype} ({declared:,} bytes) "
                                 f"in {info.file_size:,} bytes")
    handle.seek(0)


def load_checkpoint(path: Path) -> tuple[Params, dict[str, np.ndarray], dict[str, np.ndarray],
                                         int, int, list[list[float]], dict[str, Any]]:
    """params, adam m, adam v, step, adam t, history, meta of a checkpoint.npz."""
    # opened through open_regular: np.load of a FIFO's path would block
    handle = open_regular(path, CheckpointError, "the checkpoint.npz of a training run",
                          missing="no checkpoint to resume from")
    try:
        with handle:
            _check_array_sizes(handle)
            with np.load(handle, allow_pickle=False) as archive:
                params = {k[6:]: archive[k] for k in archive.files if k.startswith("param/")}
                m = {k[7:]: archive[k] for k in archive.files if k.startswith("adam_m/")}
                v = {k[7:]: archive[k] for k in archive.files if k.startswith("adam_v/")}
                step, adam_t = int(archive["step"]), int(archive["adam_t"])
                history = archive["history"].tolist()
                meta = json.loads(str(archive["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a training checkpoint ({one_line(str(exc))})") \
            from None
    return params, m, v, step, adam_t, history, meta


# ---- validation ----


def validation_loss(params: Params, config: ModelConfig, tokens: np.ndarray, windows: int,
                    quantize: bool) -> float:
    """Mean next-token loss (nats) over ``windows`` evenly spaced windows of the context."""
    context = config.max_position_embeddings
    starts = np.linspace(0, tokens.size - context - 1, windows).astype(np.int64)  # (W,)
    span = tokens[starts[:, None] + np.arange(context + 1)[None, :]].astype(np.int64)
    logits = forward_logits(params, config, span[:, :-1], quantize)  # (W, T, V)
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, span[:, 1:, None], axis=-1)  # (W, T, 1)
    return float(-picked.mean())


# ---- the run ----


def prepare(out_dir: Path, settings: Settings, shape: dict[str, Any],
            log: TextIO) -> ModelConfig:
    """Train the tokenizer (if OUT has none yet) and return the model config."""
    tokenizer_path = out_dir / "tokenizer.json"
    if tokenizer_path.exists():
        ranks = bpe.read_ranks(tokenizer_path)
    else:
        texts = read_texts(settings.data)  # a bad file is refused before any work is announced
        log.write(f"training a {settings.bpe_vocab}-token byte-level BPE on "
                  f"{plural(len(settings.data), 'file')} ...\n")
        counts = bpe.count_chunks(texts)
        # the bar counts the tokens learned, one per merge, after the 256 single bytes
        with ProgressBar(settings.bpe_vocab - 256, "BPE", unit="merge", stream=log) as bar:
            ranks = bpe.train_bpe(counts, settings.bpe_vocab,
                                  progress=lambda tokens, _: bar.update(tokens - 256 - bar.done))
        bpe.write_tokenizer(out_dir, ranks, settings.context)
    specials = bpe.special_token_ids(ranks)
    vocab_size = -(-(len(ranks) + len(specials)) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    return model_config(shape, vocab_size, settings.context, specials[bpe.BOS_TOKEN],
                        [specials[bpe.EOS_TOKEN], specials[bpe.EOT_TOKEN]])


def train(out_dir: str | Path, settings: Settings | None = None,
          shape: dict[str, Any] | None = None, resume: bool = False,
          log: TextIO = sys.stderr, max_steps: int | None = None,
          steps: int | None = None) -> Params:
    """Run (or resume) a training run in ``out_dir``; returns the final parameters.

    settings, shape: required for a new run; a resumed run reads both from its checkpoint.
    max_steps: stop after this many steps in total (for tests of resuming); None runs to the end.
    steps: resume only: the run's new length (``--steps``), at least the step it reached. The
           learning-rate schedule is laid out again over it, so a finished run trains on (and
           ends with other weights than a run planned that long from the start would).
    The last line of ``log`` names the exported model, once the run has reached its end.
    """
    out_dir = Path(out_dir)
    if steps is not None and not resume:
        raise ArgumentError("steps is for resuming a run; a new run takes settings.steps")
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        params, m, v, step, adam_t, history, meta = load_checkpoint(out_dir / CHECKPOINT_FILE)
        settings = Settings(**{**meta["settings"], "data": tuple(meta["settings"]["data"])})
        config = config_from_dict(meta["config"], str(out_dir / CHECKPOINT_FILE))
        optimizer = AdamW(params)
        optimizer.m, optimizer.v, optimizer.t = m, v, adam_t
        if steps is not None and steps < step:
            raise ArgumentError(f"--steps is {steps}, but the run in {out_dir} is at step "
                                f"{step} already; expected at least {step}")
        if steps is not None:
            settings = replace(settings, steps=steps)
        if step >= settings.steps:  # nothing to train: export again, in case that was cut short
            log.write(f"the run in {out_dir} is complete at step {step}; pass --steps with "
                      f"more than {step} to train on\n")
            log.write(f"model written to {finish(out_dir, params, config, settings, history)}\n")
            return params
        log.write(f"resuming {out_dir} at step {step}/{settings.steps}\n")
    else:
        if settings is None or shape is None:
            raise ArgumentError("a new run needs settings and a model shape")
        if (out_dir / CHECKPOINT_FILE).exists():
            raise ArgumentError(f"--out: {out_dir} already holds a run; pass --resume to "
                                "continue it or choose another folder")
        config = prepare(out_dir, settings, shape, log)
        params = init_params(config, settings.seed)
        optimizer = AdamW(params)
        step, history = 0, []
    meta = {"config": config.to_json_dict(), "settings": asdict(settings)}
    ranks = bpe.read_ranks(out_dir / "tokenizer.json")
    specials = bpe.special_token_ids(ranks)
    encoding = bpe.make_encoding(ranks)
    tokens = tokenize_texts(encoding, read_texts(settings.data), specials[bpe.BOS_TOKEN],
                            specials[bpe.EOS_TOKEN])
    val_tokens = None
    if settings.val is not None:
        val_tokens = tokenize_texts(encoding, read_texts([settings.val], "--val"),
                                    specials[bpe.BOS_TOKEN], specials[bpe.EOS_TOKEN])
    schedule = Schedule(settings.lr, settings.steps, settings.warmup, settings.weight_decay)
    decay_mask = {name: is_matrix(name) for name in params}
    tokens_per_step = settings.batch_size * settings.context
    elapsed = history[-1][4] if history else 0.0
    last = settings.steps if max_steps is None else min(settings.steps, max_steps)
    log.write(f"{tokens.size:,} training tokens; {sum(p.size for p in params.values()):,} "
              f"parameters; {'ternary' if settings.quantize else 'full precision'}; "
              f"{tokens_per_step:,} tokens per step\n")
    session_start, session_steps = time.perf_counter(), 0
    with ProgressBar(settings.steps, "training", unit="step", initial=step, stream=log) as bar:
        while step < last:
            started = time.perf_counter()
            ids, targets = sample_batch(tokens, settings.batch_size, settings.context,
                                        settings.seed, step)
            loss, grads = loss_and_grads(params, config, ids, targets, settings.quantize)
            if not math.isfinite(loss):
                raise CheckpointError(f"step {step}: the loss is {loss}; training diverged "
                                      "(try a lower --lr)")
            lr = schedule.learning_rate(step)
            optimizer.step(params, grads, lr, schedule.decay(step), decay_mask)
            del grads
            step += 1
            elapsed += time.perf_counter() - started
            session_steps += 1
            val_loss = math.nan
            if val_tokens is not None and (step % settings.val_every == 0
                                           or step == settings.steps):
                val_loss = validation_loss(params, config, val_tokens, settings.val_windows,
                                           settings.quantize)
            history.append([step, step * tokens_per_step, loss, lr, elapsed, val_loss])
            rate = session_steps * tokens_per_step / (time.perf_counter() - session_start)
            bar.update(1, detail=f"loss {loss:.4f}  {rate:,.0f} tok/s")
            if not math.isnan(val_loss):
                bar.note(f"step {step}: validation loss {val_loss:.4f}")
            if step % settings.checkpoint_every == 0 or step == last:
                save_checkpoint(out_dir, params, optimizer, step, history, meta)
    if step == settings.steps:
        written = finish(out_dir, params, config, settings, history)
        log.write(f"model written to {written}\n")
    return params


def finish(out_dir: Path, params: Params, config: ModelConfig, settings: Settings,
           history: list[list[float]]) -> Path:
    """Export the trained weights: a 2B4T model folder, or the float weights for --no-quant.

    returns: the model folder (OUT/model), or OUT/model-float.safetensors for --no-quant
    """
    info = {"steps": str(settings.steps), "tokens": str(int(history[-1][1])),
            "train_seconds": f"{history[-1][4]:.0f}", "quantize": str(settings.quantize)}
    if settings.quantize:
        model_dir = export_model(params, config, out_dir / "model", metadata=info)
        # copied within the budgets the tokenizer is read with: OUT may hold one from earlier
        for name, limit in (("tokenizer.json", MAX_TOKENIZER_JSON_BYTES),
                            ("tokenizer_config.json", MAX_TOKENIZER_CONFIG_BYTES)):
            data = read_bounded(out_dir / name, limit, TokenizerError, "a tokenizer file")
            with atomic_write(model_dir / name) as handle:
                handle.write(data)
        return model_dir
    export_float(params, out_dir / FLOAT_WEIGHTS_FILE)
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_json_dict(), indent=2))
    return out_dir / FLOAT_WEIGHTS_FILE
