"""Measuring a source for its textures: stable regions, its noise floor, a loop seam, the spectral centroid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from music_assets.audio.textures.profiles import TextureError

SEAM_WINDOW = 480  # 10 ms at 48 kHz either side of the seam
HOP = 512
N_FFT = 2048
REGION_MAX_BELOW_MEDIAN_DB = 20.0
NOISE_FLOOR_QUANTILE = 0.1


@dataclass(frozen=True)
class Region:
    """A stable stretch of the source: start, length (s), flux over the file's mean (1: as busy as the file)."""

    start_sec: float
    length_sec: float
    flux: float


def stable_regions(audio: np.ndarray, sr: int, length_sec: float, count: int) -> list[Region]:
    """Up to `count` non-overlapping windows of `length_sec` with the least onset strength, best first.

    `audio` is (frames, channels). Windows with any frame more than
    `REGION_MAX_BELOW_MEDIAN_DB` below the file's median frame level are not
    candidates (silence is stable but gives nothing to stretch), unless no
    window is free of such frames.
    """
    import librosa  # noqa: PLC0415
    from scipy.ndimage import minimum_filter1d, uniform_filter1d  # noqa: PLC0415

    n = len(audio)
    if n == 0:
        raise TextureError("no audio")
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    total_sec = n / sr
    if length_sec >= total_sec:
        return [Region(0.0, total_sec, 1.0)]
    flux = librosa.onset.onset_strength(y=mono, sr=sr, hop_length=HOP, n_fft=N_FFT)
    rms = librosa.feature.rms(y=mono, frame_length=N_FFT, hop_length=HOP)[0][: len(flux)]
    w = max(1, int(round(length_sec * sr / HOP)))
    last = max(1, min(len(flux), (n - int(length_sec * sr)) // HOP + 1))  # windows that fit in the file
    mean_flux = uniform_filter1d(flux, w, mode="nearest", origin=-(w // 2))[:last]
    frame_db = 20 * np.log10(np.maximum(rms, 1e-9))
    quietest = minimum_filter1d(frame_db, w, mode="nearest", origin=-(w // 2))[:last]
    score = mean_flux / (float(np.mean(flux)) or 1e-9)
    candidates = np.flatnonzero(quietest >= np.median(frame_db) - REGION_MAX_BELOW_MEDIAN_DB)
    if len(candidates) == 0:
        candidates = np.arange(last)
    order = candidates[np.argsort(score[candidates], kind="stable")]
    taken: list[int] = []
    for t in order:
        if all(abs(int(t) - s) >= w for s in taken):
            taken.append(int(t))
            if len(taken) == count:
                break
    return [Region(t * HOP / sr, length_sec, float(score[t])) for t in taken]


def noise_floor(audio: np.ndarray) -> np.ndarray:
    """Per-channel mean power spectrum (channels, N_FFT // 2 + 1) of the quietest frames."""
    import librosa  # noqa: PLC0415

    # Frames side by side (hop = N_FFT): a bin's power does not depend on the hop, and a 240 s source
    # costs a quarter of the memory of the usual overlap.
    power = np.abs(librosa.stft(np.ascontiguousarray(audio.T), n_fft=N_FFT, hop_length=N_FFT)) ** 2
    energy = power.sum(axis=(0, 1))
    k = max(1, int(len(energy) * NOISE_FLOOR_QUANTILE))
    quiet = np.argsort(energy, kind="stable")[:k]
    return power[:, :, quiet].mean(axis=2)


def seam_discontinuity(audio: np.ndarray, window: int = SEAM_WINDOW) -> float:
    """|x[-1] - x[0]| over the RMS of the steps x[n+1] - x[n] within `window` either side of the seam.

    The larger over channels (see the module docstring). The steps are taken
    around the seam, so quiet stretches elsewhere do not make a normal step
    look like a click; RMS rather than median, so a seam with sound on one side
    only is judged by that side. 0 when both sides of the seam are silent.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if len(x) < 4:
        return 0.0
    w = max(1, min(window, len(x) // 2 - 1))
    around = np.concatenate([x[-w - 1 :], x[: w + 1]])  # the seam is between rows w and w + 1
    steps = np.abs(np.diff(around, axis=0))
    jump = steps[w]
    local = np.sqrt(np.mean(np.delete(steps, w, axis=0) ** 2, axis=0))
    ratios = [j / s if s > 0 else (math.inf if j > 0 else 0.0) for j, s in zip(jump, local, strict=True)]
    return float(max(ratios))


def spectral_centroid(mono: np.ndarray, sr: int) -> float:
    """Median over frames of librosa's spectral centroid, frames of digital silence left out."""
    import librosa  # noqa: PLC0415

    c = librosa.feature.spectral_centroid(y=mono.astype(np.float32), sr=sr, n_fft=N_FFT, hop_length=HOP)[0]
    rms = librosa.feature.rms(y=mono, frame_length=N_FFT, hop_length=HOP)[0][: len(c)]
    c = c[rms > 1e-7]
    return float(np.median(c)) if len(c) else 0.0
