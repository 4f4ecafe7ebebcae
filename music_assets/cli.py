"""The `music-assets` command (installed with the package).

    music-assets generate --rudiment flam --tier professional --bars 4 --count 4 --out out/ \\
        [--flac] [--precision fp32|fp16|int8|int4] [--seed 0] [--tempo 96] [--models DIR | --model DIR]

`generate` plays `--count` takes of a rudiment with the promoted model of a
skill tier and precision (`<data dir>/models/onnx/<tier>/` for fp32,
`<data dir>/models/quantized/<tier>/<precision>/` otherwise; `--models` names
another models folder, `--model` one model folder directly) and writes each as
General MIDI, `<out>/<rudiment>-<tier>-<precision>-<i>.mid`, and with `--flac`
rendered with FluidSynth and the project's soundfont (`timgm6mb`, or
`--soundfont`: a name from `music_assets.audio.soundfonts` or a .sf2 path) beside it. Only
onnxruntime and numpy run the model (no torch). Take i is the same for the
same arguments whatever `--count` is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from music_assets.audio import soundfonts

DEFAULT_SOUNDFONT = soundfonts.DEFAULT.name
PRECISIONS = ("fp32", "fp16", "int8", "int4")


def _parser() -> argparse.ArgumentParser:
    from music_assets.rudiments.constants import SKILL_TIERS  # noqa: PLC0415

    ap = argparse.ArgumentParser(prog="music-assets", description="music_assets command line")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser(
        "generate",
        help="generate rudiment takes (MIDI, optionally FLAC) with a trained model",
        description="Generate takes of a drum rudiment played at a skill tier, as MIDI (and FLAC).",
    )
    g.add_argument("--rudiment", required=True, help="rudiment slug, e.g. flam, single_paradiddle")
    g.add_argument("--tier", choices=SKILL_TIERS, default="professional", help="skill tier (default professional)")
    g.add_argument("--bars", type=float, default=2, help="length in 4/4 bars (default 2)")
    g.add_argument("--count", type=int, default=1, help="number of takes (default 1)")
    g.add_argument("--out", type=Path, required=True, help="folder to write the takes to")
    g.add_argument("--flac", action="store_true", help="also render each take to FLAC")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32", help="model variant (default fp32)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tempo", type=float, default=None, help="BPM (default: the model's tempo for the rudiment)")
    g.add_argument("--models", type=Path, default=None, help="models folder (default: <data dir>/models)")
    g.add_argument("--model", type=Path, default=None, help="one model folder (model.onnx + model.json)")
    g.add_argument(
        "--soundfont",
        default=DEFAULT_SOUNDFONT,
        help=f"for --flac: {', '.join(soundfonts.SOUNDFONTS)} or a .sf2 path (default {DEFAULT_SOUNDFONT})",
    )
    g.add_argument("--temperature", type=float, default=None, help="default: the model's")
    g.add_argument("--top-k", type=int, default=None, help="0 = off; default: the model's")
    g.add_argument("--top-p", type=float, default=None, help="1.0 = off; default: the model's")
    g.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    return ap


def model_folder(args: argparse.Namespace) -> Path:
    if args.model is not None:
        return args.model
    from music_assets.paths import models_dir  # noqa: PLC0415

    root = args.models or models_dir()
    return root / "onnx" / args.tier if args.precision == "fp32" else root / "quantized" / args.tier / args.precision


def generate(args: argparse.Namespace) -> int:
    from music_assets.ml.onnx_runtime import OnnxDrumModel, OnnxModelError, Sampling  # noqa: PLC0415
    from music_assets.ml.tokenizer import TokenizerError  # noqa: PLC0415

    folder = model_folder(args)
    soundfont = soundfonts.resolve(args.soundfont)
    if args.flac and not soundfont.is_file():
        print(f"error: {soundfonts.not_found_message(soundfont)}", file=sys.stderr)
        return 2
    try:
        if not (folder / "model.json").is_file():
            raise OnnxModelError(f"{folder}: no model.json (materialize the models first: make run)")
        model = OnnxDrumModel(folder, threads=args.threads)
        if args.model is None and model.tier != args.tier:
            raise OnnxModelError(f"{folder}: a {model.tier} model, not {args.tier}")
        sampling = Sampling.from_meta(model.meta, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
        takes = model.takes(
            args.rudiment, tempo_bpm=args.tempo, bars=args.bars, count=args.count, seed=args.seed, sampling=sampling
        )
    except (OnnxModelError, TokenizerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    renderer = None
    if args.flac:
        from music_assets.audio.synthesis import get_renderer  # noqa: PLC0415

        renderer = get_renderer(soundfont)
    precision = model.meta.get("precision", args.precision)
    for i, take in enumerate(takes):
        stem = args.out / f"{args.rudiment}-{model.tier}-{precision}-{i:02d}"
        midi = take.write_midi(stem.with_suffix(".mid"))
        line = f"{midi}: {len(take.notes)} notes, {take.tempo_bpm:g} BPM, {args.bars:g} bars"
        if renderer is not None:
            from music_assets.audio.io import write_flac  # noqa: PLC0415

            audio = renderer.render_midi(model.vocab.to_pretty_midi(take.performance), tail_seconds=0.5)
            write_flac(stem.with_suffix(".flac"), audio, renderer.sample_rate)
            line += f", {stem.with_suffix('.flac').name} ({len(audio) / renderer.sample_rate:.2f} s)"
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return generate(args)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    raise SystemExit(main())
