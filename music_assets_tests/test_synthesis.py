"""Offline FluidSynth rendering: GM drums on channel 10, sample-accurate, reproducible."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS, NoteEvent, Renderer, get_renderer

SF = DEFAULT_SOUNDFONTS[0]


def _onset(x: np.ndarray, thresh: float = 1e-3) -> int:
    return int(np.argmax(np.abs(x).max(axis=1) > thresh))


def test_drum_notes_render_where_they_were_asked_for() -> None:
    r = get_renderer(SF)
    audio = r.render([NoteEvent(0.5, 38, 110, 0.05)], tail_seconds=1.0)
    assert audio.dtype == np.float32 and audio.shape == (int(round(1.55 * 44100)), 2)
    assert abs(_onset(audio) / 44100 - 0.5) < 0.004
    assert np.abs(audio).max() > 0.05


def test_same_notes_give_identical_samples_whatever_came_before() -> None:
    rng = np.random.default_rng(0)
    notes = [NoteEvent(0.1 + i * 0.07, int(rng.integers(35, 60)), int(rng.integers(1, 128)), 0.05) for i in range(40)]
    first = Renderer(SF).render(notes)
    r = get_renderer(SF)
    r.render([NoteEvent(0.0, 60, 100, 1.0, 0)], programs={0: (0, 0)})
    r.render(list(reversed(notes[:20])))
    assert np.array_equal(r.render(notes), first)


def test_midi_drum_track_plays_drums_not_piano(tmp_path) -> None:
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=38, start=0.2, end=0.3))
    pm.instruments.append(drums)
    path = tmp_path / "snare.mid"
    pm.write(str(path))
    r = get_renderer(SF)
    from_midi = r.render_midi(path, tail_seconds=0.5)
    direct = r.render([NoteEvent(0.2, 38, 100, 0.1)], tail_seconds=0.5)
    assert np.array_equal(from_midi, direct)
    piano = r.render([NoteEvent(0.2, 38, 100, 0.1, channel=0)], tail_seconds=0.5, programs={0: (0, 0)})
    assert not np.allclose(piano, direct)


def test_missing_soundfont_is_a_clear_error(tmp_path) -> None:
    from music_assets.audio.synthesis import SynthesisError

    with pytest.raises(SynthesisError, match="nope.sf2"):
        Renderer(tmp_path / "nope.sf2")
