"""A stand-in for `rudiment_performances`: one partition's tables and MIDI, per docs/design.md.

The audio tests use it so they do not depend on the symbolic half of the
dataset: `samples.parquet`, `strokes.parquet` and one General MIDI drum file
(channel 10, snare 38, tempo event) per sample, strokes including flam grace
notes 30 ms before their primary stroke.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.integrity import write_manifest
from music_assets.seeding import stable_id, stable_rng


def _write(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.cast(
        pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema])
    )
    pq.write_table(table, path)


def write_performances(
    data: Path,
    slug: str = "flam_tap",
    n: int = 4,
    *,
    strokes_per_sample: int = 16,
    tempo_bpm: float = 120.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Write `n` fake performances of `slug` under the data dir; return the samples table."""
    rng = stable_rng("fake-performances", slug, seed)
    step = 60.0 / tempo_bpm / 4  # sixteenths
    samples, strokes = [], []
    for i in range(n):
        sid = stable_id(slug, i, seed)
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm)
        drums = pretty_midi.Instrument(program=0, is_drum=True, name="snare")
        idx = 0
        for k in range(strokes_per_sample):
            intended = 0.1 + k * step
            actual = intended + rng.normal(0, 0.006)
            accent = k % 4 == 0
            vel = int(np.clip(rng.normal(115 if accent else 80, 8), 30, 127))
            if accent:  # a flam: grace note 30 ms before the primary stroke
                grace_t = actual - 0.030
                drums.notes.append(pretty_midi.Note(velocity=40, pitch=38, start=grace_t, end=grace_t + 0.03))
                strokes.append(
                    dict(
                        sample_id=sid,
                        index=idx,
                        hand="L" if k % 8 else "R",
                        stroke_type="grace",
                        intended_time_ms=(intended - 0.03) * 1000,
                        actual_time_ms=grace_t * 1000,
                        timing_error_ms=(actual - intended) * 1000,
                        intended_velocity=40,
                        actual_velocity=40,
                        is_grace=True,
                        is_accent=False,
                        diddle_position=0,
                        flam_spacing_ms=30.0,
                        parent_stroke_index=idx + 1,
                    )
                )
                idx += 1
            drums.notes.append(pretty_midi.Note(velocity=vel, pitch=38, start=actual, end=actual + 0.05))
            strokes.append(
                dict(
                    sample_id=sid,
                    index=idx,
                    hand="R" if k % 2 == 0 else "L",
                    stroke_type="accent" if accent else "tap",
                    intended_time_ms=intended * 1000,
                    actual_time_ms=actual * 1000,
                    timing_error_ms=(actual - intended) * 1000,
                    intended_velocity=115 if accent else 80,
                    actual_velocity=vel,
                    is_grace=False,
                    is_accent=accent,
                    diddle_position=0,
                    flam_spacing_ms=30.0 if accent else np.nan,
                    parent_stroke_index=-1,
                )
            )
            idx += 1
        pm.instruments.append(drums)
        midi_rel = f"rudiments/midi/{slug}/{sid}.mid"
        (data / midi_rel).parent.mkdir(parents=True, exist_ok=True)
        pm.write(str(data / midi_rel))
        samples.append(
            dict(
                sample_id=sid,
                rudiment_slug=slug,
                profile_id=f"p{i:03d}",
                skill_tier="advanced",
                skill_tier_binary="skilled",
                dominant_hand="R",
                split="train",
                tempo_bpm=tempo_bpm,
                num_cycles=strokes_per_sample // 4,
                num_strokes=len(drums.notes),
                duration_sec=float(pretty_midi.PrettyMIDI(str(data / midi_rel)).get_end_time()),
                midi_path=midi_rel,
                seed=seed,
            )
        )
    perf = data / "rudiments" / "performances" / slug
    df = pd.DataFrame(samples)
    _write(perf / "samples.parquet", df)
    _write(perf / "strokes.parquet", pd.DataFrame(strokes))
    record(data, slug)
    return df


def record(data: Path, slug: str) -> None:
    """The manifest rudiment_performances writes last (the files' sha256), which rudiment_audio verifies."""
    perf = data / "rudiments" / "performances" / slug
    midi = pq.read_table(perf / "samples.parquet", columns=["midi_path"]).column("midi_path").to_pylist()
    files = [perf / "samples.parquet", perf / "strokes.parquet", *(data / rel for rel in midi)]
    write_manifest("rudiment_performances", slug, files, fingerprint="fake performances", root=data)


def shift_labels(data: Path, slug: str, shift_ms: float) -> None:
    """Move every labelled stroke time by `shift_ms` (the MIDI and audio stay put)."""
    path = data / "rudiments" / "performances" / slug / "strokes.parquet"
    df = pq.read_table(path).to_pandas()
    df["actual_time_ms"] = df["actual_time_ms"] + shift_ms
    _write(path, df)
    record(data, slug)  # a generation whose labels are off, as a buggy generator would write it
