"""Atomic writes and stable seeding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from music_assets import io
from music_assets.seeding import stable_rng, stable_seed


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "x.json"
    io.write_json(dest, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_open(dest, "w") as fh:
            fh.write("{half")
            raise RuntimeError("killed")
    assert io.read_json(dest) == {"a": 1}
    assert list(tmp_path.iterdir()) == [dest]


def test_remove_partials(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "a" / f".x.flac.{io.host_tag()}-{int(dead.stdout)}-0123abcd.partial").write_bytes(b"half")
    (tmp_path / "a" / "y.flac").write_bytes(b"whole")
    assert io.remove_partials(tmp_path) == 1
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["y.flac"]


def test_stable_seed_is_the_same_in_another_process() -> None:
    here = stable_seed("flam", 3, 0.5)
    code = "from music_assets.seeding import stable_seed; print(stable_seed('flam', 3, 0.5))"
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": "123"}, check=True
    ).stdout.strip()
    assert int(there) == here
    assert stable_seed("flam", 3, 0.5) != stable_seed("flam", 3, 0.6)
    assert np.array_equal(stable_rng("a").random(4), stable_rng("a").random(4))
