"""A small labelled rudiment dataset on disk, laid out as docs/design.md says `rudiment_labels` writes it.

Real MIDI files (pretty_midi) and real FLAC files (rendered with FluidSynth
from those MIDI files), and the four label tables with the contract's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from music_assets.audio.io import write_flac
from music_assets.audio.synthesis import get_renderer
from music_assets.integrity import write_manifest
from music_assets.io import write_parquet
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets.rudiments.scores import SCORE_COLUMNS
from music_assets.seeding import stable_id, stable_rng

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
RUDIMENTS = ("single_stroke_roll", "flam", "single_paradiddle")
# (profile_id, tier, split): two players per split, every tier somewhere
PROFILES = (
    ("p00000", "beginner", "train"),
    ("p00001", "professional", "train"),
    ("p00002", "intermediate", "validation"),
    ("p00003", "advanced", "validation"),
    ("p00004", "beginner", "test"),
    ("p00005", "advanced", "test"),
)
SCORES = SCORE_COLUMNS
TAIL_SEC = 0.3
N_STROKES = 6


@dataclass
class LabelledDataset:
    root: Path
    sample_ids: list[str]
    profiles: dict[str, str]  # profile_id -> split


def _midi(path: Path, times: np.ndarray, velocities: np.ndarray, tempo: float) -> float:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    drum = pretty_midi.Instrument(program=0, is_drum=True, name="snare")
    for t, v in zip(times, velocities, strict=True):
        drum.notes.append(pretty_midi.Note(velocity=int(v), pitch=38, start=float(t), end=float(t) + 0.08))
    pm.instruments.append(drum)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return float(pm.get_end_time())


def build(root: Path, rudiments: tuple[str, ...] = RUDIMENTS, profiles=PROFILES) -> LabelledDataset:
    """Write MIDI, FLAC and `rudiments/labels/*.parquet` under `root` (the data dir)."""
    renderer = get_renderer(SOUNDFONT)
    samples, strokes, measures, exercises = [], [], [], []
    for slug in rudiments:
        for pid, tier, split in profiles:
            sid = stable_id("publish-fixture", slug, pid)
            rng = stable_rng("publish-fixture", slug, pid)
            tempo = float(80 + 10 * SKILL_TIERS.index(tier))
            step = 60.0 / tempo / 4
            intended = 0.05 + step * np.arange(N_STROKES)
            actual = intended + rng.normal(0, 0.004, N_STROKES)
            velocity = rng.integers(60, 110, N_STROKES)
            midi_rel = f"rudiments/midi/{slug}/{sid}.mid"
            audio_rel = f"rudiments/audio/{slug}/{sid}.flac"
            duration = _midi(root / midi_rel, actual, velocity, tempo)
            audio = renderer.render_midi(root / midi_rel, tail_seconds=TAIL_SEC)
            write_flac(root / audio_rel, audio, renderer.sample_rate)
            samples.append(
                {
                    "sample_id": sid,
                    "rudiment_slug": slug,
                    "profile_id": pid,
                    "skill_tier": tier,
                    "skill_tier_binary": "novice" if tier in ("beginner", "intermediate") else "skilled",
                    "dominant_hand": "right",
                    "split": split,
                    "tempo_bpm": tempo,
                    "num_cycles": 2,
                    "num_strokes": N_STROKES,
                    "duration_sec": duration,
                    "midi_path": midi_rel,
                    "seed": int(rng.integers(1 << 40)),
                    "audio_path": audio_rel,
                    "soundfont": SOUNDFONT.name,
                    "aug_preset": "clean_studio",
                    "aug_rt60_s": float(rng.uniform(0.2, 0.5)),
                    "aug_noise_color": "pink",
                    "audio_duration_sec": audio.shape[0] / renderer.sample_rate,
                    "audio_sample_rate": renderer.sample_rate,
                    "audio_peak_dbfs": -3.0,
                    "audio_clipped_ratio": 0.0,
                    "align_median_error_ms": 1.0,
                }
            )
            for i in range(N_STROKES):
                grace = slug == "flam" and i % 2 == 0  # a flam: grace note, then its primary
                strokes.append(
                    {
                        "sample_id": sid,
                        "index": i,
                        "hand": "RL"[i % 2],
                        "stroke_type": "flam_grace" if grace else "tap",
                        "intended_time_ms": intended[i] * 1000,
                        "actual_time_ms": actual[i] * 1000,
                        "timing_error_ms": (actual[i] - intended[i]) * 1000,
                        "intended_velocity": 90,
                        "actual_velocity": int(velocity[i]),
                        "is_grace": grace,
                        "is_accent": i == 1,
                        "diddle_position": 0,
                        "flam_spacing_ms": 30.0 if grace else None,
                        "parent_stroke_index": i + 1 if grace else None,
                    }
                )
            for m in range(2):
                measures.append(
                    {
                        "sample_id": sid,
                        "measure_index": m,
                        "timing_error_mean_ms": float(rng.normal(0, 3)),
                        "velocity_mean": float(velocity.mean()),
                        "lr_velocity_ratio": 0.95,
                        "lr_timing_diff_ms": 1.5,
                    }
                )
            score = 40 + 15 * SKILL_TIERS.index(tier)
            ex = {"sample_id": sid}
            for name in SCORES:
                ex[name] = (
                    None
                    if name == "flam_quality" and slug != "flam"
                    else float(np.clip(score + rng.normal(0, 5), 0, 100))
                )
            exercises.append(ex)
    labels = root / "rudiments" / "labels"
    for name, rows in (("samples", samples), ("strokes", strokes), ("measures", measures), ("exercises", exercises)):
        write_parquet(labels / f"{name}.parquet", pa.Table.from_pylist(rows))
    # what rudiment_labels records with its tables: their sha256, which hf_staging verifies
    tables = [labels / f"{name}.parquet" for name in ("samples", "strokes", "measures", "exercises")]
    write_manifest("rudiment_labels", None, tables, fingerprint="labelled fixture", root=root)
    return LabelledDataset(root, [s["sample_id"] for s in samples], {p[0]: p[2] for p in profiles})
