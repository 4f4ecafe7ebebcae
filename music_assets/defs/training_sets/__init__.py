"""The training_sets group: annotations, style presets, captions and the ACE-Step LoRA set (`assets`)."""

from music_assets.defs.training_sets.assets import defs

__all__ = ["defs"]
