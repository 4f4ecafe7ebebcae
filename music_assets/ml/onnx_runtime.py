"""Run an exported drum model with onnxruntime and numpy only (no torch).

A model folder (`<data dir>/models/onnx/<tier>/` or
`<data dir>/models/quantized/<tier>/<precision>/`) holds `model.onnx` and
`model.json`; the JSON carries everything needed to drive the graph: the
vocabulary, the special and conditioning tokens, the input/output names and
shapes (`input_ids` plus one past key and value per layer in, `logits` plus the
present keys and values out), the sampling defaults and the sha256 of the model
file. `OnnxDrumModel` wraps the session: one step, cached generation with
temperature / top-k / top-p sampling (the same filtering as
`music_assets.ml.generation`, in numpy), greedy decoding, and teacher-forced
scoring for perplexity and top-1 agreement.

This module must never import torch: the runner (`onnx_generate`) and the
quantized-model checks use it in processes where torch is absent or unwanted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.io import read_json, sha256_file
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.tokenizer import HEADER_LEN, Vocab

MODEL_FILE, META_FILE = "model.onnx", "model.json"
INPUT_IDS, LOGITS = "input_ids", "logits"
_NUMPY_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OnnxModelError(RuntimeError):
    pass


def cache_names(n_layers: int, prefix: str) -> list[str]:
    """`<prefix>_key_<i>`, `<prefix>_value_<i>` per layer, in the model's flat cache order."""
    return [f"{prefix}_{kv}_{i}" for i in range(n_layers) for kv in ("key", "value")]


def read_model_meta(model_dir: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """`model.json` of a model folder; with `verify`, the model file must match its sha256."""
    model_dir = Path(model_dir)
    meta_path, model_path = model_dir / META_FILE, model_dir / MODEL_FILE
    for p in (meta_path, model_path):
        if not p.is_file():
            raise OnnxModelError(f"{p}: not found (not an exported model folder)")
    meta = read_json(meta_path)
    if verify and sha256_file(model_path) != meta.get("sha256"):
        raise OnnxModelError(f"{model_path}: sha256 does not match {meta_path} (corrupt, replaced or half-written)")
    return meta


def describe_io(onnx_path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Names, element types and shapes (symbolic dims by name) of the file's graph inputs and outputs."""
    import onnx  # noqa: PLC0415

    graph = onnx.load(str(onnx_path), load_external_data=False).graph

    def info(v: Any) -> dict[str, Any]:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}

    return {"inputs": [info(v) for v in graph.input], "outputs": [info(v) for v in graph.output]}


# the same settings as the torch sampler; the name the runner's callers use
Sampling = SamplingConfig


def filter_logits(logits: np.ndarray, s: Sampling) -> np.ndarray:
    """(batch, vocab) logits after temperature, top-k and top-p (dropped entries are -inf)."""
    logits = logits.astype(np.float64) / s.temperature
    if s.top_k and s.top_k < logits.shape[-1]:
        kth = -np.partition(-logits, s.top_k - 1, axis=-1)[:, s.top_k - 1 : s.top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    if s.top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")
        probs = softmax(np.take_along_axis(logits, order, axis=-1))
        # drop a token when the mass before it already reaches top_p (the first always stays)
        drop_sorted = (np.cumsum(probs, axis=-1) - probs) >= s.top_p
        drop = np.empty_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        logits = np.where(drop, -np.inf, logits)
    return logits


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def sample_next(logits: np.ndarray, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """One token id per row of (batch, vocab) logits, by inverse-CDF sampling."""
    cdf = np.cumsum(softmax(filter_logits(logits, s)), axis=-1)
    u = rng.random((cdf.shape[0], 1)) * cdf[:, -1:]
    # the first index whose cdf exceeds u: never a token of probability 0
    return np.minimum((cdf <= u).sum(axis=-1), cdf.shape[-1] - 1).astype(np.int64)


@dataclass
class Scores:
    """Teacher-forced scores of sequences: summed NLL, number of predicted tokens, top-1 predictions."""

    nll: float
    tokens: int
    argmax: list[np.ndarray]  # per sequence: the top-1 prediction for each token after the header

    @property
    def loss(self) -> float:
        return self.nll / max(self.tokens, 1)


class OnnxDrumModel:
    """An onnxruntime session over an exported model folder, with a KV-cache step."""

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int = 1, verify: bool = True):
        import onnxruntime as ort  # noqa: PLC0415

        self.dir = Path(model_dir)
        self.meta = read_model_meta(self.dir, verify=verify)
        self.vocab = Vocab.from_json(self.meta["vocab"], source=str(self.dir / META_FILE))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.dir / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise OnnxModelError(f"{self.dir / MODEL_FILE}: onnxruntime cannot load it ({exc})") from exc
        cache = self.meta["cache"]
        self.n_layers, self.n_heads, self.head_dim = cache["n_layers"], cache["n_heads"], cache["head_dim"]
        self.past_names = cache_names(self.n_layers, "past")
        self.present_names = cache_names(self.n_layers, "present")
        inputs = {i.name: i for i in self.session.get_inputs()}
        missing = [n for n in [INPUT_IDS, *self.past_names] if n not in inputs]
        if missing:
            raise OnnxModelError(f"{self.dir / MODEL_FILE}: inputs {missing} missing (model.json does not describe it)")
        self.cache_dtype = _NUMPY_DTYPES[inputs[self.past_names[0]].type]
        self.output_names = [LOGITS, *self.present_names]

    @property
    def tier(self) -> str:
        return str(self.meta["tier"])

    @property
    def max_seq_len(self) -> int:
        return int(self.meta["max_seq_len"])

    def empty_past(self, batch: int) -> list[np.ndarray]:
        z = np.zeros((batch, self.n_heads, 0, self.head_dim), dtype=self.cache_dtype)
        return [z] * (2 * self.n_layers)

    def step(self, ids: np.ndarray, past: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (batch, seq, vocab) of `ids` (batch, seq) after the cache `past`; and the new cache."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        past = self.empty_past(ids.shape[0]) if past is None else past
        feeds = {INPUT_IDS: ids, **dict(zip(self.past_names, past, strict=True))}
        logits, *present = self.session.run(self.output_names, feeds)
        return logits, present

    def header(self, rudiment: str, tempo_bpm: float, tier: str | None = None) -> list[int]:
        return self.vocab.header(rudiment, tier or self.tier, tempo_bpm)

    def generate(
        self,
        prompts: np.ndarray,
        *,
        max_new_tokens: int,
        sampling: Sampling,
        rng: np.random.Generator,
        stop_at_eos: bool = True,
    ) -> list[list[int]]:
        """Continue equal-length `prompts` (batch, prompt_len) with the cache; each sequence is cut
        after its first EOS, and a finished sequence leaves the batch."""
        prompts = np.asarray(prompts, dtype=np.int64)
        batch, plen = prompts.shape
        seqs = np.full((batch, plen + max_new_tokens), self.vocab.pad_id, dtype=np.int64)
        seqs[:, :plen] = prompts
        lengths = np.full(batch, plen + max_new_tokens)
        active = np.arange(batch)
        logits, past = self.step(prompts)
        for pos in range(plen, plen + max_new_tokens):
            nxt = sample_next(logits[:, -1], sampling, rng)
            seqs[active, pos] = nxt
            if stop_at_eos:
                ended = nxt == self.vocab.eos_id
                if ended.any():
                    lengths[active[ended]] = pos + 1
                    keep = ~ended
                    active, nxt = active[keep], nxt[keep]
                    past = [p[keep] for p in past]
                    if not len(active):
                        break
            if pos + 1 < plen + max_new_tokens:
                logits, past = self.step(nxt[:, None], past)
        return [row[:n].tolist() for row, n in zip(seqs, lengths, strict=True)]

    def greedy(self, prompts: np.ndarray, new_tokens: int) -> np.ndarray:
        """`new_tokens` argmax tokens after `prompts` (batch, prompt_len); EOS does not stop it."""
        logits, past = self.step(np.asarray(prompts, dtype=np.int64))
        out = []
        for _ in range(new_tokens):
            nxt = logits[:, -1].argmax(-1)
            out.append(nxt)
            logits, past = self.step(nxt[:, None], past)
        return np.stack(out, axis=1)

    def score(self, seqs: Sequence[np.ndarray], batch_size: int = 8) -> Scores:
        """Teacher-forced NLL (nats) and top-1 predictions of every token after the header.

        As in training, the conditioning header is given, not predicted.
        Sequences are right-padded in batches of similar length; with causal
        attention the padding after a sequence never changes its own logits.
        """
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        argmax: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(seqs)
        nll, count = 0.0, 0
        first = HEADER_LEN - 1  # the position whose logits predict the first body token
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = np.full((len(idx), width), self.vocab.pad_id, dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
            logits, _ = self.step(ids)
            for row, i in enumerate(idx):
                end = len(seqs[i]) - 1
                logp = log_softmax(logits[row, first:end])
                nll -= float(logp[np.arange(end - first), ids[row, first + 1 : end + 1]].sum())
                count += end - first
                argmax[i] = logits[row, first:end].argmax(-1)
        return Scores(nll, count, argmax)


def headers_of(seqs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """`n` headers (BOS, rudiment, tier, tempo) cycling over `seqs` in order."""
    if not len(seqs):
        raise ValueError("no sequences to take headers from")
    return np.stack([np.asarray(seqs[i % len(seqs)][:HEADER_LEN], dtype=np.int64) for i in range(n)])
