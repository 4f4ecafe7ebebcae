"""Dagster's own commands work from the checkout root with nothing but the venv on PATH.

No DAGSTER_HOME: Dagster then makes a temporary instance folder in the current
directory, configured by the checkout's `dagster.yaml`, which must therefore
name no environment variable or path of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from music_assets.paths import REPO_ROOT
from music_assets_tests.ops.processes import BIN, background, free_port, wait_for_http

pytestmark = pytest.mark.slow

TMP_HOME_PREFIX = ".tmp_dagster_home_"


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A shell with the venv activated and DAGSTER_HOME unset; artifacts go to a temporary data dir."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    data = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "data" / "raw_audio", data / "raw_audio")
    env["MUSIC_ASSETS_DATA_DIR"] = str(data)
    return env


def _tmp_homes() -> set[str]:
    return {p.name for p in REPO_ROOT.glob(f"{TMP_HOME_PREFIX}*")}


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-4000:]}"
    assert "DAGSTER_HOME" not in out or "not set" not in out, out[-4000:]
    return out


def test_instance_file_names_no_environment_or_path() -> None:
    text = (REPO_ROOT / "dagster.yaml").read_text()
    config = yaml.safe_load(text)
    assert "storage" not in config and "local_artifact_storage" not in config  # Dagster's defaults: the instance dir
    assert "env:" not in text and "DAGSTER_HOME" not in yaml.safe_dump(config)


def test_cli_commands_without_dagster_home(user_env: dict[str, str]) -> None:
    before = _tmp_homes()
    out = _run(["dagster", "definitions", "validate", "-m", "music_assets.definitions"], user_env)
    assert "Validation successful" in out
    out = _run(["dg", "check", "defs"], user_env)
    assert "All definitions loaded successfully" in out
    out = _run(["dg", "list", "defs", "--json"], user_env)
    assert '"audio_catalog"' in out and '"quantized_models"' in out

    catalog = Path(user_env["MUSIC_ASSETS_DATA_DIR"]) / "catalog" / "audio_catalog.parquet"
    out = _run(
        ["dagster", "asset", "materialize", "-m", "music_assets.definitions", "--select", "audio_catalog"], user_env
    )
    assert "RUN_SUCCESS" in out
    first = pq.read_table(catalog)
    assert first.num_rows == 6  # the six checked-in demo recordings
    catalog.unlink()
    out = _run(["dg", "launch", "--assets", "audio_catalog"], user_env)
    assert "RUN_SUCCESS" in out
    assert pq.read_table(catalog).column("source_id").to_pylist() == first.column("source_id").to_pylist()
    assert _tmp_homes() == before  # each temporary instance was removed on exit


@pytest.mark.parametrize(
    "cmd",
    [
        ["dagster", "dev", "-m", "music_assets.definitions", "-h", "127.0.0.1", "-p", "{port}"],
        ["dagster", "dev", "-h", "127.0.0.1", "-p", "{port}"],  # pyproject.toml [tool.dagster]
        ["dg", "dev", "--host", "127.0.0.1", "--port", "{port}"],
    ],
    ids=["dagster-dev-m", "dagster-dev", "dg-dev"],
)
def test_webserver_without_dagster_home(cmd: list[str], user_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    argv = [str(BIN / cmd[0]), *(c.format(port=port) for c in cmd[1:])]
    log = tmp_path / "dev.log"
    before = _tmp_homes()
    with background(argv, log, env=user_env) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", 240, proc, log)
        # The code location loaded too (not only the web server): its assets are served.
        query = {"query": "{ assetNodes { assetKey { path } } }"}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        keys: set[str] = set()
        deadline = time.monotonic() + 120
        while not keys and time.monotonic() < deadline:
            with contextlib.suppress(OSError, KeyError, TypeError), urllib.request.urlopen(req, timeout=10) as resp:
                nodes = json.loads(resp.read())["data"]["assetNodes"]
                keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            if not keys:
                time.sleep(1)
        assert {"audio_catalog", "rudiment_audio", "hf_dataset"} <= keys, log.read_text()[-3000:]
    text = log.read_text()
    assert "DAGSTER_HOME" not in text or "not set" not in text, text[-3000:]
    assert _tmp_homes() == before, text[-3000:]
