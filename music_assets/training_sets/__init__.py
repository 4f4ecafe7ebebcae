"""Training sets: measured annotations, style presets, captions and trainer layouts (plain Python, no Dagster)."""
