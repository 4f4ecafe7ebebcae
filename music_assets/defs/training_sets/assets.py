"""The training_sets group: prepared_sources -> track_annotations -> track_captions -> lora_training_set.

The computation lives in `music_assets.training_sets`; this module wires it. Files:

    <data dir>/training_sets/annotations/<source_id>.json   track_annotations (one per partition)
    <data dir>/training_sets/style_presets.parquet          style_presets (the package's presets.yaml, resolved)
    <data dir>/training_sets/captions/<source_id>.json      track_captions (one per partition)
    <data dir>/training_sets/<name>/                        lora_training_set (ACE-Step v1 and 1.5 layouts)

`training_set_hub` pushes a set to its own Hub dataset repository through the publish group's
client, or plans the upload when no token or repository is configured.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from music_assets import paths
from music_assets.defs import owners
from music_assets.defs.automation import per_source_condition
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.publish.assets import RETRY, HuggingFaceHub
from music_assets.defs.sources.assets import prepared_file, prepared_sources, selected_file
from music_assets.integrity import confined_child

GROUP = "training_sets"
FOLLOW = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
# per-source partitions: new, changed upstream or a new code version; never every source at each catalog refresh
PER_SOURCE = per_source_condition()


def annotations_dir() -> Path:
    return paths.training_sets_dir() / "annotations"


def captions_dir() -> Path:
    return paths.training_sets_dir() / "captions"


def annotation_file(key: str) -> Path:
    """The annotation of one source partition; the key stays one name inside the data dir."""
    return confined_child(annotations_dir(), key, what="track_annotations partition key", suffix=".json")


def caption_file(key: str) -> Path:
    return confined_child(captions_dir(), key, what="track_captions partition key", suffix=".json")


def presets_file() -> Path:
    return paths.training_sets_dir() / "style_presets.parquet"


def _selected_rows() -> dict[str, dict]:
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not selected_file().is_file():
        return {}
    return {r["source_id"]: r for r in pq.read_table(selected_file()).to_pylist() if r["selected"]}


def _remove_stale(folder: Path, current: set[str]) -> list[str]:
    stale = sorted(p.stem for p in folder.glob("*.json") if p.stem not in current) if folder.is_dir() else []
    for name in stale:
        (folder / f"{name}.json").unlink(missing_ok=True)
    return stale


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> dg.TableMetadataValue:
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: r.get(name) for name, _ in columns}) for r in rows], schema=schema
    )


# ---------------------------------------------------------------------------
# track_annotations


class AnnotationConfig(dg.Config):
    method: Literal["essentia", "librosa"] = Field(
        default="essentia", description="essentia (chosen by bench/annotations.py) or the librosa baseline"
    )


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[prepared_sources],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    kinds={"json"},
    automation_condition=PER_SOURCE,
)
def track_annotations(context: dg.AssetExecutionContext, config: AnnotationConfig) -> dg.MaterializeResult:
    """Per prepared source: BPM, key (keyscale), time signature, each with confidence and source
    (measured, or the sidecar's / provenance.csv's word), duration, loudness, brightness, onset density."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.training_sets.analysis import AnalysisError  # noqa: PLC0415
    from music_assets.training_sets.annotation import annotate  # noqa: PLC0415

    rows = _selected_rows()
    done, failures = {}, []
    for key in context.partition_keys:
        row = rows.get(key, {})
        try:
            record = annotate(
                key, prepared_file(key), row.get("root"), row.get("rel_path"), paths.data_dir(), method=config.method
            )
        except (AnalysisError, OSError) as exc:
            failures.append(f"{key} ({prepared_file(key)}): {exc}")
            continue
        write_json(annotation_file(key), record)
        done[key] = record
    if failures:
        raise dg.Failure(
            description="could not annotate:\n" + "\n".join(failures),
            metadata={"failed": len(failures), "annotated_before_failure": len(done)},
        )
    for key, r in done.items():
        for problem in r["problems"]:
            context.log.warning(f"{key}: {problem}")
        context.add_asset_metadata(
            partition_key=key,
            metadata={
                "bpm": r["bpm"],
                "bpm_confidence": r["bpm_confidence"],
                "key": r["key"],
                "key_confidence": r["key_confidence"],
                "timesignature": f"{r['timesignature']}/4",
                "timesignature_confidence": r["timesignature_confidence"],
                "annotation_source": dg.MetadataValue.json(r["annotation_source"]),
                "measured": dg.MetadataValue.json(r["measured"]),
                "duration_sec": r["duration_sec"],
                "loudness_lufs": r["loudness_lufs"],
                "brightness_hz": r["brightness_hz"],
                "onset_density": r["onset_density"],
                "vocal": r["vocal"],
                "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in r["problems"]) or "none"),
                "path": dg.MetadataValue.path(str(annotation_file(key))),
            },
        )
    stale = _remove_stale(
        annotations_dir(), set(context.instance.get_dynamic_partitions(prepared_source_partitions.name))
    )
    if stale:
        context.log.info(f"removed the annotations of {len(stale)} sources no longer selected")
    return dg.MaterializeResult()


# ---------------------------------------------------------------------------
# style_presets


@dg.asset(owners=owners.TRAINING_SETS, code_version="1", group_name=GROUP, kinds={"yaml", "parquet"})
def style_presets(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The style taxonomy as data: 38 presets in 5 categories (the package's presets.yaml), `extends`
    resolved and validated; the resolved table as parquet."""
    import pyarrow as pa  # noqa: PLC0415

    from music_assets.io import write_parquet  # noqa: PLC0415
    from music_assets.training_sets.presets import CATEGORIES, PRESETS_FILE, PresetError, as_rows, load_presets  # noqa: PLC0415

    try:
        presets = load_presets()
    except PresetError as exc:
        raise dg.Failure(description=str(exc)) from None
    rows = as_rows(presets)
    table = pa.Table.from_pylist(rows)
    write_parquet(presets_file(), table)
    per_category = [{"category": c, "presets": sum(p.category == c for p in presets.values())} for c in CATEGORIES]
    return dg.MaterializeResult(
        metadata={
            "presets": len(presets),
            "per_category": _table(per_category, [("category", "string"), ("presets", "int")]),
            "presets_table": _table(
                rows,
                [
                    ("name", "string"),
                    ("category", "string"),
                    ("extends", "string"),
                    ("tempo_min", "float"),
                    ("tempo_max", "float"),
                    ("auto", "bool"),
                    ("genre", "string"),
                    ("mood", "string"),
                ],
            ),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(f.name, str(f.type)) for f in table.schema]
            ),
            "source": dg.MetadataValue.path(str(PRESETS_FILE)),
            "path": dg.MetadataValue.path(str(presets_file())),
        }
    )


# ---------------------------------------------------------------------------
# track_captions


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[track_annotations, style_presets],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    kinds={"json"},
    automation_condition=PER_SOURCE,
)
def track_captions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Per source: the style (sidecar, else rules over the measured features, with the rule and a
    confidence), tags from the preset's vocabulary plus measured facts, a one-sentence caption, the
    lyrics ([Instrumental] or the sidecar's file). A track that cannot be used gets an `error` row."""
    from music_assets.io import sha256_file, write_json  # noqa: PLC0415
    from music_assets.training_sets.captions import caption_record  # noqa: PLC0415
    from music_assets.training_sets.presets import load_presets  # noqa: PLC0415

    presets = load_presets()
    missing = []
    for key in context.partition_keys:
        src = annotation_file(key)
        if not src.is_file():
            missing.append(f"{key}: {src} does not exist (materialize track_annotations first)")
            continue
        record = caption_record(json.loads(src.read_text(encoding="utf-8")), presets)
        record["annotation_sha256"] = sha256_file(src)
        write_json(caption_file(key), record)
        if record["error"]:
            context.log.warning(f"{key}: not in the training set: {record['error']}")
        meta = (
            {"error": record["error"]}
            if record["error"]
            else {
                "style": record["style"],
                "category": record["category"],
                "style_source": record["style_source"],
                "style_rule": record["style_rule"],
                "style_confidence": record["style_confidence"],
                "tags": record["prompt"],
                "caption": record["caption"],
                "vocal": record["vocal"],
            }
        )
        context.add_asset_metadata(
            partition_key=key, metadata={**meta, "path": dg.MetadataValue.path(str(caption_file(key)))}
        )
    if missing:
        raise dg.Failure(description="\n".join(missing))
    _remove_stale(captions_dir(), set(context.instance.get_dynamic_partitions(prepared_source_partitions.name)))
    return dg.MaterializeResult()


# ---------------------------------------------------------------------------
# lora_training_set


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
        tracks, excluded = collect_tracks(keys, annotations_dir(), captions_dir(), _selected_rows())
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
            "excluded_files": _table(excluded, [("source_id", "string"), ("file", "string"), ("reason", "string")]),
            "total_duration_sec": summary["total_duration_sec"],
            "dataset_hash": summary["dataset_hash"],
            "repeat": summary["repeat"],
            "per_category": dg.MetadataValue.json(summary["per_category"]),
            "style_distribution": _table(
                distribution, [("category", "string"), ("style", "string"), ("tracks", "int")]
            ),
            "summary": dg.MetadataValue.json(summary),
            "ace_step_v1_dataset": dg.MetadataValue.path(str(folder / "ace_step_v1" / "train_hf")),
            "ace_step_v15_folder": dg.MetadataValue.path(str(folder / "ace_step_v15" / "train")),
            "path": dg.MetadataValue.path(str(folder)),
        },
        results,
    )


# ---------------------------------------------------------------------------
# training_set_hub


class SetPublishConfig(dg.Config):
    name: str = Field(default="lofi", description="the set under <data dir>/training_sets/ to publish")
    dry_run: bool = Field(default=False, description="only plan the upload")
    commit_message: str = Field(default="Update the training set from music_assets")


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[lora_training_set],
    kinds={"huggingface"},
    retry_policy=RETRY,
)
def training_set_hub(
    context: dg.AssetExecutionContext, config: SetPublishConfig, training_set_hf_hub: HuggingFaceHub
) -> dg.MaterializeResult:
    """The training set pushed as its own Hub dataset repository (resumable, verified) by the publish
    group's Hub client, or the upload plan when there is no token or repository, or dry_run is set."""
    from music_assets.publish.hub import HubError, plan_upload  # noqa: PLC0415

    folder = paths.training_sets_dir() / config.name
    if not (folder / "summary.json").is_file():
        raise dg.Failure(
            description=f"{folder}: no training set; materialize lora_training_set first", allow_retries=False
        )
    hub = training_set_hf_hub
    token = hub.token()
    reason = (
        f"no repository: set ${hub.repo_env_var} (or resources.training_set_hf_hub.config.repo_id)"
        if not hub.repository()
        else f"no token in ${hub.token_env_var}"
        if token is None
        else "dry_run is set"
        if config.dry_run
        else None
    )
    base = {
        "repo_id": hub.repository() or "(not configured)",
        "set": config.name,
        "dataset_hash": json.loads((folder / "summary.json").read_text())["dataset_hash"],
    }
    try:
        if reason is not None:
            plan = (
                plan_upload(hub.repository(), folder, None)
                if token is None or not hub.repository()
                else hub.client(token, context.log.info).plan(folder)
            )
            context.log.info(f"dry run ({reason}): {plan.summary()}")
            return dg.MaterializeResult(
                metadata={
                    **base,
                    "mode": "dry run",
                    "reason": reason,
                    **plan.summary(),
                    "plan": dg.MetadataValue.md(plan.markdown()),
                }
            )
        result = hub.client(token, context.log.info).publish(folder, config.commit_message)
    except HubError as exc:
        if not exc.retryable:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        raise
    return dg.MaterializeResult(
        metadata={**base, "mode": "uploaded", **result.plan.summary(), "verification": result.verification.describe()}
    )


defs = dg.Definitions(
    assets=[track_annotations, style_presets, track_captions, lora_training_set, training_set_hub],
    # its own repository: the dataset's variable must never send the training set there
    resources={"training_set_hf_hub": HuggingFaceHub(repo_env_var="MUSIC_ASSETS_HF_TRAINING_SET_REPO")},
)
