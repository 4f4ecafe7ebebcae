"""What the rudiments group's assets share: the group's names, the dataset-size resource, partition files and
their verification."""

from collections.abc import Sequence

import dagster as dg

from music_assets import layout
from music_assets.paths import data_dir

GROUP = "rudiments"
PERFORMANCES = dg.AssetKey("rudiment_performances")
VALID_CHECK = "performances_valid"
REALISM_CHECK = "performances_realism"
# manifest names (music_assets.integrity): what each partition wrote, verified by its readers
PERF_ASSET, AUDIO_ASSET, LABELS_ASSET = "rudiment_performances", "rudiment_audio", "rudiment_labels"


def performance_files(slug: str) -> list:
    """Every file of a written performances partition: its four tables and the MIDI files they list."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from music_assets.integrity import confine  # noqa: PLC0415

    folder = layout.performance_dir(slug, data_dir())
    tables = [folder / f"{name}.parquet" for name in layout.PARTITION_TABLES]
    midi = pq.read_table(tables[0], columns=["midi_path"]).column("midi_path").to_pylist()
    return tables + [confine(data_dir() / rel, what=f"midi_path of {tables[0]}") for rel in midi]


def verify_partition(slug: str, audio: bool = True) -> list:
    """The manifests of a rudiment partition (performances, and audio rendered from exactly those
    performances), after checking every file's sha256; IntegrityError says what to re-materialize."""
    from music_assets import integrity  # noqa: PLC0415

    perf = integrity.verify_manifest(PERF_ASSET, slug)
    if not audio:
        return [perf]
    rendered = integrity.verify_manifest(AUDIO_ASSET, slug)
    if rendered.inputs.get(perf.label) != perf.digest:
        raise integrity.IntegrityError(
            f"{rendered.label} was rendered from another generation of {perf.label} (the performances were "
            f"regenerated since); re-materialize rudiment_audio --partition {slug}"
        )
    return [perf, rendered]


class PerformancesConfig(dg.Config):
    """No settings here: the dataset's size and seed are the `rudiment_dataset` resource's. Declared so
    that unknown keys in run config are refused instead of silently ignored."""


class RudimentDataset(dg.ConfigurableResource):
    """How much of the rudiment dataset to generate.

    `preset`: `demo` (40 rudiments x 20 players x 1 tempo, 800 samples) or `full`
    (40 x 250 players x 5 tempos x 2 lengths, 100,000 samples). The other fields
    override the preset when set.
    """

    preset: str = "demo"
    seed: int = 0
    num_profiles: int | None = None
    tempos_per_pair: int | None = None
    lengths_beats: list[int] | None = None

    def settings(self):
        from music_assets.rudiments.dataset import DatasetSettings  # noqa: PLC0415

        return DatasetSettings.resolve(
            self.preset, self.seed, self.num_profiles, self.tempos_per_pair, self.lengths_beats
        )


def md_rows(rows: Sequence[dict]) -> dg.MetadataValue:
    from music_assets.rudiments.labels import markdown_table  # noqa: PLC0415

    return dg.MetadataValue.md(markdown_table(list(rows)))
