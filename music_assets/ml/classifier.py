"""The rudiment classifier: which rudiment a take plays, from its onsets and velocities alone.

It judges whether a model plays the rudiment it was asked for, so it must be
something a model cannot game: it sees only what a MIDI file holds (note
onsets, velocities and the file's tempo) and is fitted on the dataset's real
performances of the train split; its accuracy on the test split (other
players) says how far it can be trusted.

Features (`features`), all tempo-invariant (times in beats of the MIDI tempo or
relative to the take's own median interval, velocities relative to the take's
median), about 120 numbers:

- histograms of the log inter-onset intervals (in beats) of every note and of
  the *clusters*: a cluster is a run of notes less than 0.45 median intervals
  apart (a flam or drag with its primary, a buzz stroke with its bounces), and
  it stands at its loudest note;
- the sizes of the clusters (plain stroke, flam, drag, buzz);
- the distribution of velocities relative to the median, the accent rate
  (clusters louder than 1.2 x the median), the intervals between accents in
  beats, and where in the beat clusters and accents fall;
- autocorrelations of the cluster velocities, intervals, sizes and accents
  (accent and sticking-group periodicity, diddle alternation).

The model is scikit-learn's random forest (`RandomForestClassifier`,
`n_estimators` trees, seeded): measured on the demo dataset it was
the most accurate of a random forest (0.83 on held-out players), extra trees
(0.81), logistic regression (0.78) and nearest neighbours (0.72). Fitting is
deterministic, so the same features give the same classifier; it is refitted
where it is used (about a second) rather than stored as a pickle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_NOTES = 4
SHORT_INTERVAL = 0.45  # of the take's median interval: a grace note, a bounce
ACCENT_RATIO = 1.2  # a cluster this much louder than the median is an accent
N_ESTIMATORS = 300


def _acf(x: np.ndarray, lags: int) -> np.ndarray:
    out = np.zeros(lags)
    x = np.asarray(x, dtype=float)
    if len(x) < 3 or x.std() < 1e-9:
        return out
    x = (x - x.mean()) / x.std()
    for k in range(1, lags + 1):
        if len(x) > k + 1:
            out[k - 1] = float(np.mean(x[:-k] * x[k:]))
    return out


def _hist(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(len(edges) - 1)
    h, _ = np.histogram(np.clip(x, edges[0], edges[-1] - 1e-9), edges)
    return h / len(x)


_IOI_EDGES = np.linspace(-6.0, 2.0, 17)
_CLUSTER_IOI_EDGES = np.linspace(-4.0, 2.0, 13)
_VELOCITY_EDGES = np.array([0.0, 0.45, 0.6, 0.75, 0.9, 1.1, 1.25, 1.45, 1.7, 5.0])
_SIZE_EDGES = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 99.0])
_ACCENT_EDGES = np.array([0.0, 0.4, 0.6, 0.9, 1.1, 1.4, 1.8, 2.2, 3.2, 4.5, 99.0])
_PHASE_EDGES = np.linspace(0.0, 1.0, 13)


def features(onsets_s: Sequence[float], velocities: Sequence[int], tempo_bpm: float) -> np.ndarray:
    """The feature vector of one take (see the module docstring); needs at least MIN_NOTES notes."""
    order = np.argsort(np.asarray(onsets_s, dtype=float), kind="stable")
    t = np.asarray(onsets_s, dtype=float)[order]
    v = np.maximum(np.asarray(velocities, dtype=float)[order], 1.0)
    if len(t) < MIN_NOTES:
        raise ValueError(f"a take of {len(t)} notes (the classifier needs {MIN_NOTES})")
    beat = 60.0 / float(tempo_bpm)
    ioi = np.diff(t) / beat
    short = ioi < SHORT_INTERVAL * max(float(np.median(ioi)), 1e-9)
    starts = np.concatenate([[0], np.flatnonzero(~short) + 1])
    ends = np.append(starts[1:], len(t))
    sizes = (ends - starts).astype(float)
    loudest = np.array([a + int(np.argmax(v[a:b])) for a, b in zip(starts, ends, strict=True)])
    cv, ct = v[loudest], t[loudest]
    cioi = np.diff(ct) / beat
    rel = v / np.median(v)
    crel = cv / np.median(cv)
    accent = crel > ACCENT_RATIO
    accent_gaps = np.diff(ct[accent]) / beat if accent.sum() > 1 else np.zeros(0)
    phase = ((ct - ct[0]) / beat) % 1.0
    parts = [
        _hist(np.log2(np.maximum(ioi, 1e-3)), _IOI_EDGES),
        _hist(np.log2(np.maximum(cioi, 1e-3)), _CLUSTER_IOI_EDGES),
        _hist(rel, _VELOCITY_EDGES),
        _hist(sizes, _SIZE_EDGES),
        _hist(accent_gaps, _ACCENT_EDGES),
        _hist(phase, _PHASE_EDGES),
        _hist(phase[accent], _PHASE_EDGES),
        _acf(crel, 12),
        _acf(np.log(np.maximum(cioi, 1e-3)), 8),
        _acf((sizes > 1).astype(float), 8),
        _acf(accent.astype(float), 12),
        [
            float(short.mean()),
            float(accent.mean()),
            float(np.std(crel)),
            len(ct) / len(t),
            float(np.percentile(crel, 90) - np.percentile(crel, 10)),
        ],
    ]
    return np.concatenate([np.asarray(p, dtype=float).ravel() for p in parts])


@dataclass
class RudimentClassifier:
    """A fitted classifier (`fit`): `predict` feature rows -> rudiment slugs."""

    model: Any
    classes: list[str]

    @classmethod
    def fit(
        cls, x: np.ndarray, y: Sequence[str], seed: int = 0, n_estimators: int = N_ESTIMATORS
    ) -> RudimentClassifier:
        from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

        if len(x) == 0:
            raise ValueError("no real takes to fit the rudiment classifier on")
        # the trees are grown from `seed` whatever the number of threads: the same classifier on any machine
        model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=min(2, os.cpu_count() or 1))
        model.fit(np.asarray(x, dtype=float), np.asarray(y))
        return cls(model, [str(c) for c in model.classes_])

    def predict(self, x: np.ndarray) -> list[str]:
        if len(x) == 0:
            return []
        return [str(p) for p in self.model.predict(np.asarray(x, dtype=float))]


def accuracy_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Overall and per-rudiment accuracy and the confusion counts {truth: {predicted: n}}."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    per: dict[str, list[int]] = {}
    confusion: dict[str, dict[str, int]] = {}
    for a, b in zip(truth, predicted, strict=True):
        per.setdefault(a, []).append(int(a == b))
        row = confusion.setdefault(a, {})
        row[b] = row.get(b, 0) + 1
    hits = sum(sum(v) for v in per.values())
    return {
        "accuracy": hits / len(truth) if len(truth) else 0.0,
        "takes": len(truth),
        "per_rudiment": {k: float(np.mean(v)) for k, v in sorted(per.items())},
        "confusion": {k: dict(sorted(v.items())) for k, v in sorted(confusion.items())},
    }
