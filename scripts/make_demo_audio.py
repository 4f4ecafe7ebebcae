"""Regenerate the demo recordings in data/raw_audio/ (`make demo-inputs`).

Short General MIDI arrangements (drums, bass, keys, strings, a lead line)
rendered offline with FluidSynth (`music_assets.audio.synthesis`), with a
noise floor and a little leading silence like a real bounce, saved in
compressed formats at modest sample rates so the whole set stays under 5 MB.
Every note and every noise sample comes from `stable_rng`, and the encoders
are deterministic, so re-running the script rewrites identical files (that is
why there is no Ogg here: libsndfile gives every Ogg stream a random serial
number).

What each file exercises in the sources group (default selection rules):

    bounces/funk_groove_96bpm.mp3            40 s  selected (+10 for "bounces")
    masters/ballad_strings.mp3               52 s  selected (+10 for "masters")
    tracks/jazz_trio_take2.flac              36 s  selected (+10 for "tracks"), mono 16 kHz
    bounces/hot_mix_clipped.flac             34 s  rejected: clipped ratio above 0.001
    field_recordings/room_tone_mostly_silent.flac 45 s  rejected: silence ratio above 0.5
    scratch/idea_draft.mp3                   14 s  rejected: skip patterns "scratch", "draft" and too short

Their provenance is written beside them: `provenance.csv` at the root for
every file, and a sidecar `tracks/jazz_trio_take2.flac.json` that gives that
file another license (a sidecar wins over the CSV).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from music_assets.audio.soundfonts import apt_packages  # noqa: E402
from music_assets.audio.synthesis import DRUM_CHANNEL, NoteEvent, available_soundfonts, get_renderer  # noqa: E402
from music_assets.io import atomic_open  # noqa: E402
from music_assets.seeding import stable_rng  # noqa: E402

SEED = 7
KICK, SNARE, CLOSED_HAT, RIDE, SIDE_STICK = 36, 38, 42, 51, 37
MINOR = (0, 2, 3, 5, 7, 8, 10)
MAJOR = (0, 2, 4, 5, 7, 9, 11)


@dataclass(frozen=True)
class Style:
    bpm: float
    key: int  # MIDI note of the tonic, bass octave
    scale: tuple[int, ...]
    progression: tuple[int, ...]  # scale degrees, one chord per bar
    programs: dict[int, int]  # channel -> GM program: 0 bass, 1 chords, 2 lead
    drums: str  # "funk", "ballad", "swing" or "none"


def _triad(style: Style, degree: int, octave: int) -> list[int]:
    notes = []
    for step in (0, 2, 4):
        d = degree + step
        notes.append(style.key + 12 * octave + style.scale[d % 7] + 12 * (d // 7))
    return notes


def arrangement(style: Style, seconds: float, name: str) -> list[NoteEvent]:
    """Bars of bass, chords, drums and a lead line, until `seconds`."""
    rng = stable_rng("demo-audio", name, SEED)
    beat = 60.0 / style.bpm
    notes: list[NoteEvent] = []
    bar, t = 0, 0.0
    lead_degree = 7
    while t + 4 * beat <= seconds:
        degree = style.progression[bar % len(style.progression)]
        root = style.key + style.scale[degree % 7]
        for b in range(4):  # bass: root on 1 and 3, fifth or octave between
            pitch = root if b % 2 == 0 else root + (7 if rng.random() < 0.6 else 12)
            notes.append(NoteEvent(t + b * beat, pitch, int(rng.integers(80, 105)), beat * 0.9, 0))
        chord = _triad(style, degree, 2)
        hits = (0.0, 2.0) if style.drums == "ballad" else (0.0, 1.5, 2.5)
        for h in hits:
            for p in chord:
                notes.append(
                    NoteEvent(t + h * beat, p, int(rng.integers(55, 80)), beat * (2.0 if len(hits) == 2 else 0.8), 1)
                )
        for step in range(8):  # lead: eighth notes, a random walk on the scale with rests
            if rng.random() < 0.35:
                continue
            lead_degree = int(np.clip(lead_degree + rng.integers(-2, 3), 3, 13))
            pitch = style.key + 24 + style.scale[lead_degree % 7] + 12 * (lead_degree // 7)
            notes.append(NoteEvent(t + step * beat / 2, pitch, int(rng.integers(70, 100)), beat * 0.45, 2))
        notes += _drums(style, t, beat, rng)
        bar += 1
        t += 4 * beat
    return notes


def _drums(style: Style, t: float, beat: float, rng: np.random.Generator) -> list[NoteEvent]:
    out: list[NoteEvent] = []

    def hit(pos: float, pitch: int, lo: int, hi: int) -> None:
        jitter = float(rng.normal(0.0, 0.004))
        out.append(NoteEvent(max(0.0, t + pos * beat + jitter), pitch, int(rng.integers(lo, hi)), 0.1, DRUM_CHANNEL))

    if style.drums == "funk":
        for s in range(8):
            hit(s / 2, CLOSED_HAT, 50 if s % 2 else 80, 70 if s % 2 else 100)
        for pos in (0.0, 1.75, 2.5):
            hit(pos, KICK, 95, 120)
        for pos in (1.0, 3.0):
            hit(pos, SNARE, 100, 125)
    elif style.drums == "ballad":
        hit(0.0, KICK, 80, 100)
        hit(2.0, SIDE_STICK, 60, 80)
    elif style.drums == "swing":
        for pos in (0.0, 1.0, 1.66, 2.0, 3.0, 3.66):
            hit(pos, RIDE, 55, 85)
    return out


def render(style: Style, seconds: float, name: str, sample_rate: int, soundfont: Path) -> np.ndarray:
    renderer = get_renderer(soundfont, sample_rate=sample_rate)
    programs = {ch: (0, prog) for ch, prog in style.programs.items()}
    return renderer.render(arrangement(style, seconds - 1.0, name), total_seconds=seconds, programs=programs)


def finish(
    audio: np.ndarray,
    name: str,
    *,
    noise_dbfs: float = -55.0,
    lead_in: float = 0.4,
    sample_rate: int,
    peak: float = 0.8,
) -> np.ndarray:
    """Normalize to `peak`, add a noise floor and a short silent lead-in, like a bounce."""
    rng = stable_rng("demo-noise", name, SEED)
    audio = audio * (peak / max(1e-9, float(np.abs(audio).max())))
    audio = audio + (10 ** (noise_dbfs / 20)) * rng.standard_normal(audio.shape)
    pad = np.zeros((int(lead_in * sample_rate), audio.shape[1]))
    return np.concatenate([pad, audio]).astype(np.float32)


FUNK = Style(96, 40, MINOR, (0, 0, 3, 4), {0: 33, 1: 4, 2: 81}, "funk")
BALLAD = Style(68, 41, MAJOR, (0, 5, 3, 4), {0: 32, 1: 48, 2: 73}, "ballad")
JAZZ = Style(132, 43, MAJOR, (1, 4, 0, 0), {0: 32, 1: 0, 2: 66}, "swing")
SKETCH = Style(110, 45, MINOR, (0, 5), {0: 34, 1: 5, 2: 80}, "funk")


def _funk(sf2: Path) -> np.ndarray:
    return finish(render(FUNK, 40, "funk", 22050, sf2), "funk", sample_rate=22050)


def _ballad(sf2: Path) -> np.ndarray:
    return finish(render(BALLAD, 52, "ballad", 22050, sf2), "ballad", sample_rate=22050, noise_dbfs=-60)


def _jazz(sf2: Path) -> np.ndarray:
    stereo = render(JAZZ, 36, "jazz", 16000, sf2)
    return finish(stereo.mean(axis=1, keepdims=True), "jazz", sample_rate=16000)


def _clipped(sf2: Path) -> np.ndarray:
    # A mix pushed 12 dB into the converter: flat tops at full scale.
    loud = finish(render(FUNK, 34, "hot", 11025, sf2), "hot", sample_rate=11025, peak=4.0)
    return np.clip(loud.mean(axis=1, keepdims=True), -1.0, 1.0)


def _room_tone(sf2: Path) -> np.ndarray:
    sr = 8000
    music = render(BALLAD, 6, "room", sr, sf2)[: 5 * sr]
    bed = np.zeros((45 * sr, 2), np.float32)
    bed[20 * sr : 25 * sr] = music * (0.3 / max(1e-9, float(np.abs(music).max())))
    return finish(bed, "room", sample_rate=sr, noise_dbfs=-80.0, lead_in=0.0, peak=0.3)


def _sketch(sf2: Path) -> np.ndarray:
    return finish(render(SKETCH, 14, "sketch", 22050, sf2), "sketch", sample_rate=22050)


# relative path -> (make audio, sample rate, libsndfile format, subtype, extra write options)
FILES: dict[str, tuple[Callable[[Path], np.ndarray], int, str, str, dict]] = {
    "bounces/funk_groove_96bpm.mp3": (_funk, 22050, "MP3", "MPEG_LAYER_III", {"compression_level": 0.6}),
    "masters/ballad_strings.mp3": (_ballad, 22050, "MP3", "MPEG_LAYER_III", {"compression_level": 0.6}),
    "tracks/jazz_trio_take2.flac": (_jazz, 16000, "FLAC", "PCM_16", {}),
    "bounces/hot_mix_clipped.flac": (_clipped, 11025, "FLAC", "PCM_16", {}),
    "field_recordings/room_tone_mostly_silent.flac": (_room_tone, 8000, "FLAC", "PCM_16", {}),
    "scratch/idea_draft.mp3": (_sketch, 22050, "MP3", "MPEG_LAYER_III", {"compression_level": 0.7}),
}


PROVENANCE = {
    "provider": "music_assets demo (synthesized)",
    "license": "CC-BY-4.0",
    "author": "music_assets contributors",
    "url": "",
    "acquired": "2026-11-23",
    "cost": 0,
}
# One file's sidecar: its values win over provenance.csv; unknown keys ("note") are ignored by the
# catalog. `style` and `timesignature` are a person's word for track_annotations / track_captions
# (the swung ride gives the meter estimate little to go on).
SIDECARS = {
    "tracks/jazz_trio_take2.flac": {
        "license": "CC0-1.0",
        "author": "music_assets contributors",
        "note": "a sidecar example: its license wins over provenance.csv",
        "style": "jazz-trio",
        "timesignature": "4/4",
    },
}


def write_provenance(out: Path) -> None:
    """provenance.csv at `out` for every demo file, and the SIDECARS beside their files (deterministic bytes)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", *PROVENANCE])
    for rel in FILES:
        writer.writerow([rel, *PROVENANCE.values()])
    with atomic_open(out / "provenance.csv", "wb") as fh:
        fh.write(buf.getvalue().encode())
    for rel, values in SIDECARS.items():
        with atomic_open(out / f"{rel}.json", "wb") as fh:
            fh.write((json.dumps(values, indent=2) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "raw_audio", help="output folder")
    args = parser.parse_args(argv)
    fonts = available_soundfonts()
    if not fonts:
        print(f"no General MIDI soundfont found (install {' or '.join(apt_packages())})", file=sys.stderr)
        return 1
    sf2 = fonts[-1]  # FluidR3_GM when installed: the fuller instruments
    total = 0
    for rel, (make, sr, fmt, subtype, options) in FILES.items():
        audio = make(sf2)
        dest = args.out / rel
        with atomic_open(dest, "wb") as fh:
            sf.write(fh, audio, sr, format=fmt, subtype=subtype, **options)
        size = dest.stat().st_size
        total += size
        print(f"{rel:48s} {len(audio) / sr:5.1f} s  {sr} Hz  {audio.shape[1]} ch  {fmt:4s} {size / 1024:7.1f} KiB")
    write_provenance(args.out)
    print(f"total {total / 2**20:.2f} MiB in {args.out}, with provenance.csv and {len(SIDECARS)} sidecar(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
