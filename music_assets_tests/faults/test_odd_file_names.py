"""Issue 22, item 5: file names are data; an odd one gets a row, never a failed run or sensor tick.

Before: one file named with a `\\xff` byte failed the whole audio_catalog run with a
UnicodeEncodeError (the file not named), and raw_audio_sensor failed the same way on every tick.
Now such a name, and one with a newline or a tab, gets a `skipped` row with the reason and the name
escaped; the rest of the folder is cataloged as usual.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from music_assets.defs.sources import assets as sources

ODD = {
    b"bad\xffname.wav": "bad\\xffname.wav",
    b"line\nbreak.wav": "line\\nbreak.wav",
    b"tab\there.flac": "tab\\there.flac",
    b"caf\xe9/take.wav": "caf\\xe9/take.wav",  # a Latin-1 folder name: every file in it
}


def _tree(raw: Path) -> None:
    raw.mkdir(parents=True)
    tone = (0.2 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype("float32")
    sf.write(raw / "good.wav", tone, 16000)
    for name in ODD:
        path = os.path.join(os.fsencode(raw), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write((raw / "good.wav").read_bytes())


def test_the_catalog_gives_odd_names_a_row_and_catalogs_the_rest(data_dir: Path, instance) -> None:
    _tree(data_dir / "raw_audio")
    result = dg.materialize(
        [sources.audio_catalog, sources.selected_sources],
        instance=instance,
        resources={"audio_roots": sources.AudioRoots()},
    )
    assert result.success
    rows = {r["rel_path"]: r for r in pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()}
    assert rows["good.wav"]["status"] == "ok"
    for escaped in ODD.values():
        row = rows[escaped]
        assert row["status"] == "skipped"
        assert "UTF-8" in row["error"] or "control character" in row["error"], row["error"]
        assert "rename" in row["error"]
    assert len(rows) == 1 + len(ODD)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["unique_source_id"]


def test_the_sensor_ticks_over_odd_names(data_dir: Path, instance) -> None:
    _tree(data_dir / "raw_audio")
    with dg.build_sensor_context(instance=instance, resources={"audio_roots": sources.AudioRoots()}) as context:
        first = sources.raw_audio_sensor(context)
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1  # a catalog run, not an error
        context.update_cursor(first.cursor)
        again = sources.raw_audio_sensor(context)
    assert isinstance(again, dg.SkipReason)  # nothing changed: the cursor of a tree with odd names is stable
