"""The model card from evaluation dicts: the numbers shown are the evaluation's, failing gates are stated,
and a missing, malformed or stale evaluation is refused naming the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from music_assets.io import write_json
from music_assets.publish.model_card import (
    ModelCardError,
    ModelCardSettings,
    StagedModel,
    TrainingFacts,
    load_evaluations,
    parse_metrics_table,
    render_model_card,
)
from music_assets_tests.publish.model_repo_inputs import CLASSIFIER, GATES, RUDIMENTS, write_evaluations

TIERS = ("advanced", "professional")
PRECISIONS = ("fp32", "int8")
SETTINGS = ModelCardSettings(repo_id="someone/drum-models", dataset_repo_id="someone/rudiments", license="mit")


def _models() -> list[StagedModel]:
    return [
        StagedModel(t, p, f"onnx/{t}/{p}", f"{i:x}" * 64 if i else "a" * 64, 1000 * (i + 1))
        for i, (t, p) in enumerate((t, p) for t in TIERS for p in PRECISIONS)
    ]


@pytest.fixture
def evaluated(tmp_path: Path):
    """Evaluation files for four models, int8 of professional failing two gates."""
    models = _models()
    failing = {("professional", "int8"): ("degenerate_rate", "timing_sd")}
    written = write_evaluations(tmp_path, {m.key: m.sha256 for m in models}, failing)
    return tmp_path / "evaluation", models, {(e["tier"], e["precision"]): e for e in written}


def _number(cell: str) -> float:
    return float(cell.replace("%", "").strip())


def test_the_metrics_table_shows_each_models_own_numbers(evaluated) -> None:
    eval_dir, models, written = evaluated
    card = render_model_card(models, load_evaluations(eval_dir, models), SETTINGS)
    table = parse_metrics_table(card)
    assert set(table) == {m.key for m in models}
    for key, row in table.items():
        ev = written[key]
        assert int(row["takes"]) == ev["takes"]
        assert _number(row["conditioning accuracy"]) == pytest.approx(ev["conditioning_accuracy"], abs=5e-4)
        timing, real = re.fullmatch(r"(\S+) \((\S+)\)", row["timing SD ms (real)"]).groups()
        assert float(timing) == pytest.approx(ev["timing_sd_ms"], abs=0.05)
        assert float(real) == pytest.approx(ev["real_timing_sd_ms"], abs=0.05)
        cv, real_cv = re.fullmatch(r"(\S+) \((\S+)\)", row["velocity CV (real)"]).groups()
        assert (float(cv), float(real_cv)) == pytest.approx((ev["velocity_cv"], ev["real_velocity_cv"]), abs=5e-4)
        fd, scale = re.fullmatch(r"(\S+) \((\S+)\)", row["Fréchet distance (scale)"]).groups()
        assert float(fd) == pytest.approx(ev["frechet_distance"], rel=5e-3)
        assert float(scale) == pytest.approx(ev["frechet_scale"], rel=5e-3)
        assert _number(row["degenerate"]) == pytest.approx(100 * ev["degenerate_rate"], abs=0.05)
        assert _number(row["distinct"]) == pytest.approx(100 * ev["distinct_rate"], abs=0.05)
        assert _number(row["length within ±25 %"]) == pytest.approx(100 * ev["length_within_25pct"], abs=0.05)
        assert _number(row["grammar"]) == pytest.approx(ev["grammar_score"], abs=5e-4)
        passed = sum(g["passed"] for g in ev["gates"].values())
        assert row["gates passed"] == f"{passed}/{len(GATES)}"
    # the classifier's ceiling and the per-rudiment accuracy of the fp32 models
    assert f"**{CLASSIFIER['heldout_accuracy']:.3f}**" in card
    per_rudiment = card.split("### Conditioning accuracy per rudiment")[1]
    flam = next(line for line in per_rudiment.splitlines() if line.startswith("| `flam` |"))
    want = [written[(t, "fp32")]["per_rudiment_accuracy"]["flam"] for t in TIERS]
    assert [float(c) for c in flam.strip("|").split("|")[1:]] == pytest.approx(want, abs=5e-3)


def test_failing_gates_are_stated_with_value_and_threshold(evaluated) -> None:
    eval_dir, models, written = evaluated
    card = render_model_card(models, load_evaluations(eval_dir, models), SETTINGS)
    assert "**Not every quality gate passes: 1 of the 4 models fail at least one gate** (2 failing results" in card
    failing = card.split("### Failing gates")[1].split("###")[0]
    ev = written[("professional", "int8")]
    for gate in ("degenerate_rate", "timing_sd"):
        g = ev["gates"][gate]
        assert f"| professional/int8 | `{gate}` | {g['value']:.4g} | {g['threshold']} |" in failing
    assert failing.count("| professional/int8 |") == 2 and "advanced/" not in failing
    gates = card.split("### Gates")[1].split("###")[0]
    assert "| `timing_sd` | >= 0.10 | 3/4 | professional/int8 |" in gates
    assert "| `grammar` | >= 0.20 | 4/4 | none |" in gates


def test_a_card_with_every_gate_passing_says_so(tmp_path: Path) -> None:
    models = _models()
    write_evaluations(tmp_path, {m.key: m.sha256 for m in models})
    card = render_model_card(models, load_evaluations(tmp_path / "evaluation", models), SETTINGS)
    assert "**Every quality gate passes** for each of the 4 models" in card
    assert "None: every gate passes for every model." in card and "Not every quality gate" not in card


def test_front_matter_is_a_model_card_linking_the_dataset(evaluated) -> None:
    eval_dir, models, _ = evaluated
    evals = load_evaluations(eval_dir, models)
    training = TrainingFacts({"parameters": 812_345, "model_config": {"d_model": 128}}, {"advanced": {"r": 16}})
    text = render_model_card(models, evals, SETTINGS, training)
    meta = ModelCard(text).data.to_dict()
    assert meta["license"] == "mit" and meta["library_name"] == "onnx"
    assert meta["datasets"] == ["someone/rudiments"] and "drums" in meta["tags"]
    assert "https://huggingface.co/datasets/someone/rudiments" in text
    assert 'snapshot_download("someone/drum-models", allow_patterns=["onnx/advanced/fp32/*"])' in text
    assert "python -m music_assets.ml.onnx_generate --model <local>/onnx/advanced/fp32 --rudiment" in text
    assert "812,345 parameters" in text and "(r 16)" in text
    for heading in ("## Intended use", "## Limitations", "## Training data"):
        assert heading in text
    assert render_model_card(models, evals, SETTINGS, training) == text  # deterministic


def test_without_a_dataset_repository_the_card_says_it_is_unpublished(evaluated) -> None:
    eval_dir, models, _ = evaluated
    text = render_model_card(models, load_evaluations(eval_dir, models), ModelCardSettings())
    assert "datasets" not in ModelCard(text).data.to_dict()
    assert "not published yet" in text and 'snapshot_download("<owner>/<model>"' in text


def test_a_missing_evaluation_is_refused_naming_the_file(evaluated) -> None:
    eval_dir, models, _ = evaluated
    (eval_dir / "advanced" / "int8.json").unlink()
    with pytest.raises(ModelCardError, match=r"evaluation/advanced/int8\.json: not found.*model_evaluation"):
        load_evaluations(eval_dir, models)


def test_a_missing_summary_is_refused(evaluated) -> None:
    eval_dir, models, _ = evaluated
    (eval_dir / "summary.json").unlink()
    with pytest.raises(ModelCardError, match=r"evaluation/summary\.json: not found"):
        load_evaluations(eval_dir, models)


def test_an_evaluation_of_another_model_file_is_stale(evaluated) -> None:
    eval_dir, models, written = evaluated
    ev = written[("advanced", "fp32")]
    write_json(eval_dir / "advanced" / "fp32.json", {**ev, "model_sha256": "f" * 64})
    with pytest.raises(ModelCardError) as err:
        load_evaluations(eval_dir, models)
    msg = str(err.value)
    assert "evaluation/advanced/fp32.json" in msg and "f" * 64 in msg and models[0].sha256 in msg
    assert "stale" in msg


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditioning_accuracy": None}, "no valid value for conditioning_accuracy"),
        ({"frechet_distance": float("nan")}, "no valid value for frechet_distance"),
        ({"gates": {"grammar": {"passed": "yes", "value": 1.0, "threshold": ">= 0.95"}}}, "gates.grammar"),
        ({"tier": "beginner"}, "holds the evaluation of beginner/fp32, not of advanced/fp32"),
        ({"classifier_heldout_accuracy": 0.5}, "evaluated with another classifier"),
    ],
)
def test_a_malformed_evaluation_is_refused(evaluated, change: dict, message: str) -> None:
    eval_dir, models, written = evaluated
    write_json(eval_dir / "advanced" / "fp32.json", {**written[("advanced", "fp32")], **change})
    with pytest.raises(ModelCardError, match=re.escape(message)):
        load_evaluations(eval_dir, models)


def test_a_missing_key_is_named(evaluated) -> None:
    eval_dir, models, written = evaluated
    ev = dict(written[("advanced", "fp32")])
    del ev["velocity_cv"], ev["per_rudiment_accuracy"]
    write_json(eval_dir / "advanced" / "fp32.json", ev)
    with pytest.raises(ModelCardError, match=r"fp32\.json: missing velocity_cv, per_rudiment_accuracy"):
        load_evaluations(eval_dir, models)


def test_a_summary_from_another_run_is_refused(evaluated) -> None:
    eval_dir, models, written = evaluated
    entries = [{**e, "model_sha256": "e" * 64} if e["tier"] == "professional" else e for e in written.values()]
    write_json(eval_dir / "summary.json", {"classifier": CLASSIFIER, "evaluations": entries})
    with pytest.raises(ModelCardError, match=r"summary\.json: its entry for professional/fp32"):
        load_evaluations(eval_dir, models)


def test_the_table_parser_refuses_a_card_without_it() -> None:
    with pytest.raises(ModelCardError, match="no metrics table"):
        parse_metrics_table("# a card\n\n| tier | precision |\n|---|---|\n")


def test_rudiments_are_listed_in_the_librarys_order(evaluated) -> None:
    eval_dir, models, _ = evaluated
    card = render_model_card(models, load_evaluations(eval_dir, models), SETTINGS)
    section = card.split("### Conditioning accuracy per rudiment")[1].split("##")[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    from music_assets.rudiments.constants import RUDIMENT_SLUGS

    assert listed == [s for s in RUDIMENT_SLUGS if s in RUDIMENTS]
