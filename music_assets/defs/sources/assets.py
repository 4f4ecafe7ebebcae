"""The sources group: audio_catalog -> selected_sources -> prepared_sources[source_id].

The computation lives in `music_assets.audio.{catalog,selection,preparation}`;
the group's modules wire it into assets, checks, the raw-audio sensor and the daily
catalog schedule (`catalog`, `selection`, `preparation`, `automation`; shared names in `common`);
this module gathers them and the group's `defs`. Files (contract in docs/design.md):

    <data dir>/catalog/audio_catalog.parquet
    <data dir>/catalog/selected_sources.parquet
    <data dir>/sources/prepared/<source_id>.flac

Which folders: the `audio_roots` resource (`AudioRoots`: $MUSIC_ASSETS_AUDIO_ROOTS,
default <data dir>/raw_audio), read by audio_catalog, raw_audio_sensor and every run
daily_audio_catalog starts. Only what changed re-runs: `selected_sources` records a
new data version of the observable source `source_files` for each source whose bytes
or provenance changed, and the per-source assets follow those (and new partitions),
not the whole selection (`automation.per_source_condition`).
"""

import dagster as dg

from music_assets.defs.sources.automation import (
    daily_audio_catalog,
    raw_audio_sensor,
    refresh_selection,
)
from music_assets.defs.sources.catalog import (
    CATALOG_CHECKS,
    CatalogConfig,
    audio_catalog,
    check_error_ratio,
    check_unique_source_id,
)
from music_assets.defs.sources.common import (
    GROUP,
    PREPARED_ASSET,
    ROOTS_ENV,
    SOURCE_FILES,
    AudioRoots,
    catalog_file,
    default_roots,
    prepared_dir,
    prepared_file,
    selected_file,
)
from music_assets.defs.sources.preparation import (
    PREPARED_CHECKS,
    PreparedSourcesConfig,
    prepared_sources,
    source_files,
)
from music_assets.defs.sources.selection import (
    DELETE_CHUNK,
    GONE_VERSION,
    SelectionConfig,
    delete_dynamic_partitions,
    preparable_ids,
    record_source_versions,
    selected_sources,
    source_provenance,
    sync_prepared_partitions,
    versions_to_record,
)

__all__ = [
    "audio_catalog",
    "AudioRoots",
    "CATALOG_CHECKS",
    "catalog_file",
    "CatalogConfig",
    "check_error_ratio",
    "check_unique_source_id",
    "daily_audio_catalog",
    "default_roots",
    "defs",
    "DELETE_CHUNK",
    "delete_dynamic_partitions",
    "GONE_VERSION",
    "GROUP",
    "preparable_ids",
    "PREPARED_ASSET",
    "PREPARED_CHECKS",
    "prepared_dir",
    "prepared_file",
    "prepared_sources",
    "PreparedSourcesConfig",
    "raw_audio_sensor",
    "record_source_versions",
    "refresh_selection",
    "ROOTS_ENV",
    "selected_file",
    "selected_sources",
    "SelectionConfig",
    "source_files",
    "SOURCE_FILES",
    "source_provenance",
    "sync_prepared_partitions",
    "versions_to_record",
]


defs = dg.Definitions(
    assets=[audio_catalog, selected_sources, source_files, prepared_sources],
    sensors=[raw_audio_sensor],
    schedules=[daily_audio_catalog],
    resources={"audio_roots": AudioRoots()},
)
