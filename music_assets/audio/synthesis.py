"""Offline FluidSynth rendering of note events and MIDI files.

No audio driver is started: the synth is driven sample-accurately from Python,
rendering the frames between consecutive events. Each soundfont is loaded once
per process (`get_renderer`) because loading FluidR3_GM takes about a second.

Output is float32 through `fluid_synth_write_float`: pyfluidsynth's
`get_samples` goes through `fluid_synth_write_s16`, whose dither index lives
in the synth and carries over between renders, so the same notes would not
give the same bytes depending on what was rendered before. Reverb and chorus
are off for the same reason (their delay lines carry state), and every render
ends with all sounds off so the next one starts from silence.

FluidSynth voices keep state from their previous note (filter coefficients
are smoothed from the last cutoff), and which voice slot a note gets depends
on history. Every render therefore starts by striking enough notes to occupy
every voice slot, then silencing them: the pool is in the same state whatever
came before (about 1.5 ms per render).

FluidSynth renders in blocks of 64 frames and applies an event at the next
block boundary. Events are therefore issued on the nearest boundary (at most
0.73 ms from the requested time at 44.1 kHz, unbiased) and every render covers
a whole number of blocks, so the synth is always block-aligned and output does
not depend on what was rendered before.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music_assets.audio import soundfonts

DEFAULT_SAMPLE_RATE = 44100
DRUM_CHANNEL = 9  # General MIDI channel 10, zero-based
GM_DRUM_BANK = 128
BLOCK = 64  # FluidSynth's internal block size (FLUID_BUFSIZE)
POLYPHONY = 64  # enough for buzz rolls; the per-render voice reset costs in proportion
_FLUID_WARN = 2
_RESET_CHANNEL = 15
SOUNDFONT_DIR = soundfonts.SOUNDFONT_DIR
# rudiment_audio's soundfonts, in the order samples are dealt over them (the registry's)
DEFAULT_SOUNDFONTS = tuple(sf.path for sf in soundfonts.DEFAULT_RENDER)


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True, order=True)
class NoteEvent:
    """One note: onset and duration in seconds, zero-based MIDI channel."""

    start: float
    pitch: int
    velocity: int
    duration: float = 0.1
    channel: int = DRUM_CHANNEL


def _load_fluidsynth():
    try:
        import fluidsynth  # noqa: PLC0415 - needs libfluidsynth3 at import
    except (ImportError, OSError) as exc:  # pragma: no cover - depends on the system
        raise SynthesisError(
            "pyfluidsynth could not load libfluidsynth; install the Debian package "
            "libfluidsynth3 (make run / make test do this)"
        ) from exc
    return fluidsynth


class Renderer:
    """A FluidSynth synth with one soundfont loaded, rendering offline."""

    def __init__(self, soundfont: str | os.PathLike[str], sample_rate: int = DEFAULT_SAMPLE_RATE, gain: float = 0.5):
        fs = _load_fluidsynth()
        self.soundfont = Path(soundfont)
        if not self.soundfont.is_file():
            raise SynthesisError(soundfonts.not_found_message(self.soundfont))
        self.sample_rate = int(sample_rate)
        settings = {
            "synth.reverb.active": 0,
            "synth.chorus.active": 0,
            "synth.cpu-cores": 1,
            "synth.polyphony": POLYPHONY,
        }
        self._synth = fs.Synth(gain=gain, samplerate=float(self.sample_rate), channels=16, **settings)
        self._sfid = self._synth.sfload(str(self.soundfont))
        if self._sfid < 0:
            raise SynthesisError(f"{self.soundfont}: FluidSynth could not load this soundfont")
        self._write_float = fs._fl.fluid_synth_write_float
        self._write_float.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        self._write_float.restype = ctypes.c_int
        self._set_log_fn = fs._fl.fluid_set_log_function
        self._set_log_fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        self._set_log_fn.restype = ctypes.c_void_p
        self._programs: dict[int, tuple[int, int]] = {}

    def _select(self, channel: int, bank: int, program: int) -> None:
        if self._programs.get(channel) == (bank, program):
            return
        if self._synth.program_select(channel, self._sfid, bank, program) != 0:
            raise SynthesisError(f"{self.soundfont}: no preset bank {bank} program {program}")
        self._programs[channel] = (bank, program)

    def _render_into(self, out: np.ndarray, start: int, stop: int) -> None:
        """Frames [start, stop) into planar float32 `out` of shape (2, frames)."""
        n = stop - start
        if n <= 0:
            return
        left = out[0, start:stop].ctypes.data
        right = out[1, start:stop].ctypes.data
        rc = self._write_float(self._synth.synth, n, left, 0, 1, right, 0, 1)
        if rc != 0:
            raise SynthesisError(f"{self.soundfont}: fluid_synth_write_float failed")

    def render(
        self,
        notes: Iterable[NoteEvent],
        *,
        total_seconds: float | None = None,
        tail_seconds: float = 1.0,
        programs: dict[int, tuple[int, int]] | None = None,
        planar: bool = False,
    ) -> np.ndarray:
        """Render notes to float32 stereo of shape (frames, 2), or (2, frames) when `planar`.

        FluidSynth writes each channel into its own buffer, so the planar
        layout costs no copy; the interleaved one is a transposed copy of it.

        `programs` maps channel -> (bank, program); the drum channel defaults to
        the GM drum kit (bank 128, program 0). The length is `total_seconds`
        when given, else the last note-off plus `tail_seconds`.
        """
        sr = self.sample_rate
        notes = sorted(notes)
        progs = {DRUM_CHANNEL: (GM_DRUM_BANK, 0)}
        progs.update(programs or {})
        events: list[tuple[int, int, int, int, int]] = []  # (frame, order, channel, pitch, velocity)
        end_sec = 0.0
        for n in notes:
            if not (0 <= n.pitch <= 127 and 0 <= n.velocity <= 127 and 0 <= n.channel <= 15):
                raise SynthesisError(f"invalid note {n}")
            on = _block(n.start * sr)
            off = max(_block((n.start + n.duration) * sr), on + BLOCK)
            # note-offs sort before note-ons at the same frame so a re-struck pitch sounds
            events.append((on, 1, n.channel, n.pitch, max(1, n.velocity)))
            events.append((off, 0, n.channel, n.pitch, 0))
            end_sec = max(end_sec, n.start + n.duration)
        total = int(round((total_seconds if total_seconds is not None else end_sec + tail_seconds) * sr))
        events.sort()
        total = max(total, 0)
        padded = -(-total // BLOCK) * BLOCK
        out = np.zeros((2, padded), dtype=np.float32)
        self._reset_voices()
        for ch, (bank, prog) in progs.items():
            self._select(ch, bank, prog)
        pos = 0
        try:
            for frame, kind, ch, pitch, vel in events:
                if frame >= total:
                    break
                self._render_into(out, pos, frame)
                pos = max(pos, frame)
                if ch not in progs:
                    self._select(ch, 0, 0)
                if kind == 1:
                    self._synth.noteon(ch, pitch, vel)
                else:
                    self._synth.noteoff(ch, pitch)
            self._render_into(out, pos, padded)
        finally:
            self._silence()
        return out[:, :total] if planar else np.ascontiguousarray(out[:, :total].T)

    def _reset_voices(self) -> None:
        """Occupy every voice slot with a fixed sequence of notes, then silence them all."""
        self._select(_RESET_CHANNEL, GM_DRUM_BANK, 0)
        synth = self._synth
        # Filling the pool makes FluidSynth warn once about a note it could not place.
        previous = self._set_log(_FLUID_WARN, None)
        try:
            for _round in range(4):
                for key in range(128):
                    if synth.get_active_voice_count() >= POLYPHONY:
                        break
                    synth.noteon(_RESET_CHANNEL, key, 100)
        finally:
            self._set_log(_FLUID_WARN, previous)
        scratch = np.zeros((2, BLOCK), dtype=np.float32)
        self._render_into(scratch, 0, BLOCK)
        self._silence()

    def _set_log(self, level: int, fn: int | None) -> int | None:
        return self._set_log_fn(level, fn, None)

    def _silence(self) -> None:
        for ch in range(16):
            self._synth.all_sounds_off(ch)
        # one block so the sounds-off takes effect before the next render
        scratch = np.zeros((2, BLOCK), dtype=np.float32)
        self._render_into(scratch, 0, BLOCK)

    def render_midi(
        self, midi: str | os.PathLike[str] | object, *, tail_seconds: float = 1.0, total_seconds: float | None = None
    ) -> np.ndarray:
        """Render a MIDI file (path or pretty_midi.PrettyMIDI), honouring its drum flags and programs."""
        notes, programs = midi_to_events(midi)
        return self.render(notes, tail_seconds=tail_seconds, total_seconds=total_seconds, programs=programs)

    def close(self) -> None:
        self._synth.delete()


def _block(frame: float) -> int:
    return int(round(frame / BLOCK)) * BLOCK


def midi_to_events(midi: str | os.PathLike[str] | object) -> tuple[list[NoteEvent], dict[int, tuple[int, int]]]:
    """Notes and channel programs of a MIDI file, read with pretty_midi."""
    import pretty_midi  # noqa: PLC0415

    pm = midi if isinstance(midi, pretty_midi.PrettyMIDI) else pretty_midi.PrettyMIDI(str(midi))
    notes: list[NoteEvent] = []
    programs: dict[int, tuple[int, int]] = {}
    melodic_channel = 0
    for inst in pm.instruments:
        if inst.is_drum:
            ch = DRUM_CHANNEL
            programs[ch] = (GM_DRUM_BANK, inst.program)
        else:
            ch = melodic_channel
            melodic_channel += 1 + (melodic_channel + 1 == DRUM_CHANNEL)
            programs[ch] = (0, inst.program)
        for n in inst.notes:
            notes.append(NoteEvent(float(n.start), int(n.pitch), int(n.velocity), float(n.end - n.start), ch))
    return notes, programs


_RENDERERS: dict[tuple[str, int, float], Renderer] = {}


def get_renderer(
    soundfont: str | os.PathLike[str], sample_rate: int = DEFAULT_SAMPLE_RATE, gain: float = 0.5
) -> Renderer:
    """The process-wide renderer for a soundfont (each soundfont loads once per process)."""
    key = (str(Path(soundfont).resolve()), int(sample_rate), float(gain))
    r = _RENDERERS.get(key)
    if r is None:
        r = _RENDERERS[key] = Renderer(soundfont, sample_rate, gain)
    return r


def available_soundfonts(paths: Sequence[str | os.PathLike[str]] = DEFAULT_SOUNDFONTS) -> list[Path]:
    """The given soundfont paths that exist, in order."""
    return [Path(p) for p in paths if Path(p).is_file()]
