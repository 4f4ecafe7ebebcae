"""The card's generated sections: the gate banner and tables, per-rudiment accuracy, limitations, training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from music_assets.publish.markdown import md_table
from music_assets.publish.model_card.evaluations import Evaluations, StagedModel, finite


@dataclass(frozen=True)
class TrainingFacts:
    """What the card says about training, read from the staged base model and adapters."""

    base: dict[str, Any] = field(default_factory=dict, hash=False)  # base/model.json
    lora: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)  # tier -> LoRA settings


def _failing(models: Sequence[StagedModel], evals: Evaluations) -> list[tuple[StagedModel, str, dict[str, Any]]]:
    return [(m, name, g) for m in models for name, g in evals.by_model[m.key]["gates"].items() if not g["passed"]]


def gate_banner(models: Sequence[StagedModel], evals: Evaluations) -> str:
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


def gate_sections(models: Sequence[StagedModel], evals: Evaluations) -> str:
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
    out = "### Gates\n\n" + md_table(["gate", "threshold", "models passing", "failing"], rows)
    failing = _failing(models, evals)
    out += "\n\n### Failing gates\n\n"
    if failing:
        out += md_table(
            ["model", "gate", "value", "threshold"],
            [[m.name, f"`{n}`", f"{g['value']:.4g}", g["threshold"]] for m, n, g in failing],
        )
    else:
        out += "None: every gate passes for every model."
    return out


def per_rudiment(models: Sequence[StagedModel], evals: Evaluations) -> str:
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
    return md_table(["rudiment", *(m.name for m in shown)], rows)


def _range(values: Sequence[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def limitations(models: Sequence[StagedModel], evals: Evaluations, dataset_link: str) -> str:
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


def training_section(facts: TrainingFacts, models: Sequence[StagedModel], dataset_link: str) -> str:
    base = facts.base
    cfg = base.get("model_config", {})
    summary = base.get("summary", {})
    arch = [f"{k} {cfg[k]}" for k in ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len") if k in cfg]
    if isinstance(base.get("parameters"), int):
        arch.append(f"{base['parameters']:,} parameters")
    first = f"- **Base model** (`base/`): a decoder-only transformer ({', '.join(arch) or 'see base/model.json'})"
    first += f" trained on the train split of {dataset_link}, validated on its validation split"
    if finite(summary.get("best_val_loss")) and "best_step" in summary:
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
