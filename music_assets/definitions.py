"""The code location: every asset group, its checks, resources and automation.

Each group lives in one module of `music_assets.defs` (one hop from here); the
computation behind each asset lives in the domain packages (one hop from the
asset).
"""

from __future__ import annotations

import os

import dagster as dg

from music_assets.defs import automation, export, models, publish, rudiment_audio, rudiments, sources

# One step process per core: heavy steps parallelize internally and cap their
# BLAS threads, so more processes than cores only oversubscribes.
executor = dg.multiprocess_executor.configured({"max_concurrent": max(1, os.cpu_count() or 1)})

defs = dg.Definitions.merge(
    sources.defs,
    rudiments.defs,
    rudiment_audio.defs,
    publish.defs,
    models.defs,
    export.defs,
    automation.defs,
    dg.Definitions(executor=executor),
)
