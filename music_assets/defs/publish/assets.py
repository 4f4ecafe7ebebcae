"""The publish group: the Hugging Face staging folder, its gates, and the push to the Hub.

- `hf_staging` builds `<data dir>/hf_staging/` (`music_assets.publish.staging`
  and `.card`): parquet shards with the audio and MIDI embedded, one config
  per rudiment family and per label table; five blocking checks gate it
  (`music_assets.publish.checks`), the last being `datasets.load_dataset` of
  the folder exactly as a Hub user calls it. When the shards would not fit
  beside the rendered audio (`shard_storage`), only their plans are staged.
- `hf_dataset` pushes that folder with `HfApi.upload_folder`, resuming from
  whatever the Hub already holds, then verifies the remote file list
  (`music_assets.publish.hub`); deferred shards are built a group at a time
  just before their upload and deleted after it. Without a token, without a
  repository, or with `dry_run: true`, it materializes the upload plan instead.

The repository and the token come from the environment variables named by the
`hf_hub` resource (`MUSIC_ASSETS_HF_REPO`, unless `repo_id` is configured, and
`HF_TOKEN`), read through `dg.EnvVar` when the asset runs, so `hf_dataset`
publishes to your repository with no run config; the token is never part of
config, metadata, logs or error messages.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import asset_check_result
from music_assets.defs.guards import clear_errors, writing
from music_assets.paths import data_dir, hf_staging_dir
from music_assets.publish import layout

STAGING_ASSET = "hf_staging"

RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class HuggingFaceHub(dg.ConfigurableResource):
    """Where and how the dataset is published on the Hugging Face Hub."""

    repo_id: str = Field(
        default="",
        description="dataset repository, owner/name; empty: $MUSIC_ASSETS_HF_REPO (repo_env_var), and without "
        "either hf_dataset only plans the upload",
    )
    repo_env_var: str = Field(
        default="MUSIC_ASSETS_HF_REPO",
        description="name of the environment variable holding the repository when repo_id is not configured",
    )
    private: bool = Field(default=True, description="create the repository as private")
    endpoint: str | None = Field(default=None, description="Hub endpoint (None: huggingface.co or $HF_ENDPOINT)")
    token_env_var: str = Field(
        default="HF_TOKEN",
        description="name of the environment variable holding a write token; unset means dry run",
    )

    def repository(self) -> str:
        """The dataset repository: `repo_id` if configured, else $MUSIC_ASSETS_HF_REPO, else "" (not chosen)."""
        # Read at run time like the token: an unset variable means "not configured", not a failed run.
        return (self.repo_id or dg.EnvVar(self.repo_env_var).get_value() or "").strip()

    def token(self) -> str | None:
        # Read through dg.EnvVar at run time rather than declared as an EnvVar field: Dagster
        # refuses to start a run whose EnvVar field is unset, and a missing token must give a dry run.
        return dg.EnvVar(self.token_env_var).get_value() or None

    def make_api(self, token: str):
        from huggingface_hub import HfApi  # noqa: PLC0415

        return HfApi(endpoint=self.endpoint, token=token)

    def client(self, token: str, log=lambda _msg: None):
        from music_assets.publish.hub import HubClient  # noqa: PLC0415

        return HubClient(self.make_api(token), self.repository(), token, private=self.private, log=log)


class StagingConfig(dg.Config):
    file_budget: int = Field(
        default=50_000,
        ge=0,
        description="up to this many media files (audio + MIDI) are also staged as browsable files beside the "
        "parquet shards (hard links); above it, only the parquet (the Hub refuses repositories of more than 100K "
        "files)",
    )
    shard_size_mb: float = Field(default=500.0, gt=0, description="upper bound of a parquet shard's size (MB)")
    shard_storage: Literal["auto", "local", "deferred"] = Field(
        default="auto",
        description="where the sample shards (which embed the audio) live: `local` writes them into the staging "
        "folder; `deferred` writes only their plans (the rows without the media bytes) and hf_dataset builds each "
        "shard just before uploading it, so the audio is never on disk twice; `auto` is local while they take at "
        "most half of the free disk",
    )
    license: str = Field(default="cc-by-4.0", description="license in the dataset card")
    pretty_name: str = Field(default="Drum Rudiments: synthetic snare performances with skill labels")


class PublishConfig(dg.Config):
    dry_run: bool = Field(default=False, description="only plan the upload (files, bytes, commits)")
    commit_message: str = Field(default="Update the dataset from music_assets")
    deferred_batch_mb: float = Field(
        default=2000.0,
        gt=0,
        description="deferred shards are built, uploaded (one commit) and deleted in groups of at most this many "
        "MB: the most they occupy on disk at once",
    )


def _md_list(items: list[str], limit: int = 20) -> dg.MetadataValue:
    shown = "\n".join(f"- `{i}`" for i in items[:limit])
    more = f"\n- … and {len(items) - limit} more" if len(items) > limit else ""
    return dg.MetadataValue.md(shown + more if items else "(none)")


def _bed_provenance() -> dict[str, dict]:
    """Provenance of every cataloged source (the beds' licenses for the card); empty before the
    sources group has run."""
    from music_assets.defs.sources.assets import selected_file, source_provenance  # noqa: PLC0415

    return source_provenance() if selected_file().is_file() else {}


@dg.asset(
    owners=owners.PUBLISH,
    code_version="1",
    group_name="publish",
    deps=["rudiment_labels"],
    kinds={"parquet", "huggingface"},
    description="The rudiment dataset in Hugging Face layout: parquet shards per rudiment family and split with "
    "the audio (datasets Audio feature) and MIDI embedded, stroke and measure tables as their own configs, "
    "browsable media by rudiment while they fit the file budget, a dataset card with plots; with deferred "
    "shard storage, the sample shards' plans, built at upload.",
)
def hf_staging(
    context: dg.AssetExecutionContext, config: StagingConfig, hf_hub: HuggingFaceHub
) -> dg.MaterializeResult:
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.defs.rudiments.assets import verified_labels_and_files  # noqa: PLC0415
    from music_assets.publish.card import CardSettings, write_card  # noqa: PLC0415
    from music_assets.publish.staging import StagingSettings, expected_files, stage, sweep  # noqa: PLC0415

    staging = hf_staging_dir()
    with writing(context):
        # the tables, and every audio and MIDI file they name (their recorded hashes fingerprint the shards)
        labels, media_digests = verified_labels_and_files("hf_staging")
        integrity.invalidate_manifest(STAGING_ASSET)
        staged = stage(
            data_dir(),
            staging,
            StagingSettings(
                file_budget=config.file_budget, shard_size_mb=config.shard_size_mb, shard_storage=config.shard_storage
            ),
            media_digests=media_digests,
        )
        card = write_card(
            staged,
            CardSettings(
                repo_id=hf_hub.repository(),
                license=config.license,
                pretty_name=config.pretty_name,
                bed_sources=_bed_provenance(),
            ),
        )
        removed = sweep(staging, expected_files(staged, card.files))
        integrity.write_manifest(  # what hf_dataset uploads is verified against it
            STAGING_ASSET,
            None,
            _every_file(staging),
            fingerprint=integrity.fingerprint(config.model_dump()),
            run_id=context.run_id,
            inputs={labels.label: labels.digest},
        )
    files = layout.list_files(staging)
    if card.undocumented:
        context.log.warning(f"columns without a description in the card: {', '.join(card.undocumented)}")
    context.log.info(
        f"staged {staged.table.num_rows} samples ({staged.mode} mode): {staged.media.linked} media linked, "
        f"{staged.media.copied} copied, {staged.media.unchanged} unchanged; {len(staged.parquet_written)} parquet "
        f"written, {len(staged.parquet_unchanged)} unchanged; {len(removed)} stale files removed; sample shards "
        f"{staged.shard_storage} ({staged.shard_storage_reason})"
    )
    by_split = staged.split_shards()
    families = {f: sum(1 for x in staged.families if x == f) for f in staged.shards}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(staging)),
            "card": dg.MetadataValue.path(str(staging / layout.CARD)),
            "mode": staged.mode,
            "shard_storage": staged.shard_storage,
            "shard_storage_reason": staged.shard_storage_reason,
            "sample_shards_bytes_estimated": staged.sample_shard_bytes,
            "samples": staged.table.num_rows,
            "splits": tm.table(
                [("split", "string"), ("samples", "int"), ("parquet files", "int")],
                [{"split": s, "samples": n, "parquet files": len(by_split[s])} for s, n in staged.split_rows.items()],
            ),
            tm.COLUMN_SCHEMA_KEY: dg.MetadataValue.table_schema(tm.columns_of(staged.data_schema, "data")),
            "configs": ", ".join(["default", *staged.shards, *staged.aux_shards]),
            "samples_per_family": str(families),
            "files": len(files),
            "bytes": sum(files.values()),
            "media_files": staged.media_files,
            "media_bytes": staged.media_bytes,
            "media_linked": staged.media.linked,
            "media_copied": staged.media.copied,
            "media_unchanged": staged.media.unchanged,
            "parquet_written": _md_list(staged.parquet_written),
            "parquet_unchanged": len(staged.parquet_unchanged),
            "card_files_written": _md_list(card.written),
            "stale_files_removed": _md_list(removed),
            "undocumented_columns": _md_list(card.undocumented),
            "score_plot": dg.MetadataValue.path(str(staging / layout.SCORE_PLOT)),
            "rudiment_plot": dg.MetadataValue.path(str(staging / layout.RUDIMENT_PLOT)),
        }
    )


def _every_file(root) -> list:
    """Every file under `root`, hidden ones (deferred shard plans) included, but not the record of
    deferred builds (hf_dataset's own bookkeeping, which it rewrites)."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    paths = (Path(d) / n for d, _dirs, names in os.walk(root) for n in names)
    return sorted(p for p in paths if p.relative_to(root).as_posix() != layout.BUILT_RECORD)


def _staging_check(name: str, description: str):
    @dg.asset_check(asset=hf_staging, name=name, blocking=True, description=description)
    def _check() -> dg.AssetCheckResult:
        from music_assets.publish import checks  # noqa: PLC0415

        return asset_check_result(checks.ALL_CHECKS[name](hf_staging_dir()))

    return _check


staging_checks = [
    _staging_check(
        "staging_paths_exist",
        "Every row's embedded audio and MIDI have bytes (deferred shards: every source file they will embed is "
        "the one staging planned); in the files layout each row's browsable media file exists with exactly "
        "those bytes' length.",
    ),
    _staging_check(
        "card_split_sizes_match",
        "For every config, the split sizes in the card's dataset_info equal the rows of the parquet files it names.",
    ),
    _staging_check(
        "no_profile_in_two_splits",
        "No player profile appears in two splits; every row is in the files of its split and rudiment family.",
    ),
    _staging_check(
        "card_front_matter_valid",
        "The card's YAML front matter parses, has the required keys, and its configs (default, one per "
        "family, strokes, measures) cover every parquet file, each split selecting only its own files.",
    ),
    _staging_check(
        "datasets_loads_offline",
        "datasets.load_dataset(staging) as a Hub user calls it (no data_files, no casting; offline, "
        "throw-away cache) returns every split with Audio decoding in each; every other config loads "
        "(families streamed) and streaming works. With deferred shards: the same on a preview whose first "
        "shard of each family and split is built from its plan as the upload builds it.",
    ),
]


@dg.asset(
    owners=owners.PUBLISH,
    code_version="1",
    group_name="publish",
    deps=[hf_staging],
    kinds={"huggingface"},
    retry_policy=RETRY,
    description="The staging folder pushed to a Hugging Face dataset repository (resumable, verified), "
    "or the upload plan when there is no token or dry_run is set.",
)
def hf_dataset(
    context: dg.AssetExecutionContext, config: PublishConfig, hf_hub: HuggingFaceHub
) -> dg.MaterializeResult:
    from music_assets.publish.card import written_for  # noqa: PLC0415
    from music_assets.publish.hub import HubError, plan_upload  # noqa: PLC0415

    staging = hf_staging_dir()
    if not (staging / layout.CARD).is_file():
        raise dg.Failure(
            description=f"{staging}: no staged dataset (no {layout.CARD}); materialize hf_staging first",
            allow_retries=False,
        )
    token = hf_hub.token()
    repo_id = hf_hub.repository()
    build_batch = int(config.deferred_batch_mb * 1e6)
    deferred = layout.deferred_shards(staging)
    base = {
        "repo_id": repo_id or "(not configured)",
        "private": hf_hub.private,
        "token_env_var": hf_hub.token_env_var,
        "deferred_shards": len(deferred),
    }
    # A token alone does not publish: pushing also needs a repository chosen on purpose (config or variable).
    reason = (
        f"no repository: set ${hf_hub.repo_env_var} (or resources.hf_hub.config.repo_id)"
        if not repo_id
        else f"no token in ${hf_hub.token_env_var}"
        if token is None
        else "dry_run is set"
        if config.dry_run
        else None
    )
    try:
        if reason is not None:
            if token is None or not repo_id:
                plan = plan_upload(repo_id, staging, None, build_batch_bytes=build_batch)
                remote = "unknown (no token or no repository): the plan assumes an empty repository"
            else:
                plan = hf_hub.client(token, context.log.info).plan(staging, build_batch_bytes=build_batch)
                remote = "read from the Hub"
            context.log.info(f"dry run ({reason}): {plan.summary()}")
            return dg.MaterializeResult(
                metadata={
                    **base,
                    "mode": "dry run",
                    "reason": reason,
                    "remote_state": remote,
                    **plan.summary(),
                    "plan": dg.MetadataValue.md(plan.markdown()),
                }
            )
        from music_assets.integrity import verify_manifest  # noqa: PLC0415

        with clear_errors():  # upload exactly what hf_staging wrote: every file's sha256 as recorded
            verify_manifest(STAGING_ASSET)
        if not written_for((staging / layout.CARD).read_text(encoding="utf-8"), repo_id):
            raise dg.Failure(
                description=f"{staging / layout.CARD} was written for another repository than "
                f"{repo_id}; materialize hf_staging with the same hf_hub config first",
                allow_retries=False,
            )
        result = hf_hub.client(token, context.log.info).publish(
            staging, config.commit_message, build_batch_bytes=build_batch
        )
    except HubError as exc:
        if not exc.retryable:
            # Retrying cannot fix a bad token, missing permission or wrong repository.
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        raise
    return dg.MaterializeResult(metadata=uploaded_metadata(base, result, hf_hub.endpoint, f"datasets/{repo_id}"))


def uploaded_metadata(base: dict, result, endpoint: str | None, path: str) -> dict:
    """What a Hub asset records after an upload (`hf_dataset`, `hf_model`): the repository's URL
    (`path` below the endpoint), the plan's summary and table, the commits and the verification."""
    url = f"{(endpoint or 'https://huggingface.co').rstrip('/')}/{path}"
    return {
        **base,
        "mode": "uploaded",
        "url": dg.MetadataValue.url(url),
        **result.plan.summary(),
        "commits_made": len(result.commits),
        "plan": dg.MetadataValue.md(result.plan.markdown()),
        "verification": result.verification.describe(),
        "remote_files": result.verification.remote_files,
    }


defs = dg.Definitions(
    assets=[hf_staging, hf_dataset],
    asset_checks=staging_checks,
    resources={"hf_hub": HuggingFaceHub()},
)
