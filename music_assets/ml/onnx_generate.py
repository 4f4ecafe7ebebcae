"""Generate a drum performance with an exported model: onnxruntime, numpy and the JSON only (no torch).

    python -m music_assets.ml.onnx_generate --model data/models/onnx/advanced --rudiment flam --out take.mid
        [--tempo 96] [--seed 0] [--temperature 0.9] [--top-k 0] [--top-p 1.0] [--threads 1]

`--model` is an exported model folder (`models/onnx/<tier>/` or
`models/quantized/<tier>/<precision>/`); the skill tier comes from its
`model.json`, and so do the sampling defaults and, per rudiment, a default
tempo (the median of the training performances). The header (BOS, rudiment,
tier, tempo) is fed once, then one token per step with the KV cache, until EOS
or the model's longest sequence. The tokens are decoded with the vocabulary in
`model.json` and written as a General MIDI drum track.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from music_assets.io import atomic_path
from music_assets.ml.grammar import grammar_report
from music_assets.ml.onnx_runtime import OnnxDrumModel, OnnxModelError, Sampling
from music_assets.ml.tokenizer import HEADER_LEN, TokenizerError
from music_assets.seeding import stable_rng


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m music_assets.ml.onnx_generate",
        description="Generate a rudiment performance (MIDI) with an exported ONNX model.",
    )
    ap.add_argument("--model", required=True, type=Path, help="model folder holding model.onnx and model.json")
    ap.add_argument("--rudiment", required=True, help="rudiment slug, e.g. flam or single_paradiddle")
    ap.add_argument("--out", required=True, type=Path, help="MIDI file to write")
    ap.add_argument("--tempo", type=float, default=None, help="BPM (default: the model's tempo for the rudiment)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None, help="default: model.json sampling")
    ap.add_argument("--top-k", type=int, default=None, help="0 = off; default: model.json sampling")
    ap.add_argument("--top-p", type=float, default=None, help="1.0 = off; default: model.json sampling")
    ap.add_argument("--max-tokens", type=int, default=None, help="default: the model's max_seq_len minus the header")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = OnnxDrumModel(args.model, threads=args.threads)
        conditioning = model.meta["conditioning"]
        if args.rudiment not in conditioning["rudiment"]:
            raise TokenizerError(
                f"unknown rudiment {args.rudiment!r}; the model knows: {', '.join(sorted(conditioning['rudiment']))}"
            )
        tempi = conditioning.get("default_tempo_bpm") or {}
        tempo = args.tempo or tempi.get(args.rudiment, 120.0)
        sampling = Sampling.from_meta(model.meta, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    except (OnnxModelError, TokenizerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    max_new = args.max_tokens or model.max_seq_len - HEADER_LEN
    prompt = [model.header(args.rudiment, tempo)]
    rng = stable_rng(args.seed, "onnx_generate", args.rudiment, model.tier, tempo)
    ids = model.generate(prompt, max_new_tokens=max_new, sampling=sampling, rng=rng)[0]
    perf = model.vocab.decode(ids)
    report = grammar_report(ids, model.vocab)
    if not perf.notes:
        print(f"error: the model generated no notes ({len(ids)} tokens); try another --seed", file=sys.stderr)
        return 1
    with atomic_path(args.out) as tmp:
        model.vocab.to_pretty_midi(perf).write(str(tmp))
    end = max(n.end for n in perf.notes)
    print(
        f"{args.out}: {perf.rudiment}, {model.tier} ({model.meta['precision']}), {perf.tempo_bpm:g} BPM, "
        f"{len(perf.notes)} notes, {end:.2f} s, {len(ids)} tokens, grammar score {report.score:.3f}"
        f"{'' if report.has_eos else ' (no EOS: cut at the length limit)'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
