"""Sampling settings shared by the torch sampler (`generation`) and the torch-free ONNX runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingConfig:
    """Temperature, then top-k, then nucleus (top-p) filtering of the next-token logits."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")

    @classmethod
    def from_meta(cls, meta: dict[str, Any], **overrides: Any) -> SamplingConfig:
        """The defaults in a model's `meta["sampling"]`, with the non-None `overrides` applied."""
        d = {k: meta.get("sampling", {}).get(k, getattr(cls, k)) for k in ("temperature", "top_k", "top_p")}
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls(temperature=float(d["temperature"]), top_k=int(d["top_k"]), top_p=float(d["top_p"]))
