"""The four texture recipes (pad, swell, cloud, hiss) and their building blocks."""

from __future__ import annotations

import math

import numpy as np

from music_assets.audio.textures.analysis import HOP, N_FFT, Region
from music_assets.audio.textures.profiles import CHANNELS, PARAMS_BY_KIND, Range, TextureError, TextureProfile


def draw(rng: np.random.Generator, profile: TextureProfile, kind: str) -> dict[str, float]:
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
