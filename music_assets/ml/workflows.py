"""End-to-end steps behind the model assets: train, save, reload, evaluate, listen.

Folder layout (all under `<data dir>/models/`):

- `base/`: `model.safetensors` (the best checkpoint's weights), `model.json`
  (model config, training summary, sha256 of the weights, the corpus it was
  trained on), `vocab.json`, `checkpoints/`, `loss_curve.png`,
  `evaluation.json`, `listening/`;
- `lora/<tier>/`: `adapter/` (peft `save_pretrained` + `manifest.json` with the sha256 of each
  file, verified whenever the adapter is loaded), `checkpoints/`,
  `training.json` (with the sha256 of the base weights it was trained on),
  `loss_curve.png`, `evaluation.json`, `listening/`.

The assets write these under `models/candidate/` and promote them once
evaluated (`promotion.py`); the functions here take the folders as arguments.
Everything a check reports is computed from these files after they are written
(the model is reloaded from disk before it is evaluated).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from music_assets.io import atomic_path, read_json, sha256_file, write_json
from music_assets.ml import checkpoints as ck
from music_assets.ml import timing
from music_assets.ml.corpus import SCORES_FILE, Corpus
from music_assets.ml.decoding import Prompt, perform
from music_assets.ml.evaluation.takes import GRAMMAR_EVENTS
from music_assets.ml.generation import SamplingConfig, TorchStepper
from music_assets.ml.grammar import grammar_report
from music_assets.ml.listening import plot_loss_curve, write_performance
from music_assets.ml.lora import apply_lora, load_adapter, save_adapter
from music_assets.ml.model import DrumTransformer, ModelConfig
from music_assets.ml.tokenizer import Vocab, score_of
from music_assets.ml.training import TrainConfig, Trainer, TrainResult, evaluate_loss
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets.seeding import stable_rng, stable_seed

Log = Callable[[str], None]


class ModelFilesError(RuntimeError):
    pass


# Correlation length (in token values: grid steps, ms, velocity bins, BPM) of the smooth initial embeddings
# of numeric tokens.
SMOOTH_INIT = {"GRID": 1.5, "OFFSET": 8.0, "VELOCITY": 2.0, "TEMPO": 6.0}


def init_model(cfg: ModelConfig, seed: int, vocab: Vocab | None = None) -> DrumTransformer:
    """A freshly initialised model; the init draws from its own seeded stream.

    With `vocab`, the input embedding and output rows of numeric tokens (time
    shifts, grid offsets, velocity and tempo bins) start as random Fourier features of their
    value, so neighbouring values start out similar (an RBF-kernel prior) instead
    of unrelated: TIME_SHIFT_95 and _96 need not be learnt apart from scratch.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_seed(seed, "init") & 0x7FFF_FFFF_FFFF_FFFF)
        model = DrumTransformer(cfg)
        if vocab is not None:
            with torch.no_grad():
                for kind, scale in SMOOTH_INIT.items():
                    ids = torch.tensor(list(vocab.ranges[kind]))
                    values = torch.tensor(vocab.values[ids.numpy()], dtype=torch.float32)
                    for weight in (model.embed.weight, model.lm_head.weight):
                        freq = torch.randn(cfg.d_model) / scale
                        phase = torch.rand(cfg.d_model) * 2 * math.pi
                        weight[ids] = 0.02 * math.sqrt(2.0) * torch.cos(values[:, None] * freq + phase)
        return model


def prompts_for(seqs: Sequence[np.ndarray], n: int, vocab: Vocab) -> list[Prompt]:
    """`n` prompts (header and score) cycling over `seqs` in order: their performances played again."""
    if not len(seqs):
        raise ValueError("no sequences to take prompts from")
    return [score_of(seqs[i % len(seqs)], vocab) for i in range(n)]


# --- base model ------------------------------------------------------------------------
def train_base(
    corpus_dir: Path,
    out_dir: Path,
    model_cfg: dict[str, Any],
    train_cfg: TrainConfig,
    sampling: SamplingConfig,
    log: Log = print,
    smooth_init: bool = True,
    progress: Callable[..., None] | None = None,
    ckpt_path: Path | None = None,
) -> TrainResult:
    """Train (or resume) the base model on the train split; write its files under `out_dir`.

    The weights written are the best checkpoint's (by validation loss, among those that kept
    the grammar), or those of the checkpoint folder `ckpt_path` when given (picked by hand).
    """
    corpus = Corpus(corpus_dir)
    vocab = corpus.vocab
    train, val = corpus.split("train").sequences(), corpus.split("validation").sequences()
    if not train or not val:
        raise ModelFilesError(
            f"{corpus_dir}: the corpus needs train and validation sequences (has {len(train)} and {len(val)})"
        )
    cfg = ModelConfig(vocab_size=len(vocab), max_seq_len=corpus.max_seq_len, **model_cfg)
    model = init_model(cfg, train_cfg.seed, vocab if smooth_init else None)
    watch = prompts_for(val, train_cfg.watch_samples, vocab)
    result = Trainer(
        model,
        train,
        val,
        vocab,
        train_cfg,
        out_dir / "checkpoints",
        watch_prompts=watch,
        sampling=sampling,
        fingerprint_extra={"model": cfg.to_dict(), "kind": "base", "smooth_init": smooth_init},
        log=log,
        progress=progress,
    ).fit()
    if ckpt_path is not None:
        picked = pick_checkpoint(model, ckpt_path)
        log(f"using {ckpt_path} (step {picked}) instead of the best checkpoint (step {result.best_step})")
        result.best_step = picked
    save_base(model, cfg, corpus_dir, out_dir, train_cfg, sampling, result)
    plot_loss_curve(result.history, result.events, out_dir / "loss_curve.png", "base model")
    return result


def pick_checkpoint(model: torch.nn.Module, ckpt_path: Path) -> int:
    """Load the weights of the checkpoint folder `ckpt_path` (verified against its manifest) into `model`."""
    ckpt = ck.verify_checkpoint(ckpt_path)
    tensors = ckpt.tensors("model")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(tensors))
    if missing:
        raise ModelFilesError(f"{ckpt_path}: not a checkpoint of this model (lacks {missing[:3]})")
    with torch.no_grad():
        for name, p in params.items():
            if tuple(tensors[name].shape) != tuple(p.shape):
                raise ModelFilesError(
                    f"{ckpt_path}: {name} has shape {tuple(tensors[name].shape)}, not {tuple(p.shape)}"
                )
            p.copy_(tensors[name])
    return ckpt.step


def save_base(
    model: DrumTransformer,
    cfg: ModelConfig,
    corpus_dir: Path,
    out_dir: Path,
    train_cfg: TrainConfig,
    sampling: SamplingConfig,
    result: TrainResult,
) -> None:
    weights = out_dir / "model.safetensors"
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(out_dir / "vocab.json", read_json(corpus_dir / "vocab.json"))
    write_json(out_dir / SCORES_FILE, read_json(corpus_dir / SCORES_FILE))
    write_json(
        out_dir / "model.json",
        {
            "model_config": cfg.to_dict(),
            "train_config": asdict(train_cfg),
            "sampling": asdict(sampling),
            "corpus_sha256": sha256_file(corpus_dir / "corpus.json"),
            "weights_sha256": sha256_file(weights),
            "parameters": model.num_parameters(),
            "summary": _summary(result),
        },
    )


def load_base(base_dir: Path) -> tuple[DrumTransformer, Vocab, dict[str, Any]]:
    """The base model as saved (eval mode), its vocabulary and `model.json`."""
    meta_path, weights = base_dir / "model.json", base_dir / "model.safetensors"
    for p in (meta_path, weights, base_dir / "vocab.json"):
        if not p.is_file():
            raise ModelFilesError(f"{p}: not found (materialize base_model first)")
    meta = read_json(meta_path)
    if sha256_file(weights) != meta["weights_sha256"]:
        raise ModelFilesError(f"{weights}: sha256 does not match {meta_path} (corrupt or replaced)")
    vocab = Vocab.from_json(read_json(base_dir / "vocab.json"), source=str(base_dir / "vocab.json"))
    model = DrumTransformer(ModelConfig.from_dict(meta["model_config"]))
    model.load_state_dict(load_file(str(weights)))
    return model.eval(), vocab, meta


def check_same_corpus(base_meta: dict[str, Any], corpus_dir: Path) -> None:
    if base_meta["corpus_sha256"] != sha256_file(corpus_dir / "corpus.json"):
        raise ModelFilesError(
            f"{corpus_dir}: the corpus changed since the base model was trained; materialize base_model again"
        )


# --- adapters ----------------------------------------------------------------------------
def train_adapter(
    base_dir: Path,
    corpus_dir: Path,
    out_dir: Path,
    tier: str,
    settings: dict[str, Any],
    train_cfg: TrainConfig,
    sampling: SamplingConfig,
    log: Log = print,
    progress: Callable[..., None] | None = None,
    ckpt_path: Path | None = None,
) -> TrainResult:
    """Train (or resume) a LoRA adapter on one tier's train sequences; save it with `save_pretrained`
    (the best checkpoint's weights, or those of the checkpoint folder `ckpt_path`)."""
    base, vocab, meta = load_base(base_dir)
    check_same_corpus(meta, corpus_dir)
    corpus = Corpus(corpus_dir)
    train, val = corpus.split("train").sequences(tier), corpus.split("validation").sequences(tier)
    if not train or not val:
        raise ModelFilesError(
            f"{corpus_dir}: tier {tier!r} needs train and validation sequences (has {len(train)} and {len(val)})"
        )
    # LoRA's A matrices start random: drawn from a stream seeded by the run's seed and the tier, not from
    # the process's global generator, whose state depends on what ran before in the same process
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_seed(train_cfg.seed, "lora init", tier) & 0x7FFF_FFFF_FFFF_FFFF)
        model = apply_lora(base, settings)
    watch = prompts_for(val, train_cfg.watch_samples, vocab)
    result = Trainer(
        model,
        train,
        val,
        vocab,
        train_cfg,
        out_dir / "checkpoints",
        watch_prompts=watch,
        sampling=sampling,
        log=log,
        progress=progress,
        fingerprint_extra={"base": meta["weights_sha256"], "lora": settings, "tier": tier},
    ).fit()
    if ckpt_path is not None:
        picked = pick_checkpoint(model, ckpt_path)
        log(f"using {ckpt_path} (step {picked}) instead of the best checkpoint (step {result.best_step})")
        result.best_step = picked
    adapter = out_dir / "adapter"
    staging = out_dir / ".adapter.partial"
    shutil.rmtree(staging, ignore_errors=True)
    adapter_files = save_adapter(model, staging)  # with its manifest: load_adapter verifies every file
    # swap the finished folder in; a kill in between leaves the previous adapter or none, never a mix
    shutil.rmtree(adapter, ignore_errors=True)
    staging.replace(adapter)
    write_json(
        out_dir / "training.json",
        {
            "tier": tier,
            "lora": settings,
            "train_config": asdict(train_cfg),
            "base_weights_sha256": meta["weights_sha256"],
            "adapter_sha256": adapter_files,
            "summary": _summary(result),
        },
    )
    plot_loss_curve(result.history, result.events, out_dir / "loss_curve.png", f"LoRA adapter: {tier}")
    return result


def load_tier_model(base_dir: Path, adapter_dir: Path, merge: bool = False) -> tuple[torch.nn.Module, Vocab]:
    """Base + a saved adapter, reloaded from disk (`merge=True`: a plain DrumTransformer, for export).

    The adapter must have been trained on this base: `training.json` beside the adapter folder
    records the base weights' sha256.
    """
    base, vocab, meta = load_base(base_dir)
    training = adapter_dir.parent / "training.json"
    if training.is_file() and read_json(training).get("base_weights_sha256") != meta["weights_sha256"]:
        raise ModelFilesError(f"{adapter_dir}: trained on another base than {base_dir} (materialize lora_adapters)")
    model = load_adapter(base, adapter_dir).eval()
    return (model.merge_and_unload() if merge else model), vocab


# --- evaluation ----------------------------------------------------------------------------
def evaluate(
    model: torch.nn.Module,
    vocab: Vocab,
    corpus: Corpus,
    *,
    tier: str | None,
    n_samples: int,
    sampling: SamplingConfig,
    seed: int,
) -> dict[str, Any]:
    """Validation loss/perplexity, and grammar and timing of `n_samples` generated performances.

    The prompts are the validation performances (of `tier`, if given): their
    scores are played again, so generated and real performances share
    rudiments and tempi (their first `GRAMMAR_EVENTS` strokes). The takes are
    decoded as users get them (with the grammar mask; `sequences`,
    `timing_generated`) and once more without it (`grammar_score`, the gate:
    what the model has learnt).
    """
    val = corpus.split("validation").sequences(tier)
    val_loss = evaluate_loss(model, val, vocab.pad_id, predicted=vocab.predicted)
    # the first strokes of each: the layout and the tier's timing are the same at every stroke, and
    # `model_evaluation` measures whole takes
    prompts = [(h, score[:GRAMMAR_EVENTS]) for h, score in prompts_for(val, n_samples, vocab)]
    stepper = TorchStepper(model, corpus.max_seq_len)
    rngs = [stable_rng(seed, "evaluate", tier, i) for i in range(n_samples)]
    seqs = perform(stepper, vocab, prompts, sampling, rngs)
    free = perform(
        stepper, vocab, prompts, sampling, [stable_rng(seed, "free", tier, i) for i in range(n_samples)], masked=False
    )
    reports = [grammar_report(s, vocab) for s in free]
    return {
        "tier": tier,
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss),
        "grammar_score": float(np.mean([r.score for r in reports])),
        "grammar_min": float(min(r.score for r in reports)),
        "grammar_totals": {
            k: int(sum(getattr(r, k) for r in reports)) for k in ("events", "well_formed", "illegal_tokens")
        },
        "grammar_score_masked": float(np.mean([grammar_report(s, vocab).score for s in seqs])),
        "ended_with_eos": int(sum(r.has_eos for r in reports)),
        "n_samples": n_samples,
        "sampling": asdict(sampling),
        "timing_generated": timing_by_tier(seqs, vocab, corpus.subdivisions),
        "sequences": seqs,
    }


def per_tier_val_loss(model: torch.nn.Module, vocab: Vocab, corpus: Corpus) -> dict[str, float]:
    split = corpus.split("validation")
    return {
        t: evaluate_loss(model, split.sequences(t), vocab.pad_id, predicted=vocab.predicted)
        for t in SKILL_TIERS
        if len(split.sequences(t))
    }


def timing_by_tier(
    seqs: Sequence[Sequence[int]], vocab: Vocab, subdivisions: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per tier: per-performance mean |deviation| from the tempo grid (ms), summarised."""
    values: dict[str, list[float]] = {}
    for s in seqs:
        perf = vocab.decode(s)
        if perf.tier is None or perf.tempo_bpm is None or perf.rudiment not in subdivisions:
            continue
        dev = timing.performance_deviation_ms(
            [n.start for n in perf.notes], perf.tempo_bpm, subdivisions[perf.rudiment]
        )
        if dev is not None:
            values.setdefault(perf.tier, []).append(dev)
    return {
        t: {
            "n": len(v),
            "median_ms": float(np.median(v)),
            "p10_ms": float(np.quantile(v, 0.1)),
            "p90_ms": float(np.quantile(v, 0.9)),
            "values_ms": [round(x, 3) for x in v],
        }
        for t, v in sorted(values.items())
    }


REALISM_SPLITS = ("train", "validation")


def real_timing_ranges(
    corpus: Corpus, quantiles: tuple[float, float], splits: Sequence[str] = REALISM_SPLITS
) -> dict[str, dict[str, float]]:
    """Per tier, the realism range of its real performances in `splits` (same measure).

    Train and validation by default: the splits are by player, and at demo
    scale a tier has a single validation player, whose range is that player's
    rather than the tier's; the train players are the ones an adapter learns
    to play like. The test split stays unseen.
    """
    seqs = [s for split in splits for s in corpus.split(split).sequences()]
    stats = timing_by_tier(seqs, corpus.vocab, corpus.subdivisions)
    out = {}
    for t, s in stats.items():
        lo, hi = timing.realism_range(s["values_ms"], quantiles)
        out[t] = {"low_ms": lo, "high_ms": hi, "median_ms": s["median_ms"], "n": s["n"]}
    return out


def write_listening(
    seqs: Sequence[list[int]], vocab: Vocab, out_dir: Path, prefix: str, n: int, soundfont: str
) -> list[dict[str, Any]]:
    """The first `n` sequences as MIDI + FLAC under `out_dir` (older files there are removed)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    return [
        write_performance(
            list(s), vocab, out_dir / f"{prefix}_{i:02d}.mid", out_dir / f"{prefix}_{i:02d}.flac", soundfont
        )
        for i, s in enumerate(seqs[:n])
    ]


def _summary(r: TrainResult) -> dict[str, Any]:
    return {
        "best_step": r.best_step,
        "best_val_loss": r.best_val_loss,
        "best_val_perplexity": r.best_val_perplexity,
        "final_step": r.final_step,
        "rollbacks": r.rollbacks,
        "lr_scale": r.lr_scale,
        "resumed_from": r.resumed_from,
        "events": r.events,
        "seconds": round(r.seconds, 1),
        "skipped_checkpoints": r.skipped_checkpoints,
    }


# --- checkpoint comparison ---------------------------------------------------------------------------
def checkpoint_rows(
    model: torch.nn.Module,
    ckpt_root: Path,
    measure: Callable[[torch.nn.Module], dict[str, Any]],
    chosen_step: int | None = None,
) -> list[dict[str, Any]]:
    """`measure(model)` with the trainable weights of every valid checkpoint under `ckpt_root` (oldest first).

    The model's own weights are put back afterwards.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    saved = {n: p.detach().clone() for n, p in params.items()}
    rows = []
    try:
        for c in sorted(ck.valid_checkpoints(ckpt_root), key=lambda c: c.step):
            tensors = c.tensors("model")
            with torch.no_grad():
                for n, p in params.items():
                    if n in tensors:
                        p.copy_(tensors[n])
            rows.append(
                {
                    "checkpoint": c.path.name,
                    "step": c.step,
                    "val_loss": c.manifest.get("val_loss"),
                    "watch_grammar": c.manifest.get("watch_score"),
                    "chosen": c.step == chosen_step,
                    **measure(model),
                }
            )
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[n])
    return rows


def conditioning_measure(
    vocab: Vocab,
    corpus: Corpus,
    reference: Any,
    tiers: Sequence[str],
    sampling: SamplingConfig,
    settings: Any,
) -> Callable[[torch.nn.Module], dict[str, Any]]:
    """A `checkpoint_rows` measure: per tier, what `evaluation.evaluate` measures (a small take set)."""
    from music_assets.ml import evaluation  # noqa: PLC0415

    templates, subdivisions = corpus.templates, corpus.subdivisions

    def measure(model: torch.nn.Module) -> dict[str, Any]:
        stepper = TorchStepper(model, corpus.max_seq_len)
        evs = evaluation.evaluate_tiers(stepper, vocab, templates, subdivisions, reference, tiers, sampling, settings)
        out = {}
        for tier, ev in evs.items():
            out[tier] = {
                k: ev[k]
                for k in (
                    "conditioning_accuracy",
                    "classifier_heldout_accuracy_tier",
                    "timing_sd_ms",
                    "real_timing_sd_ms",
                    "velocity_cv",
                    "real_velocity_cv",
                    "frechet_distance",
                    "degenerate_rate",
                    "grammar_score",
                )
            }
        return {"tiers": out}

    return measure
