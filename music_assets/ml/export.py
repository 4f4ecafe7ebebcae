"""Deployable tier models: merge a LoRA adapter into the base, export to ONNX with a KV cache, check parity.

`export_tier` reloads the base model and the tier's adapter from their files
(`workflows.load_tier_model`: a fresh copy of the base, so the base on disk
is never touched), folds the adapter in with peft's `merge_and_unload`, and
exports the plain `DrumTransformer` with the dynamo exporter of
`torch.onnx.export` as one self-contained file (weights inside, no external
data):

- inputs: `input_ids` (batch, sequence) int64, then `past_key_<i>`,
  `past_value_<i>` per layer, float32 (batch, heads, past_sequence, head_dim);
- outputs: `logits` (batch, sequence, vocab), then `present_key_<i>`,
  `present_value_<i>` (batch, heads, past_sequence + sequence, head_dim).

Batch, sequence and past length are dynamic; the first call takes a
zero-length cache, later calls feed the new tokens with the previous
`present` as `past`. `model.json` beside the file describes the graph (names
and shapes read back from the written file), the vocabulary and the special and
conditioning tokens, every rudiment's written score, the sampling defaults and
the sha256 of the model file: all that `onnx_runtime.OnnxDrumModel` needs,
without torch.

`parity_report` compares the written file, run by onnxruntime, with the torch
model rebuilt from the base and adapter files (adapter not merged, as it was
trained and evaluated), on a prefill, on cached decode steps, and on greedy
score-conditioned decoding through the shared decoding code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from music_assets.io import atomic_path, read_json, sha256_file, write_json
from music_assets.ml.corpus import SCORES_FILE, Corpus
from music_assets.ml.decoding import perform
from music_assets.ml.generation import TorchStepper
from music_assets.ml.model import DrumTransformer
from music_assets.ml.onnx_runtime import (
    INPUT_IDS,
    LOGITS,
    META_FILE,
    MODEL_FILE,
    OnnxDrumModel,
    cache_names,
    describe_io,
)
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, Vocab, score_of
from music_assets.ml.workflows import load_tier_model

MIN_OPSET = 17
DEFAULT_OPSET = 18
# 2: score-conditioned (model.json carries the rudiments' scores; format-3 tokens); 1: free generation
FORMAT = "music_assets.onnx/2"
# Example shapes traced by the exporter: sizes 0 and 1 would be specialised, so none is 0 or 1.
_EXAMPLE_BATCH, _EXAMPLE_SEQ, _EXAMPLE_PAST = 2, 3, 5
DEFAULT_SAMPLING = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
_LORA_KEYS = ("r", "lora_alpha", "use_rslora", "target_modules", "lora_dropout")


class ExportError(RuntimeError):
    pass


class _FlatCache(nn.Module):
    """`(input_ids, *past) -> (logits, *present)`: one named graph input/output per cache tensor."""

    def __init__(self, model: DrumTransformer):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, present = self.model(input_ids, tuple(past))
        return (logits, *present)


def export_onnx(model: DrumTransformer, dest: Path, opset: int = DEFAULT_OPSET) -> None:
    """Export `model` (eval mode) with a KV cache and dynamic axes to one ONNX file, atomically."""
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: the export needs opset >= {MIN_OPSET}")
    cfg = model.config
    n = cfg.n_layers
    ids = torch.zeros(_EXAMPLE_BATCH, _EXAMPLE_SEQ, dtype=torch.long)
    past = tuple(torch.zeros(_EXAMPLE_BATCH, cfg.n_heads, _EXAMPLE_PAST, cfg.head_dim) for _ in range(2 * n))
    batch, seq, past_len = (torch.export.Dim(d) for d in ("batch", "sequence", "past_sequence"))
    dynamic = {"input_ids": {0: batch, 1: seq}, "past": tuple({0: batch, 2: past_len} for _ in range(2 * n))}
    with torch.no_grad(), warnings.catch_warnings():
        # every cache input names the same batch/past axes; the exporter warns that it keeps one name each
        warnings.filterwarnings("ignore", message=r".*shares the same shape constraints", category=UserWarning)
        program = torch.onnx.export(
            _FlatCache(model).eval(),
            (ids, *past),
            None,
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=[INPUT_IDS, *cache_names(n, "past")],
            output_names=[LOGITS, *cache_names(n, "present")],
            dynamic_shapes=dynamic,
            optimize=True,
        )
    with atomic_path(dest) as tmp:
        program.save(tmp, external_data=False)


def default_tempi(corpus: Corpus) -> dict[str, float]:
    """Per rudiment, the tempo bin nearest the median tempo of its train performances."""
    medians = corpus.split("train").index.groupby("rudiment_slug")["tempo_bpm"].median()
    return {str(slug): float(corpus.vocab.tempo_bin(t)) for slug, t in medians.items()}


def model_json(
    onnx_path: Path,
    vocab: Vocab,
    model: DrumTransformer,
    tier: str,
    *,
    opset: int,
    sampling: dict[str, Any],
    tempi: dict[str, float],
    source: dict[str, Any],
    scores: dict[str, Any],
) -> dict[str, Any]:
    """What a torch-free runner needs to drive the file (see the module docstring)."""
    cfg = model.config
    ranges = vocab.ranges
    return {
        "format": FORMAT,
        "tier": tier,
        "precision": "fp32",
        "model_file": MODEL_FILE,
        "sha256": sha256_file(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "opset": opset,
        "parameters": model.num_parameters(),
        "max_seq_len": cfg.max_seq_len,
        "vocab": vocab.to_json(),
        "special_tokens": {"PAD": vocab.pad_id, "BOS": vocab.bos_id, "EOS": vocab.eos_id},
        "conditioning": {
            "header": ["BOS", "RUDIMENT", "TIER", "TEMPO"],
            "rudiment": {vocab.tokens[i][len("RUDIMENT_") :]: i for i in ranges["RUDIMENT"]},
            "tier": {vocab.tokens[i][len("TIER_") :]: i for i in ranges["TIER"]},
            "tempo_bpm": {str(vocab.values[i]): i for i in ranges["TEMPO"]},
            "default_tempo_bpm": tempi,
        },
        "scores": scores,
        "decoding": {
            "event": ["GRID", "STROKE", "OFFSET", "VELOCITY"],
            "given": ["GRID", "STROKE"],
            "sampled": ["OFFSET", "VELOCITY"],
            "note": "the score comes from `scores`; each OFFSET and VELOCITY is sampled over its own kind only",
        },
        "cache": {
            "n_layers": cfg.n_layers,
            "n_heads": cfg.n_heads,
            "head_dim": cfg.head_dim,
            "layout": "(batch, heads, past_sequence, head_dim); first call: past_sequence = 0",
            "inputs": cache_names(cfg.n_layers, "past"),
            "outputs": cache_names(cfg.n_layers, "present"),
        },
        **describe_io(onnx_path),
        "sampling": sampling,
        "source": source,
    }


def export_tier(
    base_dir: Path, adapter_dir: Path, corpus_dir: Path, out_dir: Path, tier: str, opset: int = DEFAULT_OPSET
) -> dict[str, Any]:
    """Merge the tier's adapter into a fresh copy of the base, export it; write model.onnx and model.json."""
    model, vocab = load_tier_model(base_dir, adapter_dir, merge=True)
    base_meta = read_json(base_dir / META_FILE)
    onnx_path = out_dir / MODEL_FILE
    export_onnx(model, onnx_path, opset)
    adapter_weights = next(iter(sorted(adapter_dir.glob("adapter_model.*"))), None)
    source = {
        "base_weights_sha256": base_meta["weights_sha256"],
        "adapter_sha256": sha256_file(adapter_weights) if adapter_weights else None,
        "lora": {k: v for k, v in read_json(adapter_dir / "adapter_config.json").items() if k in _LORA_KEYS},
    }
    meta = model_json(
        onnx_path,
        vocab,
        model,
        tier,
        opset=opset,
        sampling=base_meta.get("sampling", DEFAULT_SAMPLING),
        tempi=default_tempi(Corpus(corpus_dir)),
        source=source,
        scores=read_json(base_dir / SCORES_FILE),
    )
    write_json(out_dir / META_FILE, meta)
    return meta


# --- parity -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityReport:
    tolerance: float
    batch: int
    prefill_tokens: int
    prefill_max_abs_diff: float
    decode_steps: int
    decode_max_abs_diff: float
    greedy_tokens: int
    greedy_mismatches: int  # generated positions where onnxruntime and torch chose different tokens

    @property
    def passed(self) -> bool:
        return (
            self.prefill_max_abs_diff <= self.tolerance
            and self.decode_max_abs_diff <= self.tolerance
            and self.greedy_mismatches == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "greedy_identical": self.greedy_mismatches == 0, "passed": self.passed}


def _max_diff(a: np.ndarray, b: torch.Tensor) -> float:
    d = np.abs(a.astype(np.float64) - b.double().numpy())
    return float(d.max()) if np.isfinite(d).all() else math.inf


@torch.no_grad()
def parity_report(
    reference: nn.Module,
    onnx_model: OnnxDrumModel,
    seqs: Sequence[np.ndarray],
    *,
    batch: int = 4,
    prefill_tokens: int = 32,
    decode_steps: int = 16,
    greedy_tokens: int = 64,
    tolerance: float = 1e-4,
) -> ParityReport:
    """Compare the ONNX file with `reference` (torch, `(input_ids, past) -> (logits, present)`).

    Prefill: the first tokens of `batch` real sequences in one call (torch
    without a cache, onnxruntime with an empty one). Decode: the next real
    tokens one at a time, each side feeding its own cache. Greedy: the sequences'
    scores played again (about `greedy_tokens` tokens each) with the most likely
    OFFSET and VELOCITY at every stroke, through the shared decoding code
    (`decoding.perform`) on both sides: the tokens must be identical.
    """
    reference.eval()
    rows = [np.asarray(s, dtype=np.int64) for s in seqs[:batch]]
    if not rows:
        raise ValueError("no sequences to compare on")
    shortest = min(len(r) for r in rows)
    decode_steps = max(0, min(decode_steps, shortest - HEADER_LEN))
    prefill_tokens = max(1, min(prefill_tokens, shortest - decode_steps))
    ids = np.stack([r[: prefill_tokens + decode_steps] for r in rows])

    ref_logits, ref_past = reference(torch.from_numpy(ids[:, :prefill_tokens]))
    ort_logits, ort_past = onnx_model.step(ids[:, :prefill_tokens])
    prefill = _max_diff(ort_logits, ref_logits)
    decode = 0.0
    for pos in range(prefill_tokens, prefill_tokens + decode_steps):
        ref_logits, ref_past = reference(torch.from_numpy(ids[:, pos : pos + 1]), ref_past)
        ort_logits, ort_past = onnx_model.step(ids[:, pos : pos + 1], ort_past)
        decode = max(decode, _max_diff(ort_logits, ref_logits))

    prompts = [score_of(r, onnx_model.vocab) for r in rows]
    prompts = [(h, score[: max(1, greedy_tokens // EVENT_LEN)]) for h, score in prompts]
    greedy = SamplingConfig()
    ort_tokens = perform(onnx_model.stepper(), onnx_model.vocab, prompts, greedy, None, greedy=True)
    ref_tokens = perform(
        TorchStepper(reference, onnx_model.max_seq_len), onnx_model.vocab, prompts, greedy, None, greedy=True
    )
    mismatches = sum(
        int(a != b) for x, y in zip(ort_tokens, ref_tokens, strict=True) for a, b in zip(x, y, strict=True)
    )
    mismatches += sum(abs(len(x) - len(y)) for x, y in zip(ort_tokens, ref_tokens, strict=True))
    greedy_tokens = sum(len(x) - HEADER_LEN for x in ref_tokens)
    return ParityReport(tolerance, len(rows), prefill_tokens, prefill, decode_steps, decode, greedy_tokens, mismatches)
