"""Training loop: resumable, checksummed checkpoints, best-by-validation, grammar-collapse watch.

Determinism: the batch of step `s` and every dropout mask in it come from
`stable_seed(seed, "step", s)`, and a checkpoint holds the weights, the
optimizer state and the loop state (step, learning-rate scale, rollbacks,
history). A run killed at any point and resumed from its newest valid
checkpoint therefore ends with the same weights as an uninterrupted run (same
thread count, same machine).

Only the performance tokens (OFFSET, VELOCITY: `Vocab.predicted`) are in the
loss; the header and the score tokens are given, as they are when decoding.

Grammar-collapse watch: at every checkpoint step the model performs the
scores of `watch_samples` validation sequences with every token sampled over
the whole vocabulary (no grammar mask, see `decoding.perform`; at most
`watch_max_new_tokens` tokens each) and the takes are scored
(`grammar.mean_grammar_score`). A
checkpoint at or above `watch_threshold` is *good*. Once a good checkpoint
exists, a score below the threshold is a collapse: the loop rolls back to the
newest good checkpoint, multiplies the learning rate by `rollback_lr_factor`,
counts the rollback and goes on (after `max_rollbacks` it stops and keeps the
best good checkpoint). A model that has not yet learnt the grammar (a base
model early in training) has nothing to roll back to and is left to learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from music_assets.cores import usable_cores
from music_assets.io import remove_partials
from music_assets.ml import checkpoints as ck
from music_assets.ml.decoding import Prompt, perform
from music_assets.ml.generation import TorchStepper
from music_assets.ml.grammar import mean_grammar_score
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, Vocab
from music_assets.ml.train_config import MAX_AUTO_THREADS, TrainConfig
from music_assets.seeding import stable_rng, stable_seed

IGNORE = -100


@dataclass
class TrainResult:
    best_step: int
    best_val_loss: float
    final_step: int
    rollbacks: int
    lr_scale: float
    resumed_from: int | None
    history: dict[str, list]
    events: list[str]
    seconds: float
    skipped_checkpoints: list[str] = field(default_factory=list)

    @property
    def best_val_perplexity(self) -> float:
        return float(math.exp(self.best_val_loss))


def fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def data_digest(seqs: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for s in seqs:
        h.update(np.asarray(s, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


def make_batch(
    seqs: Sequence[np.ndarray], pad_id: int, predicted: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) with PAD and the conditioning header masked out of the loss, and, with
    `predicted` (a boolean per vocabulary id), every target that is not a predicted token."""
    n = max(len(s) for s in seqs)
    ids = np.full((len(seqs), n), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    ids_t = torch.from_numpy(ids)
    targets = ids_t[:, 1:].clone()
    if predicted is not None:
        targets[~torch.from_numpy(np.asarray(predicted, dtype=bool))[targets]] = IGNORE  # the score is given
    targets[targets == pad_id] = IGNORE
    targets[:, : HEADER_LEN - 1] = IGNORE  # rudiment/tier/tempo are given, not predicted
    return ids_t[:, :-1], targets


def lm_loss(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    logits, _ = model(inputs)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction=reduction
    )


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module,
    seqs: Sequence[np.ndarray],
    pad_id: int,
    batch_size: int = 32,
    predicted: np.ndarray | None = None,
) -> float:
    """Mean cross-entropy per predicted token (nats) over `seqs` (see `make_batch` for `predicted`)."""
    if not len(seqs):
        raise ValueError("no validation sequences")
    was = model.training
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths pad less
    total, count = 0.0, 0
    try:
        for i in range(0, len(order), batch_size):
            inputs, targets = make_batch([seqs[j] for j in order[i : i + batch_size]], pad_id, predicted)
            total += float(lm_loss(model, inputs, targets, reduction="sum"))
            count += int((targets != IGNORE).sum())
    finally:
        model.train(was)
    return total / max(count, 1)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def watch_score(
    model: torch.nn.Module,
    prompts: Sequence[Prompt],
    vocab: Vocab,
    max_new_tokens: int,
    sampling: SamplingConfig,
    seed: Any,
) -> float:
    """The grammar score of the prompts' scores performed without the grammar mask (at most
    `max_new_tokens` tokens each): what the model itself has learnt of the sequence layout."""
    events = max(1, max_new_tokens // EVENT_LEN)
    cut = [(header, score[:events]) for header, score in prompts]
    rngs = [stable_rng(seed, "watch", i) for i in range(len(cut))]
    seqs = perform(TorchStepper(model), vocab, cut, sampling, rngs, masked=False)
    return mean_grammar_score(seqs, vocab)


class Trainer:
    """Trains the parameters of `model` that require grad; saves only those in checkpoints."""

    def __init__(
        self,
        model: torch.nn.Module,
        train_seqs: Sequence[np.ndarray],
        val_seqs: Sequence[np.ndarray],
        vocab: Vocab,
        cfg: TrainConfig,
        ckpt_root: str | Path,
        *,
        watch_prompts: Sequence[Prompt],
        sampling: SamplingConfig = SamplingConfig(),
        fingerprint_extra: Any = None,
        log: Callable[[str], None] = print,
        progress: Callable[..., None] | None = None,
    ):
        if not len(train_seqs):
            raise ValueError("no training sequences")
        self.model, self.train_seqs, self.val_seqs, self.vocab, self.cfg = model, train_seqs, val_seqs, vocab, cfg
        self.root = Path(ckpt_root)
        self.watch_prompts, self.sampling, self.log = watch_prompts, sampling, log
        # progress(step, max_steps, loss=...) after every step (`music_assets.progress`); only observes
        self.progress = progress
        self.by_length = np.argsort([len(s) for s in train_seqs], kind="stable")
        self.predicted = vocab.predicted
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        decay = [p for n, p in self.params.items() if p.dim() >= 2]
        no_decay = [p for n, p in self.params.items() if p.dim() < 2]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.learning_rate,
            betas=(0.9, 0.98),
            eps=1e-8,
        )
        self.fp = fingerprint(
            cfg.fingerprint_fields(),
            data_digest(train_seqs),
            data_digest(val_seqs),
            vocab.to_json()["config"],
            asdict(sampling),
            fingerprint_extra,
            {n: list(p.shape) for n, p in self.params.items()},
        )
        self.state: dict[str, Any] = {
            "lr_scale": 1.0,
            "rollbacks": 0,
            "history": {"train": [], "val": [], "watch": []},
            "events": [],
        }
        self.step = 0

    # --- checkpoint state -----------------------------------------------------------
    def _save(self, val_loss: float | None, score: float | None) -> ck.Checkpoint:
        opt_flat, groups = ck.optimizer_tensors(self.opt)
        good = score is not None and score >= self.cfg.watch_threshold
        state = {
            **self.state,
            "val_loss": val_loss,
            "watch_score": score,
            "good": good,
            "eligible_best": self.step > 0 and val_loss is not None,
            "param_groups": groups,
        }
        return ck.save_checkpoint(self.root, self.step, {"model": self.params, "optimizer": opt_flat}, state, self.fp)

    def _restore(self, ckpt: ck.Checkpoint, keep_loop_state: bool = False) -> None:
        tensors = ckpt.tensors("model")
        missing = set(self.params) - set(tensors)
        if missing:
            raise ck.CheckpointError(f"{ckpt.path}: lacks parameters {sorted(missing)[:3]}...")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[n])
        ck.load_optimizer(self.opt, ckpt.tensors("optimizer"), ckpt.manifest["param_groups"])
        self.step = ckpt.step
        if not keep_loop_state:
            m = ckpt.manifest
            self.state = {
                "lr_scale": m["lr_scale"],
                "rollbacks": m["rollbacks"],
                "history": m["history"],
                "events": m["events"],
            }

    def _prune(self) -> None:
        valid = ck.valid_checkpoints(self.root, self.fp)
        keep = {c.step for c in valid[: self.cfg.keep_last]}
        newest_good = next((c for c in valid if c.manifest["good"]), None)  # the rollback target
        if newest_good:
            keep.add(newest_good.step)
        best = self._best(valid)
        if best:
            keep.add(best.step)
        ck.prune_checkpoints(self.root, keep)
        ck.prune_superseded(self.root)  # this configuration has a checkpoint now

    @staticmethod
    def _best(ckpts: list[ck.Checkpoint]) -> ck.Checkpoint | None:
        eligible = [c for c in ckpts if c.manifest["eligible_best"]]
        pool = [c for c in eligible if c.manifest["good"]] or eligible
        return min(pool, key=lambda c: (c.manifest["val_loss"], -c.step)) if pool else None

    # --- the loop -----------------------------------------------------------------
    def _train_step(self) -> float:
        cfg = self.cfg
        # a random run of neighbours in length order: every sequence is drawn equally often, and a
        # batch of similar lengths wastes little on padding
        n = len(self.train_seqs)
        start = int(stable_rng(cfg.seed, "batch", self.step).integers(n))
        idx = self.by_length[(start + np.arange(min(cfg.batch_size, n))) % n]
        inputs, targets = make_batch([self.train_seqs[i] for i in idx], self.vocab.pad_id, self.predicted)
        lr = lr_at(self.step, cfg) * self.state["lr_scale"]
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stable_seed(cfg.seed, "step", self.step) & 0x7FFF_FFFF_FFFF_FFFF)
            loss = lm_loss(self.model, inputs, targets)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), cfg.grad_clip)
        self.opt.step()
        return float(loss.detach())

    def _checkpoint_step(self) -> bool:
        """Evaluate, watch, then save or roll back. Returns False when training must stop."""
        cfg = self.cfg
        val = evaluate_loss(self.model, self.val_seqs, self.vocab.pad_id, cfg.eval_batch_size, self.predicted)
        score = watch_score(
            self.model,
            self.watch_prompts,
            self.vocab,
            cfg.watch_max_new_tokens,
            self.sampling,
            (cfg.seed, self.step, self.state["rollbacks"]),
        )
        self.state["history"]["val"].append([self.step, val])
        self.state["history"]["watch"].append([self.step, score])
        self.log(f"step {self.step}: val loss {val:.4f}, watch grammar {score:.3f}")
        last_good = ck.latest_valid_checkpoint(self.root, self.fp, where=lambda c: c.manifest["good"], log=self.log)
        if score < cfg.watch_threshold and last_good is not None:
            if self.state["rollbacks"] >= cfg.max_rollbacks:
                self.state["events"].append(
                    f"step {self.step}: grammar {score:.3f} < {cfg.watch_threshold}; "
                    f"rollback limit {cfg.max_rollbacks} reached, stopping"
                )
                self.log(self.state["events"][-1])
                return False
            collapsed_at = self.step
            self._restore(last_good, keep_loop_state=True)
            self.state["rollbacks"] += 1
            self.state["lr_scale"] *= cfg.rollback_lr_factor
            self.state["events"].append(
                f"step {collapsed_at}: grammar {score:.3f} < {cfg.watch_threshold}; rolled back to step "
                f"{last_good.step}, learning-rate scale now {self.state['lr_scale']:.4g}"
            )
            self.log(self.state["events"][-1])
            return True
        self._save(val, score)
        self._prune()
        return True

    def fit(self) -> TrainResult:
        cfg = self.cfg
        torch.set_num_threads(cfg.num_threads or min(usable_cores(), MAX_AUTO_THREADS))
        t0 = time.monotonic()
        remove_partials(self.root)  # temp files of a killed writer (this loop is the only writer)
        skipped: list[str] = []
        if ck.latest_valid_checkpoint(self.root, self.fp) is None and ck.restore_superseded(self.root, self.fp):
            self.log(
                f"this configuration's checkpoints were set aside by another one; moved them back under {self.root}"
            )
        resume = ck.latest_valid_checkpoint(self.root, self.fp, log=skipped.append)
        for s in skipped:
            self.log(s)
        resumed_from = None
        if resume is not None:
            self._restore(resume)
            resumed_from = resume.step
            self.log(f"resuming from {resume.path.name} (step {resume.step})")
        else:
            stale = [d for _, d in ck.list_checkpoint_dirs(self.root)]
            if stale:
                # kept, not deleted: a run that then fails loses nothing, and going back to that
                # configuration resumes from them; superseded sets are pruned only once this
                # configuration has a checkpoint of its own (`_prune`)
                where = ck.set_aside(self.root)
                self.log(
                    f"no usable checkpoint among {len(stale)} under {self.root} (another configuration or "
                    f"corrupt); moved them to {where} and starting fresh"
                )
            if cfg.save_step_zero:
                self._checkpoint_step()
        running = True
        if self.progress:
            self.progress(self.step, cfg.max_steps)
        while running and self.step < cfg.max_steps:
            loss = self._train_step()
            self.step += 1
            self.state["history"]["train"].append([self.step, loss])
            if self.progress:
                self.progress(self.step, cfg.max_steps, loss=loss)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                running = self._checkpoint_step()
        ckpts = ck.valid_checkpoints(self.root, self.fp)
        best = self._best(ckpts)
        if best is None:
            raise RuntimeError(f"{self.root}: training produced no checkpoint with a validation loss")
        final_state = dict(self.state)
        self._restore(best, keep_loop_state=True)
        return TrainResult(
            best_step=best.step,
            best_val_loss=float(best.manifest["val_loss"]),
            final_step=max(c.step for c in ckpts),
            rollbacks=final_state["rollbacks"],
            lr_scale=final_state["lr_scale"],
            resumed_from=resumed_from,
            history=final_state["history"],
            events=final_state["events"],
            seconds=time.monotonic() - t0,
            skipped_checkpoints=skipped,
        )
