"""Dagster wiring: one module per asset group, each exposing `defs`.

These modules are thin: they turn domain functions (music_assets.audio,
.rudiments, .publish, .ml) into assets, partitions, checks and automation.
Heavy libraries (torch, librosa, datasets) are imported inside asset bodies so
loading the code location stays fast.
"""
