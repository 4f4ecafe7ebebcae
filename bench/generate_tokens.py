"""Benchmark sampling with the KV cache against sampling without it (same model, same run).

Workload (fixed): the demo-size base model (the trained one under
`<data dir>/models/base/` when it exists, else a freshly initialised model of
the demo configuration: speed does not depend on the weights, since EOS does
not stop sampling here). For each batch size, `--new-tokens` tokens are
sampled after a 4-token header, once feeding one token plus the cache per step
(`use_cache=True`) and once recomputing the whole sequence every step
(`use_cache=False`, the baseline). Prints tokens/s of each (median of
`--repeats` runs after a warm-up) and the ratio cached / uncached.

    python bench/generate_tokens.py [--new-tokens 256] [--batch 1 4] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from music_assets.ml.generation import generate, torch_generator  # noqa: E402
from music_assets.ml.model import DrumTransformer, ModelConfig  # noqa: E402
from music_assets.ml.tokenizer import Vocab  # noqa: E402
from music_assets.ml.workflows import ModelFilesError, init_model, load_base  # noqa: E402
from music_assets.paths import models_dir  # noqa: E402


def load_model() -> tuple[DrumTransformer, str]:
    try:
        model, _, _ = load_base(models_dir() / "base")
        return model, f"trained base model from {models_dir() / 'base'}"
    except ModelFilesError:
        cfg = ModelConfig(vocab_size=len(Vocab()), d_model=128, n_layers=4, n_heads=4, d_ff=512)
        return init_model(cfg, seed=0).eval(), "untrained model of the demo configuration (no base model on disk)"


def tokens_per_second(model: DrumTransformer, batch: int, new_tokens: int, use_cache: bool, repeats: int) -> float:
    prompts = torch.tensor([Vocab().header("single_paradiddle", "advanced", 100)] * batch)

    def once() -> float:
        t0 = time.perf_counter()
        generate(
            model,
            prompts,
            max_new_tokens=new_tokens,
            eos_id=2,
            pad_id=0,
            use_cache=use_cache,
            stop_at_eos=False,
            generator=torch_generator("bench"),
        )
        return batch * new_tokens / (time.perf_counter() - t0)

    generate(model, prompts, max_new_tokens=16, eos_id=2, pad_id=0, use_cache=use_cache, stop_at_eos=False)
    return statistics.median(once() for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=256)  # a demo performance is ~215 tokens
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=2)
    # one thread: a decode step is many tiny ops, where a second thread mostly adds synchronisation,
    # and on a shared machine a spinning second thread makes the figures erratic
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = every core)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    model, what = load_model()
    print(
        f"model: {what}; {model.num_parameters():,} parameters, {model.config.n_layers} layers, "
        f"d_model {model.config.d_model}"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.new_tokens} new tokens per sequence, "
        f"median of {args.repeats}"
    )
    print(f"{'batch':>5}  {'with KV cache':>16}  {'without (baseline)':>19}  {'ratio':>6}")
    for b in args.batch:
        cached = tokens_per_second(model, b, args.new_tokens, True, args.repeats)
        full = tokens_per_second(model, b, args.new_tokens, False, args.repeats)
        print(f"{b:>5}  {cached:>12.0f} tok/s  {full:>15.0f} tok/s  {cached / full:>5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
