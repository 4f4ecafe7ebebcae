"""A small rudiment dataset in the labels contract, for the model tests.

Made by the dataset's own code (`rudiments.profiles`, `rudiments.dataset`): a
few rudiments played by a few simulated players of every tier, with their MIDI
files under `rudiments/midi/` and `rudiments/labels/{samples,strokes}.parquet`
(the partitions' tables concatenated, without the audio columns, which the
models do not read). So the models are tested on performances exactly like
the real ones: stroke labels, grace notes, bounces, tier timing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from music_assets.integrity import write_manifest
from music_assets.io import write_parquet
from music_assets.rudiments.dataset import DatasetSettings, generate_partition
from music_assets.rudiments.library import get_rudiment
from music_assets.rudiments.profiles import generate_profiles

RUDIMENTS = ("single_stroke_roll", "single_paradiddle", "flam", "swiss_army_triplet")


def write_fake_dataset(
    root: Path,
    *,
    rudiments: tuple[str, ...] = RUDIMENTS,
    num_profiles: int = 12,
    beats: int = 8,
    seed: int = 0,
    splits: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Write the dataset under `root` (a data dir) and return samples.parquet as a DataFrame.

    12 players: three per tier, one in each split. `splits` keeps only the players of those splits.
    """
    profiles = generate_profiles(num_profiles, seed=seed)
    if splits is not None:
        profiles = profiles[profiles["split"].isin(splits)].reset_index(drop=True)
    settings = DatasetSettings.resolve("demo", seed=seed, num_profiles=num_profiles, lengths_beats=[beats])
    samples, strokes = [], []
    for slug in rudiments:
        result = generate_partition(get_rudiment(slug), profiles, settings, root)
        samples.append(result.samples)
        strokes.append(pd.read_parquet(root / "rudiments" / "performances" / slug / "strokes.parquet"))
    table = pa.concat_tables(samples)
    write_parquet(root / "rudiments/labels/samples.parquet", table)
    write_parquet(root / "rudiments/labels/strokes.parquet", pd.concat(strokes, ignore_index=True))
    # what rudiment_labels records with its tables: their sha256, which token_corpus verifies
    labels = [root / "rudiments/labels/samples.parquet", root / "rudiments/labels/strokes.parquet"]
    write_manifest("rudiment_labels", None, labels, fingerprint="fake dataset", root=root)
    return table.to_pandas()
