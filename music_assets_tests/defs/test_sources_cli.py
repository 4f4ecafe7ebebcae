"""audio_catalog through the real `dagster asset materialize` CLI, with roots from --config-json."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from music_assets.audio.signals import music_like, write
from music_assets.ops.demo import StageProgress, run_stage


def test_catalog_any_folder_from_the_cli(tmp_path: Path, data_dir: Path, dagster_home: Path) -> None:
    music = tmp_path / "any dir"
    write(music / "bounces" / "a.flac", music_like(1.0, seed=1))
    write(music / "b.wav", music_like(2.0, seed=2), subtype="PCM_16")
    (music / "notes.mp3").write_text("not audio")
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(music)]}}}}
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [
        str(dagster),
        "asset",
        "materialize",
        "-m",
        "music_assets.definitions",
        "--select",
        "audio_catalog",
        "--config-json",
        json.dumps(config),
    ]
    # the way `make run` runs a stage: the whole output to a log, its progress lines to the terminal
    log, terminal = tmp_path / "stage.log", io.StringIO()
    rc = run_stage(cmd, log, StageProgress(tty=False, out=terminal))
    output = log.read_text()
    assert rc == 0, output[-3000:]
    shown = terminal.getvalue().splitlines()
    # only progress lines reach the terminal (how many depends on the machine's speed: one every few seconds)
    assert all(line.startswith("    audio_catalog: catalog: ") for line in shown), shown
    assert shown[-1].startswith("    audio_catalog: catalog: 3/3 files, "), shown
    rows = {r["rel_path"]: r for r in pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()}
    assert set(rows) == {"bounces/a.flac", "b.wav", "notes.mp3"}
    assert rows["b.wav"]["status"] == "ok" and abs(rows["b.wav"]["duration_sec"] - 2.0) < 1e-6
    assert rows["notes.mp3"]["status"] == "error" and "not a decodable audio file" in rows["notes.mp3"]["error"]
    assert {r["root"] for r in rows.values()} == {str(music.resolve())}
    assert "RUN_SUCCESS" in output and "catalog: 3/3 files (100 %)" in output
    assert list((dagster_home / "storage").iterdir())  # the run's compute logs went to this instance


def test_the_cli_catalogs_the_folders_of_the_setting(
    tmp_path: Path, data_dir: Path, dagster_home: Path, monkeypatch
) -> None:
    music = tmp_path / "My Music"
    write(music / "a.flac", music_like(1.0, seed=1))
    write(data_dir / "raw_audio" / "demo.flac", music_like(1.0, seed=2))  # the default: not cataloged
    monkeypatch.setenv("MUSIC_ASSETS_AUDIO_ROOTS", str(music))
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "asset", "materialize", "-m", "music_assets.definitions", "--select", "audio_catalog"]
    log = tmp_path / "stage.log"
    rc = run_stage(cmd, log, StageProgress(tty=False, out=io.StringIO()))
    output = log.read_text()
    assert rc == 0, output[-3000:]
    rows = pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()
    assert [(r["root"], r["rel_path"]) for r in rows] == [(str(music.resolve()), "a.flac")]
    assert f"cataloging {music} (from $MUSIC_ASSETS_AUDIO_ROOTS)" in output
