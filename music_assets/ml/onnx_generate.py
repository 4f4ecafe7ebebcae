"""Generate a drum performance with an exported model: onnxruntime, numpy and the JSON only (no torch).

    python -m music_assets.ml.onnx_generate --model data/models/onnx/advanced --rudiment flam --out take.mid
        [--tempo 96] [--bars 2] [--seed 0] [--temperature 1.0] [--top-k 0] [--top-p 1.0] [--threads 1]

`--model` is an exported model folder (`models/onnx/<tier>/` or
`models/quantized/<tier>/<precision>/`); the skill tier comes from its
`model.json`, and so do the sampling defaults, every rudiment's written score
and, per rudiment, a default tempo (the median of the training performances).
The header (BOS, rudiment, tier, tempo) and the score are fed with the KV
cache and the model plays each stroke: its timing offset and velocity
(`music_assets.ml.decoding`). The take is written as a General MIDI drum track.
`music-assets generate` does the same for several takes, with FLAC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from music_assets.ml.onnx_runtime import OnnxDrumModel, OnnxModelError, Sampling
from music_assets.ml.tokenizer import TokenizerError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m music_assets.ml.onnx_generate",
        description="Generate a rudiment performance (MIDI) with an exported ONNX model.",
    )
    ap.add_argument("--model", required=True, type=Path, help="model folder holding model.onnx and model.json")
    ap.add_argument("--rudiment", required=True, help="rudiment slug, e.g. flam or single_paradiddle")
    ap.add_argument("--out", required=True, type=Path, help="MIDI file to write")
    ap.add_argument("--tempo", type=float, default=None, help="BPM (default: the model's tempo for the rudiment)")
    ap.add_argument("--bars", type=float, default=2, help="length in 4/4 bars (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None, help="default: model.json sampling")
    ap.add_argument("--top-k", type=int, default=None, help="0 = off; default: model.json sampling")
    ap.add_argument("--top-p", type=float, default=None, help="1.0 = off; default: model.json sampling")
    # the free-running models' length cap; a take's length is --bars now (accepted so old scripts keep running)
    ap.add_argument("--max-tokens", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.max_tokens is not None:
        print("note: --max-tokens is ignored; a take is as long as --bars (default 2)", file=sys.stderr)
    try:
        model = OnnxDrumModel(args.model, threads=args.threads)
        sampling = Sampling.from_meta(model.meta, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        (take,) = model.takes(args.rudiment, tempo_bpm=args.tempo, bars=args.bars, seed=args.seed, sampling=sampling)
    except (OnnxModelError, TokenizerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    take.write_midi(args.out)
    end = max(n.end for n in take.notes)
    print(
        f"{args.out}: {args.rudiment}, {model.tier} ({model.meta['precision']}), {take.tempo_bpm:g} BPM, "
        f"{args.bars:g} bars, {len(take.notes)} notes, {end:.2f} s, {len(take.ids)} tokens, "
        f"grammar score {take.grammar_score:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
