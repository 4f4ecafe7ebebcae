"""A small decoder-only transformer over drum event tokens, with a KV cache.

Designed so that LoRA (peft), ONNX export (torch.onnx dynamo exporter) and
MatMul quantization all apply without special cases:

- every projection is an explicit `nn.Linear`: attention `q_proj`, `k_proj`,
  `v_proj`, `o_proj`; MLP `up_proj`, `down_proj`; the `lm_head`;
- `forward(input_ids, past)` takes plain tensors: `past` is a tuple
  `(k_0, v_0, k_1, v_1, ...)` with one key and one value per layer, each of shape
  (batch, heads, past_len, head_dim), and it returns `(logits, present)` in the
  same layout with `past_len + seq_len` positions;
- rotary positions are derived from the past length (`arange(past_len,
  past_len + seq_len)`), and the attention mask from shapes only: no
  data-dependent Python control flow and no custom autograd in `forward`.

`past=None` (training, scoring) uses causal attention over the input alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES: tuple[str, ...] = ("up_proj", "down_proj")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.1  # on the residual branches and embeddings
    attn_dropout: float = 0.0  # on attention weights; costs a slower attention kernel on CPU
    rope_base: float = 10000.0
    max_seq_len: int = 1024  # longest sequence trained on and generated

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"d_model {self.d_model} must split into {self.n_heads} heads of even size")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(**d)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = cfg.n_heads, cfg.head_dim, cfg.attn_dropout
        self.q_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.o_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        past_k: torch.Tensor | None,
        past_v: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t = x.shape[0], x.shape[1]
        q = self.q_proj(x).reshape(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).reshape(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).reshape(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        drop = self.dropout if self.training else 0.0
        if past_k is None or past_v is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
            past_len = past_k.shape[2]
            q_pos = torch.arange(t, device=x.device).unsqueeze(1) + past_len
            k_pos = torch.arange(k.shape[2], device=x.device).unsqueeze(0)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=k_pos <= q_pos, dropout_p=drop)
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(out), k, v


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, past_k, past_v):
        a, k, v = self.attn(self.ln_1(x), cos, sin, past_k, past_v)
        x = x + self.drop(a)
        x = x + self.drop(self.down_proj(F.gelu(self.up_proj(self.ln_2(x)))))
        return x, k, v


class DrumTransformer(nn.Module):
    """Decoder-only transformer: `(input_ids, past) -> (logits, present)`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02
                if name.endswith(("o_proj.weight", "down_proj.weight")):
                    std /= math.sqrt(2 * self.config.n_layers)  # residual branches (GPT-2)
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(
        self, input_ids: torch.Tensor, past: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        t = input_ids.shape[1]
        past_len = past[0].shape[2] if past is not None else 0
        pos = torch.arange(t, device=input_ids.device, dtype=torch.float32) + past_len
        freqs = pos.unsqueeze(1) * self.inv_freq.unsqueeze(0)
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.drop(self.embed(input_ids))
        present: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            pk = past[2 * i] if past is not None else None
            pv = past[2 * i + 1] if past is not None else None
            x, k, v = block(x, cos, sin, pk, pv)
            present += [k, v]
        return self.lm_head(self.ln_f(x)), tuple(present)

    def empty_past(self, batch: int) -> tuple[torch.Tensor, ...]:
        """A zero-length cache (what an exported graph takes on its first call)."""
        c = self.config
        z = torch.zeros(batch, c.n_heads, 0, c.head_dim, dtype=self.embed.weight.dtype, device=self.embed.weight.device)
        return tuple(z for _ in range(2 * c.n_layers))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
