"""Fault-injection fixtures: a small real rudiment dataset (built once), data-dir snapshots, byte flips.

Every test in this package injects one fault (a bad config, a kill, a flipped byte, an odd file name,
an escaping key, a concurrent writer, a full disk) and asserts what the user sees and what is left on
disk. Subprocesses run the checkout's code (`PYTHONPATH` and the working directory are the checkout).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from music_assets.paths import REPO_ROOT
from music_assets_tests.ml.conftest import tiny_base, tiny_corpus  # noqa: F401 - re-exported fixtures

SLUGS = ["flam", "flam_accent"]  # neighbours in PAS order: flam...flam_accent is exactly these two
PROFILES = 12
DATASET = {"rudiment_dataset": {"config": {"num_profiles": PROFILES}}}
AUDIO = {"workers": 1, "background_beds": False}


def audio_config(**extra) -> dict:
    return {"ops": {"rudiment_audio": {"config": {**AUDIO, **extra}}}}


def labels_config(slugs=SLUGS) -> dict:
    return {"ops": {"rudiment_labels": {"config": {"rudiments": list(slugs)}}}}


@contextlib.contextmanager
def data_dir_env(data: Path) -> Iterator[Path]:
    saved = os.environ.get("MUSIC_ASSETS_DATA_DIR")
    os.environ["MUSIC_ASSETS_DATA_DIR"] = str(data)
    try:
        yield data
    finally:
        if saved is None:
            os.environ.pop("MUSIC_ASSETS_DATA_DIR", None)
        else:
            os.environ["MUSIC_ASSETS_DATA_DIR"] = saved


def assets(*names: str, checks: bool = False) -> list:
    """The definitions' assets (and, with `checks`, their separately defined checks) by name."""
    from music_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    out = [graph.get(dg.AssetKey(n)).assets_def for n in names]
    if checks:
        out += [c for c in defs.asset_checks or [] if any(k.asset_key.to_user_string() in names for k in c.check_keys)]
    return out


def materialize(names, instance, run_config=None, partition=None, checks=False, **kw) -> dg.ExecuteInProcessResult:
    if isinstance(names, str):
        names = [names]
    tags = {}
    if isinstance(partition, list):
        tags = {"dagster/asset_partition_range_start": partition[0], "dagster/asset_partition_range_end": partition[-1]}
        partition = None
    return dg.materialize(
        assets(*names, checks=checks),
        instance=instance,
        run_config=run_config or {},
        partition_key=partition,
        tags=tags,
        raise_on_error=kw.pop("raise_on_error", False),
        **kw,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's messages, causes included (what the user reads in the UI)."""
    parts = []
    for event in result.get_step_failure_events():
        err = event.step_failure_data.error
        while err is not None:
            parts.append(err.message)
            err = err.cause
        if event.step_failure_data.user_failure_data is not None:
            parts.append(event.step_failure_data.user_failure_data.description or "")
    return "\n".join(parts)


def digest_tree(root: Path, exclude: tuple[str, ...] = ("dagster_home", ".locks")) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (what a fault must not change)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(exclude):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def partials(root: Path) -> list[Path]:
    return sorted(root.rglob("*.partial"))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that runs this checkout's code."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **extra}


def python(code: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, **kw)


def flip_keeping_readable(path: Path, column: str) -> tuple[int, list, list]:
    """Flip one byte inside the data of `column` in the parquet file `path` so that the file still
    reads and the column's values differ; returns (offset, values before, values after)."""
    import pyarrow as pa

    original = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    before = pq.read_table(path, columns=[column]).column(0).to_pylist()
    index = meta.schema.names.index(column)
    regions = []
    for rg in range(meta.num_row_groups):
        chunk = meta.row_group(rg).column(index)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        end = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size
        # the values themselves: the dictionary page (PLAIN floats) when the column has one, else the data page
        regions.append((start, chunk.data_page_offset if chunk.dictionary_page_offset else end))
    for start, end in regions:
        middle = (start + end) // 2  # from the middle of the page outwards: values, not its header
        for offset in sorted(range(start + 16, end), key=lambda o: abs(o - middle)):
            for mask in (0x40, 0x10, 0x01):
                damaged = bytearray(original)
                damaged[offset] ^= mask
                try:  # in memory first: most flips break the page, and trying them must stay cheap
                    after = pq.read_table(pa.BufferReader(bytes(damaged))).column(column).to_pylist()
                except Exception:  # noqa: BLE001 - this flip breaks the file: try another
                    continue
                if after != before:
                    path.write_bytes(bytes(damaged))
                    return offset, before, after
    raise AssertionError(f"no single-byte flip in {path}:{column} keeps the file readable")


@pytest.fixture(scope="session")
def rudiment_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with two rudiment partitions performed, rendered (seed 0) and merged into labels, by the
    real assets (uninterrupted: the reference every recovery is compared with). Copy it before changing it."""
    data = tmp_path_factory.mktemp("rudiment_data") / "data"
    data.mkdir()
    with data_dir_env(data), dg.DagsterInstance.ephemeral() as instance:
        assert materialize(["rudiment_library", "player_profiles"], instance, {"resources": DATASET}).success
        for slug in SLUGS:
            assert materialize("rudiment_performances", instance, {"resources": DATASET}, slug).success
            assert materialize("rudiment_audio", instance, audio_config(), slug).success
        assert materialize("rudiment_labels", instance, labels_config(), checks=True).success
    return data


@pytest.fixture
def rudiments(rudiment_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of `rudiment_data`, set as the data dir."""
    data = tmp_path / "data"
    shutil.copytree(rudiment_data, data)
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
    return data
