"""Shared fixtures: every test gets its own data dir and Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Settings a developer may have exported: the tests (and the definitions they import) run without them.
for _name in ("MUSIC_ASSETS_AUDIO_ROOTS", "MUSIC_ASSETS_HF_REPO", "MUSIC_ASSETS_AUTOMATIONS"):
    os.environ.pop(_name, None)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MUSIC_ASSETS_DATA_DIR for one test."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(d))
    return d


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real on-disk DAGSTER_HOME (SQLite) for CLI tests."""
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    from music_assets.ops.instance import ensure_dagster_home

    return ensure_dagster_home()
