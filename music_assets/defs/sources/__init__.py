"""The sources group: your audio folders catalogued (`assets`: audio_catalog, selected_sources,
source_files, prepared_sources), texture beds cut from each prepared track (`textures`), and the
readable partition keys with their one-time migration (`keys`)."""

import dagster as dg

from music_assets.defs.sources import assets, textures

defs = dg.Definitions.merge(assets.defs, textures.defs)
