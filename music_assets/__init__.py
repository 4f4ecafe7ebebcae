"""music_assets: a Dagster asset-oriented data platform for music machine learning."""

__version__ = "0.1.0"
