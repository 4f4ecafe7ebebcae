"""No surprise runs: `make dev` on a fresh instance starts no run by itself.

The real `dagster dev` of `make dev` (webserver and daemon), on a data dir whose raw_audio
folder holds music that raw_audio_sensor would catalog if it were on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from music_assets.audio.signals import music_like, write
from music_assets_tests.ops.processes import background, free_port, wait_for_http
from music_assets_tests.ops.test_ui_browser import make_dev_command

QUIET_S = 60


def _sensor_ticks(instance: dg.DagsterInstance, name: str) -> int:
    from dagster._core.scheduler.instigation import InstigatorType

    states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == name]
    return sum(len(instance.get_ticks(s.instigator_origin_id, s.selector_id)) for s in states)


@pytest.mark.slow
def test_a_fresh_dagster_dev_starts_no_run_within_a_minute(tmp_path: Path, data_dir: Path, dagster_home: Path) -> None:
    write(data_dir / "raw_audio" / "tracks" / "take.flac", music_like(31.0, seed=3))
    with dg.DagsterInstance.get() as instance:  # the schema before the daemon and the webserver race for it
        assert instance.get_runs() == []
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    with background(make_dev_command(PORT=str(port)), log, env=os.environ.copy()) as server:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", 180, server, log)
        up = time.monotonic()
        ticked = False
        while time.monotonic() - up < QUIET_S or not ticked:
            assert time.monotonic() - up < 240, f"the daemon ran no sensor in 4 minutes:\n{log.read_text()[-3000:]}"
            with dg.DagsterInstance.get() as instance:
                runs = instance.get_runs()
                assert runs == [], f"started {[(r.job_name, r.tags) for r in runs]}:\n{log.read_text()[-3000:]}"
                # the daemon does evaluate sensors: the bookkeeping one that is on has ticked
                ticked = ticked or _sensor_ticks(instance, "reap_killed_runs") > 0
            time.sleep(2)
        with dg.DagsterInstance.get() as instance:
            assert _sensor_ticks(instance, "raw_audio_sensor") == 0
    assert not (data_dir / "catalog").exists()
