"""FP16 / INT8 / INT4 variants, their evaluation against fp32, and the numpy sampling they are judged with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from music_assets.io import read_json, sha256_file
from music_assets.ml import quantize as qz
from music_assets.ml.corpus import Corpus
from music_assets.ml.generation import SamplingConfig
from music_assets.ml.generation import filter_logits as torch_filter
from music_assets.ml.onnx_runtime import OnnxDrumModel, Sampling, filter_logits, sample_rows
from music_assets.ml.training import evaluate_loss
from music_assets.ml.workflows import load_tier_model
from music_assets.seeding import stable_rng
from music_assets_tests.ml.tiny_models import GOOD_SAMPLING, TIERS, export_tiny_tier

TIER = TIERS[0]
EVAL = qz.EvalSettings(sequences=4, samples=8, latency_tokens=16, latency_repeats=1)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_tier(tmp_path_factory, TIER)


@pytest.fixture(scope="module")
def variants(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("quantized") / TIER
    for p in qz.PRECISIONS:
        qz.write_variant(root / "models" / "onnx" / TIER, out / p, p)
    return {p: out / p for p in qz.PRECISIONS}


@pytest.fixture(scope="module")
def evaluations(root: Path, variants: dict[str, Path]) -> dict[str, qz.Evaluation]:
    val = qz.validation_sample(Corpus(root / "models" / "corpus"), TIER, EVAL.sequences, EVAL.seed)
    sampling = Sampling(**GOOD_SAMPLING)
    dirs = {"fp32": root / "models" / "onnx" / TIER, **variants}
    return {p: qz.evaluate(OnnxDrumModel(d), val, EVAL, sampling) for p, d in dirs.items()}


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_each_variant_is_one_file_of_its_precision(root: Path, variants: dict[str, Path]) -> None:
    fp32 = root / "models" / "onnx" / TIER / "model.onnx"
    for precision, d in variants.items():
        meta = read_json(d / "model.json")
        assert meta["precision"] == precision and meta["sha256"] == sha256_file(d / "model.onnx")
        assert meta["fp32"]["sha256"] == sha256_file(fp32)
        assert meta["size_bytes"] < fp32.stat().st_size
        # ids, logits and the cache stay float32 / int64: the runner drives every variant alike
        assert [i["dtype"] for i in meta["inputs"]] == ["int64"] + ["float32"] * 4
        assert {o["dtype"] for o in meta["outputs"]} == {"float32"}
    fp16 = onnx.load(str(variants["fp16"] / "model.onnx"))
    big = [t for t in fp16.graph.initializer if np.prod(t.dims) >= 1024]
    assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= _ops(variants["int8"] / "model.onnx")
    int4 = onnx.load(str(variants["int4"] / "model.onnx"))
    nbits = [n for n in int4.graph.node if n.op_type == "MatMulNBits"]
    # every weight MatMul: q, k, v, o, up, down per layer and the lm_head
    assert len(nbits) == 6 * 2 + 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nbits[0].attribute}
    assert attrs["bits"] == 4 and attrs["block_size"] == 16
    assert all(len(n.input) > 3 and n.input[3] for n in nbits)  # asymmetric: a zero point per block
    # and the embedding table: 4-bit blocks too, so the int4 file is smaller than the int8 one
    assert "GatherBlockQuantized" in _ops(variants["int4"] / "model.onnx")
    assert (variants["int4"] / "model.onnx").stat().st_size < (variants["int8"] / "model.onnx").stat().st_size
    quant = read_json(variants["int4"] / "model.json")["quantization"]
    assert quant["block_size"] == 16 and quant["symmetric"] is False and quant["op_types"] == ["MatMul", "Gather"]


def test_variants_are_compared_with_fp32_on_the_same_data(evaluations: dict[str, qz.Evaluation]) -> None:
    fp32 = evaluations["fp32"]
    reports = {p: qz.compare(evaluations[p], fp32) for p in qz.PRECISIONS}
    assert reports["fp16"]["top1_agreement"] >= 0.98
    assert abs(reports["fp16"]["val_perplexity_change_pct"]) < 0.5
    for p, r in reports.items():
        assert 0.8 <= r["top1_agreement"] <= 1.0, p
        assert abs(r["val_perplexity_change_pct"]) < 10, p
        assert r["size_ratio"] < 1.0 and r["latency_ms_per_token"] > 0
        assert r["val_tokens"] == fp32.report["val_tokens"] > 100
        assert 0.9 <= r["grammar_score"] <= 1.0 and r["samples"] == EVAL.samples
    assert fp32.report["grammar_score"] >= 0.95


def test_reports_are_stored_and_tabled(root: Path, variants: dict[str, Path], evaluations, tmp_path: Path) -> None:
    report = qz.compare(evaluations["int8"], evaluations["fp32"])
    qz.write_report(variants["int8"], report)
    assert read_json(variants["int8"] / "model.json")["report"]["top1_agreement"] == report["top1_agreement"]
    rows = qz.collect_reports(variants["int8"].parent.parent)
    assert [(r["tier"], r["precision"]) for r in rows] == [(TIER, "int8")]
    table = qz.report_table([evaluations["fp32"].report, report])
    assert table.count("\n") == 3 and f"| {TIER} | fp32 |" in table and f"| {TIER} | int8 |" in table
    # a report of another file (the fp16 one) is refused
    with pytest.raises(qz.QuantizeError, match="changed while it was evaluated"):
        qz.write_report(variants["fp16"], report)


def test_onnx_perplexity_matches_torch(root: Path, evaluations: dict[str, qz.Evaluation]) -> None:
    model, vocab = load_tier_model(root / "models" / "base", root / "models" / "lora" / TIER / "adapter")
    val = qz.validation_sample(Corpus(root / "models" / "corpus"), TIER, EVAL.sequences, EVAL.seed)
    torch_loss = evaluate_loss(model, val, vocab.pad_id, predicted=vocab.predicted)
    assert evaluations["fp32"].report["val_loss"] == pytest.approx(torch_loss, abs=1e-5)


@pytest.mark.parametrize(
    "cfg", [{}, {"temperature": 0.7}, {"top_k": 5}, {"top_p": 0.9}, {"temperature": 1.3, "top_k": 50, "top_p": 0.8}]
)
def test_numpy_filtering_matches_the_torch_sampler(cfg: dict) -> None:
    logits = np.random.default_rng(1).normal(0, 3, size=(4, 300)).astype(np.float32)
    ours = filter_logits(logits, Sampling(**cfg))
    theirs = torch_filter(torch.from_numpy(logits), SamplingConfig(**cfg)).numpy()
    assert np.array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_allclose(ours[np.isfinite(ours)], theirs[np.isfinite(theirs)], rtol=1e-6)


def test_sampling_is_seeded_and_stays_inside_the_filter() -> None:
    logits = np.random.default_rng(2).normal(0, 2, size=(64, 50))
    s = Sampling(top_k=3)
    a = sample_rows(logits, s, stable_rng(0, "t").random(64))
    assert np.array_equal(a, sample_rows(logits, s, stable_rng(0, "t").random(64)))
    allowed = np.argsort(-logits, axis=-1)[:, :3]
    assert all(tok in row for tok, row in zip(a, allowed, strict=True))
    assert len(set(a.tolist())) > 3  # not always the argmax
    with pytest.raises(ValueError, match="temperature"):
        Sampling(temperature=0)


def test_bad_settings_are_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(qz.QuantizeError, match="power of two"):
        qz.QuantSettings(int4_block_size=24)
    with pytest.raises(qz.QuantizeError, match="unknown precision 'int2'"):
        qz.write_variant(root / "models" / "onnx" / TIER, tmp_path / "int2", "int2")
    assert not (tmp_path / "int2" / "model.onnx").exists()
