"""Imported once by the rendering pool's fork server, before it forks the workers.

Everything built here is shared by every worker (copy-on-write) instead of
being rebuilt in each: the rendering code and the libraries it imports
lazily, the noise tables of `effects` (about 0.3 s of CPU and 12 MB per
process), and the default soundfonts, loaded and latency-calibrated
(FluidR3_GM alone is 148 MB and takes about half a second to load). Other
configured soundfonts are loaded by each worker on first use. The synths hold
no threads (no audio driver, one CPU core), so they are safe to fork, and
every render resets their voices, so a forked synth renders the same bytes.
"""

import fluidsynth  # noqa: F401 - loads libfluidsynth
import pretty_midi  # noqa: F401
import soundfile  # noqa: F401
import soxr  # noqa: F401

from music_assets.audio import effects, io, onsets, render  # noqa: F401
from music_assets.audio.presets import NOISE_COLORS
from music_assets.audio.synthesis import available_soundfonts

for _color in NOISE_COLORS:
    effects.noise_table(_color)
for _soundfont in available_soundfonts():
    render.preload_soundfont(str(_soundfont))
