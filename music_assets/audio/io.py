"""Audio file writing (atomic) shared by preparation and rendering."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from music_assets.io import write_bytes


def write_flac(
    dest: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    subtype: str = "PCM_24",
    compression_level: float | None = None,
    *,
    fsync: bool = True,
) -> Path:
    """Write float audio (frames,) or (frames, channels) in [-1, 1] as FLAC, atomically.

    Values are clipped to [-1, 1] by libsndfile's float-to-int conversion; the
    caller is responsible for gain staging. Integer arrays (int16, int32) are
    full-scale PCM and are written exactly (a 24-bit file keeps the top 24
    bits of int32). `compression_level` (0-1) trades size for speed; None is
    libsndfile's default. `fsync=False`: see `music_assets.io.atomic_path`.
    """
    audio = np.asarray(audio)
    if audio.dtype not in (np.int16, np.int32):
        audio = audio.astype(np.float32)
    # Encoded in memory, then written in one go: libsndfile fsyncs a file it writes by path
    # when it closes it (about 3 ms for a few seconds of audio), even where the caller syncs
    # many files at once afterwards. The bytes are the same either way.
    buf = io.BytesIO()
    sf.write(buf, audio, int(sample_rate), format="FLAC", subtype=subtype, compression_level=compression_level)
    return write_bytes(dest, buf.getbuffer(), fsync=fsync)
