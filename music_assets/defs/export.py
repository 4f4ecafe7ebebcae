"""The export group (not yet wired)."""

import dagster as dg

defs = dg.Definitions()
