"""Timing deviations from the tempo grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from music_assets.ml import timing
from music_assets.seeding import stable_rng


def _onsets(tempo: float, sub: int, n: int, jitter_ms: float, seed: int, tempo_error: float = 0.0) -> np.ndarray:
    step = 60.0 / (tempo * (1 + tempo_error)) / sub
    return 0.05 + np.arange(n) * step + stable_rng("onsets", seed).normal(0, jitter_ms / 1000, n)


@pytest.mark.parametrize("jitter_ms", [2.0, 8.0, 20.0])
def test_deviation_measures_the_jitter_even_with_a_wrong_tempo_bin(jitter_ms: float) -> None:
    measured = [
        timing.performance_deviation_ms(_onsets(120, 4, 64, jitter_ms, s, tempo_error=0.02), 120, 4) for s in range(20)
    ]
    expected = jitter_ms * np.sqrt(2 / np.pi)  # mean |N(0, sigma)|
    assert np.median(measured) == pytest.approx(expected, rel=0.2)


def test_tiers_are_ordered_and_grace_notes_are_not_counted() -> None:
    by_jitter = {j: timing.performance_deviation_ms(_onsets(100, 4, 48, j, 1), 100, 4) for j in (25, 12, 6, 2)}
    assert timing.tiers_ordered(dict(zip("abcd", by_jitter.values(), strict=True)), "abcd")
    main = _onsets(100, 2, 32, 0.0, 2)
    flams = np.sort(np.concatenate([main, main - 0.03]))  # a grace note 30 ms before every stroke
    assert timing.performance_deviation_ms(flams, 100, 2) == pytest.approx(0.0, abs=1e-6)
    assert timing.performance_deviation_ms([0.0, 0.1], 100, 4) is None  # too few strokes
    assert not timing.tiers_ordered({"a": 3.0, "b": 5.0}, "ab")


def test_subdivisions_from_intended_strokes() -> None:
    def rows(sid: str, tempo: float, beats: list[float], grace: list[bool]) -> list[dict]:
        return [
            {"sample_id": sid, "intended_time_ms": 100 + b * 60000 / tempo, "is_grace": g}
            for b, g in zip(beats, grace, strict=True)
        ]

    strokes = pd.DataFrame(
        rows("a", 90, [0, 0.25, 0.5, 0.75, 1.0], [False] * 5)
        + rows("b", 120, [0, 1 / 3, 2 / 3, 1.0], [False] * 4)
        + rows("c", 75, [-0.06, 0, 0.5, 0.94, 1.0], [True, False, False, True, False])
    )
    samples = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "rudiment_slug": ["singles", "triplets", "flams"],
            "tempo_bpm": [90.0, 120.0, 75.0],
        }
    )
    assert timing.subdivisions_from_strokes(strokes, samples) == {"flams": 2, "singles": 4, "triplets": 3}
    assert timing.realism_range([1.0, 2.0, 3.0, None], (0.0, 1.0)) == (1.0, 3.0)


def test_a_tiers_real_range_covers_its_train_and_validation_players_not_test(tiny_corpus) -> None:
    from music_assets.ml import workflows as wf
    from music_assets.ml.corpus import Corpus

    corpus = Corpus(tiny_corpus)

    def per_tier(splits: tuple[str, ...]) -> dict[str, list[float]]:
        seqs = [s for split in splits for s in corpus.split(split).sequences()]
        return {t: s["values_ms"] for t, s in wf.timing_by_tier(seqs, corpus.vocab, corpus.subdivisions).items()}

    both, val_only = per_tier(("train", "validation")), per_tier(("validation",))
    ranges = wf.real_timing_ranges(corpus, (0.05, 0.95))
    assert set(ranges) == set(both)
    for tier, r in ranges.items():
        assert r["n"] == len(both[tier]) > len(val_only.get(tier, []))
        assert (r["low_ms"], r["high_ms"]) == pytest.approx(timing.realism_range(both[tier], (0.05, 0.95)))
    validation = wf.real_timing_ranges(corpus, (0.05, 0.95), splits=("validation",))
    assert {t: r["n"] for t, r in validation.items()} == {t: len(v) for t, v in val_only.items()}
