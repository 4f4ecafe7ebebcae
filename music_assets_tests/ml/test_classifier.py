"""The rudiment classifier: features from onsets and velocities only, tempo-invariant; it separates rudiments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from music_assets.ml.classifier import RudimentClassifier, accuracy_report, features
from music_assets.ml.corpus import Corpus, read_samples
from music_assets.ml.evaluation.reference import Reference, load_reference, real_takes, write_reference


@pytest.fixture(scope="module")
def takes(tiny_corpus: Path):
    root = tiny_corpus.parent.parent
    corpus = Corpus(tiny_corpus)
    samples = read_samples(root / "rudiments/labels/samples.parquet")
    return real_takes(samples, root, corpus.templates, corpus.subdivisions)


def test_features_are_tempo_invariant() -> None:
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(0, 4, 40))
    velocities = rng.integers(40, 120, 40)
    a = features(onsets, velocities, 100)
    b = features(onsets * 0.5, velocities, 200)  # the same performance twice as fast
    assert np.allclose(a, b)
    assert not np.allclose(a, features(onsets, velocities, 150))  # but the tempo of the file matters
    with pytest.raises(ValueError, match="3 notes"):
        features(onsets[:3], velocities[:3], 100)


def test_it_separates_rudiments_and_reports_held_out_players(takes, tmp_path: Path) -> None:
    ref = Reference(takes)
    heldout = ref.heldout
    # four rudiments of different families: the test players' takes are all recognised
    assert heldout["takes"] == 16 and heldout["train_takes"] == 16
    assert heldout["accuracy"] >= 0.9
    assert set(heldout["per_tier"]) == {"beginner", "intermediate", "advanced", "professional"}
    assert set(heldout["per_rudiment"]) == set(takes["rudiment"])
    # the classifier learns from the features: with the labels shuffled it is no better than chance
    shuffled = takes.copy()
    train = shuffled["split"] == "train"
    shuffled.loc[train, "rudiment"] = np.random.default_rng(0).permutation(shuffled.loc[train, "rudiment"].to_numpy())
    assert Reference(shuffled).heldout["accuracy"] < heldout["accuracy"]
    # written and read back with its hash
    report = write_reference(tmp_path, takes)
    again, report2 = load_reference(tmp_path)
    assert report2 == report and again.heldout["accuracy"] == heldout["accuracy"]
    (tmp_path / "real_takes.parquet").write_bytes(b"x" + (tmp_path / "real_takes.parquet").read_bytes()[1:])
    with pytest.raises(ValueError, match="real_takes.parquet: sha256 does not match"):
        load_reference(tmp_path)


def test_fitting_is_deterministic_and_the_report_counts_confusions(takes) -> None:
    fit = takes[takes["split"] == "train"]
    x = np.array(fit["features"].tolist())
    a = RudimentClassifier.fit(x, fit["rudiment"].tolist()).predict(x)
    b = RudimentClassifier.fit(x, fit["rudiment"].tolist()).predict(x)
    assert a == b
    r = accuracy_report(["flam", "flam", "drag"], ["flam", "drag", "drag"])
    assert r["accuracy"] == pytest.approx(2 / 3) and r["per_rudiment"] == {"drag": 1.0, "flam": 0.5}
    assert r["confusion"] == {"drag": {"drag": 1}, "flam": {"drag": 1, "flam": 1}}
