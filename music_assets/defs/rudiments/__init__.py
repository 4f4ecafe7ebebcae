"""The rudiments group: the rudiment library, players, performances and labels (`assets`) and their
rendering to audio (`audio`)."""

import dagster as dg

from music_assets.defs.rudiments import assets, audio

defs = dg.Definitions.merge(assets.defs, audio.defs)
