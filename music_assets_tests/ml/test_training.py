"""Training: kill -9 part-way and resume to the same weights; grammar-collapse rollback."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from music_assets.ml import checkpoints as ck
from music_assets.ml.generation import SamplingConfig
from music_assets.ml.lora import load_lora_settings
from music_assets.ml.training import TrainConfig, lr_at
from music_assets.ml.workflows import train_adapter
from music_assets.paths import REPO_ROOT
from music_assets_tests.ml.train_helper import CONFIG, MAX_STEPS, make_trainer


def test_killed_training_resumes_to_the_same_weights_as_an_uninterrupted_run(tiny_corpus: Path, tmp_path: Path) -> None:
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "music_assets_tests.ml.train_helper", str(tiny_corpus), str(killed_dir)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        steps = [c.step for c in ck.valid_checkpoints(killed_dir)]
        if steps and max(steps) >= 40:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL
    valid = ck.valid_checkpoints(killed_dir)
    assert valid and valid[0].step < MAX_STEPS
    # the newest checkpoint is also corrupted on disk: resume must skip it by its hash
    newest = valid[0].path / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01
    newest.write_bytes(bytes(data))

    messages: list[str] = []
    resumed_trainer = make_trainer(tiny_corpus, killed_dir, log=messages.append)
    resumed = resumed_trainer.fit()
    assert resumed.resumed_from == valid[1].step
    assert any("corrupt" in m for m in resumed.skipped_checkpoints)

    fresh_trainer = make_trainer(tiny_corpus, tmp_path / "fresh")
    fresh = fresh_trainer.fit()
    assert fresh.resumed_from is None and fresh.final_step == resumed.final_step == MAX_STEPS
    a, b = resumed_trainer.model.state_dict(), fresh_trainer.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert resumed.best_step == fresh.best_step and resumed.history["val"] == fresh.history["val"]
    # and training did move the weights away from their initialisation
    init = make_trainer(tiny_corpus, tmp_path / "unused").model.state_dict()
    assert not torch.equal(init["blocks.0.attn.q_proj.weight"], b["blocks.0.attn.q_proj.weight"])


def test_progress_reports_every_step_with_its_loss_and_changes_nothing(tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(CONFIG, max_steps=30, checkpoint_every=15)
    calls: list[tuple[int, int, dict]] = []
    watched = make_trainer(
        tiny_corpus, tmp_path / "watched", config=cfg, progress=lambda d, t, **info: calls.append((d, t, info))
    )
    result = watched.fit()
    assert [(d, t) for d, t, _ in calls] == [(i, 30) for i in range(31)]
    assert calls[0][2] == {} and [info["loss"] for *_, info in calls[1:]] == [x for _, x in result.history["train"]]
    # the callback only observes: the same weights and history as a run without it
    plain = make_trainer(tiny_corpus, tmp_path / "plain", config=cfg)
    assert plain.fit().history == result.history
    a, b = watched.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_grammar_collapse_rolls_back_and_lowers_the_learning_rate(
    tiny_corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    # a learning rate far too high for LoRA (rsLoRA scale 8) wrecks the grammar within a few steps
    cfg = TrainConfig(
        max_steps=30,
        batch_size=4,
        learning_rate=0.5,
        warmup_steps=1,
        grad_clip=0.5,
        checkpoint_every=10,
        watch_samples=4,
        watch_threshold=0.5,
        watch_max_new_tokens=400,
        rollback_lr_factor=0.01,
        max_rollbacks=2,
        save_step_zero=True,
        num_threads=1,
    )
    out = tmp_path / "lora"
    result = train_adapter(
        tiny_base,
        tiny_corpus,
        out,
        "beginner",
        load_lora_settings("default"),
        cfg,
        SamplingConfig(),
        log=lambda _m: None,
    )
    assert result.rollbacks >= 1
    assert result.lr_scale == 0.01**result.rollbacks
    assert "rolled back to step 0" in result.events[0]
    watch = result.history["watch"]  # [step, score], a step again after each rollback
    assert watch[0][0] == 0 and watch[0][1] >= 0.5  # the base itself was fine
    assert min(g for _, g in watch) < 0.5  # a later step collapsed
    kept = {c.step: c for c in ck.valid_checkpoints(out / "checkpoints")}
    assert all(c.manifest["good"] for c in kept.values())  # a collapsed state is never checkpointed
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == 0.1 and lr_at(9, cfg) == 1.0
    assert lr_at(100, cfg) == 0.1 and lr_at(55, cfg) == 0.55


def test_an_adapter_is_the_same_bytes_whatever_ran_before_in_the_process(
    tiny_corpus: Path, tiny_base: Path, tmp_path: Path
) -> None:
    """Same config, identical adapter files: the LoRA init is seeded from the run's seed and the tier,
    not taken from the process's global generator (which other work before it has moved on), and
    adapter_config.json lists its modules sorted (peft writes a set in per-process hash order)."""
    import json

    import torch

    cfg = TrainConfig(max_steps=2, batch_size=2, warmup_steps=1, checkpoint_every=2, watch_samples=1,
                      watch_max_new_tokens=8, save_step_zero=True, num_threads=1)  # fmt: skip
    adapters = []
    for i, prior in enumerate((1, 2)):
        torch.manual_seed(prior)  # what an earlier step in the same process left behind
        torch.rand(prior * 7)
        out = tmp_path / f"run{i}"
        train_adapter(tiny_base, tiny_corpus, out, "beginner", load_lora_settings("default"), cfg,
                      SamplingConfig(), log=lambda _m: None)  # fmt: skip
        adapters.append({p.name: p.read_bytes() for p in sorted((out / "adapter").iterdir())})
    assert adapters[0] == adapters[1]
    modules = json.loads(adapters[0]["adapter_config.json"])["target_modules"]
    assert modules == sorted(modules) and len(modules) > 1
