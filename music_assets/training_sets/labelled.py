"""Tracks with known tempo, key and meter, rendered with FluidSynth: what the accuracy bench and the
annotation tests measure against.

Each track is General MIDI drums, a bass line on the chord roots, sustained triads and a melody on
the scale, at a known BPM in a known key and meter. The harmony leans on the tonic the way real
songs do (a cadence back to I or i every four bars, the minor keys with a major V, so the leading
tone says which of the relative pair is meant). Every note comes from `stable_rng` over the track's
identity: the same track renders the same audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music_assets.audio.soundfonts import apt_packages
from music_assets.audio.synthesis import DRUM_CHANNEL, NoteEvent, available_soundfonts, get_renderer
from music_assets.seeding import stable_rng
from music_assets.training_sets.keys import keyscale

KICK, SNARE, CLOSED_HAT, PEDAL_HAT, RIDE = 36, 38, 42, 44, 51
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Four-bar progressions as scale degrees (0 = I/i); each ends on a dominant that resolves to the tonic.
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (0, 4, 5, 3))
# (bass, chords, melody) General MIDI programs; varied across the set.
ENSEMBLES = ((33, 0, 73), (32, 4, 81), (34, 48, 65), (33, 5, 71), (38, 0, 56), (35, 89, 80))


@dataclass(frozen=True)
class LabelledTrack:
    name: str
    bpm: float
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" or "minor"
    beats_per_bar: int  # 3 or 4
    seconds: float = 30.0

    @property
    def key(self) -> str:
        return keyscale(self.tonic, self.mode)


def labelled_set(count: int = 24, seconds: float = 30.0, waltz_every: int = 4) -> list[LabelledTrack]:
    """`count` tracks over every tonic and both modes, tempos spread over 70-150 BPM, every
    `waltz_every`-th one in 3/4 (0: none)."""
    tracks = []
    for i in range(count):
        tonic = (i * 7) % 12  # round the circle of fifths
        mode = "minor" if i % 2 else "major"
        bpm = round(70.0 + 80.0 * ((i * 5) % count) / max(1, count - 1), 1)
        meter = 3 if waltz_every and i % waltz_every == waltz_every - 1 else 4
        tracks.append(
            LabelledTrack(
                f"t{i:02d}-{bpm:g}bpm-{keyscale(tonic, mode).replace(' ', '-')}-{meter}",
                bpm,
                tonic,
                mode,
                meter,
                seconds,
            )
        )
    return tracks


def _chord(scale: tuple[int, ...], degree: int, minor: bool) -> list[int]:
    """The triad on a scale degree, as semitones above the tonic; a minor key's V is major."""
    notes = [scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in (0, 2, 4)]
    if minor and degree == 4:
        notes[1] += 1  # the raised leading tone
    return notes


def notes_of(track: LabelledTrack, programs_index: int = 0) -> tuple[list[NoteEvent], dict[int, tuple[int, int]]]:
    """The track's note events and channel programs."""
    rng = stable_rng("labelled-track", track)
    minor = track.mode == "minor"
    scale = MINOR if minor else MAJOR
    beat = 60.0 / track.bpm
    bar_beats = track.beats_per_bar
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bass_prog, chord_prog, lead_prog = ENSEMBLES[programs_index % len(ENSEMBLES)]
    root = 36 + track.tonic  # bass octave
    notes: list[NoteEvent] = []
    t, bar = 0.0, 0
    lead_degree = 7
    end = track.seconds - 1.0
    while t + bar_beats * beat <= end:
        degree = progression[bar % len(progression)]
        chord = _chord(scale, degree, minor)
        # bass: the chord root on the downbeat (and on beat 3 of 4/4), the fifth between
        for b in range(bar_beats):
            if b == 0 or (bar_beats == 4 and b == 2):
                pitch = root + chord[0]
            else:
                pitch = root + chord[2] if rng.random() < 0.5 else root + chord[0] + 12
            notes.append(NoteEvent(t + b * beat, pitch, int(rng.integers(85, 105)), beat * 0.9, 0))
        for p in chord:  # chords: the triad held for the bar
            notes.append(NoteEvent(t, 60 + track.tonic + p, int(rng.integers(55, 75)), bar_beats * beat * 0.95, 1))
        for step in range(2 * bar_beats):  # melody: eighth notes on the scale, chord tones on the beat
            if rng.random() < 0.3:
                continue
            if step % 2 == 0:
                target = [degree + s for s in (0, 2, 4)]
                lead_degree = min(target, key=lambda d: abs(d + 7 - lead_degree)) + 7
            else:
                lead_degree = int(np.clip(lead_degree + rng.integers(-1, 2), 5, 13))
            pitch = 60 + track.tonic + scale[lead_degree % 7] + 12 * (lead_degree // 7) - 12
            if minor and lead_degree % 7 == 6 and degree == 4:
                pitch += 1
            notes.append(NoteEvent(t + step * beat / 2, pitch + 12, int(rng.integers(70, 95)), beat * 0.45, 2))
        notes += _drums(t, beat, bar_beats, rng)
        bar += 1
        t += bar_beats * beat
    return notes, {0: (0, bass_prog), 1: (0, chord_prog), 2: (0, lead_prog)}


def _drums(t: float, beat: float, bar_beats: int, rng: np.random.Generator) -> list[NoteEvent]:
    out: list[NoteEvent] = []

    def hit(pos: float, pitch: int, lo: int, hi: int) -> None:
        jitter = float(rng.normal(0.0, 0.003))
        out.append(NoteEvent(max(0.0, t + pos * beat + jitter), pitch, int(rng.integers(lo, hi)), 0.1, DRUM_CHANNEL))

    for s in range(2 * bar_beats):  # hats on the eighths, the beat louder
        hit(s / 2, CLOSED_HAT, 45 if s % 2 else 70, 60 if s % 2 else 90)
    if bar_beats == 4:  # backbeat: kick on 1 and 3, snare on 2 and 4
        for pos in (0.0, 2.0, 2.5):
            hit(pos, KICK, 95, 120)
        for pos in (1.0, 3.0):
            hit(pos, SNARE, 95, 120)
    else:  # waltz: kick on 1, soft snare on 2 and 3
        hit(0.0, KICK, 105, 125)
        for pos in (1.0, 2.0):
            hit(pos, SNARE, 55, 70)
    return out


def render(track: LabelledTrack, sample_rate: int = 44100, soundfont: str | Path | None = None) -> np.ndarray:
    """The track as float32 stereo (frames, 2), peak-normalized to 0.8."""
    fonts = [Path(soundfont)] if soundfont else available_soundfonts()
    if not fonts:
        raise RuntimeError(f"no General MIDI soundfont installed (the Debian packages {', '.join(apt_packages())})")
    index = sum(ord(c) for c in track.name)
    notes, programs = notes_of(track, index)
    audio = get_renderer(fonts[-1], sample_rate=sample_rate).render(
        notes, total_seconds=track.seconds, programs=programs
    )
    return (audio * (0.8 / max(1e-9, float(np.abs(audio).max())))).astype(np.float32)
