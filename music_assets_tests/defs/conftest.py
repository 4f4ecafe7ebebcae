"""The ml tests' session fixtures (a tiny corpus and base model), shared with the asset tests."""

from music_assets_tests.ml.conftest import tiny_base, tiny_corpus  # noqa: F401 - re-exported fixtures
