"""Only what changed re-runs: declarative automation over the sources group, evaluated as the daemon does.

The code location's own definitions and automation conditions (`dg.evaluate_automation_conditions`
over `music_assets.definitions.defs`), a real folder, and the runs it asks for carried out with
`dg.materialize`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from music_assets.audio.signals import music_like, write
from music_assets.definitions import defs
from music_assets.defs.automation import per_source_condition
from music_assets.defs.sources import assets as sources
from music_assets.defs.sources.textures import texture_beds

SR = 8000
FILES = ("bounces/one.flac", "bounces/two.flac", "tracks/three.flac")
PREPARED, TEXTURES = dg.AssetKey("prepared_sources"), dg.AssetKey("texture_beds")
RESOURCES = {"audio_roots": sources.AudioRoots()}


def _refresh(instance: dg.DagsterInstance) -> None:
    """A catalog refresh as the sensor and the schedule run it (no run config)."""
    result = dg.materialize([sources.audio_catalog, sources.selected_sources], instance=instance, resources=RESOURCES)
    assert result.success


class Ticks:
    """Successive evaluations of the code location's automation conditions (the daemon's ticks)."""

    def __init__(self, instance: dg.DagsterInstance, definitions: dg.Definitions = defs, only=None):
        self.instance, self.cursor, self.defs, self.only = instance, None, definitions, only
        self.last: dict[dg.AssetKey, set[str]] = {}

    def __call__(self) -> dict[dg.AssetKey, set[str]]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        keys = {r.key for r in result.results if isinstance(r.key, dg.AssetKey)}
        self.last = {key: set(result.get_requested_partitions(key)) for key in keys if result.get_num_requested(key)}
        # The sources group's own assets; what follows them downstream (training sets) is asserted apart.
        return {key: parts for key, parts in self.last.items() if self.only is None or key in self.only}


def _run(instance: dg.DagsterInstance, requested: dict[dg.AssetKey, set[str]]) -> None:
    """Carry out what a tick requested: each partition's prepared source, then its texture beds."""
    for key in sorted(requested.get(PREPARED, set()) | requested.get(TEXTURES, set())):
        assets = [a for a in (sources.prepared_sources, texture_beds) if key in requested.get(a.key, set())]
        result = dg.materialize([*assets, sources.source_files], instance=instance, partition_key=key, selection=assets)
        assert result.success


def _keys() -> dict[str, str]:
    return {r["rel_path"]: r["source_id"] for r in pq.read_table(sources.selected_file()).to_pylist() if r["selected"]}


@pytest.fixture
def music(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    folder = tmp_path / "My Music"
    for i, rel in enumerate(FILES):
        write(folder / rel, music_like(31.0, SR, seed=30 + i))
    monkeypatch.setenv("MUSIC_ASSETS_AUDIO_ROOTS", str(folder))
    return folder


@pytest.mark.slow
def test_a_refresh_reruns_only_the_sources_that_changed(music: Path, instance) -> None:
    tick = Ticks(instance, only={PREPARED, TEXTURES})
    assert tick() == {}  # the first evaluation: nothing cataloged, nothing to do
    _refresh(instance)
    keys = _keys()
    assert set(keys) == set(FILES)
    first = tick()  # every new source: prepared and its beds, in the same tick
    assert first == {PREPARED: set(keys.values()), TEXTURES: set(keys.values())}
    assert tick.last[dg.AssetKey("track_annotations")] == set(keys.values())  # the training set follows new sources
    _run(instance, first)
    assert tick() == {}  # the beds do not run a second time for the preparation they ran with

    # A catalog refresh with no file changed launches nothing, although selected_sources materialized again.
    _refresh(instance)
    assert tick() == {}
    assert instance.get_latest_materialization_event(dg.AssetKey("selected_sources")) is not None

    # One changed file: exactly its partition, and its texture beds.
    write(music / FILES[1], music_like(31.0, SR, seed=99))
    _refresh(instance)
    assert _keys() == keys  # an edited file keeps its key
    changed = tick()
    assert changed == {PREPARED: {keys[FILES[1]]}, TEXTURES: {keys[FILES[1]]}}
    _run(instance, changed)
    assert tick() == {}

    # New provenance (a license in a sidecar) is a change of what the assets record: that source re-runs.
    (music / f"{FILES[0]}.json").write_text('{"license": "CC0-1.0"}')
    _refresh(instance)
    relicensed = tick()
    assert relicensed == {PREPARED: {keys[FILES[0]]}, TEXTURES: {keys[FILES[0]]}}
    _run(instance, relicensed)
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PREPARED, asset_partitions=[keys[FILES[0]]]), limit=1
    ).records
    meta = record.asset_materialization.metadata
    assert meta["license"].value == "CC0-1.0" and meta["rel_path"].value == FILES[0]

    # A source that leaves the selection loses its files; when it returns, it is made again.
    away = music.parent / "away.flac"
    (music / FILES[2]).rename(away)
    _refresh(instance)
    gone = keys[FILES[2]]
    assert gone not in instance.get_dynamic_partitions("prepared_sources")
    assert not sources.prepared_file(gone).exists()
    assert tick() == {}
    away.rename(music / FILES[2])
    _refresh(instance)
    assert tick() == {PREPARED: {gone}, TEXTURES: {gone}}


@pytest.mark.slow
def test_a_new_code_version_reruns_every_partition_of_that_asset(music: Path, instance) -> None:
    group = [sources.audio_catalog, sources.selected_sources, sources.source_files, sources.prepared_sources]
    tick = Ticks(instance, dg.Definitions(assets=[*group, texture_beds], resources=RESOURCES))
    tick()
    _refresh(instance)
    _run(instance, tick())
    assert tick() == {}
    tick.defs = dg.Definitions(
        assets=[*group, texture_beds.map_asset_specs(lambda spec: spec.replace_attributes(code_version="next"))],
        resources=RESOURCES,
    )
    assert tick() == {TEXTURES: set(_keys().values())}  # every partition of texture_beds, none of prepared_sources
    assert tick() == {}


def _legacy_ids(rows: list[dict]) -> None:
    """How source ids were given before readable keys: a hash of the relative path and the bytes."""
    from music_assets.seeding import stable_id

    first: dict[str, dict] = {}
    for r in rows:
        sid = stable_id("audio-source", r["rel_path"], r["content_hash"] or "")
        if sid in first:
            r["source_id"] = None
            continue
        first[sid] = r
        r["source_id"] = sid


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_legacy_keys_are_renamed_once_and_nothing_is_made_again(
    music: Path, data_dir: Path, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from music_assets.audio import catalog
    from music_assets.audio.catalog import table as catalog_table
    from music_assets.defs.partitions import prepared_source_partitions
    from music_assets.defs.sources import keys as source_keys

    @dg.asset(
        deps=[sources.prepared_sources],
        partitions_def=prepared_source_partitions,
        automation_condition=per_source_condition(),
    )
    def per_source_notes() -> None:
        """An asset on the same partitions that registered no mover: made again under the new keys."""

    group = [sources.audio_catalog, sources.selected_sources, sources.source_files, sources.prepared_sources]
    tick = Ticks(instance, dg.Definitions(assets=[*group, texture_beds, per_source_notes], resources=RESOURCES))
    tick()
    with monkeypatch.context() as legacy:
        legacy.setattr(catalog_table, "_assign_source_ids", _legacy_ids)
        _refresh(instance)
    old = _keys()
    assert all(catalog.LEGACY_KEY.match(k) for k in old.values())
    made = tick()
    _run(instance, made)
    for key in old.values():
        assert dg.materialize([per_source_notes, sources.prepared_sources], instance=instance, partition_key=key,
                              selection=[per_source_notes]).success  # fmt: skip
    assert tick() == {}
    textures = data_dir / "sources" / "textures"
    before = {rel: (sources.prepared_file(k).read_bytes(), _files(textures / k)) for rel, k in old.items()}

    _refresh(instance)  # the first selection with readable keys
    new = _keys()
    assert set(new) == set(old) and all(new[rel] == catalog.source_key(rel) for rel in new)
    assert sorted(instance.get_dynamic_partitions("prepared_sources")) == sorted(new.values())
    assert source_keys.seed_ids() == {new[rel]: old[rel] for rel in new}
    for rel, key in new.items():
        prepared_bytes, texture_files = before[rel]
        assert sources.prepared_file(key).read_bytes() == prepared_bytes
        assert not sources.prepared_file(old[rel]).exists() and not (textures / old[rel]).exists()
        moved = _files(textures / key)
        assert {k: v for k, v in moved.items() if k != "textures.parquet"} == {
            k: v for k, v in texture_files.items() if k != "textures.parquet"
        }
        assert set(pq.read_table(textures / key / "textures.parquet").column("source_id").to_pylist()) == {key}
    for asset in (PREPARED, TEXTURES):
        assert instance.get_materialized_partitions(asset) >= set(new.values())
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PREPARED, asset_partitions=[new[FILES[0]]]), limit=1
    ).records
    meta = record.asset_materialization.metadata
    assert meta["migrated_from"].value == old[FILES[0]]
    assert meta["path"].value == str(sources.prepared_file(new[FILES[0]]))

    # Nothing is made again, except the asset that registered no mover: its partitions under the new keys.
    assert tick() == {per_source_notes.key: set(new.values())}
    assert tick() == {}

    # The copied gates count: a new texture code version re-makes every bed on its own (prepared's checks passed)...
    tick.defs = dg.Definitions(
        assets=[*group, texture_beds.map_asset_specs(lambda spec: spec.replace_attributes(code_version="next"))],
        resources=RESOURCES,
    )
    assert tick() == {TEXTURES: set(new.values())}
    # ...and re-made with the same config, a migrated bed is the same bytes: its draws keep the old id's seed.
    key = new[FILES[0]]
    migrated = _files(textures / key)
    assert dg.materialize([texture_beds, sources.prepared_sources], instance=instance, partition_key=key,
                          selection=[texture_beds]).success  # fmt: skip
    assert _files(textures / key) == migrated
