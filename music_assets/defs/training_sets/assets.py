"""The training_sets group: prepared_sources -> track_annotations -> track_captions -> lora_training_set.

The computation lives in `music_assets.training_sets`; one module per asset here (`annotations`, `presets`,
`captions`, `training_set`, `hub`; shared names in `common`), gathered with the group's `defs` in this one.
Files:

    <data dir>/training_sets/annotations/<source_id>.json   track_annotations (one per partition)
    <data dir>/training_sets/style_presets.parquet          style_presets (the package's presets.yaml, resolved)
    <data dir>/training_sets/captions/<source_id>.json      track_captions (one per partition)
    <data dir>/training_sets/<name>/                        lora_training_set (ACE-Step v1 and 1.5 layouts)

`training_set_hub` pushes a set to its own Hub dataset repository through the publish group's
client, or plans the upload when no token or repository is configured."""

import dagster as dg

from music_assets.defs.publish.assets import HuggingFaceHub
from music_assets.defs.training_sets.annotations import (
    AnnotationConfig,
    track_annotations,
)
from music_assets.defs.training_sets.captions import (
    track_captions,
)
from music_assets.defs.training_sets.common import (
    FOLLOW,
    GROUP,
    PER_SOURCE,
    annotation_file,
    annotations_dir,
    caption_file,
    captions_dir,
    presets_file,
    remove_stale,
    selected_rows,
)
from music_assets.defs.training_sets.hub import (
    SetPublishConfig,
    training_set_hub,
)
from music_assets.defs.training_sets.presets import (
    style_presets,
)
from music_assets.defs.training_sets.training_set import (
    SET_CHECKS,
    TrainingSetConfig,
    _set_checks,
    lora_training_set,
)

__all__ = [
    "remove_stale",
    "selected_rows",
    "_set_checks",
    "annotation_file",
    "AnnotationConfig",
    "annotations_dir",
    "caption_file",
    "captions_dir",
    "defs",
    "FOLLOW",
    "GROUP",
    "lora_training_set",
    "PER_SOURCE",
    "presets_file",
    "SET_CHECKS",
    "SetPublishConfig",
    "style_presets",
    "track_annotations",
    "track_captions",
    "training_set_hub",
    "TrainingSetConfig",
]

defs = dg.Definitions(
    assets=[track_annotations, style_presets, track_captions, lora_training_set, training_set_hub],
    # its own repository: the dataset's variable must never send the training set there
    resources={"training_set_hf_hub": HuggingFaceHub(repo_env_var="MUSIC_ASSETS_HF_TRAINING_SET_REPO")},
)
