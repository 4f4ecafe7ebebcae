"""The preview picture and the summary of a source's textures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.audio.textures.profiles import KINDS


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
