"""The real side of every evaluation: the dataset's performances measured from their MIDI files.

`real_takes` measures every real performance (labels + MIDI) into one row;
`Reference` holds them with the rudiment classifier (fitted on the train
players, reported on the held-out test players) and each tier's realism
measures (train and validation players). `write_reference` / `load_reference`
keep the table and the classifier's report on disk for the
`rudiment_classifier` asset, the table's sha256 verified when it is read.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from music_assets.ml import metrics
from music_assets.ml.classifier import RudimentClassifier, accuracy_report, features
from music_assets.ml.score import ScoreTemplate
from music_assets.ml.tokenizer import TokenizerError, read_drum_midi
from music_assets.rudiments.constants import SKILL_TIERS

FIT_SPLIT, HELDOUT_SPLIT = "train", "test"
REALISM_SPLITS = ("train", "validation")  # the tier's reference players (the test players stay unseen)
BEATS_PER_BAR = 4


def notes_of_midi(data: bytes | str | Path) -> tuple[list[float], list[int], float]:
    """(onsets, velocities, tempo) of a MIDI file (bytes or path): everything the measures see."""
    import pretty_midi  # noqa: PLC0415

    pm = pretty_midi.PrettyMIDI(io.BytesIO(data)) if isinstance(data, bytes) else str(data)
    notes, tempo = read_drum_midi(pm)
    notes = sorted(notes, key=lambda n: n.start)
    return [n.start for n in notes], [n.velocity for n in notes], tempo


def take_row(
    onsets: Sequence[float], velocities: Sequence[int], tempo: float, template: ScoreTemplate, subdivision: int
) -> dict[str, Any]:
    """The measures of one take (real or generated) as a flat row; `features` None for a take too short to classify."""
    st = metrics.take_stats(onsets, velocities, tempo, subdivision, template.cycle_beats)
    vec = st.features()
    row: dict[str, Any] = {
        "notes": st.notes,
        "timing_sd_ms": st.timing_sd_ms,
        "velocity_cv": st.velocity_cv,
        "length_beats": st.length_beats,
        "interval_ratio": st.interval_ratio,
        "features": features(onsets, velocities, tempo).tolist() if st.notes >= 4 else None,
    }
    for name, value in zip(metrics.FRECHET_FEATURES, vec if vec is not None else [None] * 5, strict=True):
        row[f"f_{name}"] = value
    return row


def real_takes(
    samples: pd.DataFrame,
    data_root: Path,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    progress: Callable[..., None] | None = None,
) -> pd.DataFrame:
    """Every real performance of `samples` (labels) measured from its MIDI file, one row each."""
    rows = []
    total = len(samples)
    for n, r in enumerate(samples.itertuples(index=False), 1):
        slug = str(r.rudiment_slug)
        path = data_root / str(r.midi_path)
        try:
            onsets, velocities, tempo = notes_of_midi(path)
        except TokenizerError as exc:
            raise ValueError(f"sample {r.sample_id}: {exc}") from exc
        t = templates[slug]
        rows.append(
            {
                "sample_id": str(r.sample_id),
                "split": str(r.split),
                "rudiment": slug,
                "tier": str(r.skill_tier),
                "tempo_bpm": float(r.tempo_bpm),
                "beats": int(r.num_cycles) * t.cycle_beats,
                **take_row(onsets, velocities, tempo, t, int(subdivisions.get(slug, t.steps_per_beat))),
            }
        )
        if progress:
            progress(n, total)
    return pd.DataFrame(rows)


def _feature_matrix(df: pd.DataFrame) -> np.ndarray:
    return np.array(df["features"].tolist(), dtype=float) if len(df) else np.zeros((0, 0))


class Reference:
    """The real side of every evaluation: the classifier, and each tier's real measures."""

    def __init__(self, takes: pd.DataFrame, seed: int = 0):
        self.takes = takes[takes["features"].notna()].reset_index(drop=True)
        self.seed = seed

    @cached_property
    def classifier(self) -> RudimentClassifier:
        fit = self.takes[self.takes["split"] == FIT_SPLIT]
        return RudimentClassifier.fit(_feature_matrix(fit), fit["rudiment"].tolist(), seed=self.seed)

    @cached_property
    def heldout(self) -> dict[str, Any]:
        """The classifier on the held-out (test) players: overall, per tier, per rudiment, confusion."""
        test = self.takes[self.takes["split"] == HELDOUT_SPLIT]
        predicted = self.classifier.predict(_feature_matrix(test))
        report = accuracy_report(test["rudiment"].tolist(), predicted)
        hits = np.asarray(predicted, dtype=object) == test["rudiment"].to_numpy(dtype=object)
        report["per_tier"] = {
            t: float(hits[(test["tier"] == t).to_numpy()].mean()) for t in SKILL_TIERS if (test["tier"] == t).any()
        }
        report["train_takes"] = int((self.takes["split"] == FIT_SPLIT).sum())
        return report

    def realism(self, tier: str) -> pd.DataFrame:
        return self.takes[(self.takes["tier"] == tier) & self.takes["split"].isin(REALISM_SPLITS)]

    @cached_property
    def feature_scale(self) -> np.ndarray:
        """Per Frechet feature, its SD over every reference take of every tier (the unit of the distance)."""
        ref = self.takes[self.takes["split"].isin(REALISM_SPLITS)]
        return np.nanstd(frechet_matrix(ref), axis=0)

    def tier_frechet(self, tier: str) -> tuple[np.ndarray, np.ndarray]:
        (x,) = metrics.standardize(frechet_matrix(self.realism(tier)), scale=self.feature_scale)
        return metrics.gaussian(x)

    def frechet_scale(self, tier: str) -> float:
        """The Frechet distance from the tier's real takes to the nearest adjacent real tier's."""
        i = SKILL_TIERS.index(tier)
        mu, cov = self.tier_frechet(tier)
        out = []
        for j in (i - 1, i + 1):
            if 0 <= j < len(SKILL_TIERS) and len(self.realism(SKILL_TIERS[j])) >= 2:
                out.append(metrics.frechet_distance(mu, cov, *self.tier_frechet(SKILL_TIERS[j])))
        return float(min(out)) if out else math.nan

    def tempos(self, rudiment: str, tier: str) -> list[float]:
        t = self.takes
        rows = t[(t["rudiment"] == rudiment) & (t["tier"] == tier) & t["split"].isin(REALISM_SPLITS)]
        if not len(rows):
            rows = t[t["rudiment"] == rudiment]
        return sorted(float(x) for x in rows["tempo_bpm"])

    def beats(self, rudiment: str) -> int:
        rows = self.takes[self.takes["rudiment"] == rudiment]
        return int(np.median(rows["beats"])) if len(rows) else 2 * BEATS_PER_BAR


def frechet_matrix(df: pd.DataFrame) -> np.ndarray:
    cols = [f"f_{n}" for n in metrics.FRECHET_FEATURES]
    x = df[cols].to_numpy(dtype=float) if len(df) else np.zeros((0, len(cols)))
    return x[~np.isnan(x).any(axis=1)]


def median(values: Any) -> float:
    if values is None:
        return math.nan
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], dtype=float)
    return float(np.median(v)) if len(v) else math.nan


# --- the reference on disk (written by the rudiment_classifier asset) -----------------------------------
TAKES_FILE, REPORT_FILE = "real_takes.parquet", "classifier.json"


def write_reference(folder: Path, takes: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Write the real takes' table and the classifier's report (with the table's sha256) under `folder`."""
    from music_assets.io import sha256_file, write_json, write_parquet  # noqa: PLC0415

    write_parquet(folder / TAKES_FILE, takes)
    ref = Reference(takes, seed=seed)
    heldout = ref.heldout
    report = {
        "seed": seed,
        "takes_sha256": sha256_file(folder / TAKES_FILE),
        "fit_split": FIT_SPLIT,
        "heldout_split": HELDOUT_SPLIT,
        "heldout_accuracy": heldout["accuracy"],
        "heldout_per_tier": heldout["per_tier"],
        "heldout_per_rudiment": heldout["per_rudiment"],
        "confusion": heldout["confusion"],
        "train_takes": heldout["train_takes"],
        "test_takes": heldout["takes"],
        "real": {
            tier: {
                "takes": len(ref.realism(tier)),
                "timing_sd_ms": median(ref.realism(tier)["timing_sd_ms"]),
                "velocity_cv": median(ref.realism(tier)["velocity_cv"]),
                "frechet_scale": ref.frechet_scale(tier),
            }
            for tier in SKILL_TIERS
            if len(ref.realism(tier)) >= 2
        },
    }
    write_json(folder / REPORT_FILE, report)
    return report


def load_reference(folder: Path) -> tuple[Reference, dict[str, Any]]:
    """The reference written by `write_reference`, its table verified against the recorded sha256."""
    from music_assets.io import read_json, sha256_file  # noqa: PLC0415

    report_path, takes_path = folder / REPORT_FILE, folder / TAKES_FILE
    for p in (report_path, takes_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found (materialize rudiment_classifier first)")
    report = read_json(report_path)
    if sha256_file(takes_path) != report.get("takes_sha256"):
        raise ValueError(f"{takes_path}: sha256 does not match {report_path} (changed or corrupt)")
    return Reference(pd.read_parquet(takes_path), seed=int(report.get("seed", 0))), report
