"""The rudiments group: the rudiment library, players, performances and labels (`assets`), their
rendering to audio (`audio`) and the nightly regeneration (`automation`)."""

import dagster as dg

from music_assets.defs.rudiments import assets, audio, automation

defs = dg.Definitions.merge(assets.defs, audio.defs, automation.defs)
