"""Streaming measurements of audio: level, clipping, silence, EBU R128 loudness.

Files are decoded whole, block by block (soundfile), so memory stays bounded
on a two-hour file and a stream that is truncated or corrupt anywhere is
caught, not only one with a bad header. Every measurement is accumulated per
block:

- `peak_dbfs`: the largest absolute sample value, in dBFS.
- `rms_dbfs`: root mean square over every sample of every channel.
- `clipped_ratio`: the fraction of samples (all channels) at full scale, i.e.
  with `|x| >= CLIP_LEVEL` (within 0.01 dB of 0 dBFS; lossy decoders leave
  clipped flat tops slightly below 1.0, so exactly 1.0 would miss them).
- `silence_ratio`: the fraction of the duration in 50 ms windows whose RMS
  over all channels is below -60 dBFS (a trailing partial window counts for
  its length).
- `loudness_lufs`: integrated loudness per ITU-R BS.1770-4 / EBU R128:
  pyloudnorm's K-weighting filters applied with carried filter state, 400 ms
  gating blocks with 75 % overlap built from 100 ms hops, the -70 LUFS
  absolute and -10 LU relative gates. `None` when the audio is shorter than
  one gating block or no block passes the absolute gate (digital silence).

Levels are floored at `DB_FLOOR` (-150 dBFS, below the 24-bit noise floor) so
digital silence stays a finite number in tables and metadata.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf

BLOCK_FRAMES = 1 << 16
CLIP_LEVEL = 0.999
SILENCE_THRESHOLD_DBFS = -60.0
SILENCE_WINDOW_SEC = 0.05
DB_FLOOR = -150.0
LOUDNESS_HOP_SEC = 0.1
LOUDNESS_BLOCK_HOPS = 4  # 400 ms gating blocks, 75 % overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
# BS.1770 channel weights (L, R, C, Ls, Rs); further channels count with weight 1.
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
# Lossy decoders may report a header length a little off the decoded one.
LOSSY_SUBTYPES = frozenset({"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS"})

# libsndfile's parse log (SoundFile.extra_info) is where it admits a truncated
# container: it silently shortens the frame count to what the file holds.
_TRUNCATION_PATTERNS = (
    (
        re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M),
        lambda m: f"truncated: the {m[1]} chunk declares {m[2]} bytes but the file holds {m[3]}",
    ),
    (
        re.compile(r"Chunk size (\d+) > file length (\d+)"),
        lambda m: f"truncated: a chunk declares {m[1]} bytes but the file is {m[2]} bytes long",
    ),
    (
        re.compile(r"reports a hole at (\d+) bytes"),
        lambda m: f"corrupt stream: the Ogg pages have a hole at byte {m[1]}",
    ),
)


class AudioAnalysisError(Exception):
    """The file is not fully decodable audio; `str(exc)` is the reason."""


@dataclass(frozen=True)
class AudioStats:
    sample_rate: int
    channels: int
    frames: int
    subtype: str | None
    peak_dbfs: float
    rms_dbfs: float
    clipped_ratio: float
    silence_ratio: float
    loudness_lufs: float | None

    @property
    def duration_sec(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def amplitude_to_db(value: float) -> float:
    return max(DB_FLOOR, 20.0 * math.log10(value)) if value > 0 else DB_FLOOR


def power_to_db(value: float) -> float:
    return max(DB_FLOOR, 10.0 * math.log10(value)) if value > 0 else DB_FLOOR


class _WindowSums:
    """Sums of a per-frame series over consecutive fixed-length windows, fed in pieces."""

    def __init__(self, length: int):
        self.length = max(1, int(length))
        self.carry_sum = 0.0
        self.carry_n = 0

    def add(self, values: np.ndarray) -> np.ndarray:
        need = self.length - self.carry_n
        if len(values) < need:
            self.carry_sum += float(values.sum())
            self.carry_n += len(values)
            return np.empty(0)
        first = self.carry_sum + float(values[:need].sum())
        rest = values[need:]
        k = len(rest) // self.length
        full = rest[: k * self.length].reshape(k, self.length).sum(axis=1)
        tail = rest[k * self.length :]
        self.carry_sum, self.carry_n = float(tail.sum()), len(tail)
        return np.concatenate(([first], full))


class _KWeighting:
    """BS.1770 K-weighting (pyloudnorm's two biquads) with state carried across blocks."""

    def __init__(self, sample_rate: int, channels: int):
        from pyloudnorm.iirfilter import IIRfilter  # noqa: PLC0415 - pulls in scipy.signal
        from scipy.signal import lfilter  # noqa: PLC0415

        self._lfilter = lfilter
        # The ITU-R BS.1770 pre-filter (high shelf) and RLB high-pass, as pyloudnorm's Meter builds them.
        stages = (
            IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
            IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"),
        )
        self._stages = [(s.b, s.a, np.zeros((2, channels))) for s in stages]
        self._weights = np.array([CHANNEL_WEIGHTS[c] if c < len(CHANNEL_WEIGHTS) else 1.0 for c in range(channels)])

    def weighted_energy(self, block: np.ndarray) -> np.ndarray:
        """Per-frame sum over channels of G_c * y_c^2 of the K-weighted block."""
        y = block.astype(np.float64)
        for i, (b, a, zi) in enumerate(self._stages):
            y, zf = self._lfilter(b, a, y, axis=0, zi=zi)
            self._stages[i] = (b, a, zf)
        return (y * y) @ self._weights


class StreamingMeter:
    """Accumulates every measurement over consecutive blocks of shape (frames, channels)."""

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        clip_level: float = CLIP_LEVEL,
        silence_threshold_dbfs: float = SILENCE_THRESHOLD_DBFS,
    ):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.clip_level = float(clip_level)
        self._silence_power = 10.0 ** (silence_threshold_dbfs / 10.0)
        self.frames = 0
        self._peak = 0.0
        self._sum_sq = 0.0
        self._clipped = 0
        self._silent_frames = 0
        self._silence = _WindowSums(round(SILENCE_WINDOW_SEC * sample_rate))
        self._hop = max(1, round(LOUDNESS_HOP_SEC * sample_rate))
        self._hops = _WindowSums(self._hop)
        self._hop_energy: list[np.ndarray] = []
        self._k = _KWeighting(self.sample_rate, self.channels)

    def update(self, block: np.ndarray) -> None:
        if block.ndim == 1:
            block = block[:, None]
        if len(block) == 0:
            return
        a = np.abs(block)
        self.frames += len(block)
        self._peak = max(self._peak, float(a.max()))
        self._clipped += int(np.count_nonzero(a >= self.clip_level))
        power = np.einsum("ij,ij->i", block, block, dtype=np.float64)  # per-frame sum over channels
        self._sum_sq += float(power.sum())
        windows = self._silence.add(power / self.channels)
        self._silent_frames += (
            int(np.count_nonzero(windows / self._silence.length < self._silence_power)) * self._silence.length
        )
        self._hop_energy.append(self._hops.add(self._k.weighted_energy(block)))

    def _loudness(self) -> float | None:
        hops = np.concatenate(self._hop_energy) if self._hop_energy else np.empty(0)
        n_blocks = len(hops) - LOUDNESS_BLOCK_HOPS + 1
        if n_blocks <= 0:
            return None
        csum = np.concatenate(([0.0], np.cumsum(hops)))
        z = (csum[LOUDNESS_BLOCK_HOPS:] - csum[:n_blocks]) / (LOUDNESS_BLOCK_HOPS * self._hop)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z)
        above_abs = z[block_lufs >= ABSOLUTE_GATE_LUFS]
        if len(above_abs) == 0:
            return None
        relative_gate = -0.691 + 10.0 * math.log10(above_abs.mean()) + RELATIVE_GATE_LU
        gated = z[(block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)]
        return -0.691 + 10.0 * math.log10(gated.mean())

    def result(self, subtype: str | None = None) -> AudioStats:
        samples = self.frames * self.channels
        silent = self._silent_frames
        if self._silence.carry_n and self._silence.carry_sum / self._silence.carry_n < self._silence_power:
            silent += self._silence.carry_n
        return AudioStats(
            sample_rate=self.sample_rate,
            channels=self.channels,
            frames=self.frames,
            subtype=subtype,
            peak_dbfs=amplitude_to_db(self._peak),
            rms_dbfs=power_to_db(self._sum_sq / samples) if samples else DB_FLOOR,
            clipped_ratio=self._clipped / samples if samples else 0.0,
            silence_ratio=silent / self.frames if self.frames else 1.0,
            loudness_lufs=self._loudness(),
        )


def analyze_array(
    audio: np.ndarray, sample_rate: int, *, clip_level: float = CLIP_LEVEL, block_frames: int = BLOCK_FRAMES
) -> AudioStats:
    """Measure in-memory audio of shape (frames,) or (frames, channels)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    meter = StreamingMeter(sample_rate, audio.shape[1], clip_level=clip_level)
    for start in range(0, len(audio), block_frames):
        meter.update(audio[start : start + block_frames])
    return meter.result()


def _libsndfile_reason(exc: sf.LibsndfileError) -> str:
    # libsndfile's MP3 reader reports an unparseable stream as "not a regular file".
    if exc.code == 7:
        return "format not recognised"
    return exc.error_string.strip().rstrip(".").lower() or f"libsndfile error {exc.code}"


def analyze_file(
    path: str | os.PathLike[str], *, clip_level: float = CLIP_LEVEL, block_frames: int = BLOCK_FRAMES
) -> AudioStats:
    """Decode the whole file in blocks and measure it.

    Raises AudioAnalysisError (the message is the reason) for an empty file, a
    file libsndfile cannot open, a stream that fails to decode part-way, one
    that decodes to fewer frames than its header declares, a container whose
    chunks run past the end of the file, and a file with no audio frames.
    OSError (for example permission denied) propagates.
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise AudioAnalysisError("empty file (0 bytes)")
    with open(path, "rb"):  # a permission problem surfaces as OSError, not a libsndfile code
        pass
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise AudioAnalysisError(f"not a decodable audio file: {_libsndfile_reason(exc)}") from None
    with f:
        declared = f.frames
        meter = StreamingMeter(f.samplerate, f.channels, clip_level=clip_level)
        try:
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                meter.update(block)
        except sf.LibsndfileError as exc:
            raise AudioAnalysisError(
                f"corrupt or truncated stream: decoding failed after {meter.frames} of {declared} frames "
                f"({_libsndfile_reason(exc)})"
            ) from None
        log = f.extra_info
        subtype = f.subtype
    for pattern, reason in _TRUNCATION_PATTERNS:
        m = pattern.search(log)
        if m:
            raise AudioAnalysisError(reason(m))
    if meter.frames == 0:
        raise AudioAnalysisError("no audio frames (header only)")
    tolerance = max(f.samplerate // 10, declared // 100) if subtype in LOSSY_SUBTYPES else 0
    if meter.frames < declared - tolerance:
        raise AudioAnalysisError(
            f"truncated: the header declares {declared} frames ({declared / f.samplerate:.2f} s) "
            f"but only {meter.frames} decode ({meter.frames / f.samplerate:.2f} s)"
        )
    return meter.result(subtype)
