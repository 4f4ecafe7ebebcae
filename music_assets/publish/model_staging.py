"""The Hugging Face model repository: its files, verified against the hashes recorded when they were
written, staged atomically with hard links, and the checks of the staged folder.

```
hf_model_staging/
  README.md                                 model card (`model_card`)
  manifest.json                             every model: folder, files, sha256, evaluation, how to run it
  onnx/<tier>/<precision>/model.onnx        fp32: models/onnx/<tier>/; fp16, int8, int4: models/quantized/<tier>/<p>/
  onnx/<tier>/<precision>/model.json        (each folder is what onnx_generate --model takes)
  adapters/<tier>/adapter_model.safetensors models/lora/<tier>/adapter/ (peft save_pretrained)
  adapters/<tier>/adapter_config.json
  base/model.safetensors, model.json, vocab.json   models/base/
  evaluation/<tier>/<precision>.json, evaluation/summary.json   models/evaluation/
  .sources.json                             (hidden, never uploaded) each file's source and sha256
```

Every file is verified before the folder is published, by hashing the staged
copy (so what is checked is what is uploaded):
- `model.onnx` against the `sha256` of its `model.json` (written by the export or
  the quantization), and a variant's `fp32.sha256` must be the tier's exported
  model: a variant quantized from an older export is refused;
- `base/model.safetensors` against `weights_sha256` in `base/model.json`, and each
  tier's export must name those weights (`source.base_weights_sha256`);
- `adapter_model.safetensors` against `source.adapter_sha256` that the export of
  the tier recorded, and `adapter_config.json`'s LoRA settings against its
  `source.lora`; `base/vocab.json` must equal the vocabulary in the exports.
A mismatch raises `ModelStagingError` naming the file and both hashes. The JSON
records themselves have no recorded hash; their staged copies are checked
against their sources by `files_match_sources`.

The folder is built beside the old one (`.hf_model_staging.<id>.partial`) and
swapped in only when complete, so a failing or killed run leaves the previous
staging as it was. Large files are hard links (all writers under `models/`
replace files by rename, never in place, so a link keeps the bytes it was
verified with), copies where linking is impossible.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from music_assets.checks import CheckResult
from music_assets.io import read_json, sha256_file, write_bytes, write_json
from music_assets.publish.model_card import (
    PRECISIONS,
    RUNNER,
    SUMMARY_FILE,
    Evaluations,
    ModelCardError,
    StagedModel,
    load_evaluations,
    metric_cells,
    parse_metrics_table,
)

ONNX, ADAPTERS, BASE, EVALUATION = "onnx", "adapters", "base", "evaluation"
CARD, MANIFEST, SOURCES = "README.md", "manifest.json", ".sources.json"
BATCH_ORDER = (BASE, ADAPTERS, ONNX, EVALUATION, "card")  # the card and manifest go up last
FORMAT = "music_assets.hf_model/1"
MODEL_FILE, META_FILE = "model.onnx", "model.json"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
BASE_FILES = ("model.safetensors", "model.json", "vocab.json")
LORA_KEYS = ("r", "lora_alpha", "use_rslora", "target_modules", "lora_dropout")
SHOWN = 10


class ModelStagingError(ValueError):
    """A source missing, changed since it was recorded, or from another lineage; names the file."""


@dataclass(frozen=True)
class SourceFile:
    rel: str  # path in the repository
    source: Path
    expected_sha256: str | None = None  # recorded when the source was written
    recorded_in: Path | None = None


@dataclass
class ModelPlan:
    files: list[SourceFile]
    models: list[StagedModel]
    base_meta: dict[str, Any]
    lora: dict[str, dict[str, Any]]  # tier -> the LoRA settings its export recorded
    rudiments: list[str]  # the conditioning rudiments, as the models name them


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ModelStagingError(f"{path}: not found (materialize {what} first)")
    return path


def _json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = read_json(_require(path, what))
    except (OSError, ValueError) as exc:
        raise ModelStagingError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelStagingError(f"{path}: not a JSON object")
    return data


def _field(meta: dict[str, Any], path: Path, *keys: str) -> Any:
    value: Any = meta
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            raise ModelStagingError(f"{path}: no {'.'.join(keys)}")
        value = value[k]
    return value


def plan_repository(models_root: Path, tiers: Sequence[str], precisions: Sequence[str]) -> ModelPlan:
    """Every file of the repository for `tiers` x `precisions`, with the hash to verify it against.

    Reads only the small JSON records (the big files are hashed once, when staged). Raises
    ModelStagingError for a missing file or a file of another lineage (see the module docstring).
    """
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions or not tiers:
        raise ModelStagingError(f"precisions must be some of {', '.join(PRECISIONS)}; tiers at least one")
    base_dir = models_root / "base"
    base_meta_path = base_dir / META_FILE
    base_meta = _json(base_meta_path, "base_model")
    weights_sha = _field(base_meta, base_meta_path, "weights_sha256")
    files = [
        SourceFile(
            f"{BASE}/model.safetensors",
            _require(base_dir / "model.safetensors", "base_model"),
            weights_sha,
            base_meta_path,
        ),
        SourceFile(f"{BASE}/{META_FILE}", base_meta_path),
        SourceFile(f"{BASE}/vocab.json", _require(base_dir / "vocab.json", "base_model")),
    ]
    base_vocab = _json(base_dir / "vocab.json", "base_model")
    models: list[StagedModel] = []
    lora: dict[str, dict[str, Any]] = {}
    rudiments: set[str] = set()
    for tier in tiers:
        onnx_dir = models_root / "onnx" / tier
        meta_path = onnx_dir / META_FILE
        meta = _json(meta_path, f"onnx_models for {tier}")
        source = _field(meta, meta_path, "source")
        if _field(meta, meta_path, "source", "base_weights_sha256") != weights_sha:
            raise ModelStagingError(
                f"{meta_path}: exported from base weights with sha256 {source['base_weights_sha256']}, but "
                f"{base_meta_path} records {weights_sha} (materialize onnx_models for {tier} again)"
            )
        if _field(meta, meta_path, "vocab") != base_vocab:
            raise ModelStagingError(f"{meta_path}: its vocabulary differs from {base_dir / 'vocab.json'}")
        adapter = models_root / "lora" / tier / "adapter"
        adapter_config = _json(adapter / "adapter_config.json", f"lora_adapters for {tier}")
        recorded_lora = _field(meta, meta_path, "source", "lora")
        actual_lora = {k: v for k, v in adapter_config.items() if k in LORA_KEYS}
        if _canonical(actual_lora) != _canonical(recorded_lora):
            raise ModelStagingError(
                f"{adapter / 'adapter_config.json'}: LoRA settings {actual_lora} differ from {recorded_lora} "
                f"recorded in {meta_path} (the adapter changed since the export: materialize onnx_models for {tier})"
            )
        lora[tier] = recorded_lora
        files += [
            SourceFile(
                f"{ADAPTERS}/{tier}/adapter_model.safetensors",
                _require(adapter / "adapter_model.safetensors", f"lora_adapters for {tier}"),
                _field(meta, meta_path, "source", "adapter_sha256"),
                meta_path,
            ),
            SourceFile(f"{ADAPTERS}/{tier}/adapter_config.json", adapter / "adapter_config.json"),
        ]
        rudiments |= set(_field(meta, meta_path, "conditioning", "rudiment"))
        fp32_sha = _field(meta, meta_path, "sha256")
        for precision in precisions:
            if precision == "fp32":
                src_dir, src_meta, src_meta_path = onnx_dir, meta, meta_path
            else:
                src_dir = models_root / "quantized" / tier / precision
                src_meta_path = src_dir / META_FILE
                src_meta = _json(src_meta_path, f"quantized_models for {precision}|{tier}")
                if _field(src_meta, src_meta_path, "fp32", "sha256") != fp32_sha:
                    raise ModelStagingError(
                        f"{src_meta_path}: quantized from an fp32 model with sha256 {src_meta['fp32']['sha256']}, "
                        f"but {meta_path} records {fp32_sha} (materialize quantized_models for {precision}|{tier})"
                    )
            for key, want in (("tier", tier), ("precision", precision)):
                if src_meta.get(key) != want:
                    raise ModelStagingError(f"{src_meta_path}: {key} is {src_meta.get(key)!r}, expected {want!r}")
            folder = f"{ONNX}/{tier}/{precision}"
            model_path = _require(src_dir / MODEL_FILE, f"the {tier}/{precision} model")
            sha = _field(src_meta, src_meta_path, "sha256")
            files += [
                SourceFile(f"{folder}/{MODEL_FILE}", model_path, sha, src_meta_path),
                SourceFile(f"{folder}/{META_FILE}", src_meta_path),
            ]
            models.append(StagedModel(tier, precision, folder, sha, model_path.stat().st_size))
    return ModelPlan(files, models, base_meta, lora, sorted(rudiments))


def evaluation_files(evals: Evaluations) -> list[SourceFile]:
    """The evaluation files the card was made from, as files of the repository."""
    out = [SourceFile(f"{EVALUATION}/{SUMMARY_FILE}", evals.summary_file)]
    out += [SourceFile(f"{EVALUATION}/{t}/{p}.json", path) for (t, p), path in evals.files.items()]
    return out


def _canonical(d: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in d.items()}


# ---------------------------------------------------------------- staging


def link_or_copy(src: Path, dest: Path) -> bool:
    """Hard-link `src` to `dest` (True), or copy it where a link is impossible (False)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
        return True
    except OSError:
        shutil.copy2(src, dest)
        return False


@dataclass
class StagedRepo:
    staging: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # rel -> {"sha256", "size"}
    linked: int = 0
    copied: int = 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _leftovers(staging: Path) -> list[Path]:
    """Folders a killed run left beside `staging` (`.<name>.<pid>-<hex>.partial|.old`); a running
    process's own are not leftovers."""
    out = []
    for p in staging.parent.glob(f".{staging.name}.*"):
        tag = p.name[len(staging.name) + 2 :].rsplit(".", 1)
        if len(tag) == 2 and tag[1] in ("partial", "old"):
            pid = tag[0].split("-", 1)[0]
            if not (pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))):
                out.append(p)
    return out


def manifest(plan: ModelPlan, files: dict[str, dict[str, Any]], settings: dict[str, str]) -> dict[str, Any]:
    """`manifest.json`: what is in the repository and how to run each model."""
    example = plan.rudiments[0] if plan.rudiments else "<slug>"
    return {
        "format": FORMAT,
        "repo_id": settings.get("repo_id") or None,
        "dataset": settings.get("dataset_repo_id") or None,
        "runner": {
            "command": f"{RUNNER} --model <folder> --rudiment <slug> --out take.mid",
            "options": "--seed, --tempo, --temperature, --top-k, --top-p, --max-tokens, --threads",
            "python": "music_assets.ml.onnx_runtime.OnnxDrumModel(<folder>)",
            "onnxruntime": "model.json of each folder names the inputs (input_ids, past_key_<i>, past_value_<i>), "
            "the outputs (logits, present_key_<i>, present_value_<i>), the conditioning and special token ids, "
            "the vocabulary and the sampling defaults; the first call takes a zero-length cache",
        },
        "rudiments": plan.rudiments,
        "models": [
            {
                "tier": m.tier,
                "precision": m.precision,
                "folder": m.folder,
                "model_file": f"{m.folder}/{MODEL_FILE}",
                "sha256": m.sha256,
                "size_bytes": m.size_bytes,
                "evaluation": f"{EVALUATION}/{m.tier}/{m.precision}.json",
                "run": f"{RUNNER} --model {m.folder} --rudiment {example} --out take.mid",
            }
            for m in plan.models
        ],
        "adapters": {t: {"folder": f"{ADAPTERS}/{t}", "lora": lora} for t, lora in plan.lora.items()},
        "base": {"folder": BASE, "weights_sha256": plan.base_meta.get("weights_sha256")},
        "files": files,
    }


def stage_repository(
    data_root: Path,
    staging: Path,
    plan: ModelPlan,
    extra: Sequence[SourceFile],
    card: str,
    settings: dict[str, str],
) -> StagedRepo:
    """Build the repository folder beside `staging`, verify every file, then swap it in."""
    for p in _leftovers(staging):  # of a killed run
        shutil.rmtree(p, ignore_errors=True)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = staging.parent / f".{staging.name}.{tag}.partial"
    result = StagedRepo(staging)
    sources: dict[str, dict[str, str]] = {}
    try:
        for f in [*plan.files, *extra]:
            dest = tmp / f.rel
            if link_or_copy(f.source, dest):
                result.linked += 1
            else:
                result.copied += 1
            sha = sha256_file(dest)  # the staged bytes: what is uploaded
            if f.expected_sha256 is not None and sha != f.expected_sha256:
                raise ModelStagingError(
                    f"{f.source}: sha256 {sha} does not match {f.expected_sha256} recorded in {f.recorded_in} "
                    "(corrupt, or replaced since it was written)"
                )
            result.files[f.rel] = {"sha256": sha, "size": dest.stat().st_size}
            sources[f.rel] = {"source": f.source.resolve().relative_to(data_root.resolve()).as_posix(), "sha256": sha}
        write_json(tmp / MANIFEST, manifest(plan, dict(sorted(result.files.items())), settings))
        write_bytes(tmp / CARD, card.encode("utf-8"))
        write_json(tmp / SOURCES, sources)
        old = staging.parent / f".{staging.name}.{tag}.old"
        if staging.exists():
            staging.rename(old)
        tmp.rename(staging)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# ---------------------------------------------------------------- checks of the staged folder


def _inside(root: Path, rel: str) -> Path | None:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts:
        return None
    return root / rel


def _shown(items: list[str]) -> str:
    return "; ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def read_manifest(staging: Path) -> dict[str, Any]:
    path = staging / MANIFEST
    if not path.is_file():
        raise ModelStagingError(f"{path}: not found (materialize hf_model first)")
    return read_json(path)


def staged_models(manifest_data: dict[str, Any]) -> list[StagedModel]:
    return [
        StagedModel(m["tier"], m["precision"], m["folder"], m["sha256"], m["size_bytes"])
        for m in manifest_data["models"]
    ]


def files_match_sources(data_root: Path, staging: Path) -> CheckResult:
    """Every staged file hashes to the sha256 in the manifest and to its source's current sha256; the
    folder holds exactly the manifest's files, the card and the manifest."""
    from music_assets.publish.layout import list_files  # noqa: PLC0415

    try:
        files = read_manifest(staging)["files"]
        sources = read_json(staging / SOURCES)
    except (ModelStagingError, OSError, ValueError, KeyError) as exc:
        return CheckResult(False, f"no readable manifest: {exc}")
    problems = []
    for rel, rec in files.items():
        staged, src_rel = _inside(staging, rel), sources.get(rel, {}).get("source", "")
        source = _inside(data_root, src_rel)
        if staged is None or not staged.is_file():
            problems.append(f"{rel}: not staged")
            continue
        actual = sha256_file(staged)
        if actual != rec["sha256"]:
            problems.append(f"{rel}: staged sha256 {actual}, manifest {rec['sha256']}")
        if source is None:
            problems.append(f"{rel}: its source {src_rel or '(none)'!r} is not a path inside the data dir")
        elif not source.is_file():
            problems.append(f"{rel}: its source {src_rel} is gone")
        elif (now := sha256_file(source)) != actual:
            problems.append(f"{rel}: source {src_rel} now has sha256 {now}, staged {actual} (stale staging)")
    on_disk = set(list_files(staging))
    extra = sorted(on_disk - set(files) - {CARD, MANIFEST})
    problems += [f"{rel}: staged but not in the manifest" for rel in extra]
    return CheckResult(
        not problems,
        f"all {len(files)} staged files match the manifest and their sources"
        if not problems
        else f"{len(problems)} problems: {_shown(problems)}",
        {"files": len(files), "problems": len(problems)},
    )


def card_matches_evaluation(data_root: Path, staging: Path, eval_dir: Path) -> CheckResult:
    """The card's metrics table shows, for exactly the staged models, the numbers of the current evaluation
    files (which must have evaluated the staged model files); the staged evaluation files are those files;
    the front matter parses as a model card with library_name onnx and the dataset link."""
    from huggingface_hub import ModelCard  # noqa: PLC0415

    try:
        data = read_manifest(staging)
        models = staged_models(data)
        evals = load_evaluations(eval_dir, models)
        table = parse_metrics_table((staging / CARD).read_text(encoding="utf-8"))
        card = ModelCard((staging / CARD).read_text(encoding="utf-8"))
    except (ModelStagingError, ModelCardError, OSError, ValueError, KeyError) as exc:
        return CheckResult(False, str(exc))
    problems = []
    shown = set(table)
    for m in models:
        row = table.get(m.key)
        if row is None:
            problems.append(f"{m.name}: no row in the card's metrics table")
            continue
        want = metric_cells(evals.by_model[m.key])
        problems += [f"{m.name} {h}: card {row[h]!r}, evaluation {v!r}" for h, v in want.items() if row[h] != v]
        staged = staging / EVALUATION / m.tier / f"{m.precision}.json"
        if not staged.is_file() or staged.read_bytes() != evals.files[m.key].read_bytes():
            problems.append(f"{staged.relative_to(staging)}: not the evaluation file {evals.files[m.key]}")
    problems += [f"{t}/{p}: in the card's table but not staged" for t, p in sorted(shown - {m.key for m in models})]
    meta = card.data.to_dict()
    if meta.get("library_name") != "onnx" or not meta.get("license"):
        problems.append(f"front matter: library_name {meta.get('library_name')!r}, license {meta.get('license')!r}")
    if data.get("dataset") and meta.get("datasets") != [data["dataset"]]:
        problems.append(f"front matter: datasets {meta.get('datasets')!r}, expected [{data['dataset']!r}]")
    failing = sum(not g["passed"] for ev in evals.by_model.values() for g in ev["gates"].values())
    return CheckResult(
        not problems,
        f"the card shows the evaluation of all {len(models)} staged models ({failing} failing gate results stated)"
        if not problems
        else f"{len(problems)} problems: {_shown(problems)}",
        {"models": len(models), "failing_gate_results": failing, "problems": len(problems)},
    )


def staged_models_run(staging: Path) -> CheckResult:
    """Each staged ONNX folder loads with `OnnxDrumModel` (its model.onnx matching the sha256 of its
    model.json), is the tier and precision its folder says, and runs one step on a conditioning header
    with onnxruntime: logits of the vocabulary's size, all finite, and a cache of the header's length."""
    import numpy as np  # noqa: PLC0415

    from music_assets.ml.onnx_runtime import OnnxDrumModel, OnnxModelError  # noqa: PLC0415
    from music_assets.ml.tokenizer import TokenizerError  # noqa: PLC0415

    try:
        models = staged_models(read_manifest(staging))
    except (ModelStagingError, OSError, ValueError, KeyError) as exc:
        return CheckResult(False, f"no readable manifest: {exc}")
    problems, ran = [], {}
    for m in models:
        folder = _inside(staging, m.folder)
        try:
            if folder is None:
                raise OnnxModelError(f"{m.folder}: not a folder inside the staging")
            model = OnnxDrumModel(folder)
            if (model.meta.get("tier"), model.meta.get("precision")) != m.key:
                raise OnnxModelError(f"model.json says {model.meta.get('tier')}/{model.meta.get('precision')}")
            cond = model.meta["conditioning"]
            slug = sorted(cond["rudiment"])[0]
            tempo = float((cond.get("default_tempo_bpm") or {}).get(slug, next(iter(cond["tempo_bpm"]))))
            header = np.asarray([model.header(slug, tempo)], dtype=np.int64)
            logits, present = model.step(header)
            n = header.shape[1]
            if logits.shape != (1, n, len(model.vocab)) or not np.isfinite(logits).all():
                raise OnnxModelError(f"logits of shape {logits.shape}, finite: {bool(np.isfinite(logits).all())}")
            if any(p.shape[2] != n for p in present):
                raise OnnxModelError("the returned cache does not hold the header")
            ran[m.name] = model.vocab.tokens[int(logits[0, -1].argmax())]
        except (OnnxModelError, TokenizerError, KeyError, ValueError, StopIteration) as exc:
            problems.append(f"{m.folder}: {exc}")
    return CheckResult(
        not problems,
        f"all {len(models)} staged models load and run a step with onnxruntime"
        if not problems
        else f"{len(problems)} of {len(models)} models fail: {_shown(problems)}",
        {"models": len(models), "first_token_argmax": ", ".join(f"{k}: {v}" for k, v in ran.items())},
    )
