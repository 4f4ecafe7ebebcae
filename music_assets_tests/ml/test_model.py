"""The transformer: KV cache, sampling, and an ONNX (dynamo) export that onnxruntime runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from music_assets.ml.generation import SamplingConfig, filter_logits, generate, torch_generator
from music_assets.ml.model import ATTENTION_MODULES, DrumTransformer, ModelConfig

CFG = ModelConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=2, d_ff=64, dropout=0.0)


@pytest.fixture(scope="module")
def model() -> DrumTransformer:
    torch.manual_seed(0)
    return DrumTransformer(CFG).eval()


def test_projections_are_plain_linear_layers(model: DrumTransformer) -> None:
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(ATTENTION_MODULES) | {"up_proj", "down_proj", "lm_head"} <= names


@torch.no_grad()
def test_kv_cache_gives_the_same_logits_as_the_full_sequence(model: DrumTransformer) -> None:
    ids = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    full, present = model(ids)
    assert len(present) == 2 * CFG.n_layers and present[0].shape == (3, 2, 12, 16)
    # prefix, then two chunks through the cache (one of them a single token)
    logits_a, past = model(ids[:, :7])
    logits_b, past = model(ids[:, 7:11], past)
    logits_c, past = model(ids[:, 11:], past)
    stepped = torch.cat([logits_a, logits_b, logits_c], dim=1)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)
    assert past[0].shape[2] == 12
    # an empty cache is the same as no cache
    torch.testing.assert_close(model(ids, model.empty_past(3))[0], full, atol=1e-5, rtol=1e-5)


def test_sampling_is_seedable_and_cache_free_generation_matches(model: DrumTransformer) -> None:
    prompts = torch.tensor([[1, 5, 7, 9]] * 4)
    kw = dict(max_new_tokens=20, eos_id=2, pad_id=0, stop_at_eos=False)
    a = generate(model, prompts, generator=torch_generator("s", 1), **kw)
    b = generate(model, prompts, generator=torch_generator("s", 1), **kw)
    c = generate(model, prompts, generator=torch_generator("s", 2), **kw)
    assert a == b and a != c
    assert all(len(s) == 24 and s[:4] == [1, 5, 7, 9] for s in a)
    greedy = SamplingConfig(top_k=1)
    with_cache = generate(model, prompts, sampling=greedy, **kw)
    without = generate(model, prompts, sampling=greedy, use_cache=False, **kw)
    assert with_cache == without


def test_generation_stops_each_sequence_at_its_eos() -> None:
    class Scripted(torch.nn.Module):
        """Emits EOS (id 2) first in row 0, after 3 tokens in row 1."""

        def forward(self, ids, past=None):
            n = ids.shape[0]
            pos = (past[0].shape[1] if past is not None else 0) + ids.shape[1]
            logits = torch.full((n, ids.shape[1], 5), -1e9)
            logits[..., 3] = 0
            if pos >= 4:
                logits[0, -1, 2] = 1e9 if n == 2 else -1e9
            if pos >= 7:
                logits[-1, -1, 2] = 1e9
            return logits, (torch.zeros(n, pos),)

    out = generate(Scripted(), torch.ones(2, 4, dtype=torch.long), max_new_tokens=10, eos_id=2, pad_id=0)
    assert out[0] == [1, 1, 1, 1, 2]
    assert out[1][-1] == 2 and 2 not in out[1][:-1] and len(out[1]) < 14


def test_top_k_and_top_p_filtering() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda cfg: torch.isfinite(filter_logits(logits, cfg))[0].tolist()  # noqa: E731
    assert kept(SamplingConfig(top_k=2)) == [True, True, False, False]
    assert kept(SamplingConfig(top_p=0.7)) == [True, True, False, False]
    assert kept(SamplingConfig(top_p=0.45)) == [True, False, False, False]
    assert kept(SamplingConfig(top_p=0.9)) == [True, True, True, False]
    with pytest.raises(ValueError):
        SamplingConfig(temperature=0)


def test_exports_to_onnx_with_dynamic_axes_and_kv_cache(model: DrumTransformer, tmp_path: Path) -> None:
    import onnxruntime as ort

    n = 2 * CFG.n_layers
    batch, seq, past_len = torch.export.Dim("batch"), torch.export.Dim("seq"), torch.export.Dim("past_len")
    example = (torch.randint(0, 50, (2, 3)), tuple(torch.randn(2, 2, 5, 16) for _ in range(n)))
    program = torch.onnx.export(
        model,
        example,
        dynamo=True,
        external_data=False,
        opset_version=18,
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "past": tuple({0: batch, 2: past_len} for _ in range(n))},
        input_names=["input_ids", *[f"past_{i}" for i in range(n)]],
        output_names=["logits", *[f"present_{i}" for i in range(n)]],
    )
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t, p in [(1, 4, 0), (3, 1, 9)]:  # first call with an empty cache, then a decode step
        ids = torch.randint(0, 50, (b, t))
        past = tuple(torch.randn(b, 2, p, 16) for _ in range(n))
        with torch.no_grad():
            ref_logits, ref_present = model(ids, past)
        feeds = {"input_ids": ids.numpy(), **{f"past_{i}": x.numpy() for i, x in enumerate(past)}}
        out = session.run(None, feeds)
        np.testing.assert_allclose(out[0], ref_logits.numpy(), atol=1e-4, rtol=1e-4)
        assert out[1].shape == (b, 2, p + t, 16)
        np.testing.assert_allclose(out[-1], ref_present[-1].numpy(), atol=1e-5, rtol=1e-5)


def test_numeric_tokens_start_with_smooth_embeddings() -> None:
    from music_assets.ml.tokenizer import Vocab
    from music_assets.ml.workflows import init_model

    vocab = Vocab()
    cfg = ModelConfig(vocab_size=len(vocab), d_model=128, n_layers=1, n_heads=2, d_ff=64)
    smooth, plain = init_model(cfg, seed=1, vocab=vocab), init_model(cfg, seed=1)
    offsets = {int(vocab.values[i]): i for i in vocab.ranges["OFFSET"]}  # ms -> id

    def cos(w: torch.Tensor, a: int, b: int) -> float:
        return float(torch.nn.functional.cosine_similarity(w[a], w[b], dim=0))

    for w in (smooth.embed.weight, smooth.lm_head.weight):
        assert cos(w, offsets[10], offsets[12]) > 0.9 and abs(cos(w, offsets[10], offsets[200])) < 0.5
    assert abs(cos(plain.embed.weight, offsets[10], offsets[12])) < 0.5
    # the same seed gives the same weights, and the other layers are untouched by the smooth init
    assert torch.equal(smooth.blocks[0].attn.q_proj.weight, plain.blocks[0].attn.q_proj.weight)
    assert torch.equal(init_model(cfg, seed=1, vocab=vocab).embed.weight, smooth.embed.weight)
