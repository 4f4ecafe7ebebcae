"""Preparing a selected source: 48 kHz stereo, 30-240 s, peak -1 dBFS, 24-bit FLAC.

Steps (`prepare_source`):

1. Stream-decode the source; leading silence (below -60 dBFS) is dropped when
   at least `MIN_DURATION_SEC` of audio follows it; at most
   `MAX_DURATION_SEC` are kept (with a 50 ms fade-out where the cut falls in
   the music). Memory is bounded by the kept part, whatever the file's length.
2. Channels to stereo: mono is duplicated, more than two channels are folded
   (left = mean of the even channels, right = mean of the odd ones).
3. Resample to 48 kHz with soxr (the resampler librosa uses), high quality.
4. Normalize the sample peak to -1 dBFS and write a 24-bit FLAC atomically.

Sources shorter than `MIN_DURATION_SEC`, or digitally silent, raise
PreparationError.

Quality score (0-100, `quality_score`): a weighted sum of six components in
[0, 1], measured on the kept part of the source and on the written output:

    clipping  30  1 - min(1, source clipped ratio / 0.001)
    silence   25  1 - output silence ratio
    bandwidth 15  min(1, source sample rate / 44100)  (upsampled audio lacks the top octave)
    dynamics  15  output crest factor (peak - RMS, dB) mapped linearly from 6 dB (0) to 14 dB (1)
    length    10  min(1, output duration / 120 s)
    stereo     5  1 for a source with two or more channels, 0 for mono
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from music_assets.audio.analysis import BLOCK_FRAMES, AudioStats, analyze_array, analyze_file
from music_assets.audio.io import write_flac
from music_assets.checks import CheckResult

TARGET_SAMPLE_RATE = 48000
TARGET_CHANNELS = 2
TARGET_PEAK_DBFS = -1.0
MIN_DURATION_SEC = 30.0
MAX_DURATION_SEC = 240.0
MAX_CLIPPED_RATIO = 0.001
MAX_SILENCE_RATIO = 0.5
LEADING_SILENCE_DBFS = -60.0
FADE_OUT_SEC = 0.05
# The code version of prepared_sources: bump when prepare_source writes different audio or scores,
# and automation re-prepares every source once.
PREPARATION_VERSION = "1"
QUALITY_WEIGHTS = {"clipping": 30, "silence": 25, "bandwidth": 15, "dynamics": 15, "length": 10, "stereo": 5}


class PreparationError(Exception):
    """A source that cannot be prepared; the message names the file and the reason."""


@dataclass(frozen=True)
class PreparedSource:
    path: Path
    source_sample_rate: int
    source_channels: int
    source_offset_sec: float
    cut_at_max: bool
    gain_db: float
    output: AudioStats
    quality_score: float
    quality_components: dict[str, float] = field(default_factory=dict)


def _read_segment(path: str, max_sec: float, min_sec: float) -> tuple[np.ndarray, int, int, bool]:
    """Decode (audio, sample_rate, offset_frames, cut) with leading silence dropped when possible."""
    threshold = 10.0 ** (LEADING_SILENCE_DBFS / 20.0)
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise PreparationError(f"{path}: cannot open: {exc.error_string}") from None
    with f:
        sr, channels = f.samplerate, f.channels
        keep = int(round(max_sec * sr))
        parts: list[np.ndarray] = []
        kept = offset = total = 0
        started = False
        while kept < keep:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            if len(block) == 0:
                break
            total += len(block)
            if not started:
                loud = np.flatnonzero(np.abs(block).max(axis=1) > threshold)
                if len(loud) == 0:
                    offset += len(block)
                    continue
                started = True
                offset += int(loud[0])
                block = block[loud[0] :]
            parts.append(block[: keep - kept])
            kept += len(parts[-1])
        cut = kept >= keep and len(f.read(1, dtype="float32")) > 0
    audio = np.concatenate(parts) if parts else np.zeros((0, channels), dtype=np.float32)
    if offset and len(audio) < int(min_sec * sr) and total >= int(min_sec * sr):
        # Too little follows the leading silence: keep it rather than fall under the minimum.
        with sf.SoundFile(path) as f2:
            audio = f2.read(keep, dtype="float32", always_2d=True)
        offset, cut = 0, total > keep
    return audio, sr, offset, cut


def _to_stereo(audio: np.ndarray) -> np.ndarray:
    channels = audio.shape[1]
    if channels == 2:
        return audio
    if channels == 1:
        return np.repeat(audio, 2, axis=1)
    return np.stack([audio[:, 0::2].mean(axis=1), audio[:, 1::2].mean(axis=1)], axis=1)


def quality_components(source: AudioStats, output: AudioStats) -> dict[str, float]:
    crest = output.peak_dbfs - output.rms_dbfs
    return {
        "clipping": 1.0 - min(1.0, source.clipped_ratio / MAX_CLIPPED_RATIO),
        "silence": max(0.0, 1.0 - output.silence_ratio),
        "bandwidth": min(1.0, source.sample_rate / 44100.0),
        "dynamics": float(np.clip((crest - 6.0) / (14.0 - 6.0), 0.0, 1.0)),
        "length": min(1.0, output.duration_sec / 120.0),
        "stereo": 1.0 if source.channels >= 2 else 0.0,
    }


def quality_score(components: dict[str, float]) -> float:
    return round(sum(QUALITY_WEIGHTS[k] * v for k, v in components.items()), 1)


def prepare_source(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    min_duration_sec: float = MIN_DURATION_SEC,
    max_duration_sec: float = MAX_DURATION_SEC,
    peak_dbfs: float = TARGET_PEAK_DBFS,
) -> PreparedSource:
    """Prepare `source` into `dest` (see the module docstring); returns what was done and measured."""
    import soxr  # noqa: PLC0415

    src = os.fspath(source)
    audio, sr, offset, cut = _read_segment(src, max_duration_sec, min_duration_sec)
    duration = len(audio) / sr
    if duration < min_duration_sec:
        raise PreparationError(f"{src}: {duration:.1f} s of audio, preparation needs at least {min_duration_sec:g} s")
    source_stats = analyze_array(audio, sr)
    stereo = _to_stereo(audio)
    del audio
    if sr != TARGET_SAMPLE_RATE:
        stereo = soxr.resample(stereo, sr, TARGET_SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    # Resampling may add or drop a frame or two: keep the duration within the window.
    stereo = stereo[: int(max_duration_sec * TARGET_SAMPLE_RATE)]
    if cut:
        n = min(len(stereo), int(FADE_OUT_SEC * TARGET_SAMPLE_RATE))
        stereo[len(stereo) - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
    peak = float(np.abs(stereo).max()) if len(stereo) else 0.0
    if peak < 1e-6:
        raise PreparationError(f"{src}: digitally silent, nothing to normalize")
    gain = 10.0 ** (peak_dbfs / 20.0) / peak
    stereo *= np.float32(gain)
    dest = write_flac(dest, stereo, TARGET_SAMPLE_RATE, subtype="PCM_24")
    output = analyze_array(stereo, TARGET_SAMPLE_RATE)
    components = quality_components(source_stats, output)
    return PreparedSource(
        path=Path(dest),
        source_sample_rate=sr,
        source_channels=source_stats.channels,
        source_offset_sec=offset / sr,
        cut_at_max=cut,
        gain_db=20.0 * math.log10(gain),
        output=output,
        quality_score=quality_score(components),
        quality_components=components,
    )


CHECK_DESCRIPTIONS = {
    "duration_in_range": f"duration between {MIN_DURATION_SEC:g} and {MAX_DURATION_SEC:g} s",
    "not_clipped": f"at most {MAX_CLIPPED_RATIO:.1%} of samples at full scale",
    "not_mostly_silent": f"at most {MAX_SILENCE_RATIO:.0%} of the duration below -60 dBFS",
    "format_48k_stereo": f"{TARGET_SAMPLE_RATE} Hz, {TARGET_CHANNELS} channels",
}


def check_prepared(path: str | os.PathLike[str]) -> list[CheckResult]:
    """The quality gates of a prepared file, measured from the file as written."""
    try:
        s = analyze_file(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable output fails every gate, with the reason
        return [
            CheckResult(name=n, passed=False, description=f"{d}: cannot read {path}: {exc}")
            for n, d in CHECK_DESCRIPTIONS.items()
        ]
    # Half a frame at 48 kHz of slack: the limits are on whole frames.
    eps = 0.5 / TARGET_SAMPLE_RATE
    d = s.duration_sec
    return [
        CheckResult(
            name="duration_in_range",
            passed=MIN_DURATION_SEC - eps <= d <= MAX_DURATION_SEC + eps,
            description=f"{d:.2f} s; want {CHECK_DESCRIPTIONS['duration_in_range']}",
            metadata={"duration_sec": round(d, 3)},
        ),
        CheckResult(
            name="not_clipped",
            passed=s.clipped_ratio <= MAX_CLIPPED_RATIO,
            description=f"{s.clipped_ratio:.4%} clipped; want {CHECK_DESCRIPTIONS['not_clipped']}",
            metadata={"clipped_ratio": s.clipped_ratio, "peak_dbfs": round(s.peak_dbfs, 3)},
        ),
        CheckResult(
            name="not_mostly_silent",
            passed=s.silence_ratio <= MAX_SILENCE_RATIO,
            description=f"{s.silence_ratio:.1%} silent; want {CHECK_DESCRIPTIONS['not_mostly_silent']}",
            metadata={"silence_ratio": s.silence_ratio},
        ),
        CheckResult(
            name="format_48k_stereo",
            passed=s.sample_rate == TARGET_SAMPLE_RATE and s.channels == TARGET_CHANNELS,
            description=f"{s.sample_rate} Hz, {s.channels} ch ({s.subtype}); "
            f"want {CHECK_DESCRIPTIONS['format_48k_stereo']}",
            metadata={"sample_rate": s.sample_rate, "channels": s.channels, "subtype": s.subtype or ""},
        ),
    ]
