"""The rudiments group materialized with Dagster: checks per partition, blocking, reproducibility."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets import layout
from music_assets.checks import CheckResult
from music_assets.defs.partitions import rudiment_partitions
from music_assets.defs.rudiments import assets as R
from music_assets.io import read_json, write_json
from music_assets.rudiments.constants import RUDIMENT_SLUGS
from music_assets_tests.rudiments.audio_stub import render_stub_audio

TWO = list(RUDIMENT_SLUGS[:2])  # single_stroke_roll, single_stroke_four
SMALL = {"rudiment_dataset": R.RudimentDataset(num_profiles=4)}
LABEL_CHECKS = [
    R.labels_referential_integrity,
    R.labels_scores_in_range,
    R.labels_stroke_counts_match_midi,
    R.labels_realism,
]


def _setup(instance) -> None:
    result = dg.materialize(
        [R.rudiment_library, R.player_profiles, R.library_complete, R.profiles_split_by_player],
        instance=instance,
        resources=SMALL,
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def _build(root: Path, instance) -> dict[str, bytes]:
    """Library, profiles, two partitions in one run, stand-in audio, labels; the files' bytes."""
    _setup(instance)
    perf = dg.materialize([R.rudiment_performances], instance=instance, resources=SMALL, tags=_range_tags(*TWO))
    assert perf.success
    evals = {(e.asset_check_key.name, e.partition): e for e in perf.get_asset_check_evaluations()}
    for slug in TWO:  # one result per check and partition, though both partitions ran in one run
        assert evals[(R.VALID_CHECK, slug)].passed
        assert (R.REALISM_CHECK, slug) in evals
    assert len(perf.get_asset_materialization_events()) == 2
    render_stub_audio(root, TWO)
    labels = dg.materialize(
        [R.rudiment_labels, *LABEL_CHECKS],
        instance=instance,
        run_config={"ops": {"rudiment_labels": {"config": {"rudiments": TWO}}}},
    )
    assert labels.success
    checks = {e.asset_check_key.name: e.passed for e in labels.get_asset_check_evaluations()}
    assert checks == {
        "labels_referential_integrity": True,
        "labels_scores_in_range": True,
        "labels_stroke_counts_match_midi": True,
        "labels_realism": checks["labels_realism"],
    }
    for name in (
        "profiles.parquet",
        "library.parquet",
        "labels/samples.parquet",
        f"performances/{TWO[0]}/strokes.parquet",
    ):
        schema = pq.read_schema(root / "rudiments" / name)
        assert not any(pa.types.is_large_string(t) for t in schema.types), name  # the contract: pa.string()
    files = sorted(p for p in (root / "rudiments").rglob("*") if p.suffix in (".mid", ".parquet", ".json"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_same_config_regenerates_byte_identical_midi_and_labels(
    data_dir: Path, instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _build(data_dir, instance)
    assert sum(k.endswith(".mid") for k in first) == 2 * 4
    assert {f"rudiments/labels/{t}.parquet" for t in ("samples", "strokes", "measures", "exercises")} <= set(first)
    again = tmp_path / "fresh"
    again.mkdir()
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(again))
    with dg.DagsterInstance.ephemeral() as other:
        second = _build(again, other)
    assert second.keys() == first.keys()
    assert [k for k in first if first[k] != second[k]] == []

    # checks compute from the files: a missing FLAC fails the blocking integrity check
    samples = layout.labels_dir(again) / "samples.parquet"
    import pandas as pd  # noqa: PLC0415

    (again / pd.read_parquet(samples)["audio_path"].iloc[0]).unlink()
    result = R.labels_referential_integrity()
    assert not result.passed and "audio file" in result.description


def test_a_failing_validity_check_blocks_downstream(data_dir: Path, instance, monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(instance)

    @dg.asset(
        partitions_def=rudiment_partitions,
        deps=[R.rudiment_performances],
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def downstream() -> None:
        raise AssertionError("must not run after a failed blocking check")

    monkeypatch.setattr(
        "music_assets.rudiments.labels.check_scores", lambda tables: CheckResult(False, "scores out of range", {})
    )
    result = dg.materialize(
        [R.rudiment_performances, downstream],
        instance=instance,
        resources=SMALL,
        partition_key="flam",
        raise_on_error=False,
    )
    assert not result.success
    valid = [e for e in result.get_asset_check_evaluations() if e.asset_check_key.name == R.VALID_CHECK]
    assert [(e.passed, e.partition, e.description) for e in valid] == [(False, "flam", valid[0].description)]
    assert "scores out of range" in valid[0].description
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("downstream")]


def test_profiles_check_fails_when_a_player_is_in_two_splits(data_dir: Path, instance) -> None:
    _setup(instance)
    splits = read_json(layout.splits_path(data_dir))
    splits["test"].append(splits["train"][0])
    write_json(layout.splits_path(data_dir), splits)
    result = R.profiles_split_by_player()
    assert not result.passed and "is in train and test" in result.description


def test_performances_need_profiles_first(data_dir: Path, instance) -> None:
    result = dg.materialize(
        [R.rudiment_performances], instance=instance, resources=SMALL, partition_key="flam", raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "materialize player_profiles first" in failure.message


def test_presets_are_selected_by_config() -> None:
    demo = R.RudimentDataset().settings()
    full = R.RudimentDataset(preset="full").settings()
    assert (demo.num_profiles, demo.tempos_per_pair, demo.lengths_beats) == (20, 1, (8,))
    assert len(RUDIMENT_SLUGS) * full.num_profiles * full.tempos_per_pair * len(full.lengths_beats) == 100_000
    assert R.RudimentDataset(preset="full", num_profiles=10).settings().num_profiles == 10
    with pytest.raises(ValueError, match="unknown rudiment dataset preset"):
        R.RudimentDataset(preset="huge").settings()


def test_partitioned_asset_runs_many_partitions_in_one_run() -> None:
    assert R.rudiment_performances.backfill_policy == dg.BackfillPolicy.single_run()
    assert R.rudiment_performances.partitions_def == rudiment_partitions
    assert dg.AssetKey("rudiment_audio") in R.rudiment_labels.dependency_keys
