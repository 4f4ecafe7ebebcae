"""Pure audio code: io, analysis, preparation, synthesis, effects."""
