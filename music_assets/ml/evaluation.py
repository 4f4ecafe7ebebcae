"""What a user needs of a model, measured on takes it generates, against the dataset's real performances.

One evaluation is one model (a tier, at one precision) generating a fixed,
seeded set of takes (`take_plan`): for every rudiment, `tempos` tempos drawn
from the real players of that tier (so a beginner is asked for beginner tempos)
times `seeds` takes each, as long as the dataset's performances of that
rudiment (whole 4/4 bars). Every take is decoded to MIDI, read back, and
measured from its notes only (`metrics`, `classifier`):

- conditioning accuracy: the share of takes the rudiment classifier (fitted
  on the real train players) recognises as the requested rudiment, per
  rudiment, with the confusion counts;
- tier realism: the median timing SD and within-position velocity CV of the
  takes against the real performances of the tier (train and validation
  players), and the Frechet distance between the takes' performance features
  and the real tier's, with the distance from the real tier to its nearest
  adjacent real tier as the scale;
- degenerate rate, distinct rate (takes asked the same with two seeds), length
  control (share of takes within 25 % of the requested length);
- grammar: the score of takes decoded *without* the grammar mask (what the
  model has learnt; decoded with it, every take is well formed).

`gate_results` turns an evaluation (and the others of its set: the tier order
and the quantized variants need them) into the blocking gates.

The real side (`real_takes`, `Reference`) is computed once from the dataset's
MIDI files and labels by the `rudiment_classifier` asset; the classifier is
refitted from its feature table where it is needed (deterministic, about a
second).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from music_assets.ml import metrics
from music_assets.ml.classifier import RudimentClassifier, accuracy_report, features
from music_assets.ml.decoding import Stepper, TakeRequest, perform, prompt_for
from music_assets.ml.grammar import grammar_report
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.score import ScoreTemplate
from music_assets.ml.tokenizer import TokenizerError, Vocab, read_drum_midi
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets.seeding import stable_rng

FIT_SPLIT, HELDOUT_SPLIT = "train", "test"
REALISM_SPLITS = ("train", "validation")  # the tier's reference players (the test players stay unseen)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int4")
BEATS_PER_BAR = 4

# Blocking gates (issue 21), on the make run models
CONDITIONING_RATIO = 0.9  # conditioning accuracy >= this x the classifier's held-out accuracy on the tier's players
MAX_DEGENERATE = 0.02
TIMING_TOLERANCE = 0.25  # generated timing SD within +-25 % of the real tier's
LENGTH_TOLERANCE = 0.25  # a take within +-25 % of the requested length is on length
MIN_LENGTH_SHARE = 0.9  # of takes on length
MAX_QUANTIZED_DROP = 0.05  # a quantized variant's conditioning accuracy within this of fp32's
GRAMMAR_GATE = 0.95


@dataclass(frozen=True)
class EvalSettings:
    tempos: int = 2  # per rudiment, from the tier's real tempos
    seeds: int = 4  # takes per tempo
    seed: int = 0
    grammar_takes: int = 40  # takes decoded without the mask for the grammar score (one per rudiment)
    batch_size: int = 256
    max_beats: int | None = None  # cap on the takes' length (None: as long as the dataset's performances)


@dataclass(frozen=True)
class TakeSpec:
    rudiment: str
    tier: str
    tempo_bpm: float
    beats: int
    seed_index: int

    def request(self) -> TakeRequest:
        return TakeRequest(self.rudiment, self.tier, self.tempo_bpm, self.beats)


# --- the real side -------------------------------------------------------------------------------------
def notes_of_midi(data: bytes | str | Path) -> tuple[list[float], list[int], float]:
    """(onsets, velocities, tempo) of a MIDI file (bytes or path): everything the measures see."""
    import pretty_midi  # noqa: PLC0415

    pm = pretty_midi.PrettyMIDI(io.BytesIO(data)) if isinstance(data, bytes) else str(data)
    notes, tempo = read_drum_midi(pm)
    notes = sorted(notes, key=lambda n: n.start)
    return [n.start for n in notes], [n.velocity for n in notes], tempo


def take_row(
    onsets: Sequence[float], velocities: Sequence[int], tempo: float, template: ScoreTemplate, subdivision: int
) -> dict[str, Any]:
    """The measures of one take (real or generated) as a flat row; `features` None for a take too short to classify."""
    st = metrics.take_stats(onsets, velocities, tempo, subdivision, template.cycle_beats)
    vec = st.features()
    row: dict[str, Any] = {
        "notes": st.notes,
        "timing_sd_ms": st.timing_sd_ms,
        "velocity_cv": st.velocity_cv,
        "length_beats": st.length_beats,
        "interval_ratio": st.interval_ratio,
        "features": features(onsets, velocities, tempo).tolist() if st.notes >= 4 else None,
    }
    for name, value in zip(metrics.FRECHET_FEATURES, vec if vec is not None else [None] * 5, strict=True):
        row[f"f_{name}"] = value
    return row


def real_takes(
    samples: pd.DataFrame,
    data_root: Path,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    progress: Callable[..., None] | None = None,
) -> pd.DataFrame:
    """Every real performance of `samples` (labels) measured from its MIDI file, one row each."""
    rows = []
    total = len(samples)
    for n, r in enumerate(samples.itertuples(index=False), 1):
        slug = str(r.rudiment_slug)
        path = data_root / str(r.midi_path)
        try:
            onsets, velocities, tempo = notes_of_midi(path)
        except TokenizerError as exc:
            raise ValueError(f"sample {r.sample_id}: {exc}") from exc
        t = templates[slug]
        rows.append(
            {
                "sample_id": str(r.sample_id),
                "split": str(r.split),
                "rudiment": slug,
                "tier": str(r.skill_tier),
                "tempo_bpm": float(r.tempo_bpm),
                "beats": int(r.num_cycles) * t.cycle_beats,
                **take_row(onsets, velocities, tempo, t, int(subdivisions.get(slug, t.steps_per_beat))),
            }
        )
        if progress:
            progress(n, total)
    return pd.DataFrame(rows)


def _feature_matrix(df: pd.DataFrame) -> np.ndarray:
    return np.array(df["features"].tolist(), dtype=float) if len(df) else np.zeros((0, 0))


class Reference:
    """The real side of every evaluation: the classifier, and each tier's real measures."""

    def __init__(self, takes: pd.DataFrame, seed: int = 0):
        self.takes = takes[takes["features"].notna()].reset_index(drop=True)
        self.seed = seed

    @cached_property
    def classifier(self) -> RudimentClassifier:
        fit = self.takes[self.takes["split"] == FIT_SPLIT]
        return RudimentClassifier.fit(_feature_matrix(fit), fit["rudiment"].tolist(), seed=self.seed)

    @cached_property
    def heldout(self) -> dict[str, Any]:
        """The classifier on the held-out (test) players: overall, per tier, per rudiment, confusion."""
        test = self.takes[self.takes["split"] == HELDOUT_SPLIT]
        predicted = self.classifier.predict(_feature_matrix(test))
        report = accuracy_report(test["rudiment"].tolist(), predicted)
        hits = np.asarray(predicted, dtype=object) == test["rudiment"].to_numpy(dtype=object)
        report["per_tier"] = {
            t: float(hits[(test["tier"] == t).to_numpy()].mean()) for t in SKILL_TIERS if (test["tier"] == t).any()
        }
        report["train_takes"] = int((self.takes["split"] == FIT_SPLIT).sum())
        return report

    def realism(self, tier: str) -> pd.DataFrame:
        return self.takes[(self.takes["tier"] == tier) & self.takes["split"].isin(REALISM_SPLITS)]

    @cached_property
    def feature_scale(self) -> np.ndarray:
        """Per Frechet feature, its SD over every reference take of every tier (the unit of the distance)."""
        ref = self.takes[self.takes["split"].isin(REALISM_SPLITS)]
        return np.nanstd(_frechet_matrix(ref), axis=0)

    def tier_frechet(self, tier: str) -> tuple[np.ndarray, np.ndarray]:
        (x,) = metrics.standardize(_frechet_matrix(self.realism(tier)), scale=self.feature_scale)
        return metrics.gaussian(x)

    def frechet_scale(self, tier: str) -> float:
        """The Frechet distance from the tier's real takes to the nearest adjacent real tier's."""
        i = SKILL_TIERS.index(tier)
        mu, cov = self.tier_frechet(tier)
        out = []
        for j in (i - 1, i + 1):
            if 0 <= j < len(SKILL_TIERS) and len(self.realism(SKILL_TIERS[j])) >= 2:
                out.append(metrics.frechet_distance(mu, cov, *self.tier_frechet(SKILL_TIERS[j])))
        return float(min(out)) if out else math.nan

    def tempos(self, rudiment: str, tier: str) -> list[float]:
        t = self.takes
        rows = t[(t["rudiment"] == rudiment) & (t["tier"] == tier) & t["split"].isin(REALISM_SPLITS)]
        if not len(rows):
            rows = t[t["rudiment"] == rudiment]
        return sorted(float(x) for x in rows["tempo_bpm"])

    def beats(self, rudiment: str) -> int:
        rows = self.takes[self.takes["rudiment"] == rudiment]
        return int(np.median(rows["beats"])) if len(rows) else 2 * BEATS_PER_BAR


def _frechet_matrix(df: pd.DataFrame) -> np.ndarray:
    cols = [f"f_{n}" for n in metrics.FRECHET_FEATURES]
    x = df[cols].to_numpy(dtype=float) if len(df) else np.zeros((0, len(cols)))
    return x[~np.isnan(x).any(axis=1)]


# --- the generated side ----------------------------------------------------------------------------------
def take_plan(reference: Reference, rudiments: Sequence[str], tier: str, settings: EvalSettings) -> list[TakeSpec]:
    """The fixed take set of one tier (see the module docstring)."""
    plan = []
    for slug in rudiments:
        real = reference.tempos(slug, tier)
        if not real:
            continue
        n = settings.tempos
        tempos = [real[min(len(real) - 1, int((i + 0.5) * len(real) / n))] for i in range(n)]
        beats = math.ceil(reference.beats(slug) / BEATS_PER_BAR) * BEATS_PER_BAR
        if settings.max_beats is not None:
            beats = min(beats, settings.max_beats)
        plan += [TakeSpec(slug, tier, t, beats, s) for t in tempos for s in range(settings.seeds)]
    return plan


def take_rng(settings: EvalSettings, spec: TakeSpec) -> np.random.Generator:
    return stable_rng(settings.seed, "take", spec.rudiment, spec.tier, spec.tempo_bpm, spec.beats, spec.seed_index)


def generate_takes(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    plan: Sequence[TakeSpec],
    sampling: SamplingConfig,
    settings: EvalSettings,
    masked: bool = True,
    max_events: int | None = None,
) -> list[list[int]]:
    """The plan's takes, in one batched decoding (`max_events`: each take cut to that many strokes)."""
    prompts = [prompt_for(vocab, templates, s.request()) for s in plan]
    if max_events is not None:
        prompts = [(h, score[:max_events]) for h, score in prompts]
    rngs = [take_rng(settings, s) for s in plan]
    return perform(stepper, vocab, prompts, sampling, rngs, masked=masked, batch_size=settings.batch_size)


GRAMMAR_EVENTS = 32  # strokes of each take sampled without the mask: the layout is the same at every stroke


def evaluate(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tier: str,
    sampling: SamplingConfig,
    settings: EvalSettings = EvalSettings(),
    rudiments: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Generate the tier's take set with `stepper` and measure it (the keys of `evaluation/<tier>/<precision>.json`
    but the precision, the gates and the model's sha256, which the caller adds)."""
    return evaluate_tiers(stepper, vocab, templates, subdivisions, reference, [tier], sampling, settings, rudiments)[
        tier
    ]


def evaluate_tiers(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tiers: Sequence[str],
    sampling: SamplingConfig,
    settings: EvalSettings = EvalSettings(),
    rudiments: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """`evaluate` for several tiers of one model (the base model plays every tier), decoded in one batch."""
    rudiments = list(rudiments or templates)
    plans = {tier: take_plan(reference, rudiments, tier, settings) for tier in tiers}
    for tier, plan in plans.items():
        if not plan:
            raise ValueError(f"no real takes of tier {tier!r} to take tempos from")
    every = [s for tier in tiers for s in plans[tier]]
    seqs = generate_takes(stepper, vocab, templates, every, sampling, settings)
    checks = [s for tier in tiers for s in _one_per_rudiment(plans[tier])[: settings.grammar_takes]]
    unmasked = generate_takes(
        stepper, vocab, templates, checks, sampling, settings, masked=False, max_events=GRAMMAR_EVENTS
    )
    out, at = {}, 0
    for tier in tiers:
        n = len(plans[tier])
        grammar = [grammar_report(s, vocab) for spec, s in zip(checks, unmasked, strict=True) if spec.tier == tier]
        out[tier] = _measure(
            vocab, templates, subdivisions, reference, tier, plans[tier], seqs[at : at + n], grammar, sampling, settings
        )
        at += n
    return out


def _measure(
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tier: str,
    plan: Sequence[TakeSpec],
    seqs: Sequence[list[int]],
    grammar: Sequence[Any],
    sampling: SamplingConfig,
    settings: EvalSettings,
) -> dict[str, Any]:
    rows, truth, feats, degenerate_why = [], [], [], []
    groups: dict[tuple[str, float], list[tuple[tuple[float, ...], tuple[int, ...]]]] = {}
    for spec, seq in zip(plan, seqs, strict=True):
        perf = vocab.decode(seq, tempo_bpm=spec.tempo_bpm)
        ended = bool(seq) and seq[-1] == vocab.eos_id
        if perf.notes:
            midi = io.BytesIO()
            vocab.to_pretty_midi(perf).write(midi)
            onsets, velocities, tempo = notes_of_midi(midi.getvalue())
        else:
            onsets, velocities, tempo = [], [], spec.tempo_bpm
        t = templates[spec.rudiment]
        sub = int(subdivisions.get(spec.rudiment, t.steps_per_beat))
        stats = metrics.take_stats(onsets, velocities, tempo, sub, t.cycle_beats) if onsets else None
        why = "no notes" if stats is None else None
        if stats is not None:
            why = metrics.is_degenerate(
                stats, spec.beats, metrics.written_interval_ratio(t, spec.tempo_bpm, spec.beats), ended
            )
        degenerate_why.append(why)
        row = take_row(onsets, velocities, tempo, t, sub) if stats is not None else {"features": None}
        rows.append({**asdict(spec), **row, "degenerate": why})
        truth.append(spec.rudiment)
        feats.append(row["features"])
        groups.setdefault((spec.rudiment, spec.tempo_bpm), []).append((tuple(onsets), tuple(velocities)))
    classifiable = [i for i, f in enumerate(feats) if f is not None]
    predicted = ["<too short>"] * len(plan)
    for i, p in zip(
        classifiable, reference.classifier.predict(np.array([feats[i] for i in classifiable])), strict=True
    ):
        predicted[i] = p
    acc = accuracy_report(truth, predicted)
    df = pd.DataFrame(rows)
    gen_frechet = _frechet_matrix(df) if "f_log_timing_sd" in df else np.zeros((0, len(metrics.FRECHET_FEATURES)))
    real = reference.realism(tier)
    if len(gen_frechet) >= 2:
        (x,) = metrics.standardize(gen_frechet, scale=reference.feature_scale)
        frechet = metrics.frechet_distance(*metrics.gaussian(x), *reference.tier_frechet(tier))
    else:
        frechet = math.inf
    lengths = [
        r.get("length_beats") is not None and abs(r["length_beats"] / r["beats"] - 1.0) <= LENGTH_TOLERANCE
        for r in rows
    ]
    heldout = reference.heldout
    return {
        "tier": tier,
        "takes": len(plan),
        "conditioning_accuracy": acc["accuracy"],
        "classifier_heldout_accuracy": heldout["accuracy"],
        "classifier_heldout_accuracy_tier": heldout["per_tier"].get(tier, heldout["accuracy"]),
        "per_rudiment_accuracy": acc["per_rudiment"],
        "confusion": acc["confusion"],
        "timing_sd_ms": _median(df.get("timing_sd_ms")),
        "real_timing_sd_ms": _median(real["timing_sd_ms"]),
        "velocity_cv": _median(df.get("velocity_cv")),
        "real_velocity_cv": _median(real["velocity_cv"]),
        "frechet_distance": frechet,
        "frechet_scale": reference.frechet_scale(tier),
        "degenerate_rate": float(np.mean([w is not None for w in degenerate_why])),
        "degenerate_examples": sorted({f"{r['rudiment']}: {r['degenerate']}" for r in rows if r["degenerate"]})[:10],
        "distinct_rate": metrics.distinct_rate(list(groups.values())),
        "length_within_25pct": float(np.mean(lengths)),
        "grammar_score": float(np.mean([g.score for g in grammar])),
        "grammar_takes": len(grammar),
        "grammar_score_masked": float(np.mean([grammar_report(s, vocab).score for s in seqs])),
        "sampling": asdict(sampling),
        "settings": asdict(settings),
        "take_rows": [
            {k: r.get(k) for k in ("rudiment", "tempo_bpm", "beats", "seed_index", "timing_sd_ms", "velocity_cv")}
            | {"predicted": p, "degenerate": r["degenerate"]}
            for r, p in zip(rows, predicted, strict=True)
        ],
    }


def _one_per_rudiment(plan: Sequence[TakeSpec]) -> list[TakeSpec]:
    seen, out = set(), []
    for s in plan:
        if s.rudiment not in seen:
            seen.add(s.rudiment)
            out.append(s)
    return out


def _median(values: Any) -> float:
    if values is None:
        return math.nan
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], dtype=float)
    return float(np.median(v)) if len(v) else math.nan


# --- gates ---------------------------------------------------------------------------------------------
def _gate(passed: bool, value: float, threshold: str) -> dict[str, Any]:
    return {"passed": bool(passed), "value": float(value), "threshold": threshold}


def gate_results(
    ev: Mapping[str, Any],
    fp32: Mapping[str, Any] | None,
    tier_timing: Mapping[str, float],
    sizes: Mapping[str, int],
) -> dict[str, dict[str, Any]]:
    """The blocking gates of one evaluation.

    `fp32`: the same tier's fp32 evaluation (for a quantized variant);
    `tier_timing`: every tier's generated timing SD at this precision (the
    order needs all four); `sizes`: this tier's model file sizes by precision.
    """
    ref = ev["classifier_heldout_accuracy_tier"]
    real_sd, sd = ev["real_timing_sd_ms"], ev["timing_sd_ms"]
    ratio = sd / real_sd if real_sd and not math.isnan(real_sd) else math.inf
    order = [tier_timing.get(t, math.nan) for t in SKILL_TIERS]
    ordered = all(not math.isnan(x) for x in order) and all(a > b for a, b in zip(order, order[1:], strict=False))
    gates = {
        "conditioning_accuracy": _gate(
            ev["conditioning_accuracy"] >= CONDITIONING_RATIO * ref,
            ev["conditioning_accuracy"],
            f">= {CONDITIONING_RATIO} x {ref:.3f} (the classifier's held-out accuracy on the tier's test players)",
        ),
        "degenerate_rate": _gate(
            ev["degenerate_rate"] <= MAX_DEGENERATE, ev["degenerate_rate"], f"<= {MAX_DEGENERATE}"
        ),
        "timing_sd": _gate(
            abs(ratio - 1.0) <= TIMING_TOLERANCE,
            sd,
            f"within +-{TIMING_TOLERANCE:.0%} of the real tier's {real_sd:.2f} ms",
        ),
        "tier_order": _gate(
            ordered,
            float(ordered),
            "timing SD strictly decreasing beginner > intermediate > advanced > professional at this precision ("
            + ", ".join("n/a" if math.isnan(x) else f"{x:.1f}" for x in order)
            + " ms)",
        ),
        "length_control": _gate(
            ev["length_within_25pct"] >= MIN_LENGTH_SHARE,
            ev["length_within_25pct"],
            f">= {MIN_LENGTH_SHARE} of takes within +-25 % of the requested length",
        ),
        "grammar": _gate(ev["grammar_score"] >= GRAMMAR_GATE, ev["grammar_score"], f">= {GRAMMAR_GATE} (unmasked)"),
    }
    if ev["precision"] != "fp32":
        if fp32 is None:
            gates["quantized_conditioning"] = _gate(False, math.nan, "needs the fp32 evaluation of the tier")
        else:
            drop = abs(ev["conditioning_accuracy"] - fp32["conditioning_accuracy"])
            gates["quantized_conditioning"] = _gate(
                drop <= MAX_QUANTIZED_DROP + 1e-12,
                drop,
                f"|accuracy - fp32's {fp32['conditioning_accuracy']:.3f}| <= {MAX_QUANTIZED_DROP}",
            )
    if ev["precision"] == "int4":
        int4, int8 = sizes.get("int4"), sizes.get("int8")
        ok = int4 is not None and int8 is not None and int4 < int8
        gates["int4_smaller_than_int8"] = _gate(
            ok, float(int4 or math.nan), f"< the int8 file ({int8 if int8 is not None else 'missing'} bytes)"
        )
    return gates


# --- the reference on disk (written by the rudiment_classifier asset) -----------------------------------
TAKES_FILE, REPORT_FILE = "real_takes.parquet", "classifier.json"


def write_reference(folder: Path, takes: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Write the real takes' table and the classifier's report (with the table's sha256) under `folder`."""
    from music_assets.io import sha256_file, write_json, write_parquet  # noqa: PLC0415

    write_parquet(folder / TAKES_FILE, takes)
    ref = Reference(takes, seed=seed)
    heldout = ref.heldout
    report = {
        "seed": seed,
        "takes_sha256": sha256_file(folder / TAKES_FILE),
        "fit_split": FIT_SPLIT,
        "heldout_split": HELDOUT_SPLIT,
        "heldout_accuracy": heldout["accuracy"],
        "heldout_per_tier": heldout["per_tier"],
        "heldout_per_rudiment": heldout["per_rudiment"],
        "confusion": heldout["confusion"],
        "train_takes": heldout["train_takes"],
        "test_takes": heldout["takes"],
        "real": {
            tier: {
                "takes": len(ref.realism(tier)),
                "timing_sd_ms": _median(ref.realism(tier)["timing_sd_ms"]),
                "velocity_cv": _median(ref.realism(tier)["velocity_cv"]),
                "frechet_scale": ref.frechet_scale(tier),
            }
            for tier in SKILL_TIERS
            if len(ref.realism(tier)) >= 2
        },
    }
    write_json(folder / REPORT_FILE, report)
    return report


def load_reference(folder: Path) -> tuple[Reference, dict[str, Any]]:
    """The reference written by `write_reference`, its table verified against the recorded sha256."""
    from music_assets.io import read_json, sha256_file  # noqa: PLC0415

    report_path, takes_path = folder / REPORT_FILE, folder / TAKES_FILE
    for p in (report_path, takes_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found (materialize rudiment_classifier first)")
    report = read_json(report_path)
    if sha256_file(takes_path) != report.get("takes_sha256"):
        raise ValueError(f"{takes_path}: sha256 does not match {report_path} (changed or corrupt)")
    return Reference(pd.read_parquet(takes_path), seed=int(report.get("seed", 0))), report
