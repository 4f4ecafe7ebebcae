"""The torch-free runner: `python -m music_assets.ml.onnx_generate --model <dir> --rudiment flam --out take.mid`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest

from music_assets.ml import quantize as qz
from music_assets.ml.onnx_generate import main
from music_assets.paths import REPO_ROOT
from music_assets_tests.ml.tiny_models import GOOD_SAMPLING, TIERS, export_tiny_tier

TIER = TIERS[0]
SAMPLING = ["--temperature", str(GOOD_SAMPLING["temperature"]), "--top-k", str(GOOD_SAMPLING["top_k"])]

# Runs the CLI module as `python -m` would, then reports whether torch was ever imported.
_PROBE = """
import json, runpy, sys
sys.argv = ["onnx_generate", *json.loads(sys.argv[1])]
try:
    runpy.run_module("music_assets.ml.onnx_generate", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_tier(tmp_path_factory, TIER) / "models" / "onnx" / TIER


def test_runs_in_a_process_that_never_imports_torch(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "take.mid"
    args = ["--model", str(model_dir), "--rudiment", "flam", "--out", str(out), "--seed", "3", *SAMPLING]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "torch": []}
    assert f"{out}: flam, {TIER} (fp32)" in proc.stdout
    pm = pretty_midi.PrettyMIDI(str(out))
    (drums,) = pm.instruments
    assert drums.is_drum and len(drums.notes) >= 2
    assert {n.pitch for n in drums.notes} <= set(range(35, 82))
    tempo = json.loads((model_dir / "model.json").read_text())["conditioning"]["default_tempo_bpm"]["flam"]
    assert pm.get_tempo_changes()[1][0] == pytest.approx(tempo, rel=1e-4)


def test_same_seed_same_take_and_options_apply(model_dir: Path, tmp_path: Path, capsys) -> None:
    a, b, c = tmp_path / "a.mid", tmp_path / "b.mid", tmp_path / "c.mid"
    base = ["--model", str(model_dir), "--rudiment", "single_paradiddle", "--tempo", "96", *SAMPLING]
    assert main([*base, "--out", str(a)]) == 0
    assert main([*base, "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert "96 BPM, 2 bars" in capsys.readouterr().out
    pm = pretty_midi.PrettyMIDI(str(a))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(96, rel=1e-4)
    # the length follows --bars: a paradiddle has 8 strokes in 2 beats, so 2 bars are 32 notes and 4 bars 64
    assert len(pm.instruments[0].notes) == 32
    assert main([*base, "--out", str(c), "--bars", "4", "--seed", "1"]) == 0
    assert len(pretty_midi.PrettyMIDI(str(c)).instruments[0].notes) == 64
    assert main([*base, "--out", str(tmp_path / "d.mid"), "--bars", "0"]) == 2
    assert "bars must be > 0" in capsys.readouterr().err and not (tmp_path / "d.mid").exists()


def test_runs_a_quantized_variant(model_dir: Path, tmp_path: Path, capsys) -> None:
    qz.write_variant(model_dir, tmp_path / "int8", "int8")
    out = tmp_path / "take.mid"
    assert main(["--model", str(tmp_path / "int8"), "--rudiment", "flam", "--out", str(out), *SAMPLING]) == 0
    assert f"{TIER} (int8)" in capsys.readouterr().out and out.is_file()


def test_bad_input_is_named(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "x.mid")
    assert main(["--model", str(model_dir), "--rudiment", "moeller", "--out", out]) == 2
    assert "unknown rudiment 'moeller'" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    with open(broken / "model.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    assert main(["--model", str(broken), "--rudiment", "flam", "--out", out]) == 2
    assert "sha256 does not match" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nowhere"), "--rudiment", "flam", "--out", out]) == 2
    assert "model.json: not found" in capsys.readouterr().err
    assert not Path(out).exists()
