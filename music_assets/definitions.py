"""The code location: every asset group, its checks, resources and automation.

Each group lives in one module of `music_assets.defs` (one hop from here); the
computation behind each asset lives in the domain packages (one hop from the
asset).
"""

from __future__ import annotations

import dagster as dg

from music_assets.defs import (
    automation,
    evaluation,
    export,
    hf_model,
    models,
    publish,
    rudiment_audio,
    rudiments,
    sources,
)
from music_assets.defs import textures as texture_defs
from music_assets.defs import training_sets as training_set_defs
from music_assets.executors import selected_executor

defs = dg.Definitions.merge(
    # map_resolved_asset_specs cannot map a Definitions holding a source asset (sources' source_files)
    dg.Definitions.merge(
        texture_defs.defs,
        training_set_defs.defs,
        rudiments.defs,
        rudiment_audio.defs,
        publish.defs,
        models.defs,
        export.defs,
        evaluation.defs,
        hf_model.defs,
        automation.defs,
        dg.Definitions(executor=selected_executor()),
    ).map_resolved_asset_specs(func=automation.follow_inputs, selection=list(automation.FOLLOW_INPUTS)),
    sources.defs,
)

# MUSIC_ASSETS_AUTOMATIONS may only name automations that exist (a typo would silently leave one off).
automation.check_automation_names([*(s.name for s in defs.sensors), *(s.name for s in defs.schedules)])
