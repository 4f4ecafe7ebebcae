"""One sample in a worker process: dry FluidSynth render, onset alignment, augmentation, FLAC.

Each process loads a soundfont (and measures its onset latency) once
(`_LATENCY`); the fork server's `render_preload` does it for the default ones.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from music_assets.audio import effects, onsets
from music_assets.audio.presets import draw_params
from music_assets.audio.render.plan import SAMPLE_RATE, SUBTYPE, TAIL_SEC, RenderError, RenderJob
from music_assets.audio.synthesis import get_renderer, midi_to_events
from music_assets.seeding import stable_rng

CLIP_LEVEL = (2**23 - 2**8) << 8  # int32 PCM: within 256 LSB of 24-bit full scale counts as clipped
FLAC_COMPRESSION = 0.125  # libFLAC level 1 of 8: twice as fast as the default, files about 8 % larger
_LATENCY: dict[tuple[str, int], onsets.LatencyCurve] = {}


def _latency(soundfont: str, pitch: int) -> onsets.LatencyCurve:
    key = (soundfont, pitch)
    if key not in _LATENCY:
        _LATENCY[key] = onsets.calibrate_latency(get_renderer(soundfont, SAMPLE_RATE), pitch)
    return _LATENCY[key]


def preload_soundfont(soundfont: str, pitch: int = 38) -> None:
    """Load a soundfont and measure its onset latency for `pitch` (General MIDI snare) now."""
    _latency(soundfont, pitch)


def render_dry(job: RenderJob) -> tuple[np.ndarray, int]:
    """The dry FluidSynth render of the job's MIDI (MIDI length + TAIL_SEC), planar stereo
    (2, frames), and its main pitch."""
    import pretty_midi  # noqa: PLC0415

    try:
        pm = pretty_midi.PrettyMIDI(job.midi_path)
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types for bad files
        raise RenderError(f"{job.midi_path}: not a readable MIDI file: {exc}") from exc
    notes, programs = midi_to_events(pm)
    if not notes:
        raise RenderError(f"{job.midi_path}: the MIDI file has no notes")
    pitches = np.bincount([n.pitch for n in notes], minlength=128)
    renderer = get_renderer(job.soundfont, SAMPLE_RATE)
    dry = renderer.render(notes, total_seconds=pm.get_end_time() + TAIL_SEC, programs=programs, planar=True)
    return dry, int(pitches.argmax())


def _to_pcm24(x: np.ndarray) -> np.ndarray:
    """Planar float (channels, frames) to interleaved (frames, channels) 24-bit PCM in the
    top bits of int32: exactly what the FLAC file will hold."""
    full = np.float32(2**23)
    y = np.empty(x.shape[::-1], dtype=np.float32)
    np.multiply(x.T, full, out=y)  # interleaves while scaling: no separate transposed copy
    np.rint(y, out=y)
    np.clip(y, -full, full - 1, out=y)
    pcm = y.astype(np.int32)
    pcm <<= 8
    return pcm


def render_job(job: RenderJob) -> dict[str, object]:
    """Render, measure, augment and write one sample; return its audio.parquet row."""
    from music_assets.audio.io import write_flac  # noqa: PLC0415
    from music_assets.io import WriteError  # noqa: PLC0415

    try:
        dry, pitch = render_dry(job)
        if job.channels == 1:
            mono = np.add(dry[0], dry[1])
            mono *= np.float32(0.5)  # exactly the channel mean (a power-of-two scale)
            dry = mono[None, :]
        # the detector works on the channel mean, so mono and stereo align identically
        align = onsets.median_alignment_error_ms(
            dry[0] if job.channels == 1 else dry.T,
            SAMPLE_RATE,
            job.stroke_ms,
            job.stroke_velocity,
            _latency(job.soundfont, pitch),
            job.note_ms,
        )
        rng = stable_rng(job.sample_id, job.seed, "augment")
        params = draw_params(job.preset, rng, dry.shape[1] / SAMPLE_RATE, job.beds)
        wet = effects.augment(dry, SAMPLE_RATE, params, stable_rng(job.sample_id, job.seed, "augment-signal"), job.beds)
        del dry
        pcm = _to_pcm24(wet)
        # flushed to disk all at once (os.sync) before audio.parquet lists the files
        write_flac(job.audio_path, pcm, SAMPLE_RATE, subtype=SUBTYPE, compression_level=FLAC_COMPRESSION, fsync=False)
    except RenderError:
        raise
    except WriteError as exc:  # a full disk, a read-only folder: the message names the file being written
        raise RenderError(f"sample {job.sample_id}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - name the sample in whatever went wrong
        raise RenderError(f"{job.midi_path} (sample {job.sample_id}): rendering failed: {exc!r}") from exc
    # stats from the exact integers in the file
    top = max(int(pcm.max()), -int(pcm.min())) if pcm.size else 0
    peak = top / 2.0**31
    # augment stages every preset below full scale, so the count is almost never needed
    clipped = (
        float(np.count_nonzero((pcm >= CLIP_LEVEL) | (pcm <= -CLIP_LEVEL))) / max(1, pcm.size)
        if top >= CLIP_LEVEL
        else 0.0
    )
    return {
        "sample_id": job.sample_id,
        "audio_path": job.audio_rel,
        "soundfont": Path(job.soundfont).name,
        **params.columns(),
        "audio_duration_sec": pcm.shape[0] / SAMPLE_RATE,
        "audio_sample_rate": SAMPLE_RATE,
        "audio_channels": pcm.shape[1],
        "audio_peak_dbfs": 20 * math.log10(max(peak, 1e-10)),
        "audio_clipped_ratio": clipped,
        "align_median_error_ms": align,
    }


def render_job_measured(job: RenderJob) -> tuple[dict[str, object], float, float]:
    """render_job, plus the CPU seconds it took and this process's peak RSS (MiB)."""
    import resource  # noqa: PLC0415

    t0 = time.process_time()
    row = render_job(job)
    return row, time.process_time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
