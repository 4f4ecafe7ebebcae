"""General MIDI files of performances, written and read with mido.

One track (format 0): the tempo meta event, the GM standard drum kit on
channel 10 (zero-based 9, so pretty_midi reads an `is_drum` instrument and a
synthesizer plays drums, not a piano), and one snare note (pitch 38) per
stroke, grace notes and buzz bounces included. Note-on times are the
performed stroke times (MIDI time 0 = performance start) on a 960 PPQ grid
at the performance tempo; a note ends before the next one starts, so the
note count equals the stroke count.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from music_assets.io import write_bytes
from music_assets.rudiments.performance import PPQ, SNARE_PITCH, Performance

DRUM_CHANNEL = 9  # General MIDI channel 10, zero-based
GM_STANDARD_KIT = 0


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _note_events(perf: Performance) -> list[tuple[int, int, int]]:
    """(tick, status, velocity) of every note-on and note-off, note-offs first on a shared tick."""
    n = perf.num_strokes
    ticks = np.concatenate([perf.off_tick, perf.on_tick]).astype(np.int64)
    is_on = np.repeat([0, 1], n)
    velocity = np.concatenate([np.zeros(n, dtype=np.int64), perf.actual_vel.astype(np.int64)])
    if ticks.min(initial=0) < 0 or velocity.min(initial=0) < 0 or velocity.max(initial=0) > 127:
        raise ValueError("MIDI notes need non-negative ticks and velocities 0-127")
    order = np.lexsort((is_on, ticks))
    status = np.where(is_on[order] == 1, 0x90 | DRUM_CHANNEL, 0x80 | DRUM_CHANNEL)
    return list(zip(ticks[order].tolist(), status.tolist(), velocity[order].tolist(), strict=True))


def midi_bytes(perf: Performance, name: str = "snare") -> bytes:
    """The performance as a Standard MIDI File (format 0, deterministic bytes).

    Encoded directly: the bytes equal what mido writes for the same messages
    (running status included; a test holds the two to it), 20x faster than
    building one mido message per note, which matters at 100,000 files.
    """
    title = name.encode("latin-1", "replace")
    track = bytearray()
    track += b"\x00\xff\x03" + _vlq(len(title)) + title
    track += b"\x00\xff\x51\x03" + int(perf.tempo_us).to_bytes(3, "big")
    track += bytes((0x00, 0xC0 | DRUM_CHANNEL, GM_STANDARD_KIT))
    now, running = 0, None
    for tick, status, vel in _note_events(perf):
        track += _vlq(tick - now)
        if status != running:
            track.append(status)
            running = status
        track += bytes((SNARE_PITCH, vel))
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def mido_file(perf: Performance, name: str = "snare") -> mido.MidiFile:
    """The same file built message by message with mido (the reference for `midi_bytes`)."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=perf.tempo_us, time=0))
    track.append(mido.Message("program_change", channel=DRUM_CHANNEL, program=GM_STANDARD_KIT, time=0))
    now = 0
    for tick, status, vel in _note_events(perf):
        kind = "note_on" if status & 0xF0 == 0x90 else "note_off"
        track.append(mido.Message(kind, channel=DRUM_CHANNEL, note=SNARE_PITCH, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mf = mido.MidiFile(type=0, ticks_per_beat=PPQ)
    mf.tracks.append(track)
    return mf


def write_midi(perf: Performance, dest: str | os.PathLike[str], name: str = "snare") -> Path:
    return write_bytes(dest, midi_bytes(perf, name))


@dataclass(frozen=True)
class MidiSummary:
    note_count: int
    channels: frozenset[int]
    pitches: frozenset[int]
    tempo_us: int | None
    end_sec: float


def read_midi_summary(path: str | os.PathLike[str]) -> MidiSummary:
    """Note count, note channels and pitches, first tempo and end time (last note event) of a MIDI file."""
    mf = mido.MidiFile(str(path))
    notes = 0
    channels: set[int] = set()
    pitches: set[int] = set()
    tempos: list[int] = []
    end_tick = 0
    for track in mf.tracks:  # per-track ticks: 3x faster than iterating the merged file in seconds
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.append(msg.tempo)
            elif msg.type == "note_on" and msg.velocity > 0:
                notes += 1
                channels.add(msg.channel)
                pitches.add(msg.note)
            if msg.type in ("note_on", "note_off"):
                end_tick = max(end_tick, tick)
    if len(tempos) <= 1:
        end = mido.tick2second(end_tick, mf.ticks_per_beat, tempos[0] if tempos else 500_000)
    else:  # tempo changes: let mido convert
        end, now = 0.0, 0.0
        for msg in mf:
            now += msg.time
            if msg.type in ("note_on", "note_off"):
                end = now
    return MidiSummary(notes, frozenset(channels), frozenset(pitches), tempos[0] if tempos else None, float(end))
