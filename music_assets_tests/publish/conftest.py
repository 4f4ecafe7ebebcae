"""Shared, read-only fixtures: one labelled dataset and its staging folders, built once per session.

Tests that change files copy a staging folder first (`copy_staging`), so the
shared folders (whose media are hard links to the source files) stay intact.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from music_assets.publish.card import CardResult, CardSettings, write_card
from music_assets.publish.staging import StagedData, StagingSettings, expected_files, stage, sweep
from music_assets_tests.publish import labelled_dataset


@dataclass
class Staged:
    root: Path  # the data dir
    staging: Path
    data: StagedData
    card: CardResult
    removed: list[str]


def build_staging(root: Path, staging: Path, settings: StagingSettings = StagingSettings()) -> Staged:
    data = stage(root, staging, settings)
    card = write_card(data, CardSettings())
    removed = sweep(staging, expected_files(data, card.files))
    return Staged(root, staging, data, card, removed)


def link_tree(src: Path, dest: Path) -> Path:
    """A copy of `src` made of hard links (cheap; never modify files in it in place)."""
    shutil.copytree(src, dest, copy_function=lambda s, d: Path(d).hardlink_to(s), dirs_exist_ok=True)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    """An independent copy of `src` (safe to corrupt)."""
    shutil.copytree(src, dest, copy_function=shutil.copy2)
    return dest


@pytest.fixture(scope="session")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> labelled_dataset.LabelledDataset:
    return labelled_dataset.build(tmp_path_factory.mktemp("labelled") / "data")


@pytest.fixture(scope="session")
def staged_files(labelled, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """File-mode staging of the shared dataset."""
    root = link_tree(labelled.root, tmp_path_factory.mktemp("files") / "data")
    return build_staging(root, root / "hf_staging")


EMBEDDED = StagingSettings(file_budget=0, shard_size_mb=0.05)


@pytest.fixture(scope="session")
def staged_embedded(labelled, staged_files, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """Embedded-mode staging (a file budget of 0, shards small enough to split every split in two or more),
    built over a copy of the file-mode folder: the switch of modes is part of what it shows."""
    root = link_tree(labelled.root, tmp_path_factory.mktemp("embedded") / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    return build_staging(root, root / "hf_staging", EMBEDDED)


DEFERRED = StagingSettings(file_budget=0, shard_size_mb=0.05, shard_storage="deferred")


@pytest.fixture(scope="session")
def staged_deferred(labelled, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    """The embedded staging's settings with deferred shard storage: plans instead of sample shards."""
    root = link_tree(labelled.root, tmp_path_factory.mktemp("deferred") / "data")
    return build_staging(root, root / "hf_staging", DEFERRED)


@pytest.fixture
def copy_staging(tmp_path: Path):
    def copy(staged: Staged) -> Path:
        return copy_tree(staged.staging, tmp_path / "hf_staging")

    return copy
