"""Dagster wiring: one module per asset group, each exposing `defs`.

These modules are thin: they turn domain functions (music_assets.audio,
.rudiments, .publish, .ml) into assets, partitions, checks and automation.
Heavy libraries (torch, librosa, datasets) are imported inside asset bodies so
loading the code location stays fast.
"""

import warnings

import dagster as dg

# Single-run backfill policies and blocking checks are marked beta; they are used on purpose.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
