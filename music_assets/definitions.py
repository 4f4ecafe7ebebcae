"""The code location: every asset group, its checks, resources and automation.

Each group is one package of `music_assets.defs` exposing its `defs` (one hop
from here); the computation behind each asset lives in the domain packages (one
hop from the asset).
"""

from __future__ import annotations

import dagster as dg

from music_assets.defs import automation, models, publish, rudiments, sources, training_sets
from music_assets.ops.executors import selected_executor

defs = dg.Definitions.merge(
    # map_resolved_asset_specs cannot map a Definitions holding a source asset (sources' source_files)
    dg.Definitions.merge(
        training_sets.defs,
        rudiments.defs,
        publish.defs,
        models.defs,
        automation.defs,
        dg.Definitions(executor=selected_executor()),
    ).map_resolved_asset_specs(func=automation.follow_inputs, selection=list(automation.FOLLOW_INPUTS)),
    sources.defs,
)

# MUSIC_ASSETS_AUTOMATIONS may only name automations that exist (a typo would silently leave one off).
automation.check_automation_names([*(s.name for s in defs.sensors), *(s.name for s in defs.schedules)])
