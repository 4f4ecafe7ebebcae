"""training_set_hub: the set pushed to its own Hub dataset repository, or the upload planned."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import json

import dagster as dg
from pydantic import Field

from music_assets import paths
from music_assets.defs import owners
from music_assets.defs.publish.assets import RETRY, HuggingFaceHub
from music_assets.defs.training_sets.common import GROUP
from music_assets.defs.training_sets.training_set import lora_training_set


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
