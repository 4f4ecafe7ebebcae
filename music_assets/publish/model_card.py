"""The model card of the Hub model repository (`README.md` with YAML front matter), from the evaluation.

Pure functions, no Dagster. The numbers come only from the evaluation files
`model_evaluation` writes (`<data dir>/models/evaluation/<tier>/<precision>.json`
and `summary.json`, see `REQUIRED_KEYS`), and each file must have evaluated
the very model file that is staged: its `model_sha256` must equal the staged
`model.onnx`'s sha256. A missing, malformed or stale evaluation raises
`ModelCardError` naming the file; there is no card with blank or stale numbers.

The card states what the evaluation found, failing gates included: a banner
under the title counts the models that fail a gate, and every failing gate is
listed with its value and threshold. The metrics table has one row per staged
model; `parse_metrics_table` reads it back, so a check can compare the card
written with the evaluation files (`metric_cells` formats a row the same way).

The front matter is built with `huggingface_hub.ModelCardData` (license,
`library_name: onnx`, tags, `datasets:` the dataset repository).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_assets.io import read_json

PRECISIONS = ("fp32", "fp16", "int8", "int4")  # fp32: the exported model; the others: its quantized variants
SUMMARY_FILE = "summary.json"
UNSET_MODEL_REPO = "<owner>/<model>"
UNSET_DATASET_REPO = "<owner>/<dataset>"
RUNNER = "python -m music_assets.ml.onnx_generate"

# Every per-model evaluation file has at least these keys.
FLOAT_KEYS = (
    "conditioning_accuracy",
    "classifier_heldout_accuracy",
    "timing_sd_ms",
    "real_timing_sd_ms",
    "velocity_cv",
    "real_velocity_cv",
    "frechet_distance",
    "frechet_scale",
    "degenerate_rate",
    "distinct_rate",
    "length_within_25pct",
    "grammar_score",
)
REQUIRED_KEYS = ("tier", "precision", "takes", *FLOAT_KEYS, "per_rudiment_accuracy", "gates", "model_sha256")
SUMMARY_CLASSIFIER_KEYS = ("heldout_accuracy", "train_takes", "test_takes")


class ModelCardError(ValueError):
    """Missing, malformed or stale evaluation; the message names the file and the reason."""


@dataclass(frozen=True)
class StagedModel:
    """One ONNX model of the repository."""

    tier: str
    precision: str
    folder: str  # in the repository, e.g. "onnx/advanced/int8"
    sha256: str  # of its model.onnx, as staged
    size_bytes: int

    @property
    def key(self) -> tuple[str, str]:
        return self.tier, self.precision

    @property
    def name(self) -> str:
        return f"{self.tier}/{self.precision}"


@dataclass
class Evaluations:
    """The evaluation of every staged model, and the classifier it was measured with."""

    classifier: dict[str, Any]
    by_model: dict[tuple[str, str], dict[str, Any]]
    files: dict[tuple[str, str], Path]  # where each was read
    summary_file: Path


# ---------------------------------------------------------------- reading the evaluation


def evaluation_file(eval_dir: Path, tier: str, precision: str) -> Path:
    return eval_dir / tier / f"{precision}.json"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def validate_evaluation(ev: Any, path: Path, tier: str, precision: str) -> dict[str, Any]:
    """`ev` if it is a complete evaluation of `tier`/`precision`; ModelCardError naming `path` otherwise."""
    if not isinstance(ev, dict):
        raise ModelCardError(f"{path}: not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in ev]
    if missing:
        raise ModelCardError(f"{path}: missing {', '.join(missing)}")
    if (ev["tier"], ev["precision"]) != (tier, precision):
        raise ModelCardError(
            f"{path}: holds the evaluation of {ev['tier']}/{ev['precision']}, not of {tier}/{precision}"
        )
    bad = [k for k in FLOAT_KEYS if not _finite(ev[k])]
    if not isinstance(ev["takes"], int) or isinstance(ev["takes"], bool) or ev["takes"] < 1:
        bad.append("takes")
    per = ev["per_rudiment_accuracy"]
    if not isinstance(per, dict) or not per or not all(_finite(v) for v in per.values()):
        bad.append("per_rudiment_accuracy")
    gates = ev["gates"]
    if not isinstance(gates, dict) or not gates:
        bad.append("gates")
    else:
        for name, g in gates.items():
            if not (isinstance(g, dict) and isinstance(g.get("passed"), bool) and _finite(g.get("value"))):
                bad.append(f"gates.{name}")
            elif not isinstance(g.get("threshold"), str):
                bad.append(f"gates.{name}.threshold")
    if not isinstance(ev["model_sha256"], str) or len(ev["model_sha256"]) != 64:
        bad.append("model_sha256")
    if bad:
        raise ModelCardError(f"{path}: no valid value for {', '.join(bad)} (a number the card cannot show)")
    return ev


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelCardError(f"{path}: not found; the card needs the {what} (materialize model_evaluation first)")
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise ModelCardError(f"{path}: unreadable JSON ({exc})") from None


def load_evaluations(eval_dir: Path, models: Sequence[StagedModel]) -> Evaluations:
    """The evaluation of every model in `models`, each checked against the model file staged.

    Refused (ModelCardError naming the file): a missing or malformed file; a file whose
    `model_sha256` is not the staged model's (it evaluated another file: stale); a classifier
    accuracy that differs from `summary.json`'s (evaluated with another classifier); a
    `summary.json` entry for the same model with another `model_sha256`.
    """
    summary_file = eval_dir / SUMMARY_FILE
    summary = _read(summary_file, "evaluation summary")
    classifier = summary.get("classifier") if isinstance(summary, dict) else None
    if not isinstance(classifier, dict) or not all(_finite(classifier.get(k)) for k in SUMMARY_CLASSIFIER_KEYS):
        raise ModelCardError(f"{summary_file}: no classifier {{{', '.join(SUMMARY_CLASSIFIER_KEYS)}}}")
    listed = {(e.get("tier"), e.get("precision")): e for e in (summary.get("evaluations") or []) if isinstance(e, dict)}
    by_model, files = {}, {}
    for m in models:
        path = evaluation_file(eval_dir, m.tier, m.precision)
        ev = validate_evaluation(_read(path, f"evaluation of {m.name}"), path, m.tier, m.precision)
        if ev["model_sha256"] != m.sha256:
            raise ModelCardError(
                f"{path}: evaluated a model file with sha256 {ev['model_sha256']}, but the staged "
                f"{m.folder}/model.onnx has sha256 {m.sha256} (stale evaluation: materialize model_evaluation again)"
            )
        if not math.isclose(ev["classifier_heldout_accuracy"], classifier["heldout_accuracy"], abs_tol=1e-12):
            raise ModelCardError(
                f"{path}: classifier_heldout_accuracy {ev['classifier_heldout_accuracy']} differs from "
                f"{summary_file}'s {classifier['heldout_accuracy']} (evaluated with another classifier)"
            )
        other = listed.get(m.key)
        if other is not None and other.get("model_sha256") != ev["model_sha256"]:
            raise ModelCardError(
                f"{summary_file}: its entry for {m.name} evaluated sha256 {other.get('model_sha256')}, {path} "
                f"evaluated {ev['model_sha256']} (written by different runs: materialize model_evaluation again)"
            )
        by_model[m.key], files[m.key] = ev, path
    return Evaluations(dict(classifier), by_model, files, summary_file)


# ---------------------------------------------------------------- formatting


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _with_real(v: float, real: float, fmt: str) -> str:
    return f"{format(v, fmt)} ({format(real, fmt)})"


# (header, cell of one evaluation). `parse_metrics_table` reads the cells back by header.
METRIC_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("takes", lambda e: str(e["takes"])),
    ("conditioning accuracy", lambda e: f"{e['conditioning_accuracy']:.3f}"),
    ("timing SD ms (real)", lambda e: _with_real(e["timing_sd_ms"], e["real_timing_sd_ms"], ".1f")),
    ("velocity CV (real)", lambda e: _with_real(e["velocity_cv"], e["real_velocity_cv"], ".3f")),
    ("Fréchet distance (scale)", lambda e: _with_real(e["frechet_distance"], e["frechet_scale"], ".3g")),
    ("degenerate", lambda e: _pct(e["degenerate_rate"])),
    ("distinct", lambda e: _pct(e["distinct_rate"])),
    ("length within ±25 %", lambda e: _pct(e["length_within_25pct"])),
    ("grammar", lambda e: f"{e['grammar_score']:.3f}"),
    ("gates passed", lambda e: f"{sum(g['passed'] for g in e['gates'].values())}/{len(e['gates'])}"),
)
METRICS_HEADER = ("tier", "precision", *(h for h, _ in METRIC_COLUMNS))


def metric_cells(ev: Mapping[str, Any]) -> dict[str, str]:
    """The metrics table's cells for one evaluation, by column header."""
    return {h: cell(ev) for h, cell in METRIC_COLUMNS}


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _split_row(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    cells, cur, i = [], "", 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if inner[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += inner[i]
        i += 1
    cells.append(cur.strip())
    return cells


def parse_metrics_table(card: str) -> dict[tuple[str, str], dict[str, str]]:
    """The metrics table of a card, {(tier, precision): {header: cell}}; ModelCardError when absent."""
    lines = card.splitlines()
    want = list(METRICS_HEADER)
    for i, line in enumerate(lines):
        if line.startswith("|") and _split_row(line) == want:
            rows = {}
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _split_row(row)
                if len(cells) != len(want):
                    raise ModelCardError(f"metrics table row has {len(cells)} cells, expected {len(want)}: {row}")
                rows[(cells[0], cells[1])] = dict(zip(want[2:], cells[2:], strict=True))
            return rows
    raise ModelCardError("the card has no metrics table (header: " + " | ".join(want) + ")")


# ---------------------------------------------------------------- the card


@dataclass(frozen=True)
class ModelCardSettings:
    repo_id: str = ""  # the model repository; "" = not configured (placeholder in the usage examples)
    dataset_repo_id: str = ""  # the training data on the Hub; "" = not published (placeholder)
    license: str = "cc-by-4.0"
    pretty_name: str = "Drum rudiment performance models (ONNX, per skill tier)"
    tags: tuple[str, ...] = (
        "music",
        "drums",
        "rudiments",
        "midi",
        "symbolic-music",
        "music-generation",
        "lora",
        "music-education",
    )


@dataclass(frozen=True)
class TrainingFacts:
    """What the card says about training, read from the staged base model and adapters."""

    base: dict[str, Any] = field(default_factory=dict, hash=False)  # base/model.json
    lora: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)  # tier -> LoRA settings


def front_matter(settings: ModelCardSettings) -> dict[str, Any]:
    """The card's YAML metadata, as `huggingface_hub.ModelCardData` writes it."""
    from huggingface_hub import ModelCardData  # noqa: PLC0415

    data = ModelCardData(
        license=settings.license,
        library_name="onnx",
        tags=list(settings.tags),
        datasets=[settings.dataset_repo_id] if settings.dataset_repo_id else None,
    )
    return data.to_dict()


def _failing(models: Sequence[StagedModel], evals: Evaluations) -> list[tuple[StagedModel, str, dict[str, Any]]]:
    return [(m, name, g) for m in models for name, g in evals.by_model[m.key]["gates"].items() if not g["passed"]]


def _gate_banner(models: Sequence[StagedModel], evals: Evaluations) -> str:
    failing = _failing(models, evals)
    if not failing:
        return (
            f"**Every quality gate passes** for each of the {len(models)} models in this repository "
            "(the evaluation below)."
        )
    bad = sorted({m.name for m, _, _ in failing})
    return (
        f"**Not every quality gate passes: {len(bad)} of the {len(models)} models fail at least one gate** "
        f"({len(failing)} failing {'result' if len(failing) == 1 else 'results'}, listed under *Failing gates* "
        "below). These models do not meet the "
        "project's own bar there; read the evaluation before you use them."
    )


def _gate_sections(models: Sequence[StagedModel], evals: Evaluations) -> str:
    names: list[str] = []
    for m in models:
        names += [n for n in evals.by_model[m.key]["gates"] if n not in names]
    rows = []
    for n in names:
        results = [(m, evals.by_model[m.key]["gates"][n]) for m in models if n in evals.by_model[m.key]["gates"]]
        thresholds = sorted({g["threshold"] for _, g in results})
        rows.append(
            [
                f"`{n}`",
                thresholds[0] if len(thresholds) == 1 else "per model (see the evaluation files)",
                f"{sum(g['passed'] for _, g in results)}/{len(results)}",
                ", ".join(m.name for m, g in results if not g["passed"]) or "none",
            ]
        )
    out = "### Gates\n\n" + _md_table(["gate", "threshold", "models passing", "failing"], rows)
    failing = _failing(models, evals)
    out += "\n\n### Failing gates\n\n"
    if failing:
        out += _md_table(
            ["model", "gate", "value", "threshold"],
            [[m.name, f"`{n}`", f"{g['value']:.4g}", g["threshold"]] for m, n, g in failing],
        )
    else:
        out += "None: every gate passes for every model."
    return out


def _per_rudiment(models: Sequence[StagedModel], evals: Evaluations) -> str:
    from music_assets.rudiments.constants import RUDIMENT_SLUGS  # noqa: PLC0415

    shown = [m for m in models if m.precision == "fp32"] or list(models)
    slugs = {s for m in shown for s in evals.by_model[m.key]["per_rudiment_accuracy"]}
    order = [s for s in RUDIMENT_SLUGS if s in slugs] + sorted(slugs - set(RUDIMENT_SLUGS))
    rows = []
    for s in order:
        cells = []
        for m in shown:
            v = evals.by_model[m.key]["per_rudiment_accuracy"].get(s)
            cells.append("–" if v is None else f"{v:.2f}")
        rows.append([f"`{s}`", *cells])
    return _md_table(["rudiment", *(m.name for m in shown)], rows)


def _range(values: Sequence[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _limitations(models: Sequence[StagedModel], evals: Evaluations, dataset_link: str) -> str:
    evs = [evals.by_model[m.key] for m in models]
    clf = evals.classifier["heldout_accuracy"]
    degenerate = _range([100 * e["degenerate_rate"] for e in evs], ".1f") + " %"
    length = _range([100 * e["length_within_25pct"] for e in evs], ".1f") + " %"
    return f"""- **Trained on synthetic performances only.** The players of the training data ({dataset_link}) are
  simulated from published ranges of timing and velocity variability, not recorded; the models learn the
  simulator's idea of each skill tier. Validate against real players before relying on the tiers.
- **The requested rudiment is not always what is played.** The project's rudiment classifier recognises
  {_range([e["conditioning_accuracy"] for e in evs], ".2f")} of the generated takes as the rudiment that was asked
  for, where it recognises {clf:.2f} of held-out real players' takes (per model and per rudiment above).
- **Degenerate takes** (a single repeated interval, no notes, no end): {degenerate} of the generated takes;
  **length control**: {length} of the takes are within ±25 % of the requested length.
- The evaluation measures symbolic performances with the project's own classifier and performance features
  (timing deviation from the grid, velocity variation, a Fréchet distance on performance features as a
  symbolic stand-in for FAD); no listening test and no audio model stand behind these numbers.
- One instrument: a General MIDI snare (pitch 38); no kit, no other drums.
- fp16, int8 and int4 are quantized from the fp32 model of the same tier; each is evaluated on its own
  (rows above), and differs from fp32 by the amounts shown there."""


def _training(facts: TrainingFacts, models: Sequence[StagedModel], dataset_link: str) -> str:
    base = facts.base
    cfg = base.get("model_config", {})
    summary = base.get("summary", {})
    arch = [f"{k} {cfg[k]}" for k in ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len") if k in cfg]
    if isinstance(base.get("parameters"), int):
        arch.append(f"{base['parameters']:,} parameters")
    first = f"- **Base model** (`base/`): a decoder-only transformer ({', '.join(arch) or 'see base/model.json'})"
    first += f" trained on the train split of {dataset_link}, validated on its validation split"
    if _finite(summary.get("best_val_loss")) and "best_step" in summary:
        first += f"; best validation loss {summary['best_val_loss']:.3f} at step {summary['best_step']}"
    lines = [first + "."]
    for t in dict.fromkeys(m.tier for m in models):
        lora = facts.lora.get(t, {})
        detail = ", ".join(f"{k} {lora[k]}" for k in ("r", "lora_alpha", "use_rslora") if k in lora)
        lines.append(
            f"- **{t} adapter** (`adapters/{t}/`): LoRA on the {t} tier's performances"
            + (f" ({detail})" if detail else "")
            + f", merged into the base for `onnx/{t}/fp32/`."
        )
    lines.append("- The vocabulary, the conditioning tokens and the sampling defaults are in every `model.json`.")
    return "\n".join(lines)


def render_model_card(
    models: Sequence[StagedModel],
    evals: Evaluations,
    settings: ModelCardSettings,
    training: TrainingFacts = TrainingFacts(),
) -> str:
    """The whole card (front matter + markdown) for the staged `models`; deterministic."""
    import yaml  # noqa: PLC0415

    if not models:
        raise ModelCardError("no models to describe")
    missing = [m.name for m in models if m.key not in evals.by_model]
    if missing:
        raise ModelCardError(f"no evaluation for {', '.join(missing)}")
    repo = settings.repo_id or UNSET_MODEL_REPO
    dataset = settings.dataset_repo_id or UNSET_DATASET_REPO
    dataset_link = (
        f"[{settings.dataset_repo_id}](https://huggingface.co/datasets/{settings.dataset_repo_id})"
        if settings.dataset_repo_id
        else "the project's rudiment dataset (not published yet)"
    )
    clf = evals.classifier
    rows = [[m.tier, m.precision, *metric_cells(evals.by_model[m.key]).values()] for m in models]
    tiers = list(dict.fromkeys(m.tier for m in models))
    precisions = ", ".join(dict.fromkeys(m.precision for m in models))
    example = models[0]
    slug = next(iter(sorted(evals.by_model[example.key]["per_rudiment_accuracy"])))
    file_rows = [
        [m.tier, m.precision, f"`{m.folder}/`", f"{m.size_bytes / 1024:,.0f}", f"`{m.sha256[:16]}…`"] for m in models
    ]
    body = f"""# {settings.pretty_name}

Models that generate snare-drum rudiment performances as MIDI: give a rudiment (one of the 40 PAS
International Drum Rudiments), a skill tier and a tempo, get a performance with that tier's timing and
dynamics. One model per skill tier ({", ".join(tiers)}): a small decoder-only transformer with a LoRA
adapter per tier, merged and exported to ONNX with a KV cache, at {precisions}.
Trained on {dataset_link}.

{_gate_banner(models, evals)}

## Evaluation

Each model generated a fixed set of seeded takes across the rudiments (`takes`); every take was measured
from its notes alone. **Conditioning accuracy** is the share of takes that the project's rudiment
classifier, fitted on the real performances of the dataset's train split ({clf["train_takes"]} takes),
recognises as the rudiment that was asked for; on {clf["test_takes"]} takes of held-out players it is right
**{clf["heldout_accuracy"]:.3f}** of the time, the ceiling to read the models' numbers against. Timing SD
(deviation from the grid) and velocity CV (within pattern position, so accents do not count) are shown with
the real performances of the same tier in brackets; the Fréchet distance is between generated and real
performance features of the tier, with the distance between adjacent real tiers as its scale. Degenerate and
distinct: the shares of takes the evaluation counts as degenerate (a single repeated interval, no notes, or no
end) and as distinct; length: takes within ±25 % of the requested length; grammar: well-formed note events
(0–1); gates: the evaluation's pass/fail tests of each model.

{_md_table(METRICS_HEADER, rows)}

{_gate_sections(models, evals)}

### Conditioning accuracy per rudiment

{_per_rudiment(models, evals)}

The evaluation files themselves are in `evaluation/<tier>/<precision>.json` (and `evaluation/summary.json`);
each names the sha256 of the model file it measured, the one in this repository.

## Files

```
README.md                               this card
manifest.json                           every model, its files and sha256, how to run it
onnx/<tier>/<precision>/model.onnx      one self-contained ONNX graph with a KV cache
onnx/<tier>/<precision>/model.json      vocabulary, conditioning tokens, I/O names, sampling defaults, sha256
adapters/<tier>/                        the LoRA adapter (peft save_pretrained) of the tier
base/                                   the base transformer (safetensors), its config and vocabulary
evaluation/                             the evaluation the numbers above come from
```

{_md_table(["tier", "precision", "folder", "KiB", "sha256"], file_rows)}

## How to use

With the project installed (`pip install` of the music_assets repository; its runner needs only
onnxruntime and numpy), download a folder and generate a take:

```python
from huggingface_hub import snapshot_download

local = snapshot_download("{repo}", allow_patterns=["{example.folder}/*"])
```

```bash
{RUNNER} --model <local>/{example.folder} --rudiment {slug} --out take.mid \\
    [--seed 0] [--tempo 96] [--temperature 0.9] [--top-k 8] [--top-p 0.95]
```

From Python, `music_assets.ml.onnx_runtime.OnnxDrumModel(folder)` checks the file against the sha256 in
`model.json` and gives `step`, `generate` and `greedy`. With onnxruntime alone, `model.json` has all it takes:
feed `input_ids` = `[BOS, RUDIMENT_<slug>, TIER_<tier>, TEMPO_<bpm>]` (the ids are under `conditioning` and
`special_tokens`) with empty `past_key_<i>`/`past_value_<i>` (shape `(1, heads, 0, head_dim)`), sample from
`logits[:, -1]`, then feed each new token with the previous `present_*` as `past_*` until `EOS`; the
vocabulary decodes the tokens into notes.

## Intended use

- Practice and teaching material: example performances of a rudiment at a chosen skill level and tempo, to
  hear (after rendering the MIDI with any General MIDI drum sound) what a beginner's or a professional's
  timing sounds like.
- Research on performance modelling and on skill assessment: generating labelled symbolic performances, with
  the limits below in mind.
- Not for grading real students, and not a drum-audio model: the models know only the timing and velocity of
  single snare strokes.

## Limitations

{_limitations(models, evals, dataset_link)}

## Training

{_training(training, models, dataset_link)}

## Training data

{dataset_link}: `load_dataset("{dataset}")`.
"""
    header = yaml.safe_dump(front_matter(settings), sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{header}---\n\n{body}"
