"""Augmentation of dry drum renders: rooms, microphones, compression, noise, converters.

`augment` applies one sample's parameters (`presets.draw_params`), in
signal-flow order:

1. room: the mono sum convolved with a synthetic impulse response, one per
   output channel (exponentially decaying noise whose high band decays
   faster, a few early reflections, a pre-delay), mixed under the dry signal
   at `reverb_wet_db`;
2. microphone / EQ colour: high-pass, low-pass and one peaking band
   (second-order sections in closed form, RBJ cookbook);
3. compression: a feed-forward compressor (block-rate peak detector, instant
   attack smoothed over `comp_attack_ms`, linear-in-dB release);
4. noise: white, pink or brown hiss at `noise_snr_db`, plus, when beds exist
   (`background_beds`: texture_beds' hiss and clouds, else the prepared
   sources), a background bed cut from one of them at `bed_snr_db`;
5. a fade over the last 50 ms (the fixed-length file cuts long reverb tails),
   gain staging to a peak of `peak_dbfs` (always below 0 dBFS, so no preset
   clips), then bit-depth reduction to `bit_depth` bits.

The chain works on planar float32 (channels, frames) arrays, mono (1, frames)
or stereo (2, frames): FluidSynth renders planar, and column access into
interleaved audio is several times slower in numpy. Noise comes from
fixed tables built once per process from a stable seed and read at
per-sample random offsets: generating fresh Gaussian noise for every render
costs about as much as the synthesis itself.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import signal

from music_assets import layout
from music_assets.audio.presets import NOISE_COLORS, AugmentationError, AugParams, Bed

NOISE_TABLE_LEN = 1 << 20  # 23.8 s at 44.1 kHz; longer renders wrap around
REVERB_DECIMATION = 4  # the diffuse field is computed at sample_rate / 4
SILENT_PEAK = 1e-6  # a dry render quieter than this (-120 dBFS) is silence: nothing is added to it
FADE_SEC = 0.05
_HF_SPLIT_HZ = 2000.0  # above this, a room's reverb decays `hf_decay_ratio` times faster
_EARLY_REFLECTIONS = 6


# ---------------------------------------------------------------- noise tables


@functools.cache
def noise_table(color: str) -> np.ndarray:
    """Unit-RMS noise of one colour (float32), identical in every process (stable seed)."""
    from music_assets.seeding import stable_rng  # noqa: PLC0415

    if color not in NOISE_COLORS:
        raise AugmentationError(f"unknown noise colour {color!r}; known: {', '.join(NOISE_COLORS)}")
    white = stable_rng("music_assets.audio.effects.noise_table").standard_normal(NOISE_TABLE_LEN, dtype=np.float32)
    if color == "white":
        x = white
    elif color == "pink":
        # -3 dB/octave: a standard 3-pole approximation of the 1/f filter
        x = signal.lfilter(
            [0.049922035, -0.095993537, 0.050612699, -0.004408786],
            [1.0, -2.494956002, 2.017265875, -0.522189400],
            white,
        )
    else:
        # -6 dB/octave above 20 Hz: a leaky integrator (no DC drift)
        x = signal.lfilter([1.0], [1.0, -math.exp(-2 * math.pi * 20 / 44100)], white)
        x = x - x.mean()
    x = x.astype(np.float32, copy=False)
    return x / np.float32(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def table_slice(table: np.ndarray, offset: int, n: int) -> np.ndarray:
    """n values of `table` from `offset`, wrapping around."""
    idx = offset % len(table)
    if idx + n <= len(table):
        return table[idx : idx + n]
    out = np.empty(n, dtype=table.dtype)
    pos = 0
    while pos < n:
        take = min(n - pos, len(table) - idx)
        out[pos : pos + take] = table[idx : idx + take]
        pos += take
        idx = 0
    return out


# ---------------------------------------------------------------- room


def _fft_len(n: int) -> int:
    """Smallest 2^k or 3*2^k >= n (much faster in pocketfft than other 5-smooth lengths)."""
    p = 1 << max(0, (n - 1).bit_length())
    three = 3 * (p >> 2)
    return three if three >= n else p


def impulse_response(params: AugParams, sample_rate: int, rng: np.random.Generator, channels: int = 2) -> np.ndarray:
    """A room impulse response (channels, frames): unit energy per channel, no direct sound."""
    sr = sample_rate
    length = max(1, int(sr * min(params.rt60_s, 3.0)))  # -60 dB at the end
    pre = int(sr * params.predelay_ms / 1000.0)
    t = np.arange(length, dtype=np.float32) / np.float32(sr)
    lo_env = np.exp(np.float32(-6.91 / params.rt60_s) * t)
    hi_env = np.exp(np.float32(-6.91 / (params.rt60_s * params.hf_decay_ratio)) * t)
    white = noise_table("white")
    a = math.exp(-2 * math.pi * _HF_SPLIT_HZ / sr)
    ir = np.zeros((channels, pre + length), dtype=np.float32)
    for ch, offset in enumerate(rng.integers(0, len(white), size=channels)):
        n = table_slice(white, int(offset), length)
        low = signal.lfilter([1 - a], [1, -a], n).astype(np.float32)
        ir[ch, pre:] = low * lo_env + (n - low) * hi_env
    # a few early reflections in the first 30 ms, decaying with the room
    taps = rng.integers(0, max(1, int(0.03 * sr)), size=(channels, _EARLY_REFLECTIONS))
    gains = rng.uniform(0.5, 1.5, size=(channels, _EARLY_REFLECTIONS)) * np.exp(-6.91 * taps / sr / params.rt60_s) * 4.0
    signs = np.where(rng.random((channels, _EARLY_REFLECTIONS)) < 0.5, -1.0, 1.0)
    for ch in range(channels):
        np.add.at(ir[ch], pre + taps[ch], (gains[ch] * signs[ch]).astype(np.float32))
    ir /= np.sqrt(np.einsum("ij,ij->i", ir, ir))[:, None]
    return ir


def add_reverb(
    x: np.ndarray, params: AugParams, sample_rate: int, rng: np.random.Generator, inplace: bool = False
) -> np.ndarray:
    """x + the room: the mono sum of x (channels, frames) convolved with one impulse response per channel.

    The diffuse field is computed at a quarter of the sample rate (content up
    to 5.5 kHz at 44.1 kHz): air and walls absorb a room's high frequencies
    anyway, and the convolution, the costliest step of the chain, gets four
    times cheaper. The dry path keeps the full band.
    """
    import soxr  # noqa: PLC0415

    channels, n = x.shape
    low_rate = sample_rate // REVERB_DECIMATION
    mono = x[0] if channels == 1 else x.mean(axis=0, dtype=np.float32)
    low = soxr.resample(mono, sample_rate, low_rate, quality="MQ")
    ir = impulse_response(params, low_rate, rng, channels)
    size = _fft_len(len(low) + ir.shape[1] - 1)
    spec = sfft.rfft(low, size)
    g = np.float32(10.0 ** (params.reverb_wet_db / 20.0))
    out = x if inplace else x.copy()
    for ch in range(channels):
        wet_low = sfft.irfft(spec * sfft.rfft(ir[ch], size), size)[: len(low)]
        wet = soxr.resample(wet_low, low_rate, sample_rate, quality="MQ")
        m = min(n, len(wet))
        wet = wet[:m]
        wet *= g
        out[ch, :m] += wet
    return out


# ---------------------------------------------------------------- microphone, compressor


def _peaking_sos(freq: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ cookbook peaking biquad as one SOS row."""
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2 * math.pi * freq / sr
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_gain, -2 * math.cos(w0), 1 - alpha * a_gain])
    a = np.array([1 + alpha / a_gain, -2 * math.cos(w0), 1 - alpha / a_gain])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def _butterworth2_sos(freq: float, sr: int, highpass: bool) -> np.ndarray:
    """Second-order Butterworth high- or low-pass as one SOS row.

    The RBJ cookbook filter with Q = 1/sqrt(2): the same bilinear transform,
    prewarped at `freq`, that `scipy.signal.butter(2, ...)` designs, without
    its general zpk machinery (which costs about 0.6 ms per filter).
    """
    w0 = 2 * math.pi * freq / sr
    cos_w0 = math.cos(w0)
    alpha = math.sin(w0) / math.sqrt(2.0)
    k = (1 + cos_w0) / 2 if highpass else (1 - cos_w0) / 2
    b = np.array([k, -2 * k if highpass else 2 * k, k])
    a = np.array([1 + alpha, -2 * cos_w0, 1 - alpha])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def eq_sos(params: AugParams, sample_rate: int) -> np.ndarray:
    """High-pass, low-pass and peaking band as second-order sections."""
    nyq = sample_rate / 2
    hp = _butterworth2_sos(min(params.highpass_hz, nyq * 0.45), sample_rate, highpass=True)
    lp = _butterworth2_sos(min(params.lowpass_hz, nyq * 0.95), sample_rate, highpass=False)
    peak = _peaking_sos(min(params.peak_hz, nyq * 0.9), params.peak_gain_db, params.peak_q, sample_rate)
    return np.vstack([hp, lp, peak])


def apply_eq(x: np.ndarray, params: AugParams, sample_rate: int) -> np.ndarray:
    return signal.sosfilt(eq_sos(params, sample_rate).astype(np.float32), x, axis=-1).astype(np.float32, copy=False)


def compress(x: np.ndarray, params: AugParams, sample_rate: int, block: int = 32) -> np.ndarray:
    """Feed-forward compression of x (channels, frames) with a linked, block-rate peak detector.

    The threshold is relative to the signal's own peak. Gain reduction follows
    a rise at once, falls back linearly in dB (20 dB per `comp_release_ms`),
    and is smoothed by a one-pole filter of `comp_attack_ms`.
    """
    channels, n = x.shape
    nb = -(-n // block)
    pad = np.zeros((channels, nb * block), dtype=np.float32)
    np.abs(x, out=pad[:, :n])
    # the block peaks as `block` column maxima of (channels * nb, block): numpy reduces a
    # short last axis slowly (a 32-wide row at a time), whole columns several times faster
    cols = pad.reshape(channels * nb, block)
    peaks = cols[:, 0].copy()
    for j in range(1, block):
        np.maximum(peaks, cols[:, j], out=peaks)
    peak_blocks = peaks.reshape(channels, nb).max(axis=0)
    top = float(peak_blocks.max())
    if top <= 0:
        return x
    level = 20 * np.log10(np.maximum(peak_blocks, top * 1e-5) / top)
    gr = np.maximum(level - params.comp_threshold_db, 0.0) * (1.0 - 1.0 / params.comp_ratio)
    block_sec = block / sample_rate
    steps = np.arange(nb) * (20.0 * block_sec / (params.comp_release_ms / 1000.0))
    held = np.maximum.accumulate(gr + steps) - steps  # y[k] = max(gr[k], y[k-1] - release step)
    a = math.exp(-block_sec / (params.comp_attack_ms / 1000.0))
    smooth = signal.lfilter([1 - a], [1, -a], held)
    gain = (10.0 ** (-smooth / 20.0)).astype(np.float32)
    out = pad  # reused: its contents were only needed for the peaks
    out[:, :n] = x
    out[:, n:] = 0.0
    out.reshape(channels, nb, block)[...] *= gain[None, :, None]
    return out[:, :n]


# ---------------------------------------------------------------- noise, beds


def _power(x: np.ndarray) -> float:
    """Mean power per sample of x (channels, frames)."""
    return sum(float(np.dot(c, c)) for c in x) / max(1, x.size)


def load_bed(bed: Bed, offset_sec: float, frames: int, sample_rate: int, channels: int = 2) -> np.ndarray:
    """(channels, frames) of a prepared source from `offset_sec`, resampled to `sample_rate`, looped if short.

    A mono request gets the mean of the source's channels."""
    import soundfile as sf  # noqa: PLC0415
    import soxr  # noqa: PLC0415

    try:
        info = sf.info(bed.path)
        src_frames = int(math.ceil(frames * info.samplerate / sample_rate)) + 16
        start = min(int(offset_sec * info.samplerate), max(0, info.frames - 1))
        data, sr = sf.read(bed.path, start=start, frames=src_frames, dtype="float32", always_2d=True)
        if len(data) < src_frames:  # short source: loop from its beginning
            whole, _ = sf.read(bed.path, dtype="float32", always_2d=True)
            reps = -(-(src_frames - len(data)) // max(1, len(whole)))
            data = np.concatenate([data, *([whole] * reps)])[:src_frames]
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AugmentationError(f"{bed.path}: cannot read background bed: {exc}") from exc
    if channels == 1:
        data = data.mean(axis=1, keepdims=True, dtype=np.float32)
    elif data.shape[1] == 1:
        data = np.repeat(data, channels, axis=1)
    data = data[:, :channels]
    if sr != sample_rate:
        data = soxr.resample(data, sr, sample_rate, quality="HQ")
    out = np.zeros((channels, frames), dtype=np.float32)
    m = min(frames, len(data))
    out[:, :m] = data[:m].T
    return out


def add_noise(
    x: np.ndarray,
    params: AugParams,
    rng: np.random.Generator,
    bed_audio: np.ndarray | None = None,
    inplace: bool = False,
) -> np.ndarray:
    """Add hiss at `noise_snr_db` and an optional bed (channels, frames) at `bed_snr_db` below the signal power."""
    channels, n = x.shape
    sig = _power(x)
    out = x if inplace else x.copy()
    table = noise_table(params.noise_color)
    scale = np.float32(math.sqrt(sig / 10.0 ** (params.noise_snr_db / 10.0)))
    for ch, offset in enumerate(rng.integers(0, len(table), size=channels)):
        hiss = table_slice(table, int(offset), n) * scale
        out[ch] += hiss
    if bed_audio is not None:
        bed_power = _power(bed_audio)
        if bed_power > 0:
            out += bed_audio * np.float32(math.sqrt(sig / bed_power / 10.0 ** (params.bed_snr_db / 10.0)))
    return out


def reduce_bit_depth(x: np.ndarray, bits: int) -> np.ndarray:
    """Quantize to `bits` (no-op at 24 or more: the file format's own resolution)."""
    if bits >= 24:
        return x
    q = np.float32(2 ** (bits - 1))
    y = x * q
    np.rint(y, out=y)
    y /= q
    return y


# ---------------------------------------------------------------- the chain


def augment(
    dry: np.ndarray,
    sample_rate: int,
    params: AugParams,
    rng: np.random.Generator,
    beds: Sequence[Bed] = (),
) -> np.ndarray:
    """The full chain on a planar render (channels, frames), mono or stereo; returns float32
    of the same shape in [-1, 1). `dry` is not modified.

    A silent render stays silent (nothing to stage, and the silence check must see it).
    """
    d = np.asarray(dry)
    if d.ndim != 2 or d.shape[0] not in (1, 2):
        raise AugmentationError(f"expected planar mono or stereo audio of shape (channels, frames), got {d.shape}")
    x = np.array(d, dtype=np.float32, order="C", copy=True)  # the chain works in place
    if x.shape[1] == 0 or max(float(x.max()), -float(x.min())) < SILENT_PEAK:
        return np.zeros_like(x)
    x = add_reverb(x, params, sample_rate, rng, inplace=True)
    x = apply_eq(x, params, sample_rate)
    x = compress(x, params, sample_rate)
    bed_audio = None
    if params.bed_source:
        by_id = {b.source_id: b for b in beds}
        if params.bed_source not in by_id:
            raise AugmentationError(f"background bed {params.bed_source!r} is not among the prepared sources given")
        bed_audio = load_bed(by_id[params.bed_source], params.bed_offset_sec, x.shape[1], sample_rate, x.shape[0])
    x = add_noise(x, params, rng, bed_audio, inplace=True)
    fade = min(int(FADE_SEC * sample_rate), x.shape[1])
    if fade:
        x[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    peak = max(float(x.max()), -float(x.min()))
    x *= np.float32(10.0 ** (params.peak_dbfs / 20.0) / peak)
    return reduce_bit_depth(x, params.bit_depth)


def beds_in(folder: str | os.PathLike[str]) -> list[Bed]:
    """Every FLAC directly in `folder`, sorted by name (the order draws index into)."""
    import soundfile as sf  # noqa: PLC0415

    root = Path(folder)
    beds = []
    for p in sorted(root.glob("*.flac")) if root.is_dir() else []:
        try:
            info = sf.info(str(p))
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AugmentationError(f"{p}: prepared source is not readable audio: {exc}") from exc
        beds.append(Bed(p.stem, str(p), info.frames / info.samplerate))
    return beds


def texture_beds_in(sources: str | os.PathLike[str]) -> list[Bed]:
    """Hiss and cloud textures under `sources`/textures/<source_id>/ of sources that are still prepared.

    Each bed's `source_id` is its path relative to `sources` (what `aug_bed_source` records), sorted.
    """
    import soundfile as sf  # noqa: PLC0415

    root = Path(sources)
    beds = []
    for p in layout.texture_bed_files(root):
        try:
            info = sf.info(str(p))
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AugmentationError(f"{p}: texture bed is not readable audio: {exc}") from exc
        beds.append(Bed(p.relative_to(root).as_posix(), str(p), info.frames / info.samplerate))
    return beds


def background_beds(sources: str | os.PathLike[str]) -> list[Bed]:
    """The beds rudiment_audio draws from: texture_beds' hiss and clouds when any exist, else the
    prepared sources themselves (`sources` is <data dir>/sources)."""
    return texture_beds_in(sources) or beds_in(layout.prepared_dir(Path(sources)))
