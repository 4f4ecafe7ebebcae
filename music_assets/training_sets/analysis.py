"""Measuring a track: BPM, key, time signature and a few features, with essentia (chosen) or librosa (baseline).

`measure(path)` is what `track_annotations` records. Both methods read the prepared file as mono
44.1 kHz (essentia's rhythm and key extractors are tuned for that rate) and give a `Measurement`.

essentia (the chosen method, `bench/annotations.py` prints why):
    BPM and beats: `RhythmExtractor2013(method="multifeature")`; its confidence (0-5.32, above 3.5
    "excellent" by essentia's docs) is scaled to 0-1. Key: `KeyExtractor(profileType="bgate")`
    and its strength (0-1).
librosa (the baseline): `beat.beat_track`, and the Krumhansl-Schmuckler key-finding: the mean
    CQT chroma correlated with the Krumhansl-Kessler profiles in all 24 keys.

Two checks of our own on the beat grid, the same for both methods:
    tempo octave: a beat tracker at 70 BPM often locks onto the eighth notes (140). When every
    second tick carries the kick and snare (the onset strength below 500 Hz at one phase of the
    ticks is `OCTAVE_RATIO` times the other's; on the bench set that ratio is at most 1.2 at the
    right tempo and at least 3.3 at the doubled one), the ticks are eighths: the BPM is halved,
    and the stronger phase kept as the beats.
    time signature: a kick-drum accent (onset strength below 200 Hz) per beat, whose
    autocorrelation at lag 3 against lags 2 and 4 tells 3/4 from 4/4. Anything else (2, 6) is
    only ever a sidecar's word.
Features: duration, integrated loudness (BS.1770, on the prepared stereo), spectral centroid
(brightness, Hz) and onset density (onsets per second, from the spectral flux peaks).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 44100
HOP = 512
N_FFT = 2048
OCTAVE_RATIO = 2.0  # one phase of the ticks this many times the other's: the ticks are eighths
DRUM_HZ = 500.0  # kick and snare bodies
HALVE_ABOVE_BPM = 110.0  # halving is considered only from here (the result stays >= 55 BPM)
KEY_PROFILE = "bgate"
METHODS = ("essentia", "librosa")
# Krumhansl-Kessler probe-tone profiles (major, minor), C first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


class AnalysisError(RuntimeError):
    """A file that cannot be measured; the message names it and the reason."""


@dataclass
class Measurement:
    bpm: float
    bpm_confidence: float  # 0-1
    key: str  # keyscale, "Eb major"
    key_confidence: float  # 0-1
    time_signature: int  # beats per bar, 3 or 4
    time_signature_confidence: float  # 0-1
    duration_sec: float
    loudness_lufs: float | None
    brightness_hz: float
    onset_density: float  # onsets per second
    method: str
    octave_corrected: bool = False
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def load(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(mono at 44.1 kHz float32, the file's own frames (frames, channels), its sample rate)."""
    import soundfile as sf  # noqa: PLC0415
    import soxr  # noqa: PLC0415

    try:
        audio, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AnalysisError(f"{path}: cannot decode: {exc}") from None
    if len(audio) < sr:
        raise AnalysisError(f"{path}: shorter than a second ({len(audio)} frames)")
    mono = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        mono = soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), audio, int(sr)


def _spectrogram(y: np.ndarray) -> np.ndarray:
    """Magnitude STFT (frames, bins), Hann window."""
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1))


def onset_strength(mag: np.ndarray, max_hz: float | None = None) -> np.ndarray:
    """Half-wave-rectified log spectral flux per frame (below `max_hz` when given)."""
    if max_hz is not None:
        mag = mag[:, : max(2, int(max_hz * N_FFT / SAMPLE_RATE) + 1)]
    log = np.log1p(100.0 * mag)
    flux = np.maximum(0.0, np.diff(log, axis=0)).sum(axis=1)
    return np.concatenate([[0.0], flux])


def _at_ticks(envelope: np.ndarray, ticks: np.ndarray, window_sec: float = 0.05) -> np.ndarray:
    """The envelope's maximum within +-window of each tick (seconds)."""
    half = max(1, int(window_sec * SAMPLE_RATE / HOP))
    idx = np.round(np.asarray(ticks) * SAMPLE_RATE / HOP).astype(int)
    return np.array([envelope[max(0, i - half) : i + half + 1].max(initial=0.0) for i in idx if i < len(envelope)])


def correct_octave(bpm: float, ticks: np.ndarray, drum_flux: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """Halve `bpm` when every second tick carries the drums (`drum_flux`: onsets below 500 Hz; module docstring)."""
    if bpm < HALVE_ABOVE_BPM or len(ticks) < 8:
        return bpm, ticks, False
    strength = _at_ticks(drum_flux, ticks)
    even, odd = strength[0::2].mean(), strength[1::2].mean()
    weak = max(min(even, odd), 1e-9)
    if max(even, odd) / weak >= OCTAVE_RATIO:
        return bpm / 2.0, ticks[0::2] if even >= odd else ticks[1::2], True
    return bpm, ticks, False


def estimate_meter(beats: np.ndarray, low_flux: np.ndarray) -> tuple[int, float]:
    """(3 or 4 beats per bar, confidence 0-1) from the kick accent's periodicity over the beats."""
    accent = _at_ticks(low_flux, beats)
    if len(accent) < 12 or not np.any(accent):
        return 4, 0.0
    a = (accent - accent.mean()) / (accent.std() + 1e-9)

    def corr(lag: int) -> float:
        return float(np.mean(a[:-lag] * a[lag:]))

    r2, r3, r4 = corr(2), corr(3), corr(4)
    three = r3 - max(r2, r4)
    if three > 0:
        return 3, float(min(1.0, three))
    return 4, float(min(1.0, max(r2, r4) - r3))


def features(
    mono: np.ndarray, mag: np.ndarray, flux: np.ndarray, stereo: np.ndarray, sr: int
) -> dict[str, float | None]:
    """Duration, loudness, brightness and onset density."""
    from music_assets.audio.analysis import analyze_array  # noqa: PLC0415

    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    power = mag.sum(axis=1)
    voiced = power > 1e-6 * max(float(power.max()), 1e-12)
    centroid = (mag[voiced] @ freqs) / power[voiced] if voiced.any() else np.zeros(1)
    # onsets: local maxima of the flux above its median plus two MADs, at least 50 ms apart
    threshold = np.median(flux) + 2.0 * np.median(np.abs(flux - np.median(flux)))
    peaks = (flux[1:-1] > threshold) & (flux[1:-1] >= flux[:-2]) & (flux[1:-1] > flux[2:])
    idx = np.flatnonzero(peaks) + 1
    kept: list[int] = []
    for i in idx:
        if not kept or (i - kept[-1]) * HOP / SAMPLE_RATE >= 0.05:
            kept.append(int(i))
    duration = len(mono) / SAMPLE_RATE
    return {
        "duration_sec": duration,
        "loudness_lufs": analyze_array(stereo, sr).loudness_lufs,
        "brightness_hz": float(np.mean(centroid)),
        "onset_density": len(kept) / duration,
    }


def _essentia_rhythm_key(y: np.ndarray) -> tuple[float, np.ndarray, float, str, float]:
    import essentia  # noqa: PLC0415

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    import essentia.standard as es  # noqa: PLC0415

    from music_assets.training_sets.keys import normalize_key  # noqa: PLC0415

    bpm, ticks, confidence, _, _ = es.RhythmExtractor2013(method="multifeature")(y)
    key, scale, strength = es.KeyExtractor(profileType=KEY_PROFILE)(y)
    # multifeature confidence: 0-5.32, > 3.5 is "excellent" in essentia's docs
    return (
        float(bpm),
        np.asarray(ticks),
        min(1.0, float(confidence) / 3.5),
        normalize_key(f"{key} {scale}"),
        float(strength),
    )


def krumhansl_key(chroma: np.ndarray) -> tuple[str, float]:
    """The key whose rotated Krumhansl-Kessler profile correlates best with a 12-bin chroma (C first)."""
    from music_assets.training_sets.keys import keyscale  # noqa: PLC0415

    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return keyscale(best[1], best[2]), max(0.0, best[0])


def _librosa_rhythm_key(y: np.ndarray) -> tuple[float, np.ndarray, float, str, float]:
    import librosa  # noqa: PLC0415

    tempo, frames = librosa.beat.beat_track(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    ticks = librosa.frames_to_time(frames, sr=SAMPLE_RATE, hop_length=HOP)
    bpm = float(np.atleast_1d(tempo)[0])
    # confidence: how regular the tracked beats are (1 - coefficient of variation of the intervals)
    intervals = np.diff(ticks)
    confidence = float(max(0.0, 1.0 - intervals.std() / intervals.mean())) if len(intervals) > 2 else 0.0
    key, r = krumhansl_key(librosa.feature.chroma_cqt(y=y, sr=SAMPLE_RATE, hop_length=HOP).mean(axis=1))
    return bpm, ticks, confidence, key, r


def measure(path: str | os.PathLike[str], method: str = "essentia", octave_check: bool = True) -> Measurement:
    """Everything `track_annotations` measures of one audio file."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mono, stereo, sr = load(path)
    return measure_array(mono, stereo, sr, method, octave_check)


def measure_array(
    mono: np.ndarray, stereo: np.ndarray, sr: int, method: str = "essentia", octave_check: bool = True
) -> Measurement:
    """`measure` on decoded audio: `mono` at 44.1 kHz, `stereo` (frames, channels) at `sr`."""
    if not np.any(mono):
        raise AnalysisError("digital silence: nothing to measure")
    run = _essentia_rhythm_key if method == "essentia" else _librosa_rhythm_key
    bpm, ticks, bpm_conf, key, key_conf = run(mono)
    mag = _spectrogram(mono)
    flux = onset_strength(mag)
    corrected = False
    if octave_check:
        bpm, ticks, corrected = correct_octave(bpm, ticks, onset_strength(mag, max_hz=DRUM_HZ))
    meter, meter_conf = estimate_meter(ticks, onset_strength(mag, max_hz=200.0))
    f = features(mono, mag, flux, stereo, sr)
    if not math.isfinite(bpm) or bpm <= 0:
        raise AnalysisError(f"no tempo found ({method})")
    return Measurement(
        bpm=round(bpm, 2),
        bpm_confidence=round(bpm_conf, 3),
        key=key,
        key_confidence=round(key_conf, 3),
        time_signature=meter,
        time_signature_confidence=round(meter_conf, 3),
        duration_sec=round(float(f["duration_sec"]), 3),
        loudness_lufs=None if f["loudness_lufs"] is None else round(float(f["loudness_lufs"]), 2),
        brightness_hz=round(float(f["brightness_hz"]), 1),
        onset_density=round(float(f["onset_density"]), 3),
        method=method,
        octave_corrected=corrected,
        beats=ticks,
    )
