"""FP16, INT8 and INT4 variants of an exported tier model, and what each one costs.

- fp16: `onnxruntime.transformers.float16.convert_float_to_float16` with
  `keep_io_types=True`: weights and arithmetic in half precision, while ids,
  logits and the cache stay float32 so the runner drives every variant alike;
- int8: `onnxruntime.quantization.quantize_dynamic`, QInt8 weights per channel
  (MatMul and the embedding Gather), activations quantized on the fly;
- int4: `MatMulNBitsQuantizer`, MatMul weights (projections and `lm_head`) in
  4-bit blocks of `int4_block_size` along the input dimension, and (with
  `int4_embedding`, the default) the embedding table's Gather as
  `GatherBlockQuantized`, blocks along the model dimension. Left in float32,
  the embedding alone made the int4 file larger than the int8 one (whose
  `quantize_dynamic` quantizes the Gather too).

A variant folder (`quantized/<tier>/<precision>/`) holds `model.onnx` and
`model.json`: the fp32 model's JSON with the precision, the variant file's
sha256 and size, the quantization settings and, once evaluated, the report.

`evaluate` measures a model on onnxruntime CPU, reading only the files:
latency per generated token (batch 1, cached decode steps), validation loss and
perplexity and the top-1 prediction at every predicted position (OFFSET,
VELOCITY) of a sample of the tier's validation sequences (teacher-forced), and
the grammar score of those sequences' scores performed again without the
grammar mask (what the model has learnt). `compare` sets a variant
against the fp32 model measured the same way on the same data: file size ratio,
top-1 agreement, perplexity change. No torch here.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.io import atomic_path, read_json, sha256_file, write_json
from music_assets.ml.corpus import Corpus
from music_assets.ml.decoding import perform
from music_assets.ml.grammar import grammar_report
from music_assets.ml.onnx_runtime import (
    META_FILE,
    MODEL_FILE,
    OnnxDrumModel,
    Sampling,
    describe_io,
    prompts_of,
    read_model_meta,
)
from music_assets.seeding import stable_rng

PRECISIONS: tuple[str, ...] = ("fp16", "int8", "int4")
REFERENCE_FILE = "reference.json"  # quantized/<tier>/: the fp32 model's numbers the variants were compared with


class QuantizeError(RuntimeError):
    pass


@dataclass(frozen=True)
class QuantSettings:
    int4_block_size: int = 16  # weights per 4-bit block (a power of two >= 16)
    int4_symmetric: bool = False  # a zero point per block: the trained weights are not centred
    int4_accuracy_level: int = 0  # MatMulNBits compute type; 0 = onnxruntime's default
    int4_embedding: bool = True  # the embedding Gather in 4-bit blocks too
    int8_per_channel: bool = True

    def __post_init__(self) -> None:
        b = self.int4_block_size
        if b < 16 or b & (b - 1):
            raise QuantizeError(f"int4_block_size must be a power of two >= 16, got {b}")

    @property
    def int4_op_types(self) -> tuple[str, ...]:
        return ("MatMul", "Gather") if self.int4_embedding else ("MatMul",)

    def for_precision(self, precision: str) -> dict[str, Any]:
        if precision == "fp16":
            return {"method": "convert_float_to_float16", "keep_io_types": True}
        if precision == "int8":
            return {"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": self.int8_per_channel}
        if precision == "int4":
            return {
                "method": "MatMulNBitsQuantizer",
                "bits": 4,
                "block_size": self.int4_block_size,
                "symmetric": self.int4_symmetric,
                "accuracy_level": self.int4_accuracy_level or None,
                "op_types": list(self.int4_op_types),
            }
        raise QuantizeError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")


def quantize_file(src: Path, dest: Path, precision: str, settings: QuantSettings = QuantSettings()) -> dict[str, Any]:
    """Write the `precision` variant of the fp32 file `src` to `dest` (one file, atomically)."""
    import onnx  # noqa: PLC0415

    used = settings.for_precision(precision)
    with atomic_path(dest) as tmp:
        if precision == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16  # noqa: PLC0415

            onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(tmp))
        elif precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

            quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=settings.int8_per_channel)
        else:
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer  # noqa: PLC0415

            q = MatMulNBitsQuantizer(
                onnx.load(str(src)),
                bits=4,
                block_size=settings.int4_block_size,
                is_symmetric=settings.int4_symmetric,
                accuracy_level=used["accuracy_level"],
                op_types_to_quantize=settings.int4_op_types,
            )
            q.process()
            q.model.save_model_to_file(str(tmp), use_external_data_format=False)
    return used


def write_variant(
    fp32_dir: Path, out_dir: Path, precision: str, settings: QuantSettings = QuantSettings()
) -> dict[str, Any]:
    """Quantize `fp32_dir/model.onnx` into `out_dir` and write its model.json (without a report yet)."""
    fp32_meta = read_model_meta(fp32_dir)
    model_path = out_dir / MODEL_FILE
    used = quantize_file(fp32_dir / MODEL_FILE, model_path, precision, settings)
    meta = {
        **fp32_meta,
        **describe_io(model_path),
        "precision": precision,
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        "quantization": used,
        "fp32": {"sha256": fp32_meta["sha256"], "size_bytes": fp32_meta["size_bytes"]},
    }
    write_json(out_dir / META_FILE, meta)
    return meta


# --- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSettings:
    sequences: int = 32  # validation sequences of the tier (a seeded sample) for perplexity and top-1
    samples: int = 64  # sequences generated for the grammar score (as many as the training gates')
    latency_tokens: int = 128  # cached decode steps timed per repeat
    latency_repeats: int = 3
    batch_size: int = 8
    threads: int = 1  # onnxruntime intra-op threads
    seed: int = 0


@dataclass
class Evaluation:
    report: dict[str, Any]  # numbers, JSON-ready
    argmax: list[np.ndarray]  # top-1 predictions per validation sequence, for agreement


def validation_sample(corpus: Corpus, tier: str, n: int, seed: int) -> list[np.ndarray]:
    """Up to `n` of the tier's validation sequences, a seeded sample kept in corpus order."""
    seqs = corpus.split("validation").sequences(tier)
    if not seqs:
        raise QuantizeError(f"{corpus.root}: no validation sequences of tier {tier!r}")
    if len(seqs) > n:
        keep = np.sort(stable_rng(seed, "validation_sample", tier).choice(len(seqs), size=n, replace=False))
        seqs = [seqs[i] for i in keep]
    return [np.asarray(s, dtype=np.int64) for s in seqs]


def latency_ms_per_token(model: OnnxDrumModel, prompt: np.ndarray, tokens: int, repeats: int) -> float:
    """Median wall time of one cached decode step (batch 1), after a header prefill and a warm-up."""

    def run(n: int) -> float:
        logits, past = model.step(prompt)
        t0 = time.perf_counter()
        for _ in range(n):
            logits, past = model.step(logits[:, -1:].argmax(-1), past)
        return (time.perf_counter() - t0) / n

    run(8)
    return 1000.0 * statistics.median(run(tokens) for _ in range(max(1, repeats)))


def evaluate(model: OnnxDrumModel, val: list[np.ndarray], settings: EvalSettings, sampling: Sampling) -> Evaluation:
    """Measure one model file on `val` (see the module docstring)."""
    scores = model.score(val, settings.batch_size)
    prompts = prompts_of(val, settings.samples, model.vocab)
    rngs = [stable_rng(settings.seed, "grammar", model.tier, i) for i in range(len(prompts))]
    seqs = perform(model.stepper(), model.vocab, prompts, sampling, rngs, masked=False)
    grammar = [grammar_report(s, model.vocab) for s in seqs]
    header = np.asarray([prompts[0][0]], dtype=np.int64)
    latency = latency_ms_per_token(model, header, settings.latency_tokens, settings.latency_repeats)
    size = (model.dir / MODEL_FILE).stat().st_size
    return Evaluation(
        report={
            "tier": model.tier,
            "precision": model.meta["precision"],
            "sha256": model.meta["sha256"],
            "size_bytes": size,
            "latency_ms_per_token": latency,
            "val_loss": scores.loss,
            "val_perplexity": math.exp(scores.loss),
            "val_sequences": len(val),
            "val_tokens": scores.tokens,
            "grammar_score": float(np.mean([g.score for g in grammar])),
            "grammar_min": float(min(g.score for g in grammar)),
            "ended_with_eos": int(sum(g.has_eos for g in grammar)),
            "samples": len(seqs),
            "sampling": asdict(sampling),
            "threads": settings.threads,
        },
        argmax=scores.argmax,
    )


def compare(variant: Evaluation, fp32: Evaluation) -> dict[str, Any]:
    """The variant's report with its size ratio, top-1 agreement and perplexity change against fp32."""
    if len(variant.argmax) != len(fp32.argmax):
        raise QuantizeError("the variant and fp32 were scored on different validation samples")
    same = sum(int((a == b).sum()) for a, b in zip(variant.argmax, fp32.argmax, strict=True))
    total = sum(len(a) for a in fp32.argmax)
    v, f = variant.report, fp32.report
    return {
        **v,
        "size_ratio": v["size_bytes"] / f["size_bytes"],
        "top1_agreement": same / total if total else 0.0,
        "val_perplexity_fp32": f["val_perplexity"],
        "val_perplexity_change": v["val_perplexity"] - f["val_perplexity"],
        "val_perplexity_change_pct": 100.0 * (v["val_perplexity"] / f["val_perplexity"] - 1.0),
        "latency_ratio": v["latency_ms_per_token"] / f["latency_ms_per_token"],
    }


def write_report(variant_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Store the report in the variant's model.json (the sha256 must still be the evaluated file's)."""
    meta = read_model_meta(variant_dir)
    if meta["sha256"] != report["sha256"]:
        raise QuantizeError(f"{variant_dir / MODEL_FILE}: changed while it was evaluated")
    meta["report"] = report
    write_json(variant_dir / META_FILE, meta)
    return meta


def collect_reports(quantized_root: Path) -> list[dict[str, Any]]:
    """Every report on disk: each tier's fp32 reference, then its variants, in tier/precision order."""
    rows = []
    for tier_dir in sorted(p for p in quantized_root.glob("*") if p.is_dir()):
        ref = tier_dir / REFERENCE_FILE
        if ref.is_file():
            rows.append(read_json(ref))
        for precision in PRECISIONS:
            meta_path = tier_dir / precision / META_FILE
            if meta_path.is_file() and "report" in (meta := read_json(meta_path)):
                rows.append(meta["report"])
    return rows


def report_table(rows: list[dict[str, Any]]) -> str:
    """One markdown table of reports (fp32 rows have no ratio/agreement columns)."""

    def num(r: dict[str, Any], key: str, fmt: str) -> str:
        return format(r[key], fmt) if key in r else "-"

    lines = [
        "| tier | precision | size (KiB) | size / fp32 | ms / token | top-1 agreement | grammar | "
        "val perplexity | change vs fp32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        change = (
            f"{r['val_perplexity_change']:+.3f} ({r['val_perplexity_change_pct']:+.2f} %)"
            if "val_perplexity_change" in r
            else "-"
        )
        lines.append(
            f"| {r['tier']} | {r['precision']} | {r['size_bytes'] / 1024:.0f} | "
            f"{num(r, 'size_ratio', '.3f')} | {r['latency_ms_per_token']:.3f} | "
            f"{num(r, 'top1_agreement', '.4f')} | {r['grammar_score']:.3f} | {r['val_perplexity']:.3f} | "
            f"{change} |"
        )
    return "\n".join(lines)
