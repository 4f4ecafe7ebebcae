"""Measured BPM, key and meter of short rendered tracks with known answers (essentia and the baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from music_assets.audio.io import write_flac
from music_assets.training_sets import analysis
from music_assets.training_sets.keys import keyscale
from music_assets.training_sets.labelled import LabelledTrack, render

# 20 s each: a slow 4/4 in a minor key (the tempo a beat tracker doubles), a 3/4 waltz, a fast 4/4.
TRACKS = [
    LabelledTrack("slow-minor", 72.0, 9, "minor", 4, 20.0),
    LabelledTrack("waltz", 108.0, 2, "major", 3, 20.0),
    LabelledTrack("fast", 138.0, 3, "major", 4, 20.0),
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("labelled")
    out = {}
    for t in TRACKS:
        audio = soxr.resample(render(t), 44100, 48000)
        out[t.name] = write_flac(folder / f"{t.name}.flac", audio, 48000)
    return out


@pytest.mark.parametrize("track", TRACKS, ids=lambda t: t.name)
def test_essentia_measures_tempo_key_and_meter(rendered, track: LabelledTrack) -> None:
    m = analysis.measure(rendered[track.name])
    assert abs(m.bpm - track.bpm) <= 0.02 * track.bpm, m
    assert m.key == keyscale(track.tonic, track.mode), m
    assert m.time_signature == track.beats_per_bar, m
    assert 0.0 <= m.bpm_confidence <= 1.0 and 0.0 <= m.key_confidence <= 1.0
    assert m.duration_sec == pytest.approx(20.0, abs=0.01)
    assert m.loudness_lufs is not None and m.brightness_hz > 0 and m.onset_density > 0


def test_octave_check_halves_eighth_note_ticks(rendered) -> None:
    """The slow track's beat grid locks onto its eighths without the check; with it, the true tempo."""
    plain = analysis.measure(rendered["slow-minor"], octave_check=False)
    checked = analysis.measure(rendered["slow-minor"])
    assert abs(plain.bpm - 144.0) <= 0.02 * 144.0
    assert checked.octave_corrected and abs(checked.bpm - 72.0) <= 0.02 * 72.0


def test_octave_check_leaves_a_right_tempo_alone(rendered) -> None:
    m = analysis.measure(rendered["fast"])
    assert not m.octave_corrected and abs(m.bpm - 138.0) <= 0.02 * 138.0


def test_silence_is_a_clear_error(tmp_path: Path) -> None:
    path = write_flac(tmp_path / "silent.flac", np.zeros((48000 * 3, 2), np.float32), 48000)
    with pytest.raises(analysis.AnalysisError, match="silence"):
        analysis.measure(path)


def test_unknown_method_is_refused(rendered) -> None:
    with pytest.raises(ValueError, match="method"):
        analysis.measure(rendered["fast"], method="madmom")
