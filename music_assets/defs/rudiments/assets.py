"""The rudiments group's data assets: rudiment_library, player_profiles, rudiment_performances, rudiment_labels.

Thin wiring over `music_assets.rudiments`, one module per step (`library`, `performances`, `labels`; shared
names in `common`); this module gathers them and their `defs`. The dataset's size comes from the
`rudiment_dataset` resource (preset `demo` by default, `full` for ~100,000 samples). rudiment_performances
runs many partitions in one run (single-run backfill policy) and reports its checks per partition
(`music_assets.defs.check_results`)."""

import dagster as dg

from music_assets.defs.rudiments.common import (
    AUDIO_ASSET,
    GROUP,
    LABELS_ASSET,
    PERF_ASSET,
    PERFORMANCES,
    REALISM_CHECK,
    VALID_CHECK,
    PerformancesConfig,
    RudimentDataset,
    md_rows,
    performance_files,
    verify_partition,
)
from music_assets.defs.rudiments.labels import (
    LabelsConfig,
    _checked,
    _label_tables,
    labels_realism,
    labels_referential_integrity,
    labels_scores_in_range,
    labels_stroke_counts_match_midi,
    labels_values_in_range,
    rudiment_labels,
    verified_labels,
    verified_labels_and_files,
)
from music_assets.defs.rudiments.library import (
    library_complete,
    player_profiles,
    profiles_split_by_player,
    rudiment_library,
)
from music_assets.defs.rudiments.performances import (
    _partition_outcomes,
    rudiment_performances,
)

__all__ = [
    "AUDIO_ASSET",
    "LABELS_ASSET",
    "PERF_ASSET",
    "_checked",
    "_label_tables",
    "md_rows",
    "_partition_outcomes",
    "defs",
    "GROUP",
    "labels_realism",
    "labels_referential_integrity",
    "labels_scores_in_range",
    "labels_stroke_counts_match_midi",
    "labels_values_in_range",
    "LabelsConfig",
    "library_complete",
    "performance_files",
    "PERFORMANCES",
    "PerformancesConfig",
    "player_profiles",
    "profiles_split_by_player",
    "REALISM_CHECK",
    "rudiment_labels",
    "rudiment_library",
    "rudiment_performances",
    "RudimentDataset",
    "VALID_CHECK",
    "verified_labels",
    "verified_labels_and_files",
    "verify_partition",
]

defs = dg.Definitions(
    assets=[rudiment_library, player_profiles, rudiment_performances, rudiment_labels],
    asset_checks=[
        library_complete,
        profiles_split_by_player,
        labels_referential_integrity,
        labels_scores_in_range,
        labels_stroke_counts_match_midi,
        labels_realism,
        labels_values_in_range,
    ],
    resources={"rudiment_dataset": RudimentDataset()},
)
