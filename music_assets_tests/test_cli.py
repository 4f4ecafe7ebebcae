"""The `music-assets` console script, run as a user runs it: a real subprocess of the installed command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import soundfile as sf

from music_assets.ml import quantize as qz
from music_assets.ml.onnx_runtime import OnnxDrumModel
from music_assets.paths import REPO_ROOT
from music_assets_tests.ml.tiny_models import TIERS, export_tiny_tier

TIER = TIERS[0]
SCRIPT = Path(sys.executable).with_name("music-assets")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the tiny tier's fp32 export and its int8 variant, where the command looks."""
    root = export_tiny_tier(tmp_path_factory, TIER)
    out = tmp_path_factory.mktemp("cli") / "models"
    shutil.copytree(root / "models" / "onnx" / TIER, out / "onnx" / TIER)
    qz.write_variant(out / "onnx" / TIER, out / "quantized" / TIER / "int8", "int8")
    return out


def _run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    assert SCRIPT.is_file(), f"{SCRIPT}: the console script is not installed (pip install -e .)"
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_generate_writes_midi_and_flac(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "takes"
    args = ["generate", "--rudiment", "flam", "--tier", TIER, "--bars", "2", "--count", "2", "--out", str(out)]
    proc = _run(*args, "--flac", "--models", str(models), "--tempo", "100", "--seed", "4")
    assert proc.returncode == 0, proc.stderr
    mids = sorted(out.glob("*.mid"))
    assert [p.name for p in mids] == [f"flam-{TIER}-fp32-00.mid", f"flam-{TIER}-fp32-01.mid"]
    # a flam is a grace note and a stroke on every beat: 2 bars are 8 strokes and 8 graces
    template = OnnxDrumModel(models / "onnx" / TIER).templates["flam"]
    per_cycle = len(template.strokes) + sum(s.grace == "flam" for s in template.strokes)
    for mid in mids:
        pm = pretty_midi.PrettyMIDI(str(mid))
        assert len(pm.instruments[0].notes) == per_cycle * 8 // template.cycle_beats
        assert pm.get_tempo_changes()[1][0] == pytest.approx(100, rel=1e-4)
        audio, sr = sf.read(mid.with_suffix(".flac"))
        assert sr == 44100 and len(audio) > sr and abs(audio).max() > 0.01  # rendered with the soundfont
    assert mids[0].read_bytes() != mids[1].read_bytes()  # two takes, not one twice
    assert f"flam-{TIER}-fp32-00.flac" in proc.stdout
    # the same arguments give the same takes; take 0 is the same whatever the count
    again = _run(
        *args[:-4],
        "--count",
        "1",
        "--out",
        str(tmp_path / "again"),
        "--models",
        str(models),
        "--tempo",
        "100",
        "--seed",
        "4",
    )
    assert again.returncode == 0 and (tmp_path / "again" / mids[0].name).read_bytes() == mids[0].read_bytes()


def test_precision_picks_the_variant_and_bad_input_is_named(models: Path, tmp_path: Path) -> None:
    proc = _run(
        "generate",
        "--rudiment",
        "single_paradiddle",
        "--tier",
        TIER,
        "--precision",
        "int8",
        "--out",
        str(tmp_path),
        "--models",
        str(models),
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"single_paradiddle-{TIER}-int8-00.mid").is_file()
    bad = _run("generate", "--rudiment", "moeller", "--tier", TIER, "--out", str(tmp_path), "--models", str(models))
    assert bad.returncode == 2 and "unknown rudiment 'moeller'" in bad.stderr
    missing = _run(
        "generate", "--rudiment", "flam", "--tier", "beginner", "--out", str(tmp_path), "--models", str(models)
    )
    assert missing.returncode == 2 and "beginner: no model.json" in missing.stderr
    assert _run("generate", "--rudiment", "flam", "--precision", "int2", "--out", str(tmp_path)).returncode == 2
