"""lora_training_set: the set in both trainer layouts, written atomically, with its gates."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from collections.abc import Iterator
from typing import Literal

import dagster as dg
from pydantic import Field

from music_assets import paths
from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.training_sets.captions import track_captions
from music_assets.defs.training_sets.common import FOLLOW, GROUP, annotations_dir, captions_dir, selected_rows


class TrainingSetConfig(dg.Config):
    name: str = Field(default="lofi", description="the set's folder: <data dir>/training_sets/<name>/")
    repeat: int = Field(
        default=100, description="ACE-Step v1: rows of the train HF dataset per track (its converter's repeat_count)"
    )
    validation_fraction: float = Field(default=0.1, description="share of tracks in validation (at least one)")
    seed: int = Field(default=0, description="seed of the split")
    audio_format: Literal["flac", "mp3"] = Field(
        default="flac",
        description="v1 audio: flac (hard links) or mp3 (320 kbps, for ACE-Step's converter, which reads *.mp3)",
    )
    min_category_share: float = Field(default=0.1, description="style_balance warns under this share per category")
    min_bpm_confidence: float = Field(
        default=0.43,
        description="low_confidence lists measured BPMs below this "
        "(essentia's 'low' band: multifeature confidence < 1.5 of 3.5)",
    )
    min_key_confidence: float = Field(default=0.5, description="low_confidence lists measured keys below this strength")


def _set_checks() -> list[dg.AssetCheckSpec]:
    from music_assets.training_sets.checks import BLOCKING, DESCRIPTIONS  # noqa: PLC0415

    return [
        dg.AssetCheckSpec(name, asset="lora_training_set", blocking=name in BLOCKING, description=desc)
        for name, desc in DESCRIPTIONS.items()
    ]


SET_CHECKS = _set_checks()


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[track_captions],
    kinds={"huggingface", "flac"},
    check_specs=SET_CHECKS,
    automation_condition=FOLLOW,
)
def lora_training_set(context: dg.AssetExecutionContext, config: TrainingSetConfig) -> Iterator:
    """The captioned tracks in both ACE-Step layouts (v1: audio + _prompt.txt + _lyrics.txt and the HF
    dataset its converter builds; 1.5: audio + .lyrics.txt + .caption.txt + .json and the key/BPM
    CSV), with a seeded validation split, a repeat count, a dataset hash and a JSON summary; audio
    hard-linked from prepared_sources; built aside and swapped in whole."""
    from music_assets.training_sets import checks  # noqa: PLC0415
    from music_assets.training_sets.collect import collect_tracks  # noqa: PLC0415
    from music_assets.training_sets.dataset import SetConfig, SetError, build_set  # noqa: PLC0415
    from music_assets.training_sets.layouts import LayoutError  # noqa: PLC0415
    from music_assets.training_sets.presets import load_presets  # noqa: PLC0415

    set_config = SetConfig(
        name=config.name,
        repeat=config.repeat,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        audio_format=config.audio_format,
    )
    excluded: list[dict] = []
    try:
        set_config.validate()
        keys = context.instance.get_dynamic_partitions(prepared_source_partitions.name)
        tracks, excluded = collect_tracks(keys, annotations_dir(), captions_dir(), selected_rows())
        for e in excluded:
            context.log.warning(f"not in the set: {e['file']}: {e['reason']}")
        summary = build_set(tracks, paths.training_sets_dir(), set_config, excluded)
    except (SetError, LayoutError) as exc:
        reasons = "".join(f"\n- {e['file']}: {e['reason']}" for e in excluded)
        raise dg.Failure(description=str(exc) + (f"\nnot in the set:{reasons}" if reasons else "")) from None
    folder = paths.training_sets_dir() / config.name
    presets = load_presets()
    outcomes = {
        "annotations_complete": lambda: checks.annotations_complete(folder),
        "tags_from_vocabulary": lambda: checks.tags_from_vocabulary(folder, presets),
        "caption_tempo_matches_bpm": lambda: checks.caption_tempo_matches_bpm(folder),
        "split_has_validation": lambda: checks.split_has_validation(folder),
        "datasets_loads_rows_match": lambda: checks.datasets_loads_rows_match(folder),
        "style_balance": lambda: checks.style_balance(folder, presets, config.min_category_share),
        "low_confidence": lambda: checks.low_confidence(folder, config.min_bpm_confidence, config.min_key_confidence),
    }
    results = [outcomes[check_key.name]() for check_key in context.selected_asset_check_keys]  # only those run
    distribution = [
        {"category": c, "style": s, "tracks": n}
        for s, n in summary["per_style"].items()
        for c in [next(t["category"] for t in tracks if t["style"] == s)]
    ]
    yield from materialize_with_checks(
        context,
        {
            "tracks": summary["tracks"],
            "train": summary["train"],
            "validation": summary["validation"],
            "excluded": len(excluded),
            "excluded_files": tm.table([("source_id", "string"), ("file", "string"), ("reason", "string")], excluded),
            "total_duration_sec": summary["total_duration_sec"],
            "dataset_hash": summary["dataset_hash"],
            "repeat": summary["repeat"],
            "per_category": dg.MetadataValue.json(summary["per_category"]),
            "style_distribution": tm.table(
                [("category", "string"), ("style", "string"), ("tracks", "int")], distribution
            ),
            "summary": dg.MetadataValue.json(summary),
            "ace_step_v1_dataset": dg.MetadataValue.path(str(folder / "ace_step_v1" / "train_hf")),
            "ace_step_v15_folder": dg.MetadataValue.path(str(folder / "ace_step_v15" / "train")),
            "path": dg.MetadataValue.path(str(folder)),
        },
        results,
    )
