"""Issue 22, item 10: a full disk or a forbidden folder is reported with the file being written.

Before: full-disk and permission errors while rendering named the MIDI input ("<midi> (sample ...):
rendering failed: OSError(28, ...)"), not the file that could not be written. Now every atomic write
raises `WriteError`: "No space left on device while writing .../rudiments/audio/flam/<id>.flac";
the partition it stopped has no manifest (readers refuse it), nothing written before is lost, and
once there is room the same run writes exactly what an undisturbed one does.

The full disk is a real one where this process may mount a small tmpfs (root); elsewhere the writes
fail with a simulated ENOSPC from the file writes of `music_assets.io`.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from music_assets.paths import REPO_ROOT
from music_assets_tests.faults.conftest import (
    audio_config,
    digest_tree,
    failure_text,
    labels_config,
    materialize,
    partials,
    subprocess_env,
)

INPUTS = ("rudiments/library.parquet", "rudiments/profiles.parquet", "rudiments/splits.json")


def _inputs_of_flam(src: Path, dest: Path) -> None:
    """What rendering flam reads: the performances partition and its manifest (no audio yet)."""
    for rel in (*INPUTS, "rudiments/performances/flam", "rudiments/midi/flam", "manifests/rudiment_performances"):
        s, d = src / rel, dest / rel
        if not s.exists():  # a version without manifests
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if s.is_dir() else shutil.copy2)(s, d)
    (dest / "rudiments" / "performances" / "flam" / "audio.parquet").unlink()


def _mount(where: Path, size: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]
    return shutil.which("mount") is not None and subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path, rudiment_data: Path, monkeypatch: pytest.MonkeyPatch):
    """A data dir holding flam's performances with room for about two of its FLAC files; yields (data,
    make_room), make_room() giving it space again (a bigger tmpfs, or no more simulated ENOSPC)."""
    disk = tmp_path / "disk"
    staged = tmp_path / "staged"
    _inputs_of_flam(rudiment_data, staged)
    used = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
    flac = max(p.stat().st_size for p in (rudiment_data / "rudiments" / "audio" / "flam").glob("*.flac"))
    mounted = os.geteuid() == 0 and _mount(disk, int(used + 2.5 * flac) + 4096 * 64)
    data = disk / "data"
    shutil.copytree(staged, data)
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
    if mounted:

        def make_room() -> None:
            subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)

    else:  # simulated: the third FLAC write and those after it fail with ENOSPC
        import music_assets.io as mio

        real_open, writes = open, {"n": 0}

        class Full:
            def __init__(self, fh):
                self.fh = fh

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self.fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

        def full_open(path, mode="r", *args, **kw):
            fh = real_open(path, mode, *args, **kw)
            if "w" in mode and ".flac." in str(path):
                writes["n"] += 1
                if writes["n"] >= 3:
                    return Full(fh)
            return fh

        monkeypatch.setattr(mio, "open", full_open, raising=False)

        def make_room() -> None:
            monkeypatch.setattr(mio, "open", real_open, raising=False)

    try:
        yield data, make_room
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_names_the_file_being_written_and_a_rerun_recovers(small_disk, rudiment_data: Path) -> None:
    data, make_room = small_disk
    before = digest_tree(data)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize("rudiment_audio", instance, audio_config(), "flam")
        assert not result.success
        text = failure_text(result)
        target = data / "rudiments" / "audio" / "flam"
        assert f"No space left on device while writing {target}/" in text, text
        assert ".flac" in text.split("while writing")[1].split()[0]
        assert partials(data) == []  # no half-written file left behind
        assert not (data / "manifests" / "rudiment_audio" / "flam.json").exists()  # the partition is not whole
        kept = digest_tree(data)
        assert {k: v for k, v in kept.items() if k in before} == before  # nothing written before is lost

        refused = materialize("rudiment_labels", instance, labels_config(["flam"]))
        assert not refused.success and "rudiment_audio/flam is incomplete" in failure_text(refused)

        make_room()  # the user frees some space, and runs the same thing again
        assert materialize("rudiment_audio", instance, audio_config(), "flam").success
    for sub in ("rudiments/audio/flam", "rudiments/performances/flam"):
        assert digest_tree(data / sub) == digest_tree(rudiment_data / sub), sub


PERMISSION = """
import sys
from pathlib import Path
from music_assets.audio.render import RenderError, render_partitions
try:
    render_partitions(["flam"], Path(sys.argv[1]), workers=1, use_beds=False)
except RenderError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_read_only_folder_names_the_file_being_written(rudiments: Path) -> None:
    folder = rudiments / "rudiments" / "audio" / "flam"
    cmd = [sys.executable, "-c", PERMISSION, str(rudiments)]
    if os.geteuid() == 0:  # root writes anywhere: drop the capability that lets it, for the child only
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run a child without CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    folder.chmod(0o555)
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 3, proc.stdout + proc.stderr[-3000:]
    assert f"Permission denied while writing {folder}/" in proc.stdout, proc.stdout
