"""Deployable models (models group): per-tier ONNX exports and their FP16 / INT8 / INT4 variants.

Thin wiring over `music_assets.ml.export` (merge the adapter, export with a KV
cache, parity against torch) and `music_assets.ml.quantize` (variants and
their size, speed and quality reports, measured with onnxruntime only). torch
and onnxruntime are imported inside the bodies so loading the code location
stays fast. Both assets take the `training` pool and report their checks per
partition (`music_assets.defs.check_results`), also in a single run over many
partitions.

Files: `models/onnx/<tier>/{model.onnx, model.json, parity.json}` and
`models/quantized/<tier>/<precision>/{model.onnx, model.json}` (the report is
in `model.json`), plus `models/quantized/<tier>/reference.json`, the fp32
numbers the variants of that tier were compared with. Both assets write them
as candidates under `models/candidate/` and read their inputs from the
candidate where there is one, else from the promoted models
(`music_assets.ml.promotion`); `model_evaluation` promotes them.
"""

from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg

from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.models.common import GRAMMAR_GATE, POOL
from music_assets.defs.partitions import backfill_policy, quantized_partitions, tier_partitions
from music_assets.paths import models_dir
from music_assets.progress import ProgressLog

PARITY_TOLERANCE = 1e-4
MIN_TOP1_AGREEMENT = {"fp16": 0.98, "int8": 0.95, "int4": 0.90}
MAX_INT8_SIZE_RATIO = 0.35


# --- onnx_models -------------------------------------------------------------------------------
class OnnxModelsConfig(dg.Config):
    opset: int = 18  # >= 17
    parity_sequences: int = 4  # validation sequences of the tier compared as one batch
    parity_prefill_tokens: int = 32
    parity_decode_steps: int = 16
    greedy_tokens: int = 64


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    partitions_def=tier_partitions,
    backfill_policy=backfill_policy(),
    pool=POOL,
    deps=[dg.AssetKey("lora_adapters")],
    kinds={"pytorch", "onnx"},
    check_specs=[
        dg.AssetCheckSpec(
            "onnx_parity",
            asset="onnx_models",
            blocking=True,
            partitions_def=tier_partitions,
            description=f"max |logit difference| onnxruntime vs torch <= {PARITY_TOLERANCE} on a prefill and on cached "
            "decode steps, and identical greedy generation",
        )
    ],
)
def onnx_models(context: dg.AssetExecutionContext, config: OnnxModelsConfig):
    """Each tier's adapter merged into the base, exported to one ONNX file with a KV cache and dynamic axes."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.ml import promotion  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415
    from music_assets.ml.export import export_tier, parity_report  # noqa: PLC0415
    from music_assets.ml.onnx_runtime import OnnxDrumModel  # noqa: PLC0415
    from music_assets.ml.workflows import load_tier_model  # noqa: PLC0415

    models = models_dir()
    promotion.recover(models)
    corpus = Corpus(models / "corpus")
    rows: list[list[Any]] = []
    results: dict[str, list[CheckResult]] = {}
    metadata: dict[str, Any] = {}
    progress = ProgressLog(context.log.info, "exporting", "tiers")
    progress(0, len(context.partition_keys))
    for tier in context.partition_keys:
        adapter, out = promotion.effective(models, "lora", tier) / "adapter", promotion.candidate(models, "onnx", tier)
        if not (adapter / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{adapter}: no saved adapter (materialize lora_adapters for {tier} first)")
        base = _base_of(models, adapter)
        meta = export_tier(base, adapter, models / "corpus", out, tier, opset=config.opset)
        reference, _ = load_tier_model(base, adapter)  # unmerged, as trained: checks the merge too
        parity = parity_report(
            reference,
            OnnxDrumModel(out),
            corpus.split("validation").sequences(tier),
            batch=config.parity_sequences,
            prefill_tokens=config.parity_prefill_tokens,
            decode_steps=config.parity_decode_steps,
            greedy_tokens=config.greedy_tokens,
            tolerance=PARITY_TOLERANCE,
        )
        write_json(out / "parity.json", parity.as_dict())
        context.log.info(f"[{tier}] exported {meta['size_bytes']} bytes; parity {parity.as_dict()}")
        progress(len(results) + 1, len(context.partition_keys))
        results[tier] = [
            CheckResult(
                name="onnx_parity",
                passed=parity.passed,
                metadata={
                    **{k: v for k, v in parity.as_dict().items() if k != "passed"},
                    "model": dg.MetadataValue.path(str(out)),
                },
            )
        ]
        rows.append(
            [
                tier,
                meta["size_bytes"],
                meta["parameters"],
                meta["opset"],
                parity.prefill_max_abs_diff,
                parity.decode_max_abs_diff,
                f"{parity.greedy_mismatches} tokens differ" if parity.greedy_mismatches else "identical",
                "ok" if parity.passed else "FAILED",
            ]
        )
        metadata[f"{tier}/size_bytes"] = meta["size_bytes"]
        metadata[f"{tier}/parity_max_abs_diff"] = max(parity.prefill_max_abs_diff, parity.decode_max_abs_diff)
        metadata[f"{tier}/sha256"] = meta["sha256"]
    metadata["tiers"] = tm.rows_table(
        [
            "tier",
            "bytes",
            "parameters",
            "opset",
            "prefill max |diff|",
            "decode max |diff|",
            f"greedy {config.greedy_tokens} tokens",
            "parity",
        ],
        rows,
    )
    metadata["path"] = dg.MetadataValue.path(str(promotion.candidate(models, "onnx")))
    yield from materialize_with_checks(context, metadata, results)


def _base_of(models: Path, adapter: Path) -> Path:
    """The base folder (candidate or promoted) whose weights the adapter was trained on."""
    from music_assets.io import read_json  # noqa: PLC0415
    from music_assets.ml import promotion  # noqa: PLC0415

    want = read_json(adapter.parent / "training.json").get("base_weights_sha256")
    for base in (promotion.candidate(models, "base"), models / "base"):
        if (base / "model.json").is_file() and read_json(base / "model.json").get("weights_sha256") == want:
            return base
    raise FileNotFoundError(f"{adapter}: the base model it was trained on is gone (materialize lora_adapters again)")


# --- quantized_models ---------------------------------------------------------------------------
class QuantizedModelsConfig(dg.Config):
    # blocks of 16 with a zero point per block: top-1 agreement 0.92 on the demo models, where 32
    # symmetric blocks gave 0.89 (files about 10 % larger)
    int4_block_size: int = 16
    int4_symmetric: bool = False
    int4_accuracy_level: int = 0  # 0 = onnxruntime's default
    int4_embedding: bool = True  # the embedding table in 4-bit blocks too (else int4 is larger than int8)
    eval_sequences: int = 32  # validation sequences of the tier sampled for perplexity and top-1 agreement
    # sequences generated for the grammar score: as many as the base model's and the adapters' gates
    # (eval_samples); with 32, one degenerate sequence moved a variant's mean by 2 points, across 0.95
    grammar_samples: int = 64
    latency_tokens: int = 128
    latency_repeats: int = 3
    threads: int = 1  # onnxruntime intra-op threads while measuring
    temperature: float | None = None  # sampling for the grammar score; None = the model's defaults
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0


_QUANT_CHECKS = [
    dg.AssetCheckSpec(
        "grammar_score",
        asset="quantized_models",
        blocking=True,
        partitions_def=quantized_partitions,
        description=f"grammar score of sequences generated by the variant >= {GRAMMAR_GATE}",
    ),
    dg.AssetCheckSpec(
        "top1_agreement",
        asset="quantized_models",
        partitions_def=quantized_partitions,
        description="top-1 agreement with fp32 over validation sequences >= "
        + ", ".join(f"{v} ({k})" for k, v in MIN_TOP1_AGREEMENT.items()),
    ),
    dg.AssetCheckSpec(
        "int8_size_ratio",
        asset="quantized_models",
        partitions_def=quantized_partitions,
        description=f"the int8 file is <= {MAX_INT8_SIZE_RATIO:.0%} of the fp32 file "
        "(other precisions: reported, not gated)",
    ),
]


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    partitions_def=quantized_partitions,
    backfill_policy=backfill_policy(),
    pool=POOL,
    kinds={"onnx"},
    check_specs=_QUANT_CHECKS,
    deps=[
        dg.AssetDep(
            onnx_models, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="tier")
        )
    ],
)
def quantized_models(context: dg.AssetExecutionContext, config: QuantizedModelsConfig):
    """FP16, INT8 and INT4 variants of each tier's ONNX model, with size, latency and quality reports."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.ml import promotion  # noqa: PLC0415
    from music_assets.ml import quantize as qz  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415
    from music_assets.ml.onnx_runtime import OnnxDrumModel, Sampling  # noqa: PLC0415

    models = models_dir()
    promotion.recover(models)
    corpus = Corpus(models / "corpus")
    settings = qz.QuantSettings(
        int4_block_size=config.int4_block_size,
        int4_symmetric=config.int4_symmetric,
        int4_accuracy_level=config.int4_accuracy_level,
        int4_embedding=config.int4_embedding,
    )
    eval_settings = qz.EvalSettings(
        sequences=config.eval_sequences,
        samples=config.grammar_samples,
        latency_tokens=config.latency_tokens,
        latency_repeats=config.latency_repeats,
        threads=config.threads,
        seed=config.seed,
    )
    by_tier: dict[str, list[str]] = defaultdict(list)
    for key in context.partition_keys:
        dims = quantized_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        by_tier[dims["tier"]].append(dims["precision"])

    results: dict[str, list[CheckResult]] = {}
    metadata: dict[str, Any] = {}
    progress = ProgressLog(context.log.info, "quantizing", "variants")
    progress(0, len(context.partition_keys))
    for tier, precisions in by_tier.items():
        fp32_dir = promotion.effective(models, "onnx", tier)
        if not (fp32_dir / "model.json").is_file():
            raise FileNotFoundError(f"{fp32_dir / 'model.json'}: not found (materialize onnx_models for {tier} first)")
        fp32 = OnnxDrumModel(fp32_dir, threads=config.threads)
        sampling = Sampling.from_meta(fp32.meta, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)
        val = qz.validation_sample(corpus, tier, eval_settings.sequences, eval_settings.seed)
        reference = qz.evaluate(fp32, val, eval_settings, sampling)
        write_json(promotion.candidate(models, "quantized", tier, qz.REFERENCE_FILE), reference.report)
        for precision in precisions:
            out = promotion.candidate(models, "quantized", tier, precision)
            qz.write_variant(fp32_dir, out, precision, settings)
            report = qz.compare(
                qz.evaluate(OnnxDrumModel(out, threads=config.threads), val, eval_settings, sampling), reference
            )
            qz.write_report(out, report)
            context.log.info(f"[{tier}/{precision}] {report}")
            results[f"{precision}|{tier}"] = _variant_checks(precision, report)
            progress(len(results), len(context.partition_keys))
            for k in (
                "size_bytes",
                "size_ratio",
                "latency_ms_per_token",
                "top1_agreement",
                "grammar_score",
                "val_perplexity",
                "val_perplexity_change",
            ):
                metadata[f"{tier}/{precision}/{k}"] = report[k]
    metadata["variants"] = dg.MetadataValue.md(
        qz.report_table(qz.collect_reports(promotion.candidate(models, "quantized")))
    )
    metadata["path"] = dg.MetadataValue.path(str(promotion.candidate(models, "quantized")))
    yield from materialize_with_checks(context, metadata, results)


def _variant_checks(precision: str, r: dict[str, Any]) -> list[CheckResult]:
    grammar = {k: r[k] for k in ("grammar_score", "grammar_min", "ended_with_eos", "samples")}
    return [
        CheckResult(
            name="grammar_score",
            passed=r["grammar_score"] >= GRAMMAR_GATE,
            metadata={**grammar, "threshold": GRAMMAR_GATE},
        ),
        CheckResult(
            name="top1_agreement",
            severity="warn",
            passed=r["top1_agreement"] >= MIN_TOP1_AGREEMENT[precision],
            metadata={
                "top1_agreement": r["top1_agreement"],
                "threshold": MIN_TOP1_AGREEMENT[precision],
                "val_tokens": r["val_tokens"],
                "val_sequences": r["val_sequences"],
            },
        ),
        CheckResult(
            name="int8_size_ratio",
            severity="warn",
            passed=precision != "int8" or r["size_ratio"] <= MAX_INT8_SIZE_RATIO,
            description=None if precision == "int8" else f"applies to int8 only; {precision} reported",
            metadata={
                "size_ratio": r["size_ratio"],
                "size_bytes": r["size_bytes"],
                "threshold": MAX_INT8_SIZE_RATIO if precision == "int8" else "none",
            },
        ),
    ]


defs = dg.Definitions(assets=[onnx_models, quantized_models])
