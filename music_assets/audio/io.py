"""Audio file writing (atomic) shared by preparation and rendering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from music_assets.io import atomic_open


def write_flac(dest: str | os.PathLike[str], audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> Path:
    """Write float audio (frames,) or (frames, channels) in [-1, 1] as FLAC, atomically.

    Values are clipped to [-1, 1] by libsndfile's float-to-int conversion; the
    caller is responsible for gain staging.
    """
    audio = np.asarray(audio, dtype=np.float32)
    with atomic_open(dest, "wb") as fh:
        sf.write(fh, audio, int(sample_rate), format="FLAC", subtype=subtype)
    return Path(dest)
