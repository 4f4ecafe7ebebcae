"""Benchmark generation speed: torch eager against onnxruntime fp32, fp16, int8 and int4 (one run).

Workload (fixed): one tier model. When `<data dir>/models/onnx/<tier>/` exists
(with the base model and the tier's adapter), the benchmark uses it, its
quantized variants under `models/quantized/<tier>/` (any that are missing are
quantized into a temporary folder) and, for torch, the same adapter merged
into the base. Otherwise a freshly initialised model of the demo
configuration is exported and quantized in a temporary folder: speed does not
depend on the weights here, since every backend decodes greedily and EOS does
not stop it. For each batch size: a 4-token header prefill, then `--new-tokens`
decode steps feeding one token per row and the KV cache. Prints tokens/s
(median of `--repeats` after a warm-up), the ratio to torch eager, and each
model's size (the file for ONNX, the fp32 parameters for torch).

    python bench/onnx.py [--tier advanced] [--new-tokens 256] [--batch 1 8] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from music_assets.io import write_json  # noqa: E402
from music_assets.ml import quantize as qz  # noqa: E402
from music_assets.ml.export import DEFAULT_OPSET, DEFAULT_SAMPLING, export_onnx, model_json  # noqa: E402
from music_assets.ml.model import DrumTransformer, ModelConfig  # noqa: E402
from music_assets.ml.onnx_runtime import META_FILE, MODEL_FILE, OnnxDrumModel  # noqa: E402
from music_assets.ml.score import library_templates  # noqa: E402
from music_assets.ml.tokenizer import Vocab  # noqa: E402
from music_assets.ml.workflows import init_model, load_tier_model  # noqa: E402
from music_assets.paths import models_dir  # noqa: E402


def trained_models(tier: str, scratch: Path) -> tuple[DrumTransformer, dict[str, Path], str] | None:
    """The tier's merged torch model and its ONNX folders, from the data dir (None if not exported)."""
    m = models_dir()
    fp32 = m / "onnx" / tier
    if not (fp32 / META_FILE).is_file():
        return None
    model, _ = load_tier_model(m / "base", m / "lora" / tier / "adapter", merge=True)
    dirs = {"fp32": fp32}
    for p in qz.PRECISIONS:
        have = m / "quantized" / tier / p
        dirs[p] = have if (have / META_FILE).is_file() else scratch / p
        if dirs[p] == scratch / p:
            qz.write_variant(fp32, scratch / p, p)
    return model, dirs, f"the {tier} model under {m} (adapter merged into the base)"


def fresh_models(tier: str, scratch: Path) -> tuple[DrumTransformer, dict[str, Path], str]:
    """An untrained model of the demo configuration, exported and quantized into `scratch`."""
    vocab = Vocab()
    model = init_model(ModelConfig(vocab_size=len(vocab)), seed=0).eval()
    fp32 = scratch / "fp32"
    export_onnx(model, fp32 / MODEL_FILE)
    write_json(
        fp32 / META_FILE,
        model_json(
            fp32 / MODEL_FILE,
            vocab,
            model,
            tier,
            opset=DEFAULT_OPSET,
            sampling=DEFAULT_SAMPLING,
            tempi={},
            source={"untrained": True},
            scores={slug: t.to_dict() for slug, t in library_templates().items()},
        ),
    )
    dirs = {"fp32": fp32}
    for p in qz.PRECISIONS:
        qz.write_variant(fp32, scratch / p, p)
        dirs[p] = scratch / p
    return model, dirs, "an untrained model of the demo configuration (no export on disk)"


def torch_step(model: DrumTransformer) -> Callable:
    @torch.no_grad()
    def step(ids: np.ndarray, past):
        logits, present = model(torch.from_numpy(ids), past)
        return logits.numpy(), present

    return step


def tokens_per_second(step: Callable, prompt: np.ndarray, new_tokens: int, repeats: int) -> float:
    def once(n: int) -> float:
        t0 = time.perf_counter()
        logits, past = step(prompt, None)
        for _ in range(n):
            logits, past = step(logits[:, -1:].argmax(-1), past)
        return prompt.shape[0] * n / (time.perf_counter() - t0)

    once(16)
    return statistics.median(once(new_tokens) for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", default="advanced")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model, dirs, what = trained_models(args.tier, scratch) or fresh_models(args.tier, scratch)
        backends: dict[str, tuple[Callable, int]] = {
            "torch eager + KV cache": (torch_step(model), 4 * model.num_parameters())
        }
        for name, d in dirs.items():
            runner = OnnxDrumModel(d, threads=args.threads)
            backends[f"onnxruntime {name}"] = (
                lambda ids, past, r=runner: r.step(ids, past),
                (d / MODEL_FILE).stat().st_size,
            )
        cfg = model.config
        print(f"model: {what}; {model.num_parameters():,} parameters, {cfg.n_layers} layers, d_model {cfg.d_model}")
        print(
            f"torch {torch.__version__}, onnxruntime CPU, {args.threads} thread(s); header prefill + "
            f"{args.new_tokens} cached decode steps, greedy; median of {args.repeats}"
        )
        header = Vocab.from_json(OnnxDrumModel(dirs["fp32"]).meta["vocab"]).header("single_paradiddle", args.tier, 100)
        cols = "".join(f"  {f'batch {b} tok/s':>15}  {'ratio':>6}" for b in args.batch)
        print(f"{'backend':<24}  {'size (KiB)':>10}  {'size ratio':>10}{cols}")
        base_rates: dict[int, float] = {}
        fp32_size = (dirs["fp32"] / MODEL_FILE).stat().st_size
        for name, (step, size) in backends.items():
            row = f"{name:<24}  {size / 1024:>10.0f}  {size / fp32_size:>10.3f}"
            for b in args.batch:
                rate = tokens_per_second(step, np.asarray([header] * b, dtype=np.int64), args.new_tokens, args.repeats)
                base_rates.setdefault(b, rate)
                row += f"  {rate:>15.0f}  {rate / base_rates[b]:>5.2f}x"
            print(row, flush=True)
        print("ratio: tokens/s relative to torch eager at the same batch size; size ratio: relative to the fp32 file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
