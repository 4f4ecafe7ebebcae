"""audio_catalog: every audio file under the music roots, described, and its checks."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from music_assets import paths
from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.sources.common import GROUP, AudioRoots, _read_parquet, catalog_file
from music_assets.defs.table_metadata import parquet_columns
from music_assets.progress import ProgressLog


class CatalogConfig(dg.Config):
    roots: list[str] | None = Field(
        default=None,
        description="Folders to catalog in this run only, walked recursively. Default: the audio_roots resource "
        "($MUSIC_ASSETS_AUDIO_ROOTS, else <data dir>/raw_audio), which automation always catalogs.",
    )
    workers: int = Field(default=0, ge=0, description="Analysis processes; 0 means one per core.")
    incremental: bool = Field(
        default=True, description="Reuse the previous row of every file whose size and mtime are unchanged."
    )
    max_error_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="The error_ratio check warns when more than this fraction of files are errors (0-1).",
    )


CATALOG_CHECKS = [
    dg.AssetCheckSpec(
        "unique_source_id",
        asset="audio_catalog",
        blocking=True,
        description="Every source_id is unique, and every readable file has one.",
    ),
    dg.AssetCheckSpec(
        "error_ratio",
        asset="audio_catalog",
        description="The fraction of files with status error stays under max_error_ratio (warning).",
    ),
]


def check_unique_source_id(path: Path) -> CheckResult:
    from collections import Counter  # noqa: PLC0415

    rows = _read_parquet(path).select(["source_id", "status", "rel_path"]).to_pylist()
    counts = Counter(r["source_id"] for r in rows if r["source_id"] is not None)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    missing = [r["rel_path"] for r in rows if r["status"] == "ok" and r["source_id"] is None]
    return CheckResult(
        name="unique_source_id",
        passed=not duplicated and not missing,
        metadata={
            "rows": len(rows),
            "duplicated_ids": len(duplicated),
            "ok_rows_without_id": len(missing),
            "examples": ", ".join((duplicated + missing)[:10]) or "none",
        },
    )


def check_error_ratio(path: Path, max_error_ratio: float) -> CheckResult:
    status = _read_parquet(path).column("status").to_pylist()
    errors = sum(s == "error" for s in status)
    ratio = errors / len(status) if status else 0.0
    return CheckResult(
        name="error_ratio",
        passed=ratio <= max_error_ratio,
        severity="warn",
        metadata={
            "error_ratio": round(ratio, 4),
            "errors": errors,
            "files": len(status),
            "max_error_ratio": max_error_ratio,
        },
    )


@dg.asset(owners=owners.SOURCES, code_version="1", group_name=GROUP, kinds={"parquet"}, check_specs=CATALOG_CHECKS)
def audio_catalog(context: dg.AssetExecutionContext, config: CatalogConfig, audio_roots: AudioRoots) -> Iterator:
    """Every audio file under the roots: format, duration, sample rate, channels, size, mtime, peak,
    RMS, clipped and silence ratios, EBU R128 loudness, and `ok` or the reason it is unusable;
    its provenance (provider, license, author, url, acquired, cost) from a sidecar JSON, the root's
    provenance.csv or the file's tags. The checks read the written parquet back."""
    from music_assets.audio import catalog  # noqa: PLC0415
    from music_assets.io import write_parquet  # noqa: PLC0415

    roots = config.roots or audio_roots.paths()
    setting = "this run's config (ops.audio_catalog.config.roots)" if config.roots else audio_roots.setting()
    context.log.info(f"cataloging {', '.join(roots)} (from {setting})")
    with writing(context):
        previous = catalog.load_previous(catalog_file()) if config.incremental else {}
        try:
            result = catalog.build_catalog(
                roots,
                previous=previous,
                excluded=paths.generated_dirs(),
                workers=config.workers,
                progress=ProgressLog(context.log.info, "catalog", "files"),
            )
        except catalog.CatalogError as exc:
            raise dg.Failure(description=str(exc)) from None
        write_parquet(catalog_file(), result.table())
    s = catalog.summary(result.rows)
    for problem in result.stats.unreadable_folders:
        context.log.warning(f"folder not readable, not cataloged: {problem}")
    provenance_errors = [r for r in result.rows if r["provenance_error"]]
    for r in provenance_errors[:20]:
        context.log.warning(f"provenance of {r['rel_path']} not fully read: {r['provenance_error']}")
    context.log.info(
        f"{s['files']} files: {result.analyzed} analysed, {result.reused} reused in {result.seconds:.1f} s"
    )
    checks = {
        "unique_source_id": lambda: check_unique_source_id(catalog_file()),
        "error_ratio": lambda: check_error_ratio(catalog_file(), config.max_error_ratio),
    }
    yield from materialize_with_checks(
        context,
        {
            "files": s["files"],
            "ok": s["ok"],
            "error_count": s["error"],
            "skipped_count": s["skipped"],
            "total_hours": round(s["total_hours"], 4),
            "formats": dg.MetadataValue.md(catalog.formats_markdown(result.rows)),
            "worst_files": dg.MetadataValue.md(catalog.worst_files_markdown(result.rows)),
            "licenses": dg.MetadataValue.md(catalog.licenses_markdown(result.rows)),
            "provenance_errors": len(provenance_errors),
            "analyzed_files": result.analyzed,
            "reused_rows": result.reused,
            "seconds": round(result.seconds, 3),
            "roots": dg.MetadataValue.md("\n".join(f"- `{r}`" for r in result.roots)),
            "roots_from": setting,
            "folders_walked": result.stats.folders,
            "folders_not_walked": dg.MetadataValue.md(
                "\n".join(
                    f"- {p}"
                    for p in result.stats.excluded + result.stats.unreadable_folders + result.stats.links_not_followed
                )
                or "none"
            ),
            "path": dg.MetadataValue.path(str(catalog_file())),
            **parquet_columns({"catalog": catalog_file()}, main="catalog"),
        },
        [checks[k.name]() for k in context.selected_asset_check_keys],
    )
