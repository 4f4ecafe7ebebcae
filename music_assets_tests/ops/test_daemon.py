"""The real dagster-daemon: a sensor tick on the raw-audio folder launches a catalog run, once the
sensor is on (off by default; MUSIC_ASSETS_AUTOMATIONS turns it on, as the cluster values do)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from music_assets.audio.signals import music_like, write
from music_assets_tests.ops.processes import BIN, background


def test_daemon_sensor_tick_launches_a_run(tmp_path: Path, data_dir: Path, dagster_home: Path) -> None:
    write(data_dir / "raw_audio" / "tracks" / "take1.flac", music_like(1.0, seed=5))
    log = tmp_path / "daemon.log"
    with dg.DagsterInstance.get() as instance:  # create the SQLite schema before the daemon races for it
        assert instance.get_runs() == []
    env = {**os.environ, "MUSIC_ASSETS_AUTOMATIONS": "raw_audio_sensor"}
    with background([str(BIN / "dagster-daemon"), "run", "-m", "music_assets.definitions"], log, env=env):
        deadline = time.monotonic() + 240
        run = None
        while time.monotonic() < deadline:
            with dg.DagsterInstance.get() as instance:
                runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "raw_audio_sensor"}))
                if runs and runs[0].status == dg.DagsterRunStatus.SUCCESS:
                    run = runs[0]
                    break
                if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
                    raise AssertionError(f"sensor run failed; daemon log:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        assert run is not None, f"no sensor run succeeded; daemon log:\n{log.read_text()[-4000:]}"
    assert run.tags["music_assets/trigger"] == "raw_audio_changed"
    catalog = data_dir / "catalog" / "audio_catalog.parquet"
    import pyarrow.parquet as pq

    assert pq.read_table(catalog).column("rel_path").to_pylist() == ["tracks/take1.flac"]
