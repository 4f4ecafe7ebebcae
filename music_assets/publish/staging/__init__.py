"""Build the Hugging Face staging folder from the rudiment labels and media.

Reads `<data>/rudiments/labels/{samples,strokes,measures,exercises}.parquet`
and the MIDI/FLAC files they point to, and writes the folder described in
`layout`: one row per sample in `data/<family>/{split}-NNNNN-of-NNNNN.parquet`
(the sample columns, the exercise scores, and `audio`/`midi` holding each
file's bytes and name as `struct<bytes, path>`, `audio` with the `datasets`
Audio feature), and the stroke and measure tables split the same way under
`auxiliary/<table>/`. Every shard stays under `shard_size_mb`; sample shards
have row groups of at most 100 rows (what the Hub's viewer reads at once).
So `datasets.load_dataset(<folder or repo>)` decodes audio with no download
beyond the parquet files, per family subset and when streaming.

Two layouts, the parquet files identical in both:
- **files** (default): the media are also browsable as files, hard-linked
  into `audio/<slug>/` and `midi/<slug>/` (copied where linking is
  impossible, never symlinked, so the folder uploads or archives as is;
  hard links cost no disk). A file whose staged copy is the same inode, or has
  the same size and modification time, is left alone.
- **embedded**: when those files would pass `file_budget` (the Hub refuses
  repositories of more than 100K files), only the parquet files.

Where the sample shards live (`shard_storage`), independent of the layout:
- **local**: written into the folder, so it is the whole dataset on disk
  (`datasets.load_dataset(folder)` reads it as is).
- **deferred**: the sample shards embed every audio file once more, which a
  100K-sample dataset cannot afford next to the rendered audio. Each shard's
  plan is written instead (`.deferred/<shard path>`: the same rows, with the
  media names and the source files' paths, sizes and modification times but
  no media bytes), and `build_deferred_shard` builds the shard from it,
  byte-identical to the local one, just before `hf_dataset` uploads it and
  deletes it afterwards. A source changed since staging is refused.
- **auto** (default): local while the shards take at most half of the free
  disk, deferred beyond.

Every parquet file carries a fingerprint of what it was built from (rows,
media sizes and modification times) in its footer; a re-run with unchanged
inputs rewrites nothing. Files in the staging folder that the current dataset
does not produce (old shards, removed samples, the other layout's media) are
deleted, so the folder is exactly the dataset.

The package: `base` (settings, what a staging holds, errors), `tables` (the
label tables read and joined), `media` (media files linked or copied),
`shards` (the parquet shards, rewritten only when their content changes),
`deferred` (shards planned now and built at upload), `build` (`stage`, and
the sweep of files no longer staged).
"""

from __future__ import annotations

from music_assets.publish.staging.base import (
    FINGERPRINT_KEY,
    LABEL_TABLES,
    LAYOUT_VERSION,
    LOCAL_SHARE_OF_FREE_DISK,
    MEDIA_COLUMNS,
    MEDIA_DIRS,
    MEDIA_TYPE,
    PLAN_COLUMNS,
    PLAN_KEY,
    REQUIRED_COLUMNS,
    SHARD_STORAGES,
    SOURCE_PATH_COLUMNS,
    MediaStats,
    StagedData,
    StagingError,
    StagingSettings,
    first_few,
)
from music_assets.publish.staging.build import expected_files, stage, sweep
from music_assets.publish.staging.deferred import (
    BuiltShard,
    build_deferred_shard,
    choose_shard_storage,
    plan_info,
    plan_info_of,
    read_built_record,
    record_built,
)
from music_assets.publish.staging.media import media_plan, sync_file
from music_assets.publish.staging.shards import (
    AUXILIARY_ROWS_PER_GROUP,
    SAMPLE_ROWS_PER_GROUP,
    features_schema,
    row_families,
    shard_table,
    write_auxiliary,
    write_bytes_if_changed,
    write_sample_shards,
    write_shard,
)
from music_assets.publish.staging.tables import read_labels, row_splits, sample_table

__all__ = [
    "AUXILIARY_ROWS_PER_GROUP",
    "BuiltShard",
    "FINGERPRINT_KEY",
    "LABEL_TABLES",
    "LAYOUT_VERSION",
    "LOCAL_SHARE_OF_FREE_DISK",
    "MEDIA_COLUMNS",
    "MEDIA_DIRS",
    "MEDIA_TYPE",
    "MediaStats",
    "PLAN_COLUMNS",
    "PLAN_KEY",
    "REQUIRED_COLUMNS",
    "SAMPLE_ROWS_PER_GROUP",
    "SHARD_STORAGES",
    "SOURCE_PATH_COLUMNS",
    "StagedData",
    "StagingError",
    "StagingSettings",
    "build_deferred_shard",
    "choose_shard_storage",
    "expected_files",
    "features_schema",
    "first_few",
    "media_plan",
    "plan_info",
    "plan_info_of",
    "read_built_record",
    "read_labels",
    "record_built",
    "row_families",
    "row_splits",
    "sample_table",
    "shard_table",
    "stage",
    "sweep",
    "sync_file",
    "write_auxiliary",
    "write_bytes_if_changed",
    "write_sample_shards",
    "write_shard",
]
