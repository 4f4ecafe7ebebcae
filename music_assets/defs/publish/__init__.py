"""The publish group: the rudiment dataset staged in Hugging Face layout and pushed (`assets`)."""

from music_assets.defs.publish.assets import defs

__all__ = ["defs"]
