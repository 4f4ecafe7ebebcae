"""Small synthetic audio for the benchmarks and the tests: a tone, a music-like signal, and a writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int = 8000, amp: float = 0.5, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def music_like(seconds: float, sr: int = 8000, seed: int = 0) -> np.ndarray:
    """A decaying note every half second over a noise floor: not silent, not clipped."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    env = np.exp(-4.0 * (t % 0.5))
    freq = 110.0 * 2 ** (rng.integers(0, 24, size=int(seconds * 2) + 1) / 12)[(t // 0.5).astype(int)]
    x = 0.6 * env * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)
    return x.astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int = 8000, fmt: str | None = None, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, sr, format=fmt, subtype=subtype)
    return path
