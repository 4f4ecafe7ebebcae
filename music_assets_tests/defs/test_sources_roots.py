"""One setting for the music folders: the catalog, the daily schedule and the sensor all use it.

$MUSIC_ASSETS_AUDIO_ROOTS through the `audio_roots` resource, exactly as the code location
wires it; the schedule's and the sensor's evaluations carried out as runs.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest

from music_assets.audio.catalog import cataloged_roots
from music_assets.audio.signals import music_like, write
from music_assets.definitions import defs
from music_assets.defs.sources import assets as sources

SR = 8000
RESOURCES = {"audio_roots": defs.resources["audio_roots"]}  # the code location's own resource
REFRESH = [sources.audio_catalog, sources.selected_sources]


def _run(instance: dg.DagsterInstance, request: dg.RunRequest | None = None, **config) -> None:
    """A catalog + selection run: what a schedule or sensor request starts, or one with `config`."""
    run_config = dict(request.run_config) if request else {}
    if config:
        run_config = {"ops": {"audio_catalog": {"config": config}}}
    tags = dict(request.tags) if request else {}
    assert dg.materialize(REFRESH, instance=instance, run_config=run_config, tags=tags, resources=RESOURCES).success


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    return sources.raw_audio_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=RESOURCES))


def _partitions(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_dynamic_partitions("prepared_sources"))


@pytest.fixture
def folders(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Two music folders in $MUSIC_ASSETS_AUDIO_ROOTS (one links a library in), another folder, and a
    demo file in <data dir>/raw_audio, the default, which must not be cataloged."""
    mine, second, other = tmp_path / "My Music", tmp_path / "Bounces", tmp_path / "Elsewhere"
    write(mine / "tracks" / "take one.flac", music_like(31.0, SR, seed=1))
    write(tmp_path / "library" / "album" / "song.flac", music_like(31.0, SR, seed=2))
    os.symlink(tmp_path / "library", mine / "library")
    write(second / "mix.flac", music_like(31.0, SR, seed=3))
    write(other / "someone else.flac", music_like(31.0, SR, seed=4))
    write(data_dir / "raw_audio" / "demo.flac", music_like(31.0, SR, seed=5))
    monkeypatch.setenv("MUSIC_ASSETS_AUDIO_ROOTS", f"{mine}{os.pathsep}{second}")
    return mine, second, other


def test_the_configured_folders_stay_what_the_schedule_and_the_sensor_catalog(folders, instance) -> None:
    mine, second, other = folders
    configured = [str(mine.resolve()), str(second.resolve())]
    _run(instance)  # as `dagster asset materialize --select audio_catalog,selected_sources` runs it
    assert cataloged_roots(sources.catalog_file()) == configured
    keys = _partitions(instance)
    assert {k.rsplit("-", 1)[0] for k in keys} == {"take-one", "song", "mix"}  # the linked library included

    # The daily schedule's run catalogs the same folders; no partition is dropped.
    when = dt.datetime(2026, 1, 2, 4, tzinfo=dt.UTC)
    (request,) = sources.daily_audio_catalog.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    ).run_requests
    _run(instance, request)
    assert cataloged_roots(sources.catalog_file()) == configured and _partitions(instance) == keys

    # The sensor's first tick asks for a catalog (it has seen nothing yet): the same folders again.
    first = _tick(instance, None)
    (request,) = first.run_requests
    _run(instance, request)
    assert cataloged_roots(sources.catalog_file()) == configured and _partitions(instance) == keys
    quiet = _tick(instance, first.cursor)
    assert isinstance(quiet, dg.SkipReason) and str(mine.resolve()) in quiet.skip_message
    assert _partitions(instance) == keys

    # A run with its own roots overrides them for that run only: the sensor puts the configured folders back
    # (once), with the same keys, so the sources keep their partitions.
    _run(instance, roots=[str(other)])
    assert cataloged_roots(sources.catalog_file()) == [str(other.resolve())]
    back = _tick(instance, first.cursor)
    (request,) = back.run_requests
    assert request.tags["music_assets/trigger"] == "catalog_from_other_roots"
    assert isinstance(_tick(instance, back.cursor), dg.SkipReason)  # asked once, not at every tick
    _run(instance, request)
    assert cataloged_roots(sources.catalog_file()) == configured and _partitions(instance) == keys
    assert isinstance(_tick(instance, back.cursor), dg.SkipReason)

    # A file added to a linked folder is seen by the sensor like any other.
    write(mine.parent / "library" / "album" / "new.flac", music_like(31.0, SR, seed=6))
    (request,) = _tick(instance, back.cursor).run_requests
    _run(instance, request)
    assert {k.rsplit("-", 1)[0] for k in _partitions(instance)} == {"take-one", "song", "mix", "new"}


def test_the_setting_is_read_when_used(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    roots = defs.resources["audio_roots"]
    assert roots.paths() == [str(data_dir / "raw_audio")] and roots.setting() == "default"
    monkeypatch.setenv("MUSIC_ASSETS_AUDIO_ROOTS", f" ~/music {os.pathsep}{os.pathsep}relative/folder ")
    assert roots.paths() == [os.path.expanduser("~/music"), os.path.abspath("relative/folder")]
    assert roots.setting() == "$MUSIC_ASSETS_AUDIO_ROOTS"
    assert sources.AudioRoots(roots=[str(tmp_path)]).paths() == [str(tmp_path)]
