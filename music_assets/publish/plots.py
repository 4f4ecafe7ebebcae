"""The dataset card's figures, rendered to PNG bytes (deterministic: no timestamps, fixed size).

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, so no
global pyplot state is touched and nothing needs a display. Each PNG carries
a fingerprint of the data it shows (a text chunk), so an unchanged figure is
not drawn again (`render_if_changed`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

FINGERPRINT_KEY = "music_assets fingerprint"
PLOT_VERSION = "1"  # bump when a figure's drawing changes
SPLIT_COLORS = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}
TIER_COLORS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b")


def data_fingerprint(df: pd.DataFrame, *parts: object) -> str:
    h = hashlib.sha256(f"plots {PLOT_VERSION} {parts!r}\n".encode())
    h.update(df.to_csv(index=False).encode())
    return h.hexdigest()


def existing_fingerprint(path: Path) -> str | None:
    from PIL import Image  # noqa: PLC0415 - matplotlib's own dependency

    try:
        with Image.open(path) as im:
            return im.text.get(FINGERPRINT_KEY)
    except (OSError, SyntaxError, ValueError):
        return None


def render_if_changed(
    path: Path, fingerprint: str, draw: Callable[[str], bytes], write: Callable[[Path, bytes], bool]
) -> bool:
    """Draw and write the figure unless `path` already shows data with this fingerprint; True if written."""
    if existing_fingerprint(path) == fingerprint:
        return False
    return write(path, draw(fingerprint))


def _png(fig, fingerprint: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None, FINGERPRINT_KEY: fingerprint})
    return buf.getvalue()


def score_distributions(df: pd.DataFrame, scores: Sequence[str], tiers: Sequence[str], fingerprint: str) -> bytes:
    """Box plots of every score, one box per skill tier side by side (nulls left out)."""
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    scores = [s for s in scores if s in df.columns]
    group = len(tiers) + 1  # one gap between scores
    # one axes and fixed margins: subplots per score or constrained layout cost more than the drawing
    fig = Figure(figsize=(max(6.0, 1.0 * len(scores) + 1.5), 5.0))
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.3, top=0.9)
    ax = fig.subplots()
    data, positions, colors = [], [], []
    for i, score in enumerate(scores):
        for j, tier in enumerate(tiers):
            values = df.loc[df["skill_tier"] == tier, score].dropna().to_numpy(dtype=float)
            if values.size:
                data.append(values)
                positions.append(i * group + j)
                colors.append(TIER_COLORS[j % len(TIER_COLORS)])
    if data:
        box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
        for patch, color in zip(box["boxes"], colors, strict=True):
            patch.set_facecolor(color)
    centers = [i * group + (len(tiers) - 1) / 2 for i in range(len(scores))]
    ax.set_xticks(centers, scores, rotation=35, ha="right", fontsize=9)
    ax.set_xlim(-1, max(len(scores) * group - 1, 1))
    ax.set_ylim(-2, 102)
    ax.set_ylabel("score (0-100)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        handles=[Patch(facecolor=TIER_COLORS[j % len(TIER_COLORS)], label=t) for j, t in enumerate(tiers)],
        loc="upper center",
        bbox_to_anchor=(0.5, 1.12),
        ncols=len(tiers),
        frameon=False,
    )
    return _png(fig, fingerprint)


def samples_per_rudiment(df: pd.DataFrame, slugs: Sequence[str], splits: Sequence[str], fingerprint: str) -> bytes:
    """Horizontal bars: samples of each rudiment, stacked by split."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    counts = df.groupby(["rudiment_slug", "split"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=list(slugs), columns=list(splits), fill_value=0)
    height = max(3.0, 0.25 * len(slugs) + 1.2)
    fig = Figure(figsize=(9, height))
    fig.subplots_adjust(left=0.25, right=0.97, bottom=0.6 / height, top=1 - 0.45 / height)
    ax = fig.subplots()
    y = np.arange(len(slugs))[::-1]
    left = np.zeros(len(slugs))
    for split in splits:
        vals = counts[split].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=SPLIT_COLORS.get(split, "gray"), label=split)
        left += vals
    ax.set_yticks(y, list(slugs), fontsize=8)
    ax.set_xlabel("samples")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Samples per rudiment")
    return _png(fig, fingerprint)
