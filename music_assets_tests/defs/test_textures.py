"""prepared_sources -> texture_beds on the checked-in demo sources: files, index, gates, metadata, bytes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from music_assets.audio import textures
from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import assets as sources
from music_assets.defs.sources.textures import texture_beds
from music_assets.paths import REPO_ROOT

DEMO_ROOT = REPO_ROOT / "data" / "raw_audio"


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def _checks(result) -> dict[tuple[str, str | None], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def test_texture_beds_for_every_demo_source(data_dir: Path, instance) -> None:
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(DEMO_ROOT)]}}}}
    assert dg.materialize(
        [sources.audio_catalog, sources.selected_sources],
        instance=instance,
        run_config=config,
        resources={"audio_roots": sources.AudioRoots()},
    )
    keys = prepared_source_partitions.get_partition_keys(dynamic_partitions_store=instance)
    assert len(keys) == 3  # the demo's three usable sources

    result = dg.materialize([sources.prepared_sources, texture_beds], instance=instance, tags=_range_tags(keys))
    assert result.success
    checks = _checks(result)
    profile = textures.PROFILES["default"]
    selected = pq.read_table(data_dir / "catalog" / "selected_sources.parquet").to_pylist()
    licenses = {r["source_id"]: r["license"] for r in selected if r["selected"]}
    # The demo's provenance.csv says CC-BY-4.0; the jazz trio's own sidecar says CC0-1.0.
    assert sorted(licenses.values()) == ["CC-BY-4.0", "CC-BY-4.0", "CC0-1.0"]
    for key in keys:
        for name in textures.CHECK_DESCRIPTIONS:
            assert checks[(name, key)].passed, checks[(name, key)]
        folder = data_dir / "sources" / "textures" / key
        rows = pq.read_table(folder / "textures.parquet").to_pylist()
        assert {r["kind"] for r in rows} == set(textures.KINDS)
        assert len(rows) == sum(profile.count(k) for k in textures.KINDS)
        assert {r["source_id"] for r in rows} == {key} and {r["license"] for r in rows} == {licenses[key]}
        for r in rows:
            info = sf.info(folder / r["file"])
            assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
            lo, hi = profile.duration_range(r["kind"])
            assert lo <= info.duration <= hi and r["duration_sec"] == pytest.approx(info.duration, abs=1e-5)
            assert r["file"].startswith(f"{r['kind']}/")
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("texture_beds")}
    assert set(meta) == set(keys)
    for key, m in meta.items():
        assert m["pads_count"].value == profile.pads and m["hiss_count"].value == profile.count("hiss")
        assert m["total_seconds"].value > 0 and m["preview"].value.startswith(f"![textures of {key}]")
        assert "data:image/png;base64," in m["preview"].value

    # Writing a partition again (a single-partition run this time) rewrites byte-identical files.
    key = keys[0]
    folder = data_dir / "sources" / "textures" / key
    before = {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.*")) if p.suffix != ".png"}
    again = dg.materialize([texture_beds], instance=instance, partition_key=key, selection=[texture_beds])
    assert again.success
    assert all(e.passed for e in again.get_asset_check_evaluations())
    assert {e.partition for e in again.get_asset_check_evaluations()} <= {key, None}
    after = {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.*")) if p.suffix != ".png"}
    assert set(after) == set(before) and all(after[k] == before[k] for k in before)

    # The folder of a source that is no longer a partition goes at the next run.
    stale = data_dir / "sources" / "textures" / "deselected_source"
    (stale / "hiss").mkdir(parents=True)
    (stale / "hiss" / "hiss_00.flac").write_bytes(b"old")

    # Another profile by config; a missing prepared source is a clear failure naming it.
    dark = dg.materialize(
        [texture_beds],
        instance=instance,
        partition_key=key,
        run_config={"ops": {"texture_beds": {"config": {"profile": "dark", "seed": 3}}}},
    )
    rows = pq.read_table(folder / "textures.parquet").to_pylist()
    assert dark.success and {r["profile"] for r in rows} == {"dark"} and {r["seed"] for r in rows} == {3}
    assert not stale.exists() and all((data_dir / "sources" / "textures" / k).is_dir() for k in keys)
    (data_dir / "sources" / "prepared" / f"{key}.flac").unlink()
    failed = dg.materialize([texture_beds], instance=instance, partition_key=key, raise_on_error=False)
    assert not failed.success
    failure = failed.get_step_failure_events()[0].step_failure_data.error
    assert f"{key}.flac does not exist" in failure.message + str(failure.cause)
