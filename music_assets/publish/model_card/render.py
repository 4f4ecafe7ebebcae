"""The whole model card (`README.md` with YAML front matter) of the Hub model repository.

`render_model_card` puts the card together from its sections, top to bottom;
the front matter is built with `huggingface_hub.ModelCardData`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from music_assets.publish.markdown import md_table
from music_assets.publish.model_card.evaluations import (
    RUNNER,
    UNSET_DATASET_REPO,
    UNSET_MODEL_REPO,
    Evaluations,
    ModelCardError,
    StagedModel,
)
from music_assets.publish.model_card.sections import (
    TrainingFacts,
    gate_banner,
    gate_sections,
    limitations,
    per_rudiment,
    training_section,
)
from music_assets.publish.model_card.tables import METRICS_HEADER, metric_cells


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
    dataset_link = (
        f"[{settings.dataset_repo_id}](https://huggingface.co/datasets/{settings.dataset_repo_id})"
        if settings.dataset_repo_id
        else "the project's rudiment dataset (not published yet)"
    )
    body = (
        _intro(models, evals, settings, dataset_link)
        + _evaluation(models, evals)
        + _files(models)
        + _usage(models, evals, settings)
        + _about(models, evals, settings, training, dataset_link)
    )
    header = yaml.safe_dump(front_matter(settings), sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{header}---\n\n{body}"


def _intro(models: Sequence[StagedModel], evals: Evaluations, settings: ModelCardSettings, dataset_link: str) -> str:
    """The title, what the models are, and the gate banner."""
    tiers = list(dict.fromkeys(m.tier for m in models))
    precisions = ", ".join(dict.fromkeys(m.precision for m in models))
    return f"""# {settings.pretty_name}

Models that generate snare-drum rudiment performances as MIDI: give a rudiment (one of the 40 PAS
International Drum Rudiments), a skill tier and a tempo, get a performance with that tier's timing and
dynamics. One model per skill tier ({", ".join(tiers)}): a small decoder-only transformer with a LoRA
adapter per tier, merged and exported to ONNX with a KV cache, at {precisions}.
Trained on {dataset_link}.

{gate_banner(models, evals)}

"""


def _evaluation(models: Sequence[StagedModel], evals: Evaluations) -> str:
    """## Evaluation: how it was measured, the metrics table, the gates, accuracy per rudiment."""
    clf = evals.classifier
    rows = [[m.tier, m.precision, *metric_cells(evals.by_model[m.key]).values()] for m in models]
    return f"""## Evaluation

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

{md_table(METRICS_HEADER, rows)}

{gate_sections(models, evals)}

### Conditioning accuracy per rudiment

{per_rudiment(models, evals)}

The evaluation files themselves are in `evaluation/<tier>/<precision>.json` (and `evaluation/summary.json`);
each names the sha256 of the model file it measured, the one in this repository.

"""


def _files(models: Sequence[StagedModel]) -> str:
    """## Files: the repository's layout and one row per model folder."""
    file_rows = [
        [m.tier, m.precision, f"`{m.folder}/`", f"{m.size_bytes / 1024:,.0f}", f"`{m.sha256[:16]}…`"] for m in models
    ]
    return f"""## Files

```
README.md                               this card
manifest.json                           every model, its files and sha256, how to run it
onnx/<tier>/<precision>/model.onnx      one self-contained ONNX graph with a KV cache
onnx/<tier>/<precision>/model.json      vocabulary, conditioning tokens, I/O names, sampling defaults, sha256
adapters/<tier>/                        the LoRA adapter (peft save_pretrained) of the tier
base/                                   the base transformer (safetensors), its config and vocabulary
evaluation/                             the evaluation the numbers above come from
```

{md_table(["tier", "precision", "folder", "KiB", "sha256"], file_rows)}

"""


def _usage(models: Sequence[StagedModel], evals: Evaluations, settings: ModelCardSettings) -> str:
    """## How to use: download a folder and generate a take (the first model, its first rudiment)."""
    repo = settings.repo_id or UNSET_MODEL_REPO
    example = models[0]
    slug = next(iter(sorted(evals.by_model[example.key]["per_rudiment_accuracy"])))
    return f"""## How to use

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

"""


def _about(
    models: Sequence[StagedModel],
    evals: Evaluations,
    settings: ModelCardSettings,
    training: TrainingFacts,
    dataset_link: str,
) -> str:
    """Intended use, limitations, training and training data."""
    dataset = settings.dataset_repo_id or UNSET_DATASET_REPO
    return f"""## Intended use

- Practice and teaching material: example performances of a rudiment at a chosen skill level and tempo, to
  hear (after rendering the MIDI with any General MIDI drum sound) what a beginner's or a professional's
  timing sounds like.
- Research on performance modelling and on skill assessment: generating labelled symbolic performances, with
  the limits below in mind.
- Not for grading real students, and not a drum-audio model: the models know only the timing and velocity of
  single snare strokes.

## Limitations

{limitations(models, evals, dataset_link)}

## Training

{training_section(training, models, dataset_link)}

## Training data

{dataset_link}: `load_dataset("{dataset}")`.
"""
