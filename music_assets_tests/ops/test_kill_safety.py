"""Kill-safety and secrets: a run SIGKILLed part-way leaves no partial file and
re-runs to byte for byte what an uninterrupted run gives; the Hub token never
reaches Dagster's storage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import soundfile as sf

from music_assets.io import PARTIAL_SUFFIX
from music_assets.ops.instance import ensure_dagster_home, reap_dead_runs
from music_assets.paths import REPO_ROOT
from music_assets_tests.faults.conftest import data_dir_env

SLUGS = ["flam", "flam_accent"]  # adjacent in PAS order: a partition range of exactly these two
DATASET = {"rudiment_dataset": {"config": {"num_profiles": 12}}}
AUDIO_CONFIG = {"ops": {"rudiment_audio": {"config": {"workers": 1, "background_beds": False}}}}
# Embedded media in many small shards: staging then writes long enough to be killed part-way.
STAGING_CONFIG = {"ops": {"hf_staging": {"config": {"file_budget": 1, "shard_size_mb": 0.25}}}}


def _materialize(
    data: Path, select: list[str], config: dict, partitions: list[str] | None = None, checks: bool = True
) -> None:
    from music_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = [graph.get(dg.AssetKey(k)).assets_def for k in select]
    extra = [c for c in defs.asset_checks or [] if any(k.asset_key.to_user_string() in select for k in c.check_keys)]
    with dg.DagsterInstance.ephemeral() as instance:
        for partition in partitions or [None]:
            result = dg.materialize(
                [*assets, *(extra if checks else [])], instance=instance, run_config=config, partition_key=partition
            )
            assert result.success


@pytest.fixture(scope="module")
def performed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the performances of two rudiments (inputs of rudiment_audio)."""
    data = tmp_path_factory.mktemp("performed") / "data"
    data.mkdir()
    with data_dir_env(data):
        _materialize(data, ["rudiment_library", "player_profiles"], {"resources": DATASET})
        _materialize(data, ["rudiment_performances"], {"resources": DATASET}, SLUGS)
    return data


@pytest.fixture(scope="module")
def labelled(performed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same two rudiments rendered and merged into labels (inputs of hf_staging)."""
    data = tmp_path_factory.mktemp("labelled") / "data"
    shutil.copytree(performed, data)
    with data_dir_env(data):
        _materialize(data, ["rudiment_audio"], AUDIO_CONFIG, SLUGS)
        _materialize(data, ["rudiment_labels"], {"ops": {"rudiment_labels": {"config": {"rudiments": SLUGS}}}})
    return data


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _partials(root: Path) -> list[Path]:
    return list(root.rglob(f"*{PARTIAL_SUFFIX}"))


def _cli(select: str, config: dict, partition_range: str | None, env: dict[str, str]) -> subprocess.Popen:
    cmd = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "music_assets.definitions",
        "--select",
        select,
        "--config-json",
        json.dumps(config),
    ]
    if partition_range:
        cmd += ["--partition-range", partition_range]
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended before it could be killed ({ready.__doc__}):\n" + proc.stdout.read().decode()[-1500:]
            )
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the run never reached the point to kill it")


def _kill_and_rerun(tmp_path: Path, data: Path, select: str, config: dict, partition_range: str | None, ready) -> None:
    env = {**os.environ, "MUSIC_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(tmp_path / "home")}
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    ensure_dagster_home()
    _kill_when(_cli(select, config, partition_range, env), ready)
    # The documented recovery for a killed CLI run: mark it failed, free its pool slot
    # (once the killed step process, re-parented away from us, has actually died).
    reaped: list[str] = []
    with dg.DagsterInstance.get() as instance:
        for _ in range(100):
            reaped = reap_dead_runs(instance)
            if reaped:
                break
            time.sleep(0.1)
    assert len(reaped) == 1
    again = _cli(select, config, partition_range, env)
    try:
        out = again.communicate(timeout=600)[0].decode()
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
    assert again.returncode == 0, out[-4000:]


def test_killed_rudiment_audio_run_reruns_to_identical_files(performed: Path, labelled: Path, tmp_path: Path) -> None:
    reference = labelled  # rendered by an uninterrupted in-process run of the same config
    killed = tmp_path / "killed"
    shutil.copytree(performed, killed)
    audio = killed / "rudiments" / "audio"
    total = sum(1 for _ in (reference / "rudiments" / "audio").rglob("*.flac"))
    seen: dict[str, int] = {}

    def part_way() -> bool:
        done = sum(1 for _ in audio.rglob("*.flac")) if audio.exists() else 0
        seen["done"] = done
        part_way.__doc__ = f"{done} of {total} files"
        return 0 < done < total // 2

    _kill_and_rerun(tmp_path, killed, "rudiment_audio", AUDIO_CONFIG, f"{SLUGS[0]}...{SLUGS[-1]}", part_way)
    assert 0 < seen["done"] < total
    assert _partials(killed) == []
    for flac in audio.rglob("*.flac"):
        sf.read(flac)  # every file decodes whole
    for sub in ("audio", "performances", "midi"):
        ref, got = _digest(reference / "rudiments" / sub), _digest(killed / "rudiments" / sub)
        assert got.keys() == ref.keys()
        assert got == ref


def test_killed_hf_staging_run_reruns_to_identical_files(
    labelled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(labelled, reference)
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(reference))
    _materialize(reference, ["hf_staging"], STAGING_CONFIG, checks=False)
    shards = sorted((reference / "hf_staging" / "data").rglob("*.parquet"))
    assert len(shards) >= 4

    killed = tmp_path / "killed"
    shutil.copytree(labelled, killed)
    data_folder = killed / "hf_staging" / "data"

    def part_way() -> bool:
        return data_folder.exists() and 0 < len(list(data_folder.rglob("*.parquet"))) < len(shards) // 2

    _kill_and_rerun(tmp_path, killed, "hf_staging", STAGING_CONFIG, None, part_way)
    assert _partials(killed) == []
    ref, got = _digest(reference / "hf_staging"), _digest(killed / "hf_staging")
    assert got.keys() == ref.keys()
    assert got == ref


class _EchoingHub(BaseHTTPRequestHandler):
    """A hostile Hub: refuses every request and echoes the credentials it received."""

    def _refuse(self) -> None:
        body = f"401 Unauthorized: bad credentials {self.headers.get('Authorization')}".encode()
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args) -> None:
        pass


def test_hub_token_never_reaches_event_log_or_compute_logs(
    labelled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(labelled, data)
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))

    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = "hf_" + "Zq7" * 12  # fake, distinctive
    home = tmp_path / "home"
    env = {**os.environ, "MUSIC_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home), "HF_TOKEN": token}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    config = {
        "resources": {
            "hf_hub": {"config": {"repo_id": "someone/rudiments", "endpoint": f"http://127.0.0.1:{server.server_port}"}}
        }
    }
    try:
        proc = _cli("hf_staging,hf_dataset", config, None, env)
        out = proc.communicate(timeout=600)[0].decode()
    finally:
        server.shutdown()
    # The push was refused (401): the run fails, and says why without the token.
    assert proc.returncode != 0
    assert "401" in out and token not in out
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert token not in json.dumps(run.run_config)
    searched = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in searched)  # event log storage
    assert any("compute_logs" in str(p) for p in searched)  # captured stdout/stderr of the steps
    leaks = [str(p) for p in searched + [p for p in data.rglob("*") if p.is_file()] if token.encode() in p.read_bytes()]
    assert leaks == []
