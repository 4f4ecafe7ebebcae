"""ONNX export of a merged tier model: one file, KV cache, dynamic axes, model.json, parity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from music_assets.io import read_json, sha256_file, write_json
from music_assets.ml.corpus import Corpus
from music_assets.ml.decoding import TakeRequest, perform, prompt_for
from music_assets.ml.export import ExportError, export_onnx, parity_report
from music_assets.ml.generation import SamplingConfig, TorchStepper
from music_assets.ml.grammar import grammar_score
from music_assets.ml.model import DrumTransformer, ModelConfig
from music_assets.ml.onnx_runtime import OnnxDrumModel
from music_assets.ml.score import library_templates
from music_assets.ml.tokenizer import score_of
from music_assets.ml.workflows import load_base, load_tier_model
from music_assets.seeding import stable_rng
from music_assets_tests.ml.tiny_models import BAD_SAMPLING, TIERS, export_tiny_tier

TIER = TIERS[0]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_tier(tmp_path_factory, TIER)


@pytest.fixture(scope="module")
def onnx_dir(root: Path) -> Path:
    return root / "models" / "onnx" / TIER


@pytest.fixture(scope="module")
def reference(root: Path) -> torch.nn.Module:
    model, _ = load_tier_model(root / "models" / "base", root / "models" / "lora" / TIER / "adapter")
    return model


def _val(root: Path) -> list[np.ndarray]:
    return Corpus(root / "models" / "corpus").split("validation").sequences(TIER)


def test_one_self_contained_file_with_cache_inputs_and_dynamic_axes(onnx_dir: Path) -> None:
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["model.json", "model.onnx"]
    model = onnx.load(str(onnx_dir / "model.onnx"))  # loads no external data: there is none
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = read_json(onnx_dir / "model.json")
    assert meta["sha256"] == sha256_file(onnx_dir / "model.onnx") and meta["tier"] == TIER
    names = [i["name"] for i in meta["inputs"]]
    assert names == ["input_ids", "past_key_0", "past_value_0", "past_key_1", "past_value_1"]
    assert meta["inputs"][0]["shape"] == ["batch", "sequence"]
    assert meta["inputs"][1]["shape"] == ["batch", 2, "past_sequence", 16]
    assert [o["name"] for o in meta["outputs"]][:2] == ["logits", "present_key_0"]
    assert meta["outputs"][0]["shape"][:2] == ["batch", "sequence"]
    assert meta["special_tokens"] == {"PAD": 0, "BOS": 1, "EOS": 2}
    vocab_tokens = meta["vocab"]["tokens"]
    assert vocab_tokens[meta["conditioning"]["rudiment"]["flam"]] == "RUDIMENT_flam"
    assert vocab_tokens[meta["conditioning"]["tier"][TIER]] == f"TIER_{TIER}"
    assert set(meta["conditioning"]["default_tempo_bpm"]) == {
        "single_stroke_roll",
        "single_paradiddle",
        "flam",
        "swiss_army_triplet",
    }
    assert meta["sampling"] == {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
    assert meta["format"] == "music_assets.onnx/2" and meta["decoding"]["sampled"] == ["OFFSET", "VELOCITY"]
    assert set(meta["scores"]) == set(library_templates()) and meta["vocab"]["format"] == 3


REQUESTS = [
    TakeRequest("flam", TIER, 96, 4),
    TakeRequest("single_paradiddle", TIER, 120, 8),
    TakeRequest("multiple_bounce_roll", TIER, 70, 4),  # buzz strokes with bounces
    TakeRequest("swiss_army_triplet", TIER, 100, 4),
]


def _rngs(tag: str) -> list:
    return [stable_rng(tag, i) for i in range(len(REQUESTS))]


def test_torch_and_onnx_decode_the_same_takes_each_playing_its_score(onnx_dir: Path, reference) -> None:
    runner = OnnxDrumModel(onnx_dir)
    vocab = runner.vocab
    prompts = [prompt_for(vocab, runner.templates, r) for r in REQUESTS]
    sampling = SamplingConfig()
    by_torch = perform(TorchStepper(reference), vocab, prompts, sampling, _rngs("agree"))
    by_onnx = perform(runner.stepper(), vocab, prompts, sampling, _rngs("agree"))
    assert by_torch == by_onnx
    for prompt, seq in zip(prompts, by_onnx, strict=True):
        assert score_of(seq, vocab) == prompt  # exactly the requested strokes
        assert grammar_score(seq, vocab) == 1.0  # masked: well formed by construction
    # a take does not depend on the other takes of its batch
    alone = perform(runner.stepper(), vocab, prompts[2:3], sampling, _rngs("agree")[2:3])
    assert alone == by_onnx[2:3]
    # the mask does the work: sampled hot without it, the same model breaks the layout
    hot = SamplingConfig(**BAD_SAMPLING)
    assert all(grammar_score(s, vocab) == 1.0 for s in perform(runner.stepper(), vocab, prompts, hot, _rngs("hot")))
    free = perform(runner.stepper(), vocab, prompts, hot, _rngs("hot"), masked=False)
    assert min(grammar_score(s, vocab) for s in free) < 0.9


def test_a_take_longer_than_the_context_slides_its_window(onnx_dir: Path, reference) -> None:
    runner = OnnxDrumModel(onnx_dir)
    vocab = runner.vocab
    (prompt,) = [prompt_for(vocab, runner.templates, TakeRequest("single_stroke_roll", TIER, 100, 64))]
    assert 4 + 4 * len(prompt[1]) > 200  # far longer than the context below
    (seq,) = perform(TorchStepper(reference, max_seq_len=64), vocab, [prompt], SamplingConfig(), _rngs("long")[:1])
    assert score_of(seq, vocab) == prompt and grammar_score(seq, vocab) == 1.0
    # the takes API: the same arguments give the same takes, take i whatever the count
    a = runner.takes("flam", bars=1, count=3, seed=5)
    b = runner.takes("flam", bars=1, count=1, seed=5)
    assert a[0].ids == b[0].ids and a[1].ids != a[0].ids and len(a) == 3
    assert a[0].tempo_bpm == runner.default_tempo("flam") and a[0].midi_bytes().startswith(b"MThd")
    with pytest.raises(ValueError, match="unknown rudiment 'nope'"):
        runner.takes("nope")


def test_any_batch_sequence_and_cache_length_matches_torch(onnx_dir: Path, reference: torch.nn.Module) -> None:
    runner = OnnxDrumModel(onnx_dir)
    rng = np.random.default_rng(0)
    past_ort, past_ref = None, None
    with torch.no_grad():
        for seq_len in (7, 1, 3):  # prefill, then one token, then a chunk on top of the cache
            ids = rng.integers(3, len(runner.vocab), size=(3, seq_len))
            logits, past_ort = runner.step(ids, past_ort)
            ref_logits, past_ref = reference(torch.from_numpy(ids), past_ref)
            assert logits.shape == (3, seq_len, len(runner.vocab))
            np.testing.assert_allclose(logits, ref_logits.numpy(), atol=1e-4)
    assert past_ort[0].shape == (3, 2, 11, 16)


def test_the_adapter_is_merged_into_the_export(root: Path, onnx_dir: Path) -> None:
    base, _, _ = load_base(root / "models" / "base")
    ids = np.asarray(_val(root)[0][:24], dtype=np.int64)[None]
    with torch.no_grad():
        base_logits, _ = base(torch.from_numpy(ids))
    logits, _ = OnnxDrumModel(onnx_dir).step(ids)
    assert np.abs(logits - base_logits.numpy()).max() > 1e-3  # the tier model is not the base model


def test_parity_passes_for_the_export(root: Path, onnx_dir: Path, reference: torch.nn.Module) -> None:
    report = parity_report(reference, OnnxDrumModel(onnx_dir), _val(root), batch=4, greedy_tokens=64)
    assert report.passed, report.as_dict()
    assert report.prefill_max_abs_diff <= 1e-4 and report.decode_max_abs_diff <= 1e-4
    assert report.greedy_mismatches == 0 and report.decode_steps == 16 and report.batch == 4


def test_parity_fails_for_a_file_whose_weights_drifted(
    root: Path, onnx_dir: Path, reference: torch.nn.Module, tmp_path: Path
) -> None:
    model = onnx.load(str(onnx_dir / "model.onnx"))
    # the lm_head weight (d_model x vocab) shifted by 1e-3: invisible to the eye, far above the 1e-4 tolerance
    vocab_size = len(read_json(onnx_dir / "model.json")["vocab"]["tokens"])
    lm_head = next(t for t in model.graph.initializer if list(t.dims) == [32, vocab_size])
    w = onnx.numpy_helper.to_array(lm_head) + np.float32(1e-3)
    lm_head.CopyFrom(onnx.numpy_helper.from_array(w, lm_head.name))
    onnx.save(model, str(tmp_path / "model.onnx"))
    meta = read_json(onnx_dir / "model.json")
    write_json(tmp_path / "model.json", {**meta, "sha256": sha256_file(tmp_path / "model.onnx")})
    report = parity_report(reference, OnnxDrumModel(tmp_path), _val(root), greedy_tokens=8)
    assert not report.passed
    assert report.prefill_max_abs_diff > 1e-4


def test_a_replaced_model_file_is_refused(onnx_dir: Path, tmp_path: Path) -> None:
    shutil.copy(onnx_dir / "model.json", tmp_path / "model.json")
    (tmp_path / "model.onnx").write_bytes(b"not the exported model")
    with pytest.raises(RuntimeError, match=r"model.onnx: sha256 does not match"):
        OnnxDrumModel(tmp_path)


def test_opsets_below_17_are_refused(tmp_path: Path) -> None:
    model = DrumTransformer(ModelConfig(vocab_size=16, d_model=8, n_layers=1, n_heads=2, d_ff=8))
    with pytest.raises(ExportError, match="opset >= 17"):
        export_onnx(model, tmp_path / "model.onnx", opset=16)
    assert not (tmp_path / "model.onnx").exists()
