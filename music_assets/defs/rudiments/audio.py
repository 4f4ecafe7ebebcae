"""rudiment_audio: the rudiment performances rendered with FluidSynth and augmented, per rudiment.

The computation lives in `music_assets.audio.render` (rendering, gates),
`music_assets.audio.effects` / `presets` (augmentation) and
`music_assets.audio.onsets` (label/audio alignment).

The four gates are blocking asset checks reported per partition. A run of one
partition reports them through `MaterializeResult(check_results=...)`; a
single-run backfill over many partitions (a partition range) reports one
evaluation per partition and check, so the UI shows every rudiment's result.
"""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from music_assets import layout
from music_assets.audio.presets import PRESET_NAMES
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS
from music_assets.defs import owners
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.partitions import backfill_policy, rudiment_partitions
from music_assets.defs.rudiments.assets import AUDIO_ASSET, verify_partition
from music_assets.defs.table_metadata import parquet_columns
from music_assets.paths import data_dir
from music_assets.progress import ProgressLog

ASSET_KEY = dg.AssetKey("rudiment_audio")
GATES: dict[str, str] = {
    "audio_duration_matches_midi": "Every FLAC exists, is 44.1 kHz 24-bit with the configured channels and "
    "lasts the MIDI length (samples.parquet duration_sec) plus the release tail, within +-50 ms.",
    "audio_not_clipped": "No file has more than 0.1 % of its samples at full scale.",
    "audio_not_silent": "No file peaks below -60 dBFS.",
    "audio_aligned_with_labels": "Onsets detected in each dry render are within a median 5 ms of the labelled "
    "primary strokes (non-grace, not buzz bounces).",
}


class RudimentAudioConfig(dg.Config):
    soundfonts: list[str] = Field(
        default=[str(p) for p in DEFAULT_SOUNDFONTS],
        description="General MIDI .sf2 files; each sample gets one of them (balanced, by a stable hash).",
    )
    presets: list[str] = Field(
        default=list(PRESET_NAMES),
        description=f"Augmentation presets to deal out (known: {', '.join(PRESET_NAMES)}).",
    )
    seed: int = Field(default=0, description="Seed of the soundfont/preset choice and every augmentation draw.")
    channels: int = Field(
        default=1,
        ge=1,
        le=2,
        description="1: mono files (default; a General MIDI snare is centred), 2: stereo, with a stereo room.",
    )
    workers: int = Field(
        default=0, ge=0, description="Rendering processes; 0 = one per core, 1 = render in the step process."
    )
    background_beds: bool = Field(
        default=True,
        description="Mix background beds: texture_beds' hiss and clouds when any exist, else cuts of "
        "sources/prepared/*.flac.",
    )


def _summary_table(results: dict, gates: dict) -> str:
    lines = [
        "| rudiment | samples | audio s | soundfonts | presets | median align ms | gates |",
        "|---|---:|---:|---|---|---:|---|",
    ]
    for slug, part in results.items():
        rows = part.rows
        sfs = sorted({str(r["soundfont"]) for r in rows})
        presets = sorted({str(r["aug_preset"]) for r in rows})
        aligns = sorted(float(r["align_median_error_ms"]) for r in rows)
        med = aligns[len(aligns) // 2] if aligns else float("nan")
        failed = [g.name for g in gates[slug] if not g.passed]
        lines.append(
            f"| {slug} | {len(rows)} | {sum(float(r['audio_duration_sec']) for r in rows):.1f} | "
            f"{', '.join(sfs)} | {len(presets)} | {med:.2f} | {'FAILED: ' + ', '.join(failed) if failed else 'ok'} |"
        )
    return "\n".join(lines)


@dg.asset(
    owners=owners.RUDIMENTS,
    code_version="1",
    key=ASSET_KEY,
    group_name="rudiments",
    partitions_def=rudiment_partitions,
    backfill_policy=backfill_policy(),
    pool="fluidsynth",  # rendering uses every core: one such step at a time (dagster.yaml)
    # Texture beds' hiss and clouds, else the prepared sources, are the background
    # beds (when any exist): declaring them orders the runs so the beds are in
    # place before rendering, every time.
    deps=[
        dg.AssetKey("rudiment_performances"),
        dg.AssetDep("prepared_sources", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("texture_beds", partition_mapping=dg.AllPartitionMapping()),
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=ASSET_KEY, blocking=True, description=desc, partitions_def=rudiment_partitions)
        for name, desc in GATES.items()
    ],
    kinds={"python", "flac"},
    description="Every performance rendered with FluidSynth over several soundfonts and augmentation presets: "
    "rudiments/audio/<slug>/<sample_id>.flac (44.1 kHz, 24-bit, mono unless configured) and "
    "performances/<slug>/audio.parquet.",
)
def rudiment_audio(context: dg.AssetExecutionContext, config: RudimentAudioConfig):
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.audio import render  # noqa: PLC0415 - scipy/soundfile stay out of code-location loading

    slugs = list(context.partition_keys)
    data = data_dir()

    t0 = time.perf_counter()
    with writing(context):
        # what rendering reads, verified first: each partition's performances, and the beds
        inputs = {slug: verify_partition(slug, audio=False)[0] for slug in slugs}
        beds = _verified_beds(data) if config.background_beds else {}
        config_fp = integrity.fingerprint(
            {
                "soundfonts": [_file_identity(p) for p in config.soundfonts],
                "presets": config.presets,
                "seed": config.seed,
                "channels": config.channels,
                "beds": beds,
            }
        )
        for slug in slugs:  # readers refuse these partitions until each is whole again
            integrity.invalidate_manifest(AUDIO_ASSET, slug)

        def finished(slug: str, part) -> None:
            rows = part.rows
            files = [data / str(r["audio_path"]) for r in rows] + [part.table_path]
            integrity.write_manifest(
                AUDIO_ASSET,
                slug,
                files,
                fingerprint=config_fp,
                run_id=context.run_id,
                inputs={inputs[slug].label: inputs[slug].digest},
            )

        try:
            rendered = render.render_partitions(
                slugs,
                data,
                soundfonts=config.soundfonts,
                presets=config.presets,
                seed=config.seed,
                workers=config.workers,
                use_beds=config.background_beds,
                channels=config.channels,
                progress=ProgressLog(context.log.info, "rendering", "samples"),
                finished=finished,
            )
        except render.RenderError as exc:
            raise dg.Failure(description=str(exc)) from exc
    wall = time.perf_counter() - t0
    results, run = rendered.partitions, rendered.run
    gates = {slug: render.check_partition(slug, data) for slug in slugs}
    n = len(run.rows)
    audio_sec = float(sum(float(r["audio_duration_sec"]) for r in run.rows))
    metadata = {
        "samples": dg.MetadataValue.int(n),
        "dagster/row_count": dg.MetadataValue.int(n),
        "audio_seconds": dg.MetadataValue.float(round(audio_sec, 2)),
        "render_seconds": dg.MetadataValue.float(round(wall, 2)),
        "samples_per_second": dg.MetadataValue.float(round(n / wall, 2) if wall > 0 else 0.0),
        "audio_seconds_per_second": dg.MetadataValue.float(round(audio_sec / wall, 1) if wall > 0 else 0.0),
        "channels": dg.MetadataValue.int(config.channels),
        "workers": dg.MetadataValue.int(run.workers),
        "worker_cpu_seconds": dg.MetadataValue.float(round(run.cpu_seconds, 2)),
        "worker_peak_rss_mib": dg.MetadataValue.float(round(run.peak_rss_mib, 1)),
        "soundfonts": dg.MetadataValue.text(", ".join(config.soundfonts)),
        "audio_dir": dg.MetadataValue.path(str(layout.rudiments_dir(data) / "audio")),
        "partitions": dg.MetadataValue.md(_summary_table(results, gates)),
    }
    if len(slugs) == 1:
        metadata["audio_table"] = dg.MetadataValue.path(str(results[slugs[0]].table_path))
    metadata.update(parquet_columns({"audio": results[slugs[0]].table_path}, main="audio"))
    yield from materialize_with_checks(context, metadata, gates)


def _file_identity(path: str) -> dict:
    p = Path(path)
    st = p.stat() if p.is_file() else None
    return {"name": p.name, "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None}


def _verified_beds(data: Path) -> dict[str, str]:
    """The background beds rendering will draw from, each verified against the manifest of the
    texture_beds (or prepared_sources) partition that wrote it: label -> manifest digest."""
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.audio.effects import background_beds  # noqa: PLC0415

    sources = layout.sources_dir(data)
    manifests: dict[str, integrity.Manifest] = {}
    for bed in background_beds(sources):
        rel = integrity.confine(bed.path).relative_to(data).as_posix()
        parts = Path(bed.path).relative_to(sources).parts
        asset, key = ("texture_beds", parts[1]) if parts[0] == "textures" else ("prepared_sources", Path(bed.path).stem)
        label = integrity.manifest_label(asset, key)
        if label not in manifests:
            manifests[label] = integrity.verify_manifest(asset, key)
        if rel not in manifests[label].files:
            raise integrity.IntegrityError(f"{bed.path}: not listed in {manifests[label].path} (another generation)")
    return {label: m.digest for label, m in sorted(manifests.items())}


defs = dg.Definitions(assets=[rudiment_audio])
