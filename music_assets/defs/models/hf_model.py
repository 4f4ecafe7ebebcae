"""hf_model (models group): the tier models as a Hugging Face model repository, staged and pushed.

Thin wiring over `music_assets.publish.model_staging` (which files, verified
against the sha256 recorded when each was written, staged atomically with hard
links) and `music_assets.publish.model_card` (the card, from the evaluation
files of `model_evaluation`; a missing or stale evaluation fails the asset,
naming the file). The push reuses the dataset's Hub client
(`music_assets.publish.hub`: resumable `upload_folder`, remote verified after),
with `repo_type="model"`.

Where it goes: the repository is `repo_id` of the config, else the environment
variable `MUSIC_ASSETS_HF_MODEL_REPO` (read through `dg.EnvVar` when the asset
runs); the token is the dataset's (`hf_hub`'s `token_env_var`, `HF_TOKEN`),
never part of config, metadata, logs or files. Without a repository, a token, a
dataset repository to link as training data (`hf_hub`'s `repo_id`), or with
`dry_run`, it stages and records the upload plan only. Before a push, the three
checks below run on the staged folder in the asset itself: a folder that fails
one is not pushed.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg
from pydantic import Field

from music_assets.defs import owners
from music_assets.defs.check_results import asset_check_result
from music_assets.defs.publish.assets import RETRY, HuggingFaceHub, uploaded_metadata
from music_assets.paths import data_dir, hf_model_staging_dir, models_dir
from music_assets.publish.model_card import PRECISIONS
from music_assets.rudiments.constants import SKILL_TIERS

MODEL_REPO_ENV = "MUSIC_ASSETS_HF_MODEL_REPO"
REPO_TYPE = "model"
# What the card is built from and what it ships.
UPSTREAM = ("base_model", "lora_adapters", "onnx_models", "quantized_models", "model_evaluation")


class HfModelConfig(dg.Config):
    repo_id: str = Field(
        default="",
        description=f"model repository, owner/name; empty: ${MODEL_REPO_ENV}; neither: only the upload plan",
    )
    tiers: list[str] = Field(default=list(SKILL_TIERS), description="tiers to publish (one folder each)")
    precisions: list[str] = Field(
        default=list(PRECISIONS), description="precisions to publish per tier: fp32 (the export), fp16, int8, int4"
    )
    license: str = Field(default="cc-by-4.0", description="license in the model card (the dataset's by default)")
    pretty_name: str = Field(default="Drum rudiment performance models (ONNX, per skill tier)")
    dry_run: bool = Field(default=False, description="stage and plan the upload (files, bytes, commits) only")
    commit_message: str = Field(default="Update the models from music_assets")


def model_repo_id(config: HfModelConfig) -> str:
    return config.repo_id or dg.EnvVar(MODEL_REPO_ENV).get_value() or ""


def _validate(config: HfModelConfig, repo_id: str) -> None:
    """Refuse bad settings before any file is touched."""
    from huggingface_hub.errors import HFValidationError  # noqa: PLC0415
    from huggingface_hub.utils import validate_repo_id  # noqa: PLC0415

    problems = []
    for name, values, allowed in (("tiers", config.tiers, SKILL_TIERS), ("precisions", config.precisions, PRECISIONS)):
        bad = [v for v in values if v not in allowed]
        if bad or not values or len(set(values)) != len(values):
            problems.append(f"{name} {values}: give each of {', '.join(allowed)} at most once, at least one")
    if repo_id:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as exc:
            problems.append(f"repo_id {repo_id!r}: {exc}")
        if repo_id.count("/") != 1:
            problems.append(f"repo_id {repo_id!r}: expected owner/name")
    if problems:
        raise dg.Failure(description="hf_model config: " + "; ".join(problems), allow_retries=False)


def _models_md(models, evals) -> dg.MetadataValue:
    rows = ["| tier | precision | KiB | sha256 | conditioning accuracy | gates passed |", "|---|---|---|---|---|---|"]
    for m in models:
        ev = evals.by_model[m.key]
        gates = ev["gates"].values()
        rows.append(
            f"| {m.tier} | {m.precision} | {m.size_bytes / 1024:,.0f} | `{m.sha256[:12]}` | "
            f"{ev['conditioning_accuracy']:.3f} | {sum(g['passed'] for g in gates)}/{len(gates)} |"
        )
    return dg.MetadataValue.md("\n".join(rows))


def _checks() -> dict[str, Callable[[], Any]]:
    """The checks of the staged folder by name: run by the asset checks, and by the asset before a push."""
    from music_assets.publish import model_staging as ms  # noqa: PLC0415

    staging = hf_model_staging_dir()
    return {
        "hf_model_files_match_sources": lambda: ms.files_match_sources(data_dir(), staging),
        "hf_model_card_matches_evaluation": lambda: ms.card_matches_evaluation(
            data_dir(), staging, models_dir() / "evaluation"
        ),
        "hf_model_staged_models_run": lambda: ms.staged_models_run(staging),
    }


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    deps=[dg.AssetKey(k) for k in UPSTREAM],
    kinds={"onnx", "huggingface"},
    retry_policy=RETRY,
    description="The ONNX models (every tier and precision), LoRA adapters and base model as a Hugging Face "
    "model repository with a card made from the evaluation, staged in <data dir>/hf_model_staging/ and pushed "
    "(resumable, verified) when a token and a repository are set; the upload plan otherwise.",
)
def hf_model(context: dg.AssetExecutionContext, config: HfModelConfig, hf_hub: HuggingFaceHub) -> dg.MaterializeResult:
    from music_assets.publish import model_staging as ms  # noqa: PLC0415
    from music_assets.publish.hub import HubClient, HubError, plan_upload  # noqa: PLC0415
    from music_assets.publish.model_card import (  # noqa: PLC0415
        ModelCardError,
        ModelCardSettings,
        TrainingFacts,
        load_evaluations,
        render_model_card,
    )

    repo_id = model_repo_id(config)
    _validate(config, repo_id)
    staging = hf_model_staging_dir()
    try:
        plan = ms.plan_repository(models_dir(), config.tiers, config.precisions)
        evals = load_evaluations(models_dir() / "evaluation", plan.models)
        settings = ModelCardSettings(
            repo_id=repo_id, dataset_repo_id=hf_hub.repository(), license=config.license, pretty_name=config.pretty_name
        )
        card = render_model_card(plan.models, evals, settings, TrainingFacts(plan.base_meta, plan.lora))
        staged = ms.stage_repository(
            data_dir(),
            staging,
            plan,
            ms.evaluation_files(evals),
            card,
            {"repo_id": repo_id, "dataset_repo_id": hf_hub.repository()},
        )
    except (ms.ModelStagingError, ModelCardError) as exc:
        # Re-running cannot fix a missing, stale or corrupt input; the message names the file.
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    failing = sorted({m.name for m in plan.models for g in evals.by_model[m.key]["gates"].values() if not g["passed"]})
    context.log.info(
        f"staged {len(plan.models)} models, {len(staged.files)} files ({staged.linked} linked, {staged.copied} "
        f"copied) in {staging}; models failing a gate: {', '.join(failing) or 'none'}"
    )
    base = {
        "repo_id": repo_id or "(not configured)",
        "repo_type": REPO_TYPE,
        "dataset_repo_id": hf_hub.repository() or "(not configured)",
        "private": hf_hub.private,
        "token_env_var": hf_hub.token_env_var,
        "path": dg.MetadataValue.path(str(staging)),
        "card": dg.MetadataValue.path(str(staging / ms.CARD)),
        "models": _models_md(plan.models, evals),
        "models_failing_a_gate": dg.MetadataValue.md(", ".join(failing) or "none"),
        "files_linked": staged.linked,
        "files_copied": staged.copied,
    }
    token = hf_hub.token()
    reason = (
        f"no repository: set ${MODEL_REPO_ENV} (or hf_model's repo_id)"
        if not repo_id
        else "no dataset repository to link as training data ($MUSIC_ASSETS_HF_REPO or resources.hf_hub.config.repo_id)"
        if not hf_hub.repository()
        else f"no token in ${hf_hub.token_env_var}"
        if token is None
        else "dry_run is set"
        if config.dry_run
        else None
    )

    def client() -> HubClient:
        return HubClient(
            hf_hub.make_api(token),
            repo_id,
            token,
            private=hf_hub.private,
            log=context.log.info,
            repo_type=REPO_TYPE,
            batch_order=ms.BATCH_ORDER,
        )

    try:
        if reason is not None:
            if token is None or not repo_id:
                plan_up = plan_upload(repo_id, staging, None, batch_order=ms.BATCH_ORDER)
                remote = "unknown (no token or no repository): the plan assumes an empty repository"
            else:
                plan_up = client().plan(staging)
                remote = "read from the Hub"
            context.log.info(f"dry run ({reason}): {plan_up.summary()}")
            return dg.MaterializeResult(
                metadata={
                    **base,
                    "mode": "dry run",
                    "reason": reason,
                    "remote_state": remote,
                    **plan_up.summary(),
                    "plan": dg.MetadataValue.md(plan_up.markdown()),
                }
            )
        failed = {name: o for name, run in _checks().items() if not (o := run()).passed}
        if failed:
            raise dg.Failure(
                description=f"{staging}: not pushed, the staged repository fails "
                + "; ".join(f"{name}: {o.description}" for name, o in failed.items()),
                allow_retries=False,
            )
        result = client().publish(staging, config.commit_message)
    except HubError as exc:
        if not exc.retryable:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        raise
    return dg.MaterializeResult(metadata=uploaded_metadata(base, result, hf_hub.endpoint, repo_id))


def _model_check(name: str, description: str):
    @dg.asset_check(asset=hf_model, name=name, blocking=True, description=description)
    def _check() -> dg.AssetCheckResult:
        return asset_check_result(_checks()[name]())

    return _check


hf_model_checks = [
    _model_check(
        "hf_model_files_match_sources",
        "Every staged file hashes to the sha256 in manifest.json and to its source's current sha256 under "
        "models/; the folder holds exactly the manifest's files, the card and the manifest.",
    ),
    _model_check(
        "hf_model_card_matches_evaluation",
        "The card's metrics table shows, for exactly the staged models, the numbers of the current evaluation "
        "files, each of which evaluated the staged model file (model_sha256); the staged evaluation files are "
        "those files; the front matter parses (library_name onnx, license, the dataset link).",
    ),
    _model_check(
        "hf_model_staged_models_run",
        "Each staged ONNX folder loads with OnnxDrumModel (model.onnx matching model.json's sha256), is the tier "
        "and precision its folder names, and runs one step on a conditioning header with onnxruntime.",
    ),
]


defs = dg.Definitions(assets=[hf_model], asset_checks=hf_model_checks)
