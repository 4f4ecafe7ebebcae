"""The rudiment_audio asset: partitions, per-partition blocking checks, metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from music_assets.defs.partitions import rudiment_partitions
from music_assets.defs.rudiments.audio import GATES, RudimentAudioConfig, rudiment_audio
from music_assets_tests.audio.fake_performances import shift_labels, write_performances

RUN_CONFIG = {"ops": {"rudiment_audio": {"config": {"workers": 1}}}}


@dg.asset(partitions_def=rudiment_partitions, deps=[rudiment_audio], backfill_policy=dg.BackfillPolicy.single_run())
def downstream_of_audio() -> None:
    """Stands in for rudiment_labels: must not run after a failed blocking check."""


def _evaluations(result) -> dict[tuple[str, str], bool]:
    return {(e.partition, e.check_name): e.passed for e in result.get_asset_check_evaluations()}


def test_the_asset_is_wired_as_the_contract_says() -> None:
    assert rudiment_audio.partitions_def == rudiment_partitions
    assert rudiment_audio.backfill_policy == dg.BackfillPolicy.single_run()
    assert dg.AssetKey("rudiment_performances") in rudiment_audio.dependency_keys
    assert rudiment_audio.group_names_by_key[dg.AssetKey("rudiment_audio")] == "rudiments"
    specs = {s.name: s for s in rudiment_audio.check_specs}
    assert set(specs) == set(GATES) and all(s.blocking for s in specs.values())
    defaults = RudimentAudioConfig()
    assert [Path(p).name for p in defaults.soundfonts] == ["TimGM6mb.sf2", "FluidR3_GM.sf2"]
    assert len(defaults.presets) >= 6 and defaults.workers == 0


def test_one_partition_materializes_with_passing_checks(data_dir: Path, instance) -> None:
    write_performances(data_dir, "flam_tap", n=3)
    result = dg.materialize([rudiment_audio], instance=instance, partition_key="flam_tap", run_config=RUN_CONFIG)
    assert result.success
    assert _evaluations(result) == {("flam_tap", name): True for name in GATES}
    mat = result.asset_materializations_for_node("rudiment_audio")[0]
    assert mat.partition == "flam_tap"
    assert mat.metadata["samples"].value == 3
    assert "| flam_tap | 3 |" in mat.metadata["partitions"].value
    table = pq.read_table(data_dir / "rudiments" / "performances" / "flam_tap" / "audio.parquet")
    assert table.num_rows == 3 and all((data_dir / p).is_file() for p in table.column("audio_path").to_pylist())


def test_a_partition_range_reports_every_partition_and_blocks_downstream(data_dir: Path, instance) -> None:
    # flam and flam_accent are neighbours in PAS order, so flam...flam_accent is exactly the two
    write_performances(data_dir, "flam", n=2)
    write_performances(data_dir, "flam_accent", n=2)
    shift_labels(data_dir, "flam_accent", 12.0)
    result = dg.materialize(
        [rudiment_audio, downstream_of_audio],
        instance=instance,
        run_config=RUN_CONFIG,
        tags={"dagster/asset_partition_range_start": "flam", "dagster/asset_partition_range_end": "flam_accent"},
        raise_on_error=False,
    )
    assert not result.success
    evaluations = _evaluations(result)
    assert len(evaluations) == 2 * len(GATES)
    assert all(evaluations[("flam", name)] for name in GATES)
    assert evaluations[("flam_accent", "audio_aligned_with_labels")] is False
    assert evaluations[("flam_accent", "audio_duration_matches_midi")] is True
    assert instance.get_materialized_partitions(dg.AssetKey("rudiment_audio")) == {"flam", "flam_accent"}
    assert not instance.get_materialized_partitions(dg.AssetKey("downstream_of_audio"))
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert "samples with median |onset - labelled stroke| <= 5.0 ms" in failed[0].description


def test_missing_performances_fail_with_the_file_and_the_fix(data_dir: Path, instance) -> None:
    result = dg.materialize(
        [rudiment_audio], instance=instance, partition_key="drag", run_config=RUN_CONFIG, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    text = failure.cause.message if failure.cause else failure.message
    # no complete performances partition (its manifest is what a finished write leaves last): the fix is named
    assert "rudiment_performances/drag is incomplete" in text and "manifests/rudiment_performances/drag.json" in text
    assert "--select rudiment_performances --partition drag" in text


def test_unknown_preset_is_rejected(data_dir: Path, instance) -> None:
    write_performances(data_dir, "drag", n=1)
    config = {"ops": {"rudiment_audio": {"config": {"workers": 1, "presets": ["cathedral"]}}}}
    with pytest.raises(Exception, match="cathedral"):
        dg.materialize([rudiment_audio], instance=instance, partition_key="drag", run_config=config)
