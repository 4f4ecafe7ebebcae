"""Onset detection in dry renders and alignment with labelled strokes."""

from __future__ import annotations

import numpy as np
import pytest

from music_assets.audio import onsets
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS, NoteEvent, get_renderer

SR = 44100


def _flam_taps(seed: int = 0) -> tuple[list[tuple[float, int, bool]], float]:
    """Sixteenths at 120 bpm with timing noise; every fourth stroke a flam (grace 30 ms before)."""
    rng = np.random.default_rng(seed)
    notes = []
    for k in range(16):
        t = 0.1 + k * 0.125 + rng.normal(0, 0.006)
        if k % 4 == 0:
            notes.append((t - 0.030, 40, True))
        notes.append((t, int(rng.integers(60, 120)), False))
    return notes, 0.1 + 16 * 0.125 + 0.3


def _render(soundfont, notes, total):
    return get_renderer(soundfont).render([NoteEvent(t, 38, v, 0.05) for t, v, _ in notes], total_seconds=total)


@pytest.mark.parametrize("soundfont", DEFAULT_SOUNDFONTS, ids=lambda p: p.name)
def test_onsets_in_a_dry_render_match_the_note_times(soundfont) -> None:
    notes, total = _flam_taps()
    audio = _render(soundfont, notes, total)
    latency = onsets.calibrate_latency(get_renderer(soundfont))
    assert all(0.0 <= v < 5.0 for v in latency.latency_ms)  # a drum sample starts within a few ms
    main = [(t * 1000, v) for t, v, grace in notes if not grace]
    every = [t * 1000 for t, _, _ in notes]
    err = onsets.alignment_errors_ms(audio, SR, [t for t, _ in main], [v for _, v in main], latency, every)
    # FluidSynth moves events to 64-frame blocks (<= 0.73 ms); the detector resolves 0.36 ms
    assert np.median(err) < 1.5
    assert np.percentile(err, 90) < 3.0


@pytest.mark.parametrize("shift_ms", [-8.0, 7.0, 15.0])
def test_labels_off_by_a_few_milliseconds_are_caught(shift_ms) -> None:
    sf = DEFAULT_SOUNDFONTS[0]
    notes, total = _flam_taps(seed=1)
    audio = _render(sf, notes, total)
    latency = onsets.calibrate_latency(get_renderer(sf))
    main = [(t * 1000 + shift_ms, v) for t, v, grace in notes if not grace]
    every = [t * 1000 + shift_ms for t, _, _ in notes]
    med = onsets.median_alignment_error_ms(audio, SR, [t for t, _ in main], [v for _, v in main], latency, every)
    assert med > 5.0
    assert abs(med - abs(shift_ms)) < 2.5


def test_silence_has_no_onset_and_counts_as_the_largest_error() -> None:
    silence = np.zeros((SR, 2), dtype=np.float32)
    assert np.isnan(onsets.detect_onsets_near(silence, SR, [100.0, 500.0])).all()
    curve = onsets.LatencyCurve((1, 127), (1.0, 1.0))
    assert onsets.median_alignment_error_ms(silence, SR, [100.0, 500.0], [90, 90], curve) == onsets.MAX_WINDOW_MS


def test_search_windows_stay_within_half_the_gap_to_any_neighbour() -> None:
    strokes = np.array([100.0, 400.0, 406.0, 700.0])
    grace = np.array([680.0])
    w = onsets.search_windows(strokes, np.concatenate([strokes, grace]))
    assert w[0] == onsets.MAX_WINDOW_MS  # isolated
    assert w[1] == w[2] == onsets.MIN_WINDOW_MS  # 6 ms apart: clamped to the minimum
    assert w[3] == pytest.approx(10.0)  # a grace note 20 ms before
