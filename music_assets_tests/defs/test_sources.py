"""The sources group end to end: catalog -> selection -> prepared partitions, checks, sensor, schedule."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from music_assets.audio.preparation import CHECK_DESCRIPTIONS
from music_assets.audio.signals import music_like, write
from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import assets as sources
from music_assets_tests.audio.audio_trees import BAD_CASES, file_permissions_enforced, make_bad_files

SR = 8000
GOOD = ("bounces/song_a.flac", "tracks/song_b.wav")


def _make_sources(root: Path) -> None:
    write(root / GOOD[0], music_like(31.0, SR, seed=10))
    write(root / GOOD[1], music_like(33.0, SR, seed=11), subtype="PCM_16")
    write(root / "scratch" / "idea.wav", music_like(31.0, SR, seed=12))
    write(root / "masters" / "too_hot.wav", np.clip(4.0 * music_like(31.0, SR, seed=13), -1, 1))
    quiet = music_like(31.0, SR, seed=14)
    quiet[int(5 * SR) : int(28 * SR)] = 0.0  # 23 of 31 s silent, in the middle: preparation keeps it
    write(root / "takes" / "mostly_silent.wav", quiet)
    write(root / "takes" / "short.wav", music_like(3.0, SR, seed=15))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sources_tree")
    root = base / "raw_audio"
    _make_sources(root)
    make_bad_files(root, base / "outside")
    yield root
    os.chmod(root / "bad" / "locked.wav", 0o644)


@pytest.fixture
def raw_root(tree: Path, data_dir: Path) -> Path:
    """The tree copied to <data dir>/raw_audio (the default root, watched by the sensor)."""
    dest = data_dir / "raw_audio"
    shutil.copytree(tree, dest, symlinks=True, ignore=shutil.ignore_patterns("pipe.wav", "locked.wav"))
    return dest


RESOURCES = {"audio_roots": sources.AudioRoots()}


def _catalog_and_select(instance, roots: list[str] | None = None, selection: dict | None = None, **kw):
    config = {"ops": {"audio_catalog": {"config": {"roots": roots}}}} if roots else {"ops": {}}
    if selection:
        config["ops"]["selected_sources"] = {"config": selection}
    return dg.materialize(
        [sources.audio_catalog, sources.selected_sources],
        instance=instance,
        run_config=config,
        resources=RESOURCES,
        **kw,
    )


def _tick(instance, cursor: str | None = None):
    """One raw_audio_sensor evaluation, with the resource the code location gives it."""
    return sources.raw_audio_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=RESOURCES))


def _prepare_all(instance, extra_assets=(), **kw):
    keys = prepared_source_partitions.get_partition_keys(dynamic_partitions_store=instance)
    return dg.materialize(
        [sources.prepared_sources, *extra_assets],
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        **kw,
    )


def _downstream(ran: list) -> dg.AssetsDefinition:
    """A consumer of prepared_sources in the same run: it must run only when every gate passes."""

    @dg.asset(
        deps=[sources.prepared_sources],
        partitions_def=prepared_source_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def background_beds(context) -> None:
        ran.append(sorted(context.partition_keys))

    return background_beds


def _check_results(result) -> dict[tuple[str, str | None], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def test_the_whole_group_over_every_bad_file(tree: Path, data_dir: Path, instance) -> None:
    with file_permissions_enforced():  # root would read the locked file; analysis runs in this thread
        result = _catalog_and_select(instance, [str(tree)])
    assert result.success

    catalog = {r["rel_path"]: r for r in pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()}
    for rel, (status, reason) in BAD_CASES.items():
        assert catalog[rel]["status"] == status, (rel, catalog[rel])
        assert reason in catalog[rel]["error"], (rel, catalog[rel]["error"])
    assert not any(rel.startswith((".git/", ".venv/", "env_with_cfg/")) or "/cycle/" in rel for rel in catalog)
    assert "bad/notes.txt" not in catalog
    assert all(r["error"] for r in catalog.values() if r["status"] != "ok")
    assert catalog[GOOD[1]]["duration_sec"] == pytest.approx(33.0)
    assert catalog[GOOD[1]]["sample_rate"] == SR and catalog[GOOD[1]]["channels"] == 1
    assert catalog["masters/too_hot.wav"]["clipped_ratio"] > 0.01

    meta = result.asset_materializations_for_node("audio_catalog")[0].metadata
    assert meta["files"].value == len(catalog)
    assert meta["error_count"].value == sum(r["status"] == "error" for r in catalog.values())
    assert meta["total_hours"].value == pytest.approx(
        sum(r["duration_sec"] for r in catalog.values() if r["status"] == "ok") / 3600, abs=1e-4
    )
    assert "| wav |" in meta["formats"].value and "bad/" in meta["worst_files"].value

    checks = _check_results(result)
    assert checks[("unique_source_id", None)].passed
    ratio = checks[("error_ratio", None)]
    assert not ratio.passed and ratio.severity == dg.AssetCheckSeverity.WARN  # 7 errors in ~20 files: warned

    selected = pq.read_table(data_dir / "catalog" / "selected_sources.parquet").to_pylist()
    assert {r["rel_path"] for r in selected if r["selected"]} == set(GOOD)
    reasons = {r["rel_path"]: r["rejection_reason"] for r in selected}
    assert "skip pattern 'scratch'" in reasons["scratch/idea.wav"]
    assert "clipped ratio" in reasons["masters/too_hot.wav"]
    assert "silence ratio" in reasons["takes/mostly_silent.wav"]
    assert "duration 3.0 s < 30 s" in reasons["takes/short.wav"]
    assert reasons["bad/truncated.flac"].startswith("status error: corrupt")
    scores = [r["selection_score"] for r in selected if r["selection_score"] is not None]
    assert scores == sorted(scores, reverse=True)
    assert selected[0]["rel_path"] in GOOD  # the path boost puts them first

    ids = {catalog[g]["source_id"] for g in GOOD}
    assert set(instance.get_dynamic_partitions("prepared_sources")) == ids

    ran: list = []
    prepared = _prepare_all(instance, [_downstream(ran)])
    assert prepared.success and ran == [sorted(ids)]
    checks = _check_results(prepared)
    for sid in ids:
        out = data_dir / "sources" / "prepared" / f"{sid}.flac"
        info = sf.info(out)
        assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
        assert 30.0 <= info.duration <= 34.0
        peak = np.abs(sf.read(out)[0]).max()
        assert 20 * np.log10(peak) == pytest.approx(-1.0, abs=0.01)
        for name in CHECK_DESCRIPTIONS:
            assert checks[(name, sid)].passed, checks[(name, sid)]
    by_partition = {m.partition: m.metadata for m in prepared.asset_materializations_for_node("prepared_sources")}
    assert set(by_partition) == ids
    assert all(0 <= m["quality_score"].value <= 100 for m in by_partition.values())

    # A source disappears: the next catalog + selection drops its partition and its prepared file.
    gone = catalog[GOOD[0]]["source_id"]
    moved = tree.parent / "song_a_moved.flac"
    (tree / GOOD[0]).rename(moved)
    try:
        assert _catalog_and_select(instance, [str(tree)]).success
    finally:
        moved.rename(tree / GOOD[0])
    assert set(instance.get_dynamic_partitions("prepared_sources")) == ids - {gone}
    assert not (data_dir / "sources" / "prepared" / f"{gone}.flac").exists()


def test_a_failing_gate_blocks_what_comes_after(tree: Path, data_dir: Path, instance) -> None:
    # Relaxed selection lets the mostly-silent take through; the prepared silence gate must stop it.
    relaxed = {"max_silence_ratio": 1.0, "skip_patterns": ["scratch", "bad", "bounces", "tracks"]}
    assert _catalog_and_select(instance, [str(tree)], selection=relaxed).success
    keys = instance.get_dynamic_partitions("prepared_sources")
    assert len(keys) == 1
    ran: list = []
    result = _prepare_all(instance, [_downstream(ran)], raise_on_error=False)
    assert not result.success
    checks = _check_results(result)
    assert not checks[("not_mostly_silent", keys[0])].passed
    assert checks[("duration_in_range", keys[0])].passed
    assert ran == []


def test_catalog_checks_fail_on_bad_tables(data_dir: Path) -> None:
    import pyarrow as pa

    from music_assets.audio.catalog import rows_to_table
    from music_assets.io import write_parquet

    def row(rel: str, sid: str | None, status: str = "ok") -> dict:
        return {
            "source_id": sid,
            "root": "/r",
            "rel_path": rel,
            "status": status,
            "format": "wav",
            "error": None if status == "ok" else "bad",
            "analyzed": True,
        }

    path = write_parquet(
        sources.catalog_file(), rows_to_table([row("a.wav", "x"), row("b.wav", "x"), row("c.wav", None)])
    )
    unique = sources.check_unique_source_id(path)
    assert not unique.passed and unique.metadata["duplicated_ids"] == 1
    assert unique.metadata["ok_rows_without_id"] == 1
    write_parquet(path, rows_to_table([row("a.wav", "x", "error"), row("b.wav", "y")]))
    assert sources.check_unique_source_id(path).passed
    assert sources.check_error_ratio(path, 0.6).passed
    assert not sources.check_error_ratio(path, 0.4).passed
    assert isinstance(pq.read_table(sources.catalog_file()).schema.field("rel_path").type, type(pa.string()))


def test_the_sensor_requests_a_catalog_run_only_when_the_tree_changes(raw_root: Path, instance) -> None:
    first = _tick(instance)
    assert len(first.run_requests) == 1
    # the run catalogs the audio_roots resource's folders, as every run does: no roots of its own
    assert first.run_requests[0].run_config == {} and first.run_requests[0].tags["music_assets/trigger"] == (
        "raw_audio_changed"
    )
    quiet = _tick(instance, first.cursor)
    assert isinstance(quiet, dg.SkipReason) and str(raw_root) in quiet.skip_message

    write(raw_root / "tracks" / "new_take.wav", music_like(1.0, SR, seed=99))
    changed = _tick(instance, first.cursor)
    assert len(changed.run_requests) == 1 and changed.cursor != first.cursor
    (raw_root / "tracks" / "new_take.wav").unlink()
    removed = _tick(instance, changed.cursor)
    assert len(removed.run_requests) == 1 and removed.cursor == first.cursor


def test_the_sensor_keeps_partitions_to_selected_files_that_exist(raw_root: Path, instance) -> None:
    assert _catalog_and_select(instance).success  # default config: roots = <data dir>/raw_audio
    catalog = {r["rel_path"]: r["source_id"] for r in pq.read_table(sources.catalog_file()).to_pylist()}
    kept, gone = catalog[GOOD[0]], catalog[GOOD[1]]
    assert set(instance.get_dynamic_partitions("prepared_sources")) == {kept, gone}
    instance.delete_dynamic_partition("prepared_sources", kept)  # lost: the sensor adds it back
    (raw_root / GOOD[1]).unlink()  # its source disappeared: the sensor removes it at once
    result = _tick(instance)
    requests = {type(r).__name__: set(r.partition_keys) for r in result.dynamic_partitions_requests}
    assert requests == {"AddDynamicPartitionsRequest": {kept}}
    # removed by the tick itself, in one transaction, rather than requested (the daemon deletes per key)
    assert set(instance.get_dynamic_partitions("prepared_sources")) == set()
    assert len(result.run_requests) == 1  # and the tree changed, so a catalog run is requested


def test_the_sensor_skips_without_a_raw_audio_folder(data_dir: Path, instance) -> None:
    result = _tick(instance)
    assert isinstance(result, dg.SkipReason) and "raw_audio" in result.skip_message


def test_the_daily_schedule_refreshes_catalog_and_selection(instance) -> None:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime(2026, 1, 2, 4, tzinfo=dt.UTC)
    )
    data = sources.daily_audio_catalog.evaluate_tick(context)
    assert len(data.run_requests) == 1
    assert sources.daily_audio_catalog.cron_schedule == "0 4 * * *"
    job = sources.defs.resolve_job_def(sources.daily_audio_catalog.job_name)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"audio_catalog", "selected_sources"}


def test_the_catalog_run_log_reports_files_done_of_total(raw_root: Path, instance) -> None:
    from music_assets.progress import parse

    result = dg.materialize([sources.audio_catalog], instance=instance, resources=RESOURCES)
    assert result.success
    lines = [p for e in instance.all_logs(result.run_id) if (p := parse(e.user_message or ""))]
    analysed = result.asset_materializations_for_node("audio_catalog")[0].metadata["analyzed_files"].value
    assert analysed > 5 and lines, [e.user_message for e in instance.all_logs(result.run_id)]
    assert all(p.label == "catalog" and p.unit == "files" and p.total == analysed for p in lines)
    assert lines[-1].done == analysed and [p.done for p in lines] == sorted(p.done for p in lines)


def test_licenses_flow_from_provenance_to_selection_and_prepared_sources(raw_root: Path, instance) -> None:
    (raw_root / "provenance.csv").write_text(f"path,license,provider\n{GOOD[0]},CC-BY-4.0,Label X\n")
    (raw_root / f"{GOOD[1]}.json").write_text('{"license": "CC-BY-NC-4.0", "author": "Ann"}')
    (raw_root / "takes" / "short.wav.json").write_text("{broken")
    result = _catalog_and_select(instance, selection={"allowed_licenses": ["cc-by-4.0"]})
    assert result.success
    data = raw_root.parent
    catalog = {r["rel_path"]: r for r in pq.read_table(data / "catalog" / "audio_catalog.parquet").to_pylist()}
    assert (catalog[GOOD[0]]["license"], catalog[GOOD[0]]["provenance_source"]) == ("CC-BY-4.0", "csv")
    assert (catalog[GOOD[1]]["license"], catalog[GOOD[1]]["author"]) == ("CC-BY-NC-4.0", "Ann")
    assert catalog["takes/short.wav"]["provenance_error"].startswith("short.wav.json: malformed JSON")
    meta = result.asset_materializations_for_node("audio_catalog")[0].metadata
    assert meta["provenance_errors"].value == 1 and "| CC-BY-NC-4.0 | 1 |" in meta["licenses"].value

    selected = {r["rel_path"]: r for r in pq.read_table(data / "catalog" / "selected_sources.parquet").to_pylist()}
    assert {k for k, r in selected.items() if r["selected"]} == {GOOD[0]}
    assert selected[GOOD[1]]["rejection_reason"] == "license 'CC-BY-NC-4.0' not in allowed licenses"
    assert selected[GOOD[0]]["license"] == "CC-BY-4.0"
    sid = catalog[GOOD[0]]["source_id"]
    assert instance.get_dynamic_partitions("prepared_sources") == [sid]
    assert sources.source_provenance()[sid]["license"] == "CC-BY-4.0"

    prepared = _prepare_all(instance)
    assert prepared.success
    meta = prepared.asset_materializations_for_node("prepared_sources")[0].metadata
    assert (meta["license"].value, meta["provider"].value) == ("CC-BY-4.0", "Label X")


def test_the_partition_sync_removes_many_keys_in_one_transaction(instance, monkeypatch: pytest.MonkeyPatch) -> None:
    name = prepared_source_partitions.name
    keys = [f"{i:016x}" for i in range(1200)]  # more than one DELETE chunk
    assert sources.sync_prepared_partitions(instance, keys) == (keys, [])

    def per_key(*_args):
        raise AssertionError("removed one key at a time")

    monkeypatch.setattr(type(instance), "delete_dynamic_partition", per_key)
    keep = keys[::7]
    added, removed = sources.sync_prepared_partitions(instance, keep)
    assert added == [] and removed == sorted(set(keys) - set(keep))
    assert sorted(instance.get_dynamic_partitions(name)) == keep
    assert sources.sync_prepared_partitions(instance, []) == ([], keep)
    assert instance.get_dynamic_partitions(name) == []


def test_open_files_do_not_grow_with_the_partitions_of_one_step(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One step over many partitions on an on-disk SQLite instance: the files it holds open (audio,
    SQLite connections) stay flat from the first partition to the last, events included."""
    from music_assets.audio import preparation

    root = data_dir / "raw_audio"
    for i in range(8):
        write(root / "tracks" / f"take_{i}.flac", music_like(31.0, SR, seed=100 + i))
    counts: dict[str, list[int]] = {"prepare": [], "check": []}

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def recording(name, fn):
        def wrapper(*args, **kwargs):
            counts[name].append(open_fds())
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(preparation, "prepare_source", recording("prepare", preparation.prepare_source))
    monkeypatch.setattr(preparation, "check_prepared", recording("check", preparation.check_prepared))
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert _catalog_and_select(instance).success
        assert len(instance.get_dynamic_partitions("prepared_sources")) == 8
        result = _prepare_all(instance)
        assert result.success
        assert len(result.get_asset_check_evaluations()) == 8 * len(CHECK_DESCRIPTIONS)
    # Each check_prepared call comes after the previous partitions' events were stored.
    assert len(counts["prepare"]) == len(counts["check"]) == 8, counts
    assert max(counts["prepare"]) - counts["prepare"][0] <= 1, counts
    assert max(counts["check"]) - counts["check"][0] <= 1, counts
    assert counts["check"][-1] - counts["prepare"][0] <= 3, counts
