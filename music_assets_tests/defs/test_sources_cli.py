"""audio_catalog through the real `dagster asset materialize` CLI, with roots from --config-json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from music_assets.paths import REPO_ROOT
from music_assets_tests.audio.audio_trees import music_like, write


def test_catalog_any_folder_from_the_cli(tmp_path: Path, data_dir: Path, dagster_home: Path) -> None:
    music = tmp_path / "any dir"
    write(music / "bounces" / "a.flac", music_like(1.0, seed=1))
    write(music / "b.wav", music_like(2.0, seed=2), subtype="PCM_16")
    (music / "notes.mp3").write_text("not audio")
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(music)]}}}}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [
            str(dagster),
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
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["rel_path"]: r for r in pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()}
    assert set(rows) == {"bounces/a.flac", "b.wav", "notes.mp3"}
    assert rows["b.wav"]["status"] == "ok" and abs(rows["b.wav"]["duration_sec"] - 2.0) < 1e-6
    assert rows["notes.mp3"]["status"] == "error" and "not a decodable audio file" in rows["notes.mp3"]["error"]
    assert {r["root"] for r in rows.values()} == {str(music.resolve())}
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    assert list((dagster_home / "storage").iterdir())  # the run's compute logs went to this instance
