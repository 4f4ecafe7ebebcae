"""The instance on PostgreSQL: one environment switch, real server, real CLI run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from music_assets.audio.signals import music_like, write
from music_assets.local_postgres import postgres_server
from music_assets.paths import REPO_ROOT


@pytest.fixture
def postgres_url():
    with postgres_server() as url:
        yield url


def test_materialize_on_postgres_and_read_events_back(
    tmp_path: Path, data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ASSETS_INSTANCE", "postgres")
    monkeypatch.setenv("MUSIC_ASSETS_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    from music_assets.ops.instance import ensure_dagster_home

    home = ensure_dagster_home()
    assert (home / "dagster.yaml").resolve() == REPO_ROOT / "dagster.postgres.yaml"

    music = tmp_path / "music"
    write(music / "a.flac", music_like(1.0, seed=3))
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(music)]}}}}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "music_assets.definitions",
            "--select",
            "audio_catalog",
            "--config-json",
            json.dumps(config),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Nothing went to SQLite: the run, its events and its checks are in PostgreSQL.
    assert not list(home.glob("**/*.db"))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        mat = instance.get_latest_materialization_event(dg.AssetKey("audio_catalog"))
        assert mat is not None and mat.run_id == run.run_id
        assert mat.asset_materialization.metadata["files"].value == 1
        checks = {
            name: instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [dg.AssetCheckKey(dg.AssetKey("audio_catalog"), name)]
            )
            for name in ("unique_source_id", "error_ratio")
        }
        for name, by_key in checks.items():
            (execution,) = by_key.values()
            assert execution.run_id == run.run_id
            assert execution.status.value == "SUCCEEDED", name
