"""Sampling from the transformer in torch.

- `TorchStepper` drives a torch model (base, or base + adapter) through the
  score-conditioned, grammar-masked decoding that the ONNX runner uses too
  (`music_assets.ml.decoding.perform`): the same prompts, masks and sampling
  code, so a torch model and its export decode the same takes.
- `generate` continues prompts freely over the whole vocabulary (temperature,
  top-k, top-p, with or without the KV cache): what the speed benchmark times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from music_assets.ml.model import DrumTransformer
from music_assets.ml.sampling import SamplingConfig
from music_assets.seeding import stable_seed

__all__ = ["SamplingConfig", "TorchStepper", "filter_logits", "generate", "sample_next", "torch_generator"]


class TorchStepper:
    """A torch model as a `decoding.Stepper`: one cached forward pass per call, logits as numpy.

    Decoding runs on `threads` threads (1 by default): its matrices are a few
    rows each, and more threads only wait on each other, badly so on a busy
    machine (a step took 60 ms on two contended threads, 7 ms on one).
    """

    def __init__(self, model: torch.nn.Module, max_seq_len: int | None = None, threads: int = 1):
        self.model = model.eval()
        core = next((m for m in model.modules() if isinstance(m, DrumTransformer)), None)
        if max_seq_len is None and core is None:
            raise ValueError("max_seq_len is needed for a model that is not a DrumTransformer")
        self.max_seq_len = int(max_seq_len or core.config.max_seq_len)  # type: ignore[union-attr]
        self.threads = threads

    @torch.no_grad()
    def step(self, ids: np.ndarray, past: Any) -> tuple[np.ndarray, Any]:
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            logits, present = self.model(torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)), past)
        finally:
            torch.set_num_threads(before)
        return logits[:, -1].float().numpy(), present

    def select(self, past: Any, rows: np.ndarray) -> Any:
        idx = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return tuple(p[idx] for p in past)


def torch_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from `stable_seed(*parts)`."""
    g = torch.Generator()
    g.manual_seed(stable_seed(*parts) & 0x7FFF_FFFF_FFFF_FFFF)
    return g


def filter_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering of (batch, vocab) logits."""
    logits = logits / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the mass before it already reaches top_p (the first always stays)
        drop_sorted = (cum - sorted_logits.softmax(-1)) >= cfg.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator) -> torch.Tensor:
    probs = filter_logits(logits.float(), cfg).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompts: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    sampling: SamplingConfig = SamplingConfig(),
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stop_at_eos: bool = True,
) -> list[list[int]]:
    """Continue equal-length `prompts` (batch, prompt_len); return each sequence with its prompt,
    cut after its first EOS (`stop_at_eos=False` always samples `max_new_tokens`, for benchmarks).

    With `use_cache` each step feeds one token and the cache; without it, the
    whole sequence is recomputed every step (same distribution, for comparison).
    A sequence that has ended leaves the batch, so one long sequence does not
    keep paying for the finished ones.
    """
    was_training = model.training
    model.eval()
    generator = generator or torch_generator("generate")
    prompts = prompts.to(torch.long)
    batch, plen = prompts.shape
    seqs = torch.full((batch, plen + max_new_tokens), pad_id, dtype=torch.long)
    seqs[:, :plen] = prompts
    lengths = torch.full((batch,), plen + max_new_tokens, dtype=torch.long)
    active = torch.arange(batch)
    try:
        logits, past = model(prompts)
        for pos in range(plen, plen + max_new_tokens):
            nxt = sample_next(logits[:, -1], sampling, generator)
            seqs[active, pos] = nxt
            if stop_at_eos:
                ended = nxt == eos_id
                if bool(ended.any()):
                    lengths[active[ended]] = pos + 1
                    keep = ~ended
                    active, nxt = active[keep], nxt[keep]
                    past = tuple(p[keep] for p in past)
                    if not len(active):
                        break
            if use_cache:
                logits, past = model(nxt[:, None], past)
            else:
                logits, _ = model(seqs[active, : pos + 1])
    finally:
        model.train(was_training)
    return [row[: int(n)] for row, n in zip(seqs.tolist(), lengths, strict=True)]
