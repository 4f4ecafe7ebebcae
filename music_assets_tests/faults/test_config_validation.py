"""Issue 22, item 9: nonsense config is refused before any file is touched.

Before: selected_sources with negative durations rejected every source and deleted the prepared
FLACs and partitions; audio_catalog accepted `workers: -3` and `max_error_ratio: -1`; unknown keys
for prepared_sources and rudiment_performances were silently ignored. Now every config is validated
first (ranges, relations such as min < max, unknown keys), and a selection that would drop every
source fails instead of deleting, unless `allow_empty` says so.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import assets as sources
from music_assets.paths import REPO_ROOT
from music_assets_tests.faults.conftest import data_dir_env, digest_tree, failure_text, materialize

DEMO = str(REPO_ROOT / "data" / "raw_audio")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    """The demo sources cataloged, selected and prepared: (data dir, instance holding the partitions)."""
    data = tmp_path_factory.mktemp("prepared") / "data"
    data.mkdir()
    with data_dir_env(data), dg.DagsterInstance.ephemeral() as instance:
        catalog = {"ops": {"audio_catalog": {"config": {"roots": [DEMO]}}}}
        assert materialize(["audio_catalog", "selected_sources"], instance, catalog).success
        keys = instance.get_dynamic_partitions(prepared_source_partitions.name)
        assert len(keys) == 3 and materialize("prepared_sources", instance, partition=sorted(keys)).success
        yield data, instance


def _state(data: Path, instance) -> tuple:
    return digest_tree(data), sorted(instance.get_dynamic_partitions(prepared_source_partitions.name))


@pytest.mark.parametrize(
    "rules",
    [
        {"min_duration_sec": -10.0, "max_duration_sec": -5.0},  # every source "too long": all rejected
        {"max_silence_ratio": -1.0},  # every source "too silent"
    ],
    ids=["negative durations", "negative ratio"],
)
def test_nonsense_selection_rules_are_refused_and_nothing_is_deleted(prepared, rules: dict) -> None:
    data, instance = prepared
    before = _state(data, instance)
    with data_dir_env(data):
        result = materialize("selected_sources", instance, {"ops": {"selected_sources": {"config": rules}}})
    assert not result.success
    assert any(name in failure_text(result) for name in rules)  # the message names the setting
    assert _state(data, instance) == before  # partitions, prepared FLACs, selection: all as they were


def test_a_selection_that_drops_every_source_fails_instead_of_deleting(prepared) -> None:
    data, instance = prepared
    before = _state(data, instance)
    config = {"ops": {"selected_sources": {"config": {"allowed_licenses": ["NO-SUCH-LICENSE"]}}}}
    with data_dir_env(data):
        result = materialize("selected_sources", instance, config)
    assert not result.success
    text = failure_text(result)
    assert "select none" in text and "allow_empty" in text and "Nothing was changed" in text
    assert _state(data, instance) == before


@pytest.mark.parametrize(
    ("asset", "config", "partition"),
    [
        ("audio_catalog", {"roots": [DEMO], "workers": -3}, None),
        ("audio_catalog", {"roots": [DEMO], "max_error_ratio": -1.0}, None),
        ("audio_catalog", {"roots": [DEMO], "max_error_ratio": 2.0}, None),
    ],
    ids=["catalog workers", "negative error ratio", "error ratio above 1"],
)
def test_out_of_range_settings_fail_before_the_asset_writes(
    asset: str, config: dict, partition: str | None, data_dir: Path, instance
) -> None:
    result = materialize(asset, instance, {"ops": {asset: {"config": config}}}, partition)
    assert not result.success
    field = next(k for k in config if k != "roots")
    assert field in failure_text(result)
    assert not any(p.is_file() for p in data_dir.rglob("*"))  # not one file written


@pytest.mark.parametrize("asset", ["prepared_sources", "rudiment_performances"])
def test_unknown_keys_are_refused(asset: str, instance) -> None:
    from music_assets.defs.rudiments import assets as rudiments

    assets_def = sources.prepared_sources if asset == "prepared_sources" else rudiments.rudiment_performances
    defs = dg.Definitions(assets=[assets_def], resources={"rudiment_dataset": rudiments.RudimentDataset()})
    config = {"ops": {asset: {"config": {"num_profiles": 5}}}}  # a setting that belongs elsewhere
    with pytest.raises(dg.DagsterInvalidConfigError, match="num_profiles"):
        dg.validate_run_config(defs.resolve_implicit_global_asset_job_def(), config)
