"""Things a person looks at or listens to: loss curves, generated performances as MIDI and FLAC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from music_assets.audio.io import write_flac
from music_assets.io import atomic_path
from music_assets.ml.tokenizer import Vocab


def write_performance(
    ids: list[int], vocab: Vocab, midi_path: Path, flac_path: Path, soundfont: str | os.PathLike[str]
) -> dict[str, Any]:
    """Decode a token sequence, write it as General MIDI and render it to FLAC with FluidSynth."""
    from music_assets.audio.synthesis import get_renderer  # noqa: PLC0415

    perf = vocab.decode(ids)
    pm = vocab.to_pretty_midi(perf)
    with atomic_path(midi_path) as tmp:
        pm.write(str(tmp))
    renderer = get_renderer(soundfont)
    audio = renderer.render_midi(pm, tail_seconds=0.5)
    write_flac(flac_path, audio, renderer.sample_rate)
    return {
        "rudiment": perf.rudiment,
        "tier": perf.tier,
        "tempo_bpm": perf.tempo_bpm,
        "notes": len(perf.notes),
        "midi": str(midi_path),
        "flac": str(flac_path),
        "seconds": round(len(audio) / renderer.sample_rate, 2),
    }


def plot_loss_curve(history: dict[str, list], events: list[str], dest: Path, title: str) -> Path:
    """Training loss (per step, with a moving average), validation loss and the watch's grammar score."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    train = np.asarray(history.get("train") or [[0, np.nan]], dtype=float)
    ax.plot(train[:, 0], train[:, 1], color="0.75", lw=0.8, label="train (per step)")
    if len(train) >= 10:
        k = max(5, len(train) // 30)
        smooth = np.convolve(train[:, 1], np.ones(k) / k, mode="valid")
        ax.plot(train[k - 1 :, 0], smooth, color="C0", lw=1.5, label=f"train ({k}-step mean)")
    val = np.asarray(history.get("val") or [[0, np.nan]], dtype=float)
    ax.plot(val[:, 0], val[:, 1], "o-", color="C3", ms=4, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title + (f" ({len(events)} rollback event(s))" if events else ""))
    ax.grid(alpha=0.3)
    watch = np.asarray(history.get("watch") or [], dtype=float)
    if len(watch):
        ax2 = ax.twinx()
        ax2.plot(watch[:, 0], watch[:, 1], "s--", color="C2", ms=3, lw=0.8, label="watch grammar")
        ax2.set_ylim(0, 1.3)  # keeps the score line clear of the legend
        ax2.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax2.set_ylabel("grammar score")
        ax2.legend(loc="center right", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return dest
