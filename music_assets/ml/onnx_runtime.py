"""Run an exported drum model with onnxruntime and numpy only (no torch).

A model folder (`<data dir>/models/onnx/<tier>/` or
`<data dir>/models/quantized/<tier>/<precision>/`) holds `model.onnx` and
`model.json`; the JSON carries everything needed to drive the graph: the
vocabulary, the special and conditioning tokens, every rudiment's written
score (`score.ScoreTemplate`), the input/output names and shapes (`input_ids`
plus one past key and value per layer in, `logits` plus the present keys and
values out), the sampling defaults and the sha256 of the model file.

`OnnxDrumModel` wraps the session, and is the Python API of a model:

    model = OnnxDrumModel("data/models/onnx/professional")
    takes = model.takes("flam", bars=4, count=4, seed=0)  # tempo: the model's default for the rudiment
    takes[0].write_midi("flam.mid")                          # or takes[0].midi_bytes(), takes[0].notes

It decodes with the score-conditioned, grammar-masked decoding of
`music_assets.ml.decoding` (the same code as the torch models), one step at a
time with the KV cache; it also gives teacher-forced scores for perplexity and
top-1 agreement.

This module must never import torch: the runner (`onnx_generate`, the
`music-assets` command) and the quantized-model checks use it in processes
where torch is absent or unwanted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.io import atomic_path, read_json, sha256_file
from music_assets.ml.decoding import TakeRequest, perform, prompt_for
from music_assets.ml.decoding import filter_logits as filter_logits  # noqa: PLC0414 - re-exported
from music_assets.ml.decoding import sample_rows as sample_rows  # noqa: PLC0414 - re-exported
from music_assets.ml.decoding import softmax as softmax  # noqa: PLC0414 - re-exported
from music_assets.ml.grammar import grammar_report
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.score import ScoreTemplate
from music_assets.ml.tokenizer import HEADER_LEN, Performance, TokenizerError, Vocab
from music_assets.seeding import stable_rng

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


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


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

    # --- decoding (a `decoding.Stepper`) ---------------------------------------------------------
    def last_logits(self, ids: np.ndarray, past: Sequence[np.ndarray] | None) -> tuple[np.ndarray, list[np.ndarray]]:
        logits, present = self.step(ids, past)
        return logits[:, -1], present

    def stepper(self) -> _Stepper:
        return _Stepper(self)

    @property
    def templates(self) -> dict[str, ScoreTemplate]:
        """Every rudiment's written score, from model.json."""
        if "_templates" not in self.__dict__:
            scores = self.meta.get("scores")
            if not isinstance(scores, dict) or not scores:
                raise OnnxModelError(f"{self.dir / META_FILE}: no rudiment scores (export the model again)")
            self.__dict__["_templates"] = {k: ScoreTemplate.from_dict(v) for k, v in scores.items()}
        return self.__dict__["_templates"]

    def default_tempo(self, rudiment: str) -> float:
        return float((self.meta["conditioning"].get("default_tempo_bpm") or {}).get(rudiment, 120.0))

    def perform(
        self,
        requests: Sequence[TakeRequest],
        sampling: Sampling,
        rngs: Sequence[np.random.Generator] | None,
        *,
        masked: bool = True,
        greedy: bool = False,
    ) -> list[list[int]]:
        """Token sequences of `requests` (see `decoding.perform`)."""
        prompts = [prompt_for(self.vocab, self.templates, r) for r in requests]
        return perform(self.stepper(), self.vocab, prompts, sampling, rngs, masked=masked, greedy=greedy)

    def takes(
        self,
        rudiment: str,
        *,
        tempo_bpm: float | None = None,
        bars: float = 2,
        count: int = 1,
        seed: int = 0,
        sampling: Sampling | None = None,
    ) -> list[Take]:
        """`count` takes of `bars` 4/4 bars of `rudiment` at `tempo_bpm` (default: the model's tempo for it).

        Take i draws from `stable_rng(seed, rudiment, tier, tempo, bars, i)`: the same arguments give
        the same takes, and take i does not depend on `count`.
        """
        if rudiment not in self.templates:
            raise TokenizerError(f"unknown rudiment {rudiment!r}; the model knows: {', '.join(sorted(self.templates))}")
        if bars <= 0 or count < 1:
            raise ValueError("bars must be > 0 and count >= 1")
        tempo = float(tempo_bpm or self.default_tempo(rudiment))
        if not self.vocab.tempo_bins[0] <= tempo <= self.vocab.tempo_bins[-1]:
            raise ValueError(f"tempo {tempo:g} BPM outside {self.vocab.tempo_bins[0]}..{self.vocab.tempo_bins[-1]}")
        sampling = sampling or Sampling.from_meta(self.meta)
        request = TakeRequest(rudiment, self.tier, tempo, 4.0 * bars)
        rngs = [stable_rng(seed, rudiment, self.tier, tempo, bars, i) for i in range(count)]
        seqs = self.perform([request] * count, sampling, rngs)
        return [Take(self, ids, self.vocab.decode(ids, tempo_bpm=tempo), tempo, bars) for ids in seqs]

    def score(self, seqs: Sequence[np.ndarray], batch_size: int = 8) -> Scores:
        """Teacher-forced NLL (nats) and top-1 predictions of every predicted token (OFFSET, VELOCITY).

        As in training, the header and the score are given, not predicted.
        Sequences are right-padded in batches of similar length; with causal
        attention the padding after a sequence never changes its own logits.
        """
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        argmax: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(seqs)
        nll, count = 0.0, 0
        predicted = self.vocab.predicted
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = np.full((len(idx), width), self.vocab.pad_id, dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
            logits, _ = self.step(ids)
            for row, i in enumerate(idx):
                targets = ids[row, 1 : len(seqs[i])]
                pos = np.flatnonzero(predicted[targets])
                pos = pos[pos >= HEADER_LEN - 1]
                logp = log_softmax(logits[row, pos])
                nll -= float(logp[np.arange(len(pos)), targets[pos]].sum())
                count += len(pos)
                argmax[i] = logits[row, pos].argmax(-1)
        return Scores(nll, count, argmax)


class _Stepper:
    """An `OnnxDrumModel` as a `decoding.Stepper`."""

    def __init__(self, model: OnnxDrumModel):
        self.model = model
        self.max_seq_len = model.max_seq_len

    def step(self, ids: np.ndarray, past: Any) -> tuple[np.ndarray, Any]:
        return self.model.last_logits(ids, past)

    def select(self, past: Any, rows: np.ndarray) -> Any:
        return [p[rows] for p in past]


@dataclass
class Take:
    """One generated take: its tokens, its notes, and the MIDI file they make."""

    model: OnnxDrumModel
    ids: list[int]
    performance: Performance
    tempo_bpm: float
    bars: float

    @property
    def notes(self) -> list[Any]:
        return self.performance.notes

    @property
    def grammar_score(self) -> float:
        return grammar_report(self.ids, self.model.vocab).score

    def midi_bytes(self) -> bytes:
        import io  # noqa: PLC0415

        buf = io.BytesIO()
        self.model.vocab.to_pretty_midi(self.performance).write(buf)
        return buf.getvalue()

    def write_midi(self, path: str | os.PathLike[str]) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_bytes(self.midi_bytes())
        return Path(path)


def prompts_of(seqs: Sequence[np.ndarray], n: int, vocab: Vocab) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """`n` prompts (header and score) cycling over `seqs` in order: their performances played again."""
    from music_assets.ml.tokenizer import score_of  # noqa: PLC0415

    if not len(seqs):
        raise ValueError("no sequences to take prompts from")
    return [score_of(seqs[i % len(seqs)], vocab) for i in range(n)]
