"""A stand-in rudiment dataset in the labels contract (CONTRACTS.md), for the model tests.

Writes `rudiments/labels/samples.parquet`, `rudiments/labels/strokes.parquet` and
General MIDI files (drum track, snare 38, tempo event, performed times and
velocities) with realistic stroke patterns: 16th-note singles and doubles,
accented paradiddles, flams with grace notes, triplets. Timing jitter, tempo
drift and velocity spread depend on the skill tier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi

from music_assets.integrity import write_manifest
from music_assets.io import atomic_path, write_parquet
from music_assets.rudiments.constants import SKILL_TIERS, SPLITS
from music_assets.seeding import stable_id, stable_rng

# (beats per cycle, strokes as (beat position, accent, has_grace))
PATTERNS: dict[str, tuple[float, list[tuple[float, bool, bool]]]] = {
    "singles": (1.0, [(0.0, True, False), (0.25, False, False), (0.5, False, False), (0.75, False, False)]),
    "doubles": (1.0, [(0.0, False, False), (0.25, False, False), (0.5, False, False), (0.75, False, False)]),
    "paradiddle": (2.0, [(i * 0.25, i % 4 == 0, False) for i in range(8)]),
    "flam": (2.0, [(0.0, True, True), (0.5, False, False), (1.0, True, True), (1.5, False, False)]),
    "triplet": (1.0, [(0.0, True, True), (1 / 3, False, False), (2 / 3, False, False)]),
}


def pattern_of(slug: str) -> str:
    """A stand-in pattern per rudiment, by the family its name suggests."""
    if "triplet" in slug or slug == "flam_accent":
        return "triplet"
    if "flam" in slug or "drag" in slug or "ratamacue" in slug:
        return "flam"
    if "paradiddle" in slug:
        return "paradiddle"
    if "double" in slug or ("stroke_roll" in slug and not slug.startswith("single")):
        return "doubles"
    return "singles"


TIMING_STD_MS = {"beginner": 24.0, "intermediate": 13.0, "advanced": 7.0, "professional": 3.0}
VELOCITY_STD = {"beginner": 14.0, "intermediate": 9.0, "advanced": 6.0, "professional": 3.0}


def write_fake_dataset(
    root: Path,
    *,
    rudiments: tuple[str, ...] = ("single_stroke_roll", "single_paradiddle", "flam", "swiss_army_triplet"),
    profiles_per_tier: dict[str, int] | None = None,
    cycles: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Write the dataset under `root` (a data dir) and return samples.parquet as a DataFrame."""
    profiles_per_tier = profiles_per_tier or {"train": 2, "validation": 1, "test": 1}
    sample_rows, stroke_rows = [], []
    for tier in SKILL_TIERS:
        for split in SPLITS:
            for p in range(profiles_per_tier[split]):
                profile = f"{tier[:3]}-{split[:2]}-{p}"
                for slug in rudiments:
                    rng = stable_rng(seed, profile, slug)
                    tempo = float(np.round(rng.uniform(70, 150), 1))
                    sid = stable_id(seed, profile, slug)
                    rel = f"rudiments/midi/{slug}/{sid}.mid"
                    strokes = _perform(slug, tier, tempo, cycles, rng)
                    _write_midi(root / rel, strokes, tempo)
                    sample_rows.append(
                        {
                            "sample_id": sid,
                            "rudiment_slug": slug,
                            "profile_id": profile,
                            "skill_tier": tier,
                            "split": split,
                            "tempo_bpm": tempo,
                            "num_strokes": len(strokes),
                            "midi_path": rel,
                        }
                    )
                    stroke_rows += [{"sample_id": sid, "index": i, **s} for i, s in enumerate(strokes)]
    samples = pd.DataFrame(sample_rows)
    write_parquet(root / "rudiments/labels/samples.parquet", samples)
    write_parquet(root / "rudiments/labels/strokes.parquet", pd.DataFrame(stroke_rows))
    # what rudiment_labels records with its tables: their sha256, which token_corpus verifies
    labels = [root / "rudiments/labels/samples.parquet", root / "rudiments/labels/strokes.parquet"]
    write_manifest("rudiment_labels", None, labels, fingerprint="fake dataset", root=root)
    return samples


def _perform(slug: str, tier: str, tempo: float, cycles: int, rng: np.random.Generator) -> list[dict]:
    beats, pattern = PATTERNS[pattern_of(slug)]
    beat_ms = 60000.0 / tempo
    drift = rng.normal(0, 0.01 if tier == "beginner" else 0.003)  # tempo creep over the performance
    std = TIMING_STD_MS[tier]
    lead_ms = 60.0  # room for a grace note before the first stroke
    out = []
    for c in range(cycles):
        for pos, accent, grace in pattern:
            beat = c * beats + pos
            intended = lead_ms + beat * beat_ms
            actual = intended * (1 + drift * beat / (cycles * beats)) + rng.normal(0, std)
            vel = (110 if accent else 75) + rng.normal(0, VELOCITY_STD[tier])
            if grace:
                spacing = max(8.0, rng.normal(32 - 8 * SKILL_TIERS.index(tier) / 3, std / 4))
                out.append(_stroke(intended - spacing, actual - spacing, 40 + rng.normal(0, 4), True))
            out.append(_stroke(intended, actual, vel, False))
    return out


def _stroke(intended: float, actual: float, vel: float, grace: bool) -> dict:
    return {
        "intended_time_ms": float(intended),
        "actual_time_ms": float(max(0.0, actual)),
        "actual_velocity": int(np.clip(round(vel), 1, 127)),
        "is_grace": grace,
    }


def _write_midi(path: Path, strokes: list[dict], tempo: float) -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=0, is_drum=True)
    for s in strokes:
        t = s["actual_time_ms"] / 1000.0
        inst.notes.append(pretty_midi.Note(velocity=s["actual_velocity"], pitch=38, start=t, end=t + 0.06))
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))
