"""Texture beds from a prepared source: pads, swells, clouds and hiss, with their index and gates.

`make_textures(prepared_flac, out_dir, source_id, profile, seed)` writes, all
48 kHz stereo 24-bit FLAC, atomically:

    <out_dir>/pads/pad_NN.flac        a stable region time-stretched (librosa's phase vocoder), loopable
    <out_dir>/swells/swell_NN.flac    pad material under a rising (even NN) or falling (odd NN) envelope
    <out_dir>/clouds/cloud_NN.flac    granular: windowed grains of a stable region, pitch-spread, panned, loopable
    <out_dir>/hiss/hiss_NN.flac       noise shaped like the source's own noise floor, loopable
    <out_dir>/hiss/flicker_NN.flac    that noise under a periodic random flicker, loopable
    <out_dir>/textures.parquet        one row per file (`INDEX_COLUMNS`), measured from the files as written

How:

- Stable regions: librosa's onset strength (spectral flux of the log-mel
  spectrogram) averaged over sliding windows; the windows with the least flux
  relative to the file's mean flux, among those with no frame more than
  `REGION_MAX_BELOW_MEDIAN_DB` below the file's median frame level (a stable
  region must not hold a silence), are taken, not overlapping, best first.
- Noise floor: the mean power spectrum (librosa STFT) of the quietest
  `NOISE_FLOOR_QUANTILE` of the source's frames. Hiss is white noise given that
  spectrum (STFT, per-bin gain, inverse STFT), so a noise-only source gives hiss
  at its own level; the level is then clamped into the profile's `hiss_rms_dbfs`.
- Loops: material `loop_xfade_sec` longer than the loop is made; its tail is
  crossfaded (equal power) into its head, so the last sample runs on into the
  first. Clouds are overlap-added circularly, which makes them periodic outright.
- Every random draw comes from `stable_rng(source_id, kind, index, seed)`; the
  same source, profile and seed rewrite byte-identical files.

Loop seam discontinuity (`seam_discontinuity`): the jump from the last sample
to the first, |x[-1] - x[0]|, divided by the RMS of the per-sample steps
x[n+1] - x[n] of the same channel over the 10 ms (`SEAM_WINDOW`) either side
of the seam, the larger of the two channels. A seamless loop steps across the
seam like anywhere else (about 1; a sine at most sqrt(2), Gaussian noise
passes 8 about once in 10^15 seams); a click is many typical steps at once. Loopable kinds must stay at or
under `SEAM_MAX_RATIO`.

Profiles (`PROFILES`: default, bright, dark, noisy) are `TextureProfile`s:
counts per kind and, for each parameter in `PARAM_BOUNDS`, the (low, high)
range each file's value is drawn from uniformly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.audio.analysis import AudioAnalysisError, analyze_file
from music_assets.audio.io import write_flac
from music_assets.audio.preparation import CheckOutcome
from music_assets.seeding import stable_rng

SAMPLE_RATE = 48000
CHANNELS = 2
SUBTYPE = "PCM_24"
KINDS: tuple[str, ...] = ("pads", "swells", "clouds", "hiss")
LOOPABLE_KINDS = frozenset({"pads", "clouds", "hiss"})
SEAM_MAX_RATIO = 8.0
SEAM_WINDOW = 480  # 10 ms at 48 kHz either side of the seam
MAX_CLIPPED_RATIO = 0.001
MIN_PEAK_DBFS = -50.0
HOP = 512
N_FFT = 2048
REGION_MAX_BELOW_MEDIAN_DB = 20.0
NOISE_FLOOR_QUANTILE = 0.1
INDEX_NAME = "textures.parquet"
# The code version of texture_beds: bump when the same source, profile and seed give other files,
# and automation re-makes every source's beds once.
TEXTURES_VERSION = "1"

Range = tuple[float, float]

# name: (lowest allowed, highest allowed, unit, meaning). A profile's range for each must lie inside.
PARAM_BOUNDS: dict[str, tuple[float, float, str, str]] = {
    "pad_sec": (1.0, 60.0, "s", "pad length"),
    "swell_sec": (1.0, 60.0, "s", "swell length"),
    "cloud_sec": (1.0, 60.0, "s", "cloud length"),
    "hiss_sec": (1.0, 60.0, "s", "hiss loop and flicker length"),
    "stretch": (1.0, 16.0, "x", "pads and swells: output length / source region length (phase vocoder)"),
    "cloud_region_sec": (0.5, 8.0, "s", "clouds: length of the stable region the grains come from"),
    "grain_ms": (5.0, 500.0, "ms", "clouds: grain length (Hann window)"),
    "grain_density": (1.0, 400.0, "1/s", "clouds: grains per second"),
    "pitch_spread_st": (0.0, 12.0, "semitones", "clouds: each grain is shifted by up to +- this"),
    "highpass_hz": (10.0, 2000.0, "Hz", "4th-order Butterworth high-pass on the material"),
    "lowpass_hz": (500.0, 22000.0, "Hz", "4th-order Butterworth low-pass on the material"),
    "noise_mix": (0.0, 1.0, "ratio", "pads, swells, clouds: white noise added at this RMS ratio to the material"),
    "swell_peak": (0.5, 0.95, "fraction", "swells: where the envelope peaks (rising; a falling swell mirrors it)"),
    "swell_curve": (0.25, 8.0, "exponent", "swells: envelope curvature (1 linear, >1 slow start)"),
    "flicker_hz": (0.5, 40.0, "Hz", "flickers: random level changes per second"),
    "flicker_depth": (0.0, 1.0, "ratio", "flickers: how far the level may dip (1: to silence)"),
    "loop_xfade_sec": (0.01, 2.0, "s", "loopable kinds: equal-power crossfade of the tail into the head"),
    "peak_dbfs": (-24.0, -1.0, "dBFS", "pads, swells, clouds: peak-normalized to this"),
    "hiss_rms_dbfs": (-60.0, -12.0, "dBFS", "hiss: RMS = the noise floor's level clamped into this (not drawn)"),
}
DURATION_PARAM = {"pads": "pad_sec", "swells": "swell_sec", "clouds": "cloud_sec", "hiss": "hiss_sec"}
PARAMS_BY_KIND: dict[str, tuple[str, ...]] = {
    "pads": ("pad_sec", "stretch", "highpass_hz", "lowpass_hz", "noise_mix", "loop_xfade_sec", "peak_dbfs"),
    "swells": ("swell_sec", "stretch", "highpass_hz", "lowpass_hz", "noise_mix", "swell_peak", "swell_curve")
    + ("peak_dbfs",),
    "clouds": ("cloud_sec", "cloud_region_sec", "grain_ms", "grain_density", "pitch_spread_st", "highpass_hz")
    + ("lowpass_hz", "noise_mix", "loop_xfade_sec", "peak_dbfs"),
    "hiss": ("hiss_sec", "highpass_hz", "lowpass_hz", "loop_xfade_sec", "flicker_hz", "flicker_depth"),
}
INDEX_COLUMNS: tuple[str, ...] = (
    "source_id",
    "kind",
    "variant",
    "index",
    "file",
    "duration_sec",
    "peak_dbfs",
    "rms_dbfs",
    "loudness_lufs",
    "spectral_centroid_hz",
    "loopable",
    "seam_discontinuity",
    "region_start_sec",
    "region_sec",
    "region_flux",
    "noise_floor_dbfs",
    "profile",
    "seed",
    "license",
    *(f"param_{k}" for k in PARAM_BOUNDS),
)


class TextureError(Exception):
    """A source that cannot give textures, or a bad profile; the message names the file and the reason."""


@dataclass(frozen=True)
class TextureProfile:
    """Counts per kind and the range every parameter is drawn from (see `PARAM_BOUNDS`)."""

    name: str
    pads: int = 2
    swells: int = 2
    clouds: int = 2
    hiss_loops: int = 1
    flickers: int = 1
    pad_sec: Range = (4.0, 8.0)
    swell_sec: Range = (3.0, 6.0)
    cloud_sec: Range = (4.0, 8.0)
    hiss_sec: Range = (4.0, 8.0)
    stretch: Range = (2.0, 4.0)
    cloud_region_sec: Range = (1.0, 2.0)
    grain_ms: Range = (40.0, 120.0)
    grain_density: Range = (20.0, 60.0)
    pitch_spread_st: Range = (0.0, 2.0)
    highpass_hz: Range = (20.0, 40.0)
    lowpass_hz: Range = (16000.0, 20000.0)
    noise_mix: Range = (0.0, 0.0)
    swell_peak: Range = (0.6, 0.85)
    swell_curve: Range = (1.0, 2.0)
    flicker_hz: Range = (3.0, 8.0)
    flicker_depth: Range = (0.3, 0.6)
    loop_xfade_sec: Range = (0.25, 0.5)
    peak_dbfs: Range = (-6.0, -3.0)
    hiss_rms_dbfs: Range = (-48.0, -24.0)

    def __post_init__(self) -> None:
        for kind in ("pads", "swells", "clouds", "hiss_loops", "flickers"):
            n = getattr(self, kind)
            if not 0 <= n <= 16:
                raise TextureError(f"profile {self.name!r}: {kind} = {n}, want 0 to 16")
        for name, (lo, hi, unit, _) in PARAM_BOUNDS.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                raise TextureError(f"profile {self.name!r}: {name} range ({a}, {b}) not inside [{lo}, {hi}] {unit}")

    def count(self, kind: str) -> int:
        return self.hiss_loops + self.flickers if kind == "hiss" else getattr(self, kind)

    def duration_range(self, kind: str) -> Range:
        return getattr(self, DURATION_PARAM[kind])

    def ranges(self) -> dict[str, Range]:
        return {k: getattr(self, k) for k in PARAM_BOUNDS}


PROFILES: dict[str, TextureProfile] = {
    p.name: p
    for p in (
        TextureProfile("default"),
        TextureProfile(
            "bright",
            highpass_hz=(300.0, 800.0),
            lowpass_hz=(18000.0, 22000.0),
            grain_ms=(15.0, 50.0),
            grain_density=(40.0, 120.0),
            pitch_spread_st=(0.0, 7.0),
            stretch=(1.5, 3.0),
            flicker_hz=(8.0, 20.0),
        ),
        TextureProfile(
            "dark",
            highpass_hz=(20.0, 30.0),
            lowpass_hz=(1200.0, 3000.0),
            grain_ms=(120.0, 300.0),
            grain_density=(8.0, 25.0),
            pitch_spread_st=(0.0, 1.0),
            stretch=(3.0, 6.0),
            flicker_hz=(1.0, 3.0),
            hiss_rms_dbfs=(-54.0, -36.0),
        ),
        TextureProfile(
            "noisy",
            hiss_loops=2,
            flickers=2,
            noise_mix=(0.1, 0.3),
            grain_ms=(10.0, 40.0),
            grain_density=(80.0, 200.0),
            pitch_spread_st=(2.0, 12.0),
            flicker_depth=(0.6, 0.9),
            hiss_rms_dbfs=(-36.0, -18.0),
        ),
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> TextureProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise TextureError(f"unknown texture profile {name!r}; known: {', '.join(PROFILE_NAMES)}") from None


# ---------------------------------------------------------------- analysis


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


# ---------------------------------------------------------------- building blocks


def _draw(rng: np.random.Generator, profile: TextureProfile, kind: str) -> dict[str, float]:
    """Every parameter of `kind`, drawn in a fixed order (uniform in the profile's range)."""
    return {k: float(rng.uniform(*getattr(profile, k))) for k in PARAMS_BY_KIND[kind]}


def _filter(x: np.ndarray, sr: int, highpass_hz: float, lowpass_hz: float) -> np.ndarray:
    """Zero-phase band limit of planar (channels, frames) audio (scipy Butterworth, 4th order)."""
    from scipy.signal import butter, sosfiltfilt  # noqa: PLC0415

    nyquist = sr / 2
    out = x
    if highpass_hz > 0:
        out = sosfiltfilt(butter(4, highpass_hz / nyquist, "highpass", output="sos"), out, axis=-1)
    if lowpass_hz < nyquist * 0.98:
        out = sosfiltfilt(butter(4, lowpass_hz / nyquist, "lowpass", output="sos"), out, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float64)


def _add_noise(x: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    if ratio <= 0:
        return x
    rms = math.sqrt(float(np.mean(x * x))) or 1e-6
    return x + rng.standard_normal(x.shape) * (ratio * rms)


def make_loop(material: np.ndarray, frames: int) -> np.ndarray:
    """A loop of `frames` from planar material longer than that: the excess is crossfaded into the head.

    Equal-power fades: at the seam the loop continues exactly where the material would have gone on.
    """
    c = material.shape[-1] - frames
    if c <= 0:
        raise TextureError(f"loop needs more than {frames} frames of material, got {material.shape[-1]}")
    out = material[..., :frames].copy()
    t = (np.arange(c) + 0.5) / c * (np.pi / 2)
    out[..., :c] = material[..., :c] * np.sin(t) + material[..., frames:] * np.cos(t)
    return out


def _stretch(region: np.ndarray, frames: int) -> np.ndarray:
    """Planar region time-stretched by librosa's phase vocoder to exactly `frames` frames."""
    import librosa  # noqa: PLC0415

    rate = region.shape[-1] / frames
    y = librosa.effects.time_stretch(np.ascontiguousarray(region, dtype=np.float32), rate=rate, n_fft=N_FFT)
    if y.shape[-1] < frames:
        y = np.concatenate([y, np.zeros((y.shape[0], frames - y.shape[-1]), dtype=y.dtype)], axis=-1)
    return y[..., :frames].astype(np.float64)


def _peak_normalize(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.abs(x).max())
    if peak < 1e-9:
        raise TextureError("the texture came out digitally silent")
    return x * (10.0 ** (peak_dbfs / 20.0) / peak)


def _cut(audio: np.ndarray, region: Region, sr: int, length_sec: float) -> np.ndarray:
    """Planar (channels, frames) slice of `audio` (frames, channels) from the region's start."""
    n = max(1, int(round(length_sec * sr)))
    start = int(round(region.start_sec * sr))
    start = max(0, min(start, len(audio) - n))
    return np.ascontiguousarray(audio[start : start + n].T, dtype=np.float64)


def pad(audio: np.ndarray, sr: int, region: Region, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    frames = int(round(p["pad_sec"] * sr))
    xfade = int(round(p["loop_xfade_sec"] * sr))
    material = _stretch(_cut(audio, region, sr, (frames + xfade) / sr / p["stretch"]), frames + xfade)
    material = _filter(_add_noise(material, p["noise_mix"], rng), sr, p["highpass_hz"], p["lowpass_hz"])
    return _peak_normalize(make_loop(material, frames), p["peak_dbfs"])


def swell_envelope(frames: int, peak: float, curve: float, rising: bool) -> np.ndarray:
    """0 at both ends, 1 at `peak` (fraction of the length; mirrored for a falling swell)."""
    t = np.arange(frames) / max(1, frames - 1)
    top = peak if rising else 1.0 - peak
    up = np.clip(t / top, 0, 1) ** curve
    down = np.clip((1.0 - t) / (1.0 - top), 0, 1) ** curve
    return np.where(t <= top, up, down)


def swell(
    audio: np.ndarray, sr: int, region: Region, p: dict[str, float], rng: np.random.Generator, rising: bool
) -> np.ndarray:
    frames = int(round(p["swell_sec"] * sr))
    material = _stretch(_cut(audio, region, sr, frames / sr / p["stretch"]), frames)
    material = _filter(_add_noise(material, p["noise_mix"], rng), sr, p["highpass_hz"], p["lowpass_hz"])
    return _peak_normalize(material * swell_envelope(frames, p["swell_peak"], p["swell_curve"], rising), p["peak_dbfs"])


def cloud(audio: np.ndarray, sr: int, region: Region, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Grains of the region overlap-added circularly into `cloud_sec` (periodic, hence loopable)."""
    frames = int(round(p["cloud_sec"] * sr))
    src = _cut(audio, region, sr, p["cloud_region_sec"])
    src = _filter(_add_noise(src, p["noise_mix"], rng), sr, p["highpass_hz"], p["lowpass_hz"])
    m = src.shape[-1]
    n_grains = max(1, int(round(p["grain_density"] * frames / sr)))
    g = max(8, min(int(round(p["grain_ms"] * sr / 1000)), frames, m // 3))
    window = np.hanning(g)
    max_ratio = (m - 2) / g
    out = np.zeros((CHANNELS, frames))
    spread = p["pitch_spread_st"]
    draws = rng.random((n_grains, 4))  # position, shift, source offset, pan: one fixed-size draw
    for at, shift, offset, pan in draws:
        ratio = min(2.0 ** ((2 * shift - 1) * spread / 12.0), max_ratio)
        span = g * ratio
        start = offset * (m - 1 - span)
        pos = start + np.arange(g) * ratio
        grain = np.stack([np.interp(pos, np.arange(m), src[c]) for c in range(src.shape[0])]) * window
        if grain.shape[0] == 1:
            grain = np.repeat(grain, CHANNELS, axis=0)
        angle = (0.1 + 0.8 * pan) * (np.pi / 2)  # equal-power pan, never hard left or right
        grain = grain * np.array([[math.cos(angle)], [math.sin(angle)]]) * math.sqrt(2)
        i = int(at * frames)
        head = min(g, frames - i)
        out[:, i : i + head] += grain[:, :head]
        rest = g - head
        while rest > 0:  # wrap around: a grain past the end continues at the start
            k = min(rest, frames)
            out[:, :k] += grain[:, head : head + k]
            head += k
            rest -= k
    return _peak_normalize(out, p["peak_dbfs"])


def shaped_noise(floor: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Planar noise whose STFT power per bin is `floor` (channels, bins): the source's floor, resynthesized."""
    import librosa  # noqa: PLC0415

    white = rng.standard_normal((floor.shape[0], frames)).astype(np.float32)
    spec = librosa.stft(white, n_fft=N_FFT, hop_length=HOP)
    current = np.mean(np.abs(spec) ** 2, axis=-1, keepdims=True)
    spec *= np.sqrt(floor[:, :, None] / np.maximum(current, 1e-20)).astype(np.float32)
    return librosa.istft(spec, hop_length=HOP, n_fft=N_FFT, length=frames).astype(np.float64)


def hiss(
    floor: np.ndarray, sr: int, p: dict[str, float], rng: np.random.Generator, flicker: bool, level: Range
) -> tuple[np.ndarray, float]:
    """A hiss loop (or flicker) from the noise floor; returns it and the floor's level (dBFS RMS).

    The loop's RMS is the floor's own level clamped into `level` (the profile's `hiss_rms_dbfs`);
    `p["hiss_rms_dbfs"]` is set to the level used.
    """
    frames = int(round(p["hiss_sec"] * sr))
    xfade = int(round(p["loop_xfade_sec"] * sr))
    noise = shaped_noise(floor, frames + xfade, rng)
    floor_rms = math.sqrt(float(np.mean(noise * noise)))
    if floor_rms < 1e-9:
        raise TextureError("the source has no noise floor to make hiss from (digital silence)")
    floor_db = 20 * math.log10(floor_rms)
    loop = make_loop(_filter(noise, sr, p["highpass_hz"], p["lowpass_hz"]), frames)
    target = min(max(floor_db, level[0]), level[1])
    p["hiss_rms_dbfs"] = round(target, 3)
    loop *= 10.0 ** (target / 20.0) / math.sqrt(float(np.mean(loop * loop)))
    if flicker:
        knots = max(1, int(round(p["flicker_hz"] * frames / sr)))
        levels = 1.0 - p["flicker_depth"] * rng.random(knots)
        # Periodic interpolation: the envelope's end meets its start, so the loop stays seamless.
        t = np.arange(frames) * knots / frames
        loop *= np.interp(t, np.arange(knots + 1), np.append(levels, levels[0]))
    return loop, floor_db


# ---------------------------------------------------------------- one source


@dataclass(frozen=True)
class PlannedFile:
    kind: str
    variant: str
    index: int  # within the kind: part of the seed
    rel_path: str  # relative to the source's texture folder


def plan_files(profile: TextureProfile) -> list[PlannedFile]:
    """The files a profile makes for one source, in writing order."""
    out = [PlannedFile("pads", "pad", i, f"pads/pad_{i:02d}.flac") for i in range(profile.pads)]
    out += [
        PlannedFile("swells", "rise" if i % 2 == 0 else "fall", i, f"swells/swell_{i:02d}.flac")
        for i in range(profile.swells)
    ]
    out += [PlannedFile("clouds", "cloud", i, f"clouds/cloud_{i:02d}.flac") for i in range(profile.clouds)]
    out += [PlannedFile("hiss", "loop", i, f"hiss/hiss_{i:02d}.flac") for i in range(profile.hiss_loops)]
    out += [
        PlannedFile("hiss", "flicker", profile.hiss_loops + j, f"hiss/flicker_{j:02d}.flac")
        for j in range(profile.flickers)
    ]
    return out


def read_source(path: str | os.PathLike[str]) -> np.ndarray:
    """A prepared source as float32 (frames, 2) at 48 kHz; TextureError names the file and the problem."""
    import soundfile as sf  # noqa: PLC0415

    try:
        audio, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise TextureError(f"{path}: not readable audio: {exc}") from None
    if sr != SAMPLE_RATE or audio.shape[1] != CHANNELS:
        raise TextureError(f"{path}: {sr} Hz, {audio.shape[1]} ch; a prepared source is {SAMPLE_RATE} Hz stereo")
    if len(audio) < SAMPLE_RATE:
        raise TextureError(f"{path}: {len(audio) / sr:.2f} s of audio; textures need at least 1 s")
    if float(np.abs(audio).max()) < 1e-6:
        raise TextureError(f"{path}: digitally silent, nothing to make textures from")
    return audio


def _region_search_sec(profile: TextureProfile, source_sec: float) -> float:
    """The longest region any texture of the profile cuts, at most half the source."""
    pad = (max(profile.pad_sec[1], profile.swell_sec[1]) + profile.loop_xfade_sec[1]) / profile.stretch[0]
    return min(max(pad, profile.cloud_region_sec[1]), source_sec / 2)


def measure(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the index and the checks read from a written texture (raises AudioAnalysisError)."""
    import soundfile as sf  # noqa: PLC0415

    stats = analyze_file(path)
    audio, sr = sf.read(os.fspath(path), dtype="float64", always_2d=True)
    return {
        "sample_rate": stats.sample_rate,
        "channels": stats.channels,
        "subtype": stats.subtype or "",
        "duration_sec": stats.duration_sec,
        "peak_dbfs": stats.peak_dbfs,
        "rms_dbfs": stats.rms_dbfs,
        "clipped_ratio": stats.clipped_ratio,
        "loudness_lufs": stats.loudness_lufs,
        "spectral_centroid_hz": spectral_centroid(audio.mean(axis=1), sr),
        "seam_discontinuity": seam_discontinuity(audio),
    }


@dataclass(frozen=True)
class TextureSet:
    source_id: str
    folder: Path
    index_path: Path
    rows: list[dict[str, Any]]
    source_sec: float


def make_textures(
    source: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    source_id: str,
    profile: TextureProfile | str = "default",
    seed: int = 0,
    license: str = "unknown",  # noqa: A002 - the column's name
    seed_id: str | None = None,
) -> TextureSet:
    """Write every texture of `profile` from the prepared `source` under `folder`, and its index.

    Draws are seeded by `seed_id` (default: `source_id`), the kind, the index and `seed`."""
    from music_assets.io import remove_partials, write_parquet  # noqa: PLC0415

    prof = get_profile(profile) if isinstance(profile, str) else profile
    folder = Path(folder)
    audio = read_source(source)
    source_sec = len(audio) / SAMPLE_RATE
    planned = plan_files(prof)
    n_regions = max(1, prof.pads, prof.swells, prof.clouds)
    regions = stable_regions(audio, SAMPLE_RATE, _region_search_sec(prof, source_sec), n_regions)
    floor = noise_floor(audio) if prof.hiss_loops + prof.flickers else None
    remove_partials(folder)
    rows = []
    for f in planned:
        rng = stable_rng(seed_id or source_id, f.kind, f.index, seed)
        p = _draw(rng, prof, f.kind)
        region: Region | None = regions[f.index % len(regions)] if f.kind != "hiss" else None
        floor_db = float("nan")
        if f.kind == "pads":
            x = pad(audio, SAMPLE_RATE, region, p, rng)
        elif f.kind == "swells":
            x = swell(audio, SAMPLE_RATE, region, p, rng, rising=f.variant == "rise")
        elif f.kind == "clouds":
            x = cloud(audio, SAMPLE_RATE, region, p, rng)
        else:
            x, floor_db = hiss(floor, SAMPLE_RATE, p, rng, f.variant == "flicker", prof.hiss_rms_dbfs)
        dest = folder / f.rel_path
        write_flac(dest, x.T.astype(np.float32), SAMPLE_RATE, subtype=SUBTYPE)
        try:
            m = measure(dest)
        except AudioAnalysisError as exc:
            raise TextureError(f"{dest}: written but not readable back: {exc}") from None
        region_len = {"pads": p.get("pad_sec", 0) / p.get("stretch", 1), "clouds": p.get("cloud_region_sec", 0)}
        region_len["swells"] = p.get("swell_sec", 0) / p.get("stretch", 1)
        rows.append(
            {
                "source_id": source_id,
                "kind": f.kind,
                "variant": f.variant,
                "index": f.index,
                "file": f.rel_path,
                "duration_sec": round(m["duration_sec"], 6),
                "peak_dbfs": round(m["peak_dbfs"], 3),
                "rms_dbfs": round(m["rms_dbfs"], 3),
                "loudness_lufs": None if m["loudness_lufs"] is None else round(m["loudness_lufs"], 3),
                "spectral_centroid_hz": round(m["spectral_centroid_hz"], 2),
                "loopable": f.kind in LOOPABLE_KINDS,
                "seam_discontinuity": round(m["seam_discontinuity"], 4),
                "region_start_sec": round(region.start_sec, 4) if region else float("nan"),
                "region_sec": round(region_len[f.kind], 4) if region else float("nan"),
                "region_flux": round(region.flux, 4) if region else float("nan"),
                "noise_floor_dbfs": round(floor_db, 3),
                "profile": prof.name,
                "seed": seed,
                "license": license,
                **{f"param_{k}": round(p[k], 6) if k in p else float("nan") for k in PARAM_BOUNDS},
            }
        )
    keep = {f.rel_path for f in planned}
    for kind in KINDS:
        for stale in sorted((folder / kind).glob("*.flac")) if (folder / kind).is_dir() else []:
            if f"{kind}/{stale.name}" not in keep:
                stale.unlink()
    index_path = write_parquet(folder / INDEX_NAME, index_table(rows))
    return TextureSet(source_id, folder, index_path, rows, source_sec)


def index_table(rows: Sequence[dict[str, Any]]):
    """The rows as a pyarrow table with a fixed schema (the same columns and types every time)."""
    import pyarrow as pa  # noqa: PLC0415

    floats = {c for c in INDEX_COLUMNS if c.startswith("param_")} | {
        "duration_sec",
        "peak_dbfs",
        "rms_dbfs",
        "loudness_lufs",
        "spectral_centroid_hz",
        "seam_discontinuity",
        "region_start_sec",
        "region_sec",
        "region_flux",
        "noise_floor_dbfs",
    }
    types = {"index": pa.int32(), "seed": pa.int64(), "loopable": pa.bool_()}
    schema = pa.schema([(c, pa.float64() if c in floats else types.get(c, pa.string())) for c in INDEX_COLUMNS])
    return pa.Table.from_pylist([{c: r[c] for c in INDEX_COLUMNS} for r in rows], schema=schema)


# ---------------------------------------------------------------- gates

CHECK_DESCRIPTIONS = {
    "decodes": f"every file listed in {INDEX_NAME} exists and decodes whole; no kind of the profile is missing",
    "format_48k_stereo": f"{SAMPLE_RATE} Hz, {CHANNELS} channels, 24-bit",
    "duration_in_range": "every file's duration inside its profile's range for its kind",
    "not_clipped": f"at most {MAX_CLIPPED_RATIO:.1%} of each file's samples at full scale",
    "not_silent": f"every file peaks above {MIN_PEAK_DBFS:g} dBFS",
    "loop_seam_click_free": f"loopable kinds ({', '.join(sorted(LOOPABLE_KINDS))}): seam discontinuity "
    f"<= {SEAM_MAX_RATIO:g} (seam jump over the RMS sample step within 10 ms of it)",
}


def check_textures(folder: str | os.PathLike[str]) -> list[CheckOutcome]:
    """The gates of one source's textures, measured again from the files as they are on disk."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    folder = Path(folder)
    index = folder / INDEX_NAME
    try:
        rows = pq.read_table(index).to_pylist()
    except (OSError, ValueError) as exc:
        return [CheckOutcome(n, False, f"{d}: cannot read {index}: {exc}", {}) for n, d in CHECK_DESCRIPTIONS.items()]
    measured: dict[str, dict[str, Any]] = {}
    unreadable: list[str] = []
    for r in rows:
        try:
            measured[r["file"]] = measure(folder / r["file"])
        except (AudioAnalysisError, OSError) as exc:
            unreadable.append(f"{r['file']}: {exc}")
    profiles = {r["profile"] for r in rows}
    missing_kinds = [
        f"{k} ({name})"
        for name in sorted(profiles)
        if name in PROFILES
        for k in KINDS
        if PROFILES[name].count(k) and not any(r["kind"] == k for r in rows)
    ]
    unknown = sorted(profiles - set(PROFILES))
    ok = [(r, measured[r["file"]]) for r in rows if r["file"] in measured]

    def failing(pred) -> list[str]:
        return [f"{r['file']}: {why}" for r, m in ok if (why := pred(r, m))]

    eps = 0.5 / SAMPLE_RATE

    def bad_duration(r, m):
        if r["profile"] not in PROFILES:
            return f"unknown profile {r['profile']!r}"
        lo, hi = PROFILES[r["profile"]].duration_range(r["kind"])
        d = m["duration_sec"]
        return None if lo - eps <= d <= hi + eps else f"{d:.3f} s not in [{lo:g}, {hi:g}] s"

    results = {
        "decodes": unreadable + [f"no {k}" for k in missing_kinds] + [f"unknown profile {p!r}" for p in unknown],
        "format_48k_stereo": failing(
            lambda r, m: (
                None
                if (m["sample_rate"], m["channels"], m["subtype"]) == (SAMPLE_RATE, CHANNELS, SUBTYPE)
                else f"{m['sample_rate']} Hz, {m['channels']} ch, {m['subtype']}"
            )
        ),
        "duration_in_range": failing(bad_duration),
        "not_clipped": failing(
            lambda r, m: None if m["clipped_ratio"] <= MAX_CLIPPED_RATIO else f"{m['clipped_ratio']:.4%} clipped"
        ),
        "not_silent": failing(
            lambda r, m: None if m["peak_dbfs"] > MIN_PEAK_DBFS else f"peak {m['peak_dbfs']:.1f} dBFS"
        ),
        "loop_seam_click_free": failing(
            lambda r, m: (
                None
                if r["kind"] not in LOOPABLE_KINDS or m["seam_discontinuity"] <= SEAM_MAX_RATIO
                else f"seam discontinuity {m['seam_discontinuity']:.2f}"
            )
        ),
    }
    worst_seam = max((m["seam_discontinuity"] for r, m in ok if r["kind"] in LOOPABLE_KINDS), default=0.0)
    extra: dict[str, dict[str, float | int | str]] = {
        "not_silent": {"min_peak_dbfs": round(min((m["peak_dbfs"] for _, m in ok), default=0.0), 2)},
        "not_clipped": {"max_clipped_ratio": max((m["clipped_ratio"] for _, m in ok), default=0.0)},
        "loop_seam_click_free": {"max_seam_discontinuity": round(worst_seam, 3), "threshold": SEAM_MAX_RATIO},
    }
    out = []
    for name, desc in CHECK_DESCRIPTIONS.items():
        problems = results[name]
        if name != "decodes":
            problems = problems + [f"{u.split(':')[0]}: not readable" for u in unreadable]
        text = f"{len(rows)} files; want {desc}" + ("" if not problems else ": " + "; ".join(problems[:10]))
        out.append(
            CheckOutcome(
                name,
                not problems and bool(rows),
                text,
                {"files": len(rows), "failing": len(problems), **extra.get(name, {})},
            )
        )
    return out


# ---------------------------------------------------------------- preview


def preview_png(folder: str | os.PathLike[str], rows: Sequence[dict[str, Any]], dest: str | os.PathLike[str]) -> Path:
    """A small PNG: waveform over spectrogram of the first file of each kind (deterministic bytes)."""
    import io  # noqa: PLC0415

    import librosa  # noqa: PLC0415
    import soundfile as sf  # noqa: PLC0415
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    from music_assets.io import write_bytes  # noqa: PLC0415

    firsts = [next(r for r in rows if r["kind"] == k) for k in KINDS if any(r["kind"] == k for r in rows)]
    fig = Figure(figsize=(2.2 * max(1, len(firsts)), 2.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, max(1, len(firsts)), squeeze=False, gridspec_kw={"height_ratios": [1, 2]})
    for col, r in enumerate(firsts):
        audio, sr = sf.read(str(Path(folder) / r["file"]), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        step = max(1, len(mono) // 2000)
        t = np.arange(0, len(mono), step) / sr
        wave, spec = axes[0][col], axes[1][col]
        wave.plot(t, mono[::step], linewidth=0.4, color="#2171b5")
        wave.set_xlim(0, len(mono) / sr)
        wave.set_ylim(-1, 1)
        wave.set_title(f"{r['kind']}: {Path(r['file']).name}", fontsize=6)
        db = librosa.amplitude_to_db(np.abs(librosa.stft(mono, n_fft=1024, hop_length=1024)), ref=np.max)
        spec.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                    extent=(0, len(mono) / sr, 0, sr / 2000))  # fmt: skip
        spec.set_xlabel("s", fontsize=5)
        if col == 0:
            spec.set_ylabel("kHz", fontsize=5)
        for ax in (wave, spec):
            ax.tick_params(labelsize=5)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.12, top=0.92, wspace=0.25, hspace=0.35)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, metadata={"Software": None})
    return write_bytes(dest, buf.getvalue())


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by kind and total seconds (UI metadata)."""
    counts = {k: sum(r["kind"] == k for r in rows) for k in KINDS}
    return {"counts": counts, "total_sec": float(sum(r["duration_sec"] for r in rows))}
