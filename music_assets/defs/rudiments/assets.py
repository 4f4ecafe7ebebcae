"""The rudiments group: rudiment_library, player_profiles, rudiment_performances, rudiment_labels.

Thin wiring over `music_assets.rudiments`. The dataset's size comes from the
`rudiment_dataset` resource (preset `demo` by default, `full` for ~100,000
samples; see README). rudiment_performances runs many partitions in one run
(single-run backfill policy) and reports its checks per partition
(`music_assets.defs.check_results`).
"""

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg

from music_assets import layout
from music_assets.checks import CheckResult, Markdown
from music_assets.defs import owners
from music_assets.defs.check_results import asset_check_result, materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.partitions import backfill_policy, rudiment_partitions
from music_assets.defs.table_metadata import parquet_columns
from music_assets.paths import data_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS, SPLITS

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


def _md_rows(rows: Sequence[dict]) -> dg.MetadataValue:
    from music_assets.rudiments.labels import markdown_table  # noqa: PLC0415

    return dg.MetadataValue.md(markdown_table(list(rows)))


# ---------------------------------------------------------------- rudiment_library
@dg.asset(owners=owners.RUDIMENTS, code_version="1", group_name=GROUP, kinds={"python"})
def rudiment_library() -> dg.MaterializeResult:
    """The 40 PAS rudiments as validated data (sticking, accents, grace notes, diddles, buzzes,
    subdivision, cycle length, tempo range), summarized in `rudiments/library.parquet`."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.io import write_parquet  # noqa: PLC0415
    from music_assets.rudiments.dataset import frame_to_table  # noqa: PLC0415
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    records = [r.to_record() for r in load_library().values()]
    path = write_parquet(layout.library_path(data_dir()), frame_to_table(pd.DataFrame(records)))
    cols = (
        "pas_number",
        "slug",
        "category",
        "subdivision",
        "cycle_beats",
        "tempo_min_bpm",
        "tempo_max_bpm",
        "sticking",
    )
    return dg.MaterializeResult(
        metadata={
            "rudiments": len(records),
            "triplet rudiments": sum(r["is_triplet"] for r in records),
            "path": dg.MetadataValue.path(str(path)),
            **parquet_columns({"library": path}, main="library"),
            "library": _md_rows([{c: r[c] for c in cols} for r in records]),
        }
    )


@dg.asset_check(asset=rudiment_library, blocking=True)
def library_complete() -> dg.AssetCheckResult:
    """library.parquet holds the 40 PAS rudiments once each, in PAS order, with valid tempo ranges."""
    import pandas as pd  # noqa: PLC0415

    df = pd.read_parquet(layout.library_path(data_dir()))
    problems = []
    if df["slug"].tolist() != list(RUDIMENT_SLUGS):
        problems.append(f"slugs differ from the 40 PAS slugs: {sorted(set(df['slug']) ^ set(RUDIMENT_SLUGS))}")
    if df["pas_number"].tolist() != list(range(1, len(RUDIMENT_SLUGS) + 1)):
        problems.append("PAS numbers are not 1..40 in order")
    if not (df["tempo_min_bpm"] < df["tempo_max_bpm"]).all():
        problems.append("a tempo range is empty")
    return asset_check_result(
        CheckResult(
            passed=not problems,
            description="; ".join(problems) or "40 unique PAS rudiments",
            metadata={"rows": len(df), "unique slugs": int(df["slug"].nunique())},
        )
    )


# ---------------------------------------------------------------- player_profiles
@dg.asset(owners=owners.RUDIMENTS, code_version="1", group_name=GROUP, kinds={"pandas"})
def player_profiles(rudiment_dataset: RudimentDataset) -> dg.MaterializeResult:
    """Simulated players in four skill tiers with correlated traits, split train/validation/test
    by player: `rudiments/profiles.parquet` and `rudiments/splits.json`."""
    from music_assets.io import write_json, write_parquet  # noqa: PLC0415
    from music_assets.rudiments.dataset import frame_to_table  # noqa: PLC0415
    from music_assets.rudiments.profiles import generate_profiles, splits_of  # noqa: PLC0415

    settings = rudiment_dataset.settings()
    profiles = generate_profiles(settings.num_profiles, settings.seed)
    write_parquet(layout.profiles_path(data_dir()), frame_to_table(profiles))
    write_json(layout.splits_path(data_dir()), splits_of(profiles))
    counts = profiles.groupby(["skill_tier", "split"]).size()
    rows = [{"tier": t, **{s: int(counts.get((t, s), 0)) for s in SPLITS}} for t in SKILL_TIERS]
    return dg.MaterializeResult(
        metadata={
            "preset": settings.preset,
            "profiles": len(profiles),
            "left-handed": int((profiles["dominant_hand"] == "left").sum()),
            "players per tier and split": _md_rows(rows),
            "path": dg.MetadataValue.path(str(layout.profiles_path(data_dir()))),
            **parquet_columns({"profiles": layout.profiles_path(data_dir())}, main="profiles"),
            "splits": dg.MetadataValue.path(str(layout.splits_path(data_dir()))),
        }
    )


@dg.asset_check(asset=player_profiles, blocking=True)
def profiles_split_by_player() -> dg.AssetCheckResult:
    """No player is in two splits, splits.json matches profiles.parquet, and when there are at
    least 12 players every tier has a player in every split."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.io import read_json  # noqa: PLC0415
    from music_assets.rudiments.profiles import MIN_PER_TIER_FOR_ALL_SPLITS  # noqa: PLC0415

    profiles = pd.read_parquet(layout.profiles_path(data_dir()))
    splits = read_json(layout.splits_path(data_dir()))
    problems = []
    seen: dict[str, str] = {}
    for name in SPLITS:
        for pid in splits.get(name, []):
            if pid in seen:
                problems.append(f"{pid} is in {seen[pid]} and {name}")
            seen[pid] = name
    if set(seen) != set(profiles["profile_id"]):
        problems.append("splits.json and profiles.parquet list different players")
    wrong = [p for p, s in zip(profiles["profile_id"], profiles["split"], strict=True) if seen.get(p) != s]
    if wrong:
        problems.append(f"{len(wrong)} players' split column disagrees with splits.json")
    if len(profiles) >= MIN_PER_TIER_FOR_ALL_SPLITS * len(SKILL_TIERS):
        have = set(zip(profiles["skill_tier"], profiles["split"], strict=True))
        missing = [f"{t}/{s}" for t in SKILL_TIERS for s in SPLITS if (t, s) not in have]
        if missing:
            problems.append(f"tiers missing from a split: {missing}")
    return asset_check_result(
        CheckResult(
            passed=not problems,
            description="; ".join(problems) or "split by player, every tier in every split",
            metadata={"players": len(profiles), **{s: len(splits.get(s, [])) for s in SPLITS}},
        )
    )


# ---------------------------------------------------------------- rudiment_performances
def _partition_outcomes(slug: str, rudiment, profiles, root: Path) -> tuple[CheckResult, CheckResult]:
    """(validity, realism) results of one written partition under the data dir `root`, computed from its files."""
    import dataclasses  # noqa: PLC0415

    from music_assets.rudiments import labels  # noqa: PLC0415

    tables = labels.TableSet.in_folder(layout.performance_dir(slug, root))
    parts = [
        labels.check_integrity(tables, root),
        labels.check_stroke_counts(tables, root),
        labels.check_scores(tables),
        labels.check_tempos(tables, {slug: rudiment}, profiles),
        labels.check_value_ranges(tables),
    ]
    meta: dict = {}
    for p in parts:
        meta.update({k: v for k, v in p.metadata.items() if k != "examples"})
    examples = [p.metadata["examples"] for p in parts if "examples" in p.metadata]
    if examples:  # Markdown when one of them is a table
        joined = "\n\n".join(examples)
        meta["examples"] = Markdown(joined) if any(isinstance(e, Markdown) for e in examples) else joined
    valid = CheckResult(
        name=VALID_CHECK,
        passed=all(p.passed for p in parts),
        description="; ".join(p.description for p in parts),
        metadata=meta,
    )
    realism, _ = labels.check_realism(tables)
    return valid, dataclasses.replace(realism, name=REALISM_CHECK)


@dg.asset(
    owners=owners.RUDIMENTS,
    code_version="1",
    group_name=GROUP,
    kinds={"midi"},
    partitions_def=rudiment_partitions,
    backfill_policy=backfill_policy(),
    deps=[rudiment_library, player_profiles],
    check_specs=[
        dg.AssetCheckSpec(
            VALID_CHECK,
            asset=PERFORMANCES,
            blocking=True,
            partitions_def=rudiment_partitions,
            description="Every stroke/measure/exercise row has its sample and every sample its MIDI file; "
            "stroke counts = MIDI note counts (snare 38, channel 10); scores in 0-100; tempos "
            "inside the rudiment's and the player's range; every label value finite and in range.",
        ),
        dg.AssetCheckSpec(
            REALISM_CHECK,
            asset=PERFORMANCES,
            partitions_def=rudiment_partitions,
            description="Per tier, measured timing-error SD and velocity CV inside the published ranges; "
            "timing_accuracy ordered by tier (warning).",
        ),
    ],
)
def rudiment_performances(
    context: dg.AssetExecutionContext, config: PerformancesConfig, rudiment_dataset: RudimentDataset
) -> Iterator:
    """Per rudiment: every player x tempo x length performed (ideal grid + the player's deviations),
    a General MIDI drum file each, and the strokes / measures / exercise-score tables. Each
    partition's manifest records every file's sha256 (rudiment_audio and rudiment_labels verify it)."""
    import dataclasses  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415

    from music_assets import integrity  # noqa: PLC0415
    from music_assets.io import sha256_file  # noqa: PLC0415
    from music_assets.rudiments.dataset import generate_partition  # noqa: PLC0415
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    settings = rudiment_dataset.settings()
    if not layout.profiles_path(data_dir()).is_file():
        raise dg.Failure(f"{layout.profiles_path(data_dir())} is missing: materialize player_profiles first")
    profiles = pd.read_parquet(layout.profiles_path(data_dir()))
    config_fp = integrity.fingerprint(
        {"settings": dataclasses.asdict(settings), "profiles": sha256_file(layout.profiles_path(data_dir()))}
    )
    library = load_library()
    keys = list(context.partition_keys)
    started = time.monotonic()
    rows, outcomes = [], {}
    progress = ProgressLog(context.log.info, "performing", "rudiments")
    progress(0, len(keys))
    with writing(context):
        for slug in keys:
            t0 = time.monotonic()
            integrity.invalidate_manifest(PERF_ASSET, slug)  # readers refuse the partition until it is whole
            result = generate_partition(library[slug], profiles, settings, data_dir())
            integrity.write_manifest(
                PERF_ASSET, slug, performance_files(slug), fingerprint=config_fp, run_id=context.run_id
            )
            outcomes[slug] = _partition_outcomes(slug, library[slug], profiles, data_dir())
            samples = result.samples
            rows.append(
                {
                    "rudiment": slug,
                    "samples": samples.num_rows,
                    "strokes": int(sum(samples.column("num_strokes").to_pylist())),
                    "audio seconds": round(sum(samples.column("duration_sec").to_pylist()), 1),
                    "skipped players": len(result.skipped_profiles),
                    "stale MIDI removed": result.removed_stale_midi,
                    "seconds": round(time.monotonic() - t0, 2),
                    "valid": outcomes[slug][0].passed,
                    "realistic": outcomes[slug][1].passed,
                }
            )
            context.log.info(f"{slug}: {samples.num_rows} samples in {rows[-1]['seconds']} s")
            progress(len(rows), len(keys))
    elapsed = time.monotonic() - started
    n = sum(r["samples"] for r in rows)
    metadata = {
        "preset": settings.preset,
        "partitions": len(keys),
        "samples": n,
        "seconds": round(elapsed, 2),
        "samples per second": round(n / elapsed, 1) if elapsed > 0 else 0.0,
        "per rudiment": _md_rows(rows),
        "dagster/row_count": n,
        **parquet_columns(
            {t: layout.performance_dir(keys[0], data_dir()) / f"{t}.parquet" for t in layout.PARTITION_TABLES},
            main="samples",
            documented_as={"samples": "data", "strokes": "strokes", "measures": "measures"},
        ),
    }
    yield from materialize_with_checks(context, metadata, {slug: list(outcomes[slug]) for slug in keys})


# ---------------------------------------------------------------- rudiment_labels
class LabelsConfig(dg.Config):
    """Which partitions to merge (default: all 40; each must have its performances and audio)."""

    rudiments: list[str] = list(RUDIMENT_SLUGS)


def _label_tables():
    """The merged tables, once their manifest verifies (IntegrityError otherwise)."""
    from music_assets.integrity import verify_manifest  # noqa: PLC0415
    from music_assets.rudiments.labels import TableSet  # noqa: PLC0415

    verify_manifest(LABELS_ASSET)
    return TableSet.in_folder(layout.labels_dir(data_dir()))


def verified_labels(reader: str, files_of: tuple[str, ...] = (PERF_ASSET, AUDIO_ASSET)):
    """For an asset that reads the merged labels: the labels manifest, after checking the four tables'
    sha256 and that every partition they were merged from is still that generation, every file of
    the partitions of `files_of` intact (the reader's inputs: token_corpus reads the MIDI, not the
    audio). IntegrityError names the file and both hashes, or what to re-materialize."""
    return verified_labels_and_files(reader, files_of)[0]


def verified_labels_and_files(reader: str, files_of: tuple[str, ...] = (PERF_ASSET, AUDIO_ASSET)):
    """`verified_labels`, and the sha256 of every file of the verified partitions (path relative to
    the data dir -> sha256, as their manifests record and the check just confirmed)."""
    from music_assets import integrity  # noqa: PLC0415

    samples = layout.labels_dir(data_dir()) / "samples.parquet"
    if not samples.is_file():
        raise integrity.IntegrityError(f"{samples}: not found (materialize rudiment_labels first)")
    labels = integrity.verify_manifest(LABELS_ASSET)
    integrity.check_inputs_current(labels, reader)
    files: dict[str, str] = {}
    for label in sorted(labels.inputs):
        asset, _, partition = label.partition("/")
        if asset in files_of:
            files.update(integrity.verify_manifest(asset, partition or None).files)
    return labels, files


@dg.asset(
    owners=owners.RUDIMENTS,
    code_version="1",
    group_name=GROUP,
    kinds={"parquet"},
    deps=[PERFORMANCES, dg.AssetKey("rudiment_audio")],
)
def rudiment_labels(context: dg.AssetExecutionContext, config: LabelsConfig) -> dg.MaterializeResult:
    """The dataset's label files `rudiments/labels/{samples,strokes,measures,exercises}.parquet`:
    every partition's tables (samples joined with audio on sample_id), merged one partition at a time.
    Every partition's performances and audio are verified against their manifests first (a partition
    whose run was interrupted, or whose files changed, is refused), and the labels' own manifest
    records the tables' sha256 and the partitions they came from."""
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.rudiments.labels import merge_labels  # noqa: PLC0415

    unknown = sorted(set(config.rudiments) - set(RUDIMENT_SLUGS))
    if unknown:
        raise dg.Failure(f"unknown rudiments in config: {unknown}")
    slugs = [s for s in RUDIMENT_SLUGS if s in set(config.rudiments)]
    t0 = time.monotonic()
    with writing(context):
        read = {m.label: m.digest for slug in slugs for m in verify_partition(slug)}
        integrity.invalidate_manifest(LABELS_ASSET)
        summary = merge_labels(slugs, data_dir())
        for label, digest in read.items():  # a run that rewrote a partition meanwhile: not one generation
            asset, _, partition = label.partition("/")
            if integrity.read_manifest(asset, partition).digest != digest:
                raise integrity.IntegrityError(f"{label} changed while the labels were merged; materialize again")
        tables = [layout.labels_dir(data_dir()) / f"{name}.parquet" for name in layout.PARTITION_TABLES]
        manifest = integrity.write_manifest(
            LABELS_ASSET,
            None,
            tables,
            fingerprint=integrity.fingerprint({"rudiments": slugs}),
            run_id=context.run_id,
            inputs=read,
        )
    return dg.MaterializeResult(
        metadata={
            "partitions": len(slugs),
            **{f"{k} rows": v for k, v in summary.rows.items()},
            "audio columns": ", ".join(summary.audio_columns),
            "seconds": round(time.monotonic() - t0, 2),
            "folder": dg.MetadataValue.path(str(layout.labels_dir(data_dir()))),
            **parquet_columns(
                {t: layout.labels_dir(data_dir()) / f"{t}.parquet" for t in layout.PARTITION_TABLES},
                main="samples",
                documented_as={"samples": "data", "strokes": "strokes", "measures": "measures"},
            ),
            "dagster/row_count": summary.rows["samples"],
            "sha256": dg.MetadataValue.json({Path(k).name: v for k, v in manifest.files.items()}),
            "manifest": dg.MetadataValue.path(str(manifest.path)),
        }
    )


def _checked(run) -> dg.AssetCheckResult:
    """A check's result; labels that do not verify against their manifest fail it (an error), saying why."""
    from music_assets.integrity import IntegrityError  # noqa: PLC0415

    try:
        return asset_check_result(run())
    except IntegrityError as exc:
        return asset_check_result(CheckResult(passed=False, description=str(exc)))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_referential_integrity() -> dg.AssetCheckResult:
    """Every stroke, measure and exercise row has its sample; every sample has its MIDI and audio file."""
    from music_assets.rudiments.labels import check_integrity  # noqa: PLC0415

    return _checked(lambda: check_integrity(_label_tables(), data_dir(), require_audio=True))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_scores_in_range() -> dg.AssetCheckResult:
    """Every exercise score is within 0-100 (or null where it does not apply)."""
    from music_assets.rudiments.labels import check_scores  # noqa: PLC0415

    return _checked(lambda: check_scores(_label_tables()))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_stroke_counts_match_midi() -> dg.AssetCheckResult:
    """Each sample's stroke rows = num_strokes = the note count of its MIDI file."""
    from music_assets.rudiments.labels import check_stroke_counts  # noqa: PLC0415

    return _checked(lambda: check_stroke_counts(_label_tables(), data_dir()))


@dg.asset_check(asset=rudiment_labels)
def labels_realism() -> dg.AssetCheckResult:
    """Per tier over the whole dataset: timing-error SD and velocity CV inside the published ranges,
    timing_accuracy ordered by tier (warning)."""
    from music_assets.rudiments.labels import check_realism  # noqa: PLC0415

    return _checked(lambda: check_realism(_label_tables())[0])


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_values_in_range() -> dg.AssetCheckResult:
    """Every label value is finite and in range: onset times inside the take, |timing error| <= 1 s and
    equal to actual - intended, velocities 1-127, flam spacing 0-1 s, durations, per-sample statistics
    (damage that keeps a file readable, such as a flipped byte in a data page, stops here)."""
    from music_assets.rudiments.labels import check_value_ranges  # noqa: PLC0415

    return _checked(lambda: check_value_ranges(_label_tables()))


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
