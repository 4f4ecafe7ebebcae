"""rudiment_performances (one partition per rudiment): every player's takes as MIDI and tables, checked per
partition."""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from music_assets import layout
from music_assets.checks import CheckResult, Markdown
from music_assets.defs import owners
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.partitions import backfill_policy, rudiment_partitions
from music_assets.defs.rudiments.common import (
    GROUP,
    PERF_ASSET,
    PERFORMANCES,
    REALISM_CHECK,
    VALID_CHECK,
    PerformancesConfig,
    RudimentDataset,
    md_rows,
    performance_files,
)
from music_assets.defs.rudiments.library import player_profiles, rudiment_library
from music_assets.defs.table_metadata import parquet_columns
from music_assets.paths import data_dir
from music_assets.progress import ProgressLog


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
        "per rudiment": md_rows(rows),
        "dagster/row_count": n,
        **parquet_columns(
            {t: layout.performance_dir(keys[0], data_dir()) / f"{t}.parquet" for t in layout.PARTITION_TABLES},
            main="samples",
            documented_as={"samples": "data", "strokes": "strokes", "measures": "measures"},
        ),
    }
    yield from materialize_with_checks(context, metadata, {slug: list(outcomes[slug]) for slug in keys})
