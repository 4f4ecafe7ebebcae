"""Issue 22, item 2: a partition is all-or-nothing; labels never describe files other than those on disk.

Before: `rudiment_audio --partition flam` with a changed seed, killed part-way, left new FLACs beside
old ones while the partition's audio.parquet still described the old render, and `rudiment_labels`
then passed every check. Now each partition's manifest (every file's sha256, the config's
fingerprint, the performances it was rendered from) is removed before the partition is rewritten and
written last; `rudiment_labels` verifies it and refuses a partition without one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import dagster as dg

from music_assets_tests.faults.conftest import (
    audio_config,
    data_dir_env,
    digest_tree,
    failure_text,
    labels_config,
    materialize,
    partials,
    python,
    subprocess_env,
)

RENDER = """
import json, os, sys
import dagster as dg
from music_assets_tests.faults.conftest import materialize
with dg.DagsterInstance.ephemeral() as instance:
    result = materialize("rudiment_audio", instance, json.loads(os.environ["FAULTS_CONFIG"]), "flam")
sys.exit(0 if result.success else 1)
"""


def _kill_part_way(data: Path, config: dict) -> int:
    """Render flam with `config` in a child process and SIGKILL it once some, not all, files are new."""
    folder = data / "rudiments" / "audio" / "flam"
    total = len(list(folder.glob("*.flac")))
    started = time.time_ns()
    proc = python(
        RENDER,
        subprocess_env(MUSIC_ASSETS_DATA_DIR=str(data), FAULTS_CONFIG=json.dumps(config)),
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            new = sum(1 for p in folder.glob("*.flac") if p.stat().st_mtime_ns > started)
            if 2 <= new < total:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return new
            assert proc.poll() is None, "the render ended before it could be killed"
            time.sleep(0.005)
        raise AssertionError("the render never got part-way")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_labels_refuse_a_partition_whose_render_was_killed_until_it_is_rerun(
    rudiments: Path, rudiment_data: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"  # the same change of seed, uninterrupted
    shutil.copytree(rudiment_data, reference)
    with data_dir_env(reference), dg.DagsterInstance.ephemeral() as instance:
        assert materialize("rudiment_audio", instance, audio_config(seed=1), "flam").success

    labels_before = digest_tree(rudiments / "rudiments" / "labels")
    new = _kill_part_way(rudiments, audio_config(seed=1))
    assert new >= 2  # a mix: new FLACs beside old ones, audio.parquet still the old render's

    with data_dir_env(rudiments), dg.DagsterInstance.ephemeral() as instance:
        labels = materialize("rudiment_labels", instance, labels_config(), checks=True)
        assert not labels.success
        text = failure_text(labels)
        assert "rudiment_audio/flam is incomplete" in text, text
        assert "--select rudiment_audio --partition flam" in text  # what to run
        assert labels.get_asset_materialization_events() == []
        assert digest_tree(rudiments / "rudiments" / "labels") == labels_before  # nothing written before is lost

        # recovery: materialize the partition again, then the labels
        assert materialize("rudiment_audio", instance, audio_config(seed=1), "flam").success
        labels = materialize("rudiment_labels", instance, labels_config(), checks=True)
        assert labels.success and all(e.passed for e in labels.get_asset_check_evaluations())
    assert partials(rudiments) == []
    for sub in ("audio/flam", "performances/flam", "labels"):
        got, ref = digest_tree(rudiments / "rudiments" / sub), digest_tree(reference / "rudiments" / sub)
        if sub == "labels":  # the reference has not merged its labels again: compare with a merge of its own
            with data_dir_env(reference), dg.DagsterInstance.ephemeral() as instance:
                assert materialize("rudiment_labels", instance, labels_config()).success
            ref = digest_tree(reference / "rudiments" / sub)
        assert got == ref, sub


def test_a_changed_file_fails_its_readers_naming_it_and_both_hashes(rudiments: Path) -> None:
    flac = sorted((rudiments / "rudiments" / "audio" / "flam").glob("*.flac"))[0]
    data = bytearray(flac.read_bytes())
    data[-100] ^= 0x01  # a flipped bit in the audio frames: the file still decodes
    flac.write_bytes(bytes(data))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize("rudiment_labels", instance, labels_config())
    assert not result.success
    text = failure_text(result)
    manifest = json.loads((rudiments / "manifests" / "rudiment_audio" / "flam.json").read_text())
    recorded = manifest["files"][flac.relative_to(rudiments).as_posix()]
    assert f"{flac}: sha256 " in text and f"does not match {recorded}" in text


def test_audio_refuses_performances_that_were_regenerated_after_it(rudiments: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        other = {"resources": {"rudiment_dataset": {"config": {"num_profiles": 12, "seed": 5}}}}
        assert materialize("rudiment_performances", instance, other, "flam").success
        result = materialize("rudiment_labels", instance, labels_config())
    assert not result.success
    assert "rudiment_audio/flam was rendered from another generation of rudiment_performances/flam" in failure_text(
        result
    )
