"""rudiment_audio (not yet wired)."""

import dagster as dg

defs = dg.Definitions()
