"""The code location loads and validates the way `dagster dev` and CI load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from music_assets.paths import REPO_ROOT


def test_definitions_validate(dagster_home: Path) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "music_assets.definitions"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_workspace_points_at_the_module() -> None:
    import yaml

    ws = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    assert ws["load_from"][0]["python_module"]["module_name"] == "music_assets.definitions"


def test_every_asset_has_owners_and_a_code_version() -> None:
    import dagster as dg

    from music_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    missing = {
        key.to_user_string(): [a for a in ("owners", "code_version") if not getattr(graph.get(key), a)]
        for key in graph.get_all_asset_keys()
        if not graph.get(key).is_external
    }
    assert {k: v for k, v in missing.items() if v} == {}
    assert all(o.startswith("team:") for k in graph.get_all_asset_keys() for o in graph.get(k).owners)
    assert graph.get(dg.AssetKey("hf_staging")).owners == ["team:publish"]
