"""Issue 22, item 1: a bad training config must not cost the resume checkpoints.

Before: `base_model` with `max_steps: -1` (or `checkpoint_every: 0`, `batch_size: 0`) deleted every
checkpoint under models/base/checkpoints (a changed fingerprint marked them stale) and then failed
(`ZeroDivisionError`, `max() arg is an empty sequence`). Now every config is validated before any
checkpoint is looked at, and checkpoints of another configuration are set aside, not deleted: a run
that then fails loses nothing, and going back to the old configuration resumes from them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import dagster as dg
import pytest

from music_assets.ml.training import TrainConfig
from music_assets_tests.faults.conftest import digest_tree, failure_text
from music_assets_tests.ml.train_helper import make_trainer

SHORT = TrainConfig(
    max_steps=40,
    batch_size=4,
    learning_rate=5e-3,
    warmup_steps=5,
    checkpoint_every=20,
    keep_last=3,
    watch_samples=2,
    watch_max_new_tokens=8,
    num_threads=1,
    seed=3,
)
BAD = [{"max_steps": -1}, {"checkpoint_every": 0}, {"batch_size": 0}]


@pytest.fixture(scope="module")
def trained(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints of an uninterrupted SHORT run (steps 20 and 40)."""
    root = tmp_path_factory.mktemp("trained") / "checkpoints"
    result = make_trainer(tiny_corpus, root, config=SHORT).fit()
    assert result.final_step == 40
    return root


@pytest.mark.parametrize("bad", BAD, ids=lambda b: next(iter(b)))
def test_a_bad_training_config_fails_first_and_keeps_every_checkpoint(
    bad: dict, trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(trained, ckpts)
    before = digest_tree(ckpts)
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_trainer(tiny_corpus, ckpts, config=dataclasses.replace(SHORT, **bad)).fit()
    assert digest_tree(ckpts) == before  # not one byte of the resume state lost


@pytest.mark.parametrize("asset", ["base_model", "lora_adapters"])
@pytest.mark.parametrize("bad", BAD, ids=lambda b: next(iter(b)))
def test_the_assets_refuse_a_bad_training_config_before_touching_checkpoints(
    asset: str, bad: dict, trained: Path, tiny_corpus: Path, tiny_base: Path, data_dir: Path, instance
) -> None:
    from music_assets.defs.models import training as models

    shutil.copytree(tiny_corpus, data_dir / "models" / "corpus")
    if asset == "lora_adapters":  # everything an adapter run needs, so only the config can stop it
        shutil.copytree(tiny_base, data_dir / "models" / "base", ignore=shutil.ignore_patterns("checkpoints"))
    ckpts = data_dir / "models" / ("base" if asset == "base_model" else "lora/beginner") / "checkpoints"
    shutil.copytree(trained, ckpts)
    before = digest_tree(data_dir / "models")
    assets_def = models.base_model if asset == "base_model" else models.lora_adapters
    result = dg.materialize(
        [assets_def],
        instance=instance,
        run_config={"ops": {asset: {"config": bad}}},
        partition_key=None if asset == "base_model" else "beginner",
        raise_on_error=False,
    )
    assert not result.success
    assert next(iter(bad)) in failure_text(result)  # the message names the field
    assert digest_tree(data_dir / "models") == before


def test_checkpoints_of_another_config_are_set_aside_and_resumed_from_later(
    trained: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(trained, ckpts)
    kept = digest_tree(ckpts)

    class Stop(RuntimeError):
        pass

    def fail_at_step_5(step: int, total: int, **_kw) -> None:
        if step == 5:
            raise Stop("the new configuration's run dies part-way")

    other = dataclasses.replace(SHORT, seed=4)  # another trajectory: the old checkpoints do not fit it
    with pytest.raises(Stop):
        make_trainer(tiny_corpus, ckpts, config=other, progress=fail_at_step_5).fit()
    # the earlier configuration's checkpoints are all still there, byte for byte (set aside)
    moved = digest_tree(ckpts)
    for rel, digest in kept.items():
        assert [r for r, d in moved.items() if r.endswith(rel) and d == digest], rel

    logs: list[str] = []
    resumed = make_trainer(tiny_corpus, ckpts, config=SHORT, log=logs.append).fit()
    assert resumed.resumed_from == 40  # nothing retrained: back where the uninterrupted run ended
    assert any("were set aside by another one; moved them back" in m for m in logs)
