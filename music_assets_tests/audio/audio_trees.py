"""A folder tree with every bad-file case, and truncated files, for the sources tests (audio: `audio.signals`)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

import numpy as np

from music_assets.audio.signals import music_like, tone, write


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# status and a fragment of the reason the catalog must give each bad case (rel_path -> (status, reason))
BAD_CASES: dict[str, tuple[str, str]] = {
    "bad/empty.wav": ("error", "empty file"),
    "bad/truncated.flac": ("error", "truncated"),
    "bad/truncated.wav": ("error", "truncated"),
    "bad/corrupt.mp3": ("error", "corrupt"),
    "bad/text_renamed.mp3": ("error", "not a decodable audio file"),
    "bad/header_only.wav": ("error", "no audio frames"),
    "bad/folder.wav": ("skipped", "is a directory"),
    "bad/locked.wav": ("error", "permission denied"),
    "bad/loop.wav": ("skipped", "symlink loop"),
    "bad/outside_folder/elsewhere.wav": ("skipped", "duplicate: another name for"),  # reached by bad/outside.wav
    "bad/broken_link.wav": ("skipped", "broken symlink"),
    "bad/pipe.wav": ("skipped", "not a regular file"),
    "bad/alias.wav": ("skipped", "duplicate"),
    "bad/._real.wav": ("skipped", "macOS metadata"),
}


def make_bad_files(root: Path, outside: Path) -> None:
    """Every bad-file case of BAD_CASES under `root` (`outside` must be another folder)."""
    bad = root / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "empty.wav").write_bytes(b"")
    truncate(write(bad / "truncated.flac", music_like(2.0, seed=1)))
    truncate(write(bad / "truncated.wav", music_like(2.0, seed=2), subtype="PCM_16"))
    mp3 = write(bad / "corrupt.mp3", music_like(3.0, seed=3), sr=16000)
    data = bytearray(mp3.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8).tobytes()
    mp3.write_bytes(bytes(data))
    (bad / "text_renamed.mp3").write_text("these are liner notes, not audio\n" * 20)
    write(bad / "header_only.wav", np.zeros(0, dtype=np.float32), subtype="PCM_16")
    (bad / "folder.wav").mkdir()
    write(bad / "locked.wav", tone(0.5))
    os.chmod(bad / "locked.wav", 0)
    os.symlink("loop.wav", bad / "loop.wav")
    outside.mkdir(parents=True, exist_ok=True)
    write(outside / "elsewhere.wav", tone(0.5))
    os.symlink(outside / "elsewhere.wav", bad / "outside.wav")  # followed: an ok row (a short tone)
    os.symlink("does_not_exist.wav", bad / "broken_link.wav")
    os.mkfifo(bad / "pipe.wav")
    write(bad / "real.wav", tone(0.5, freq=330.0))
    os.symlink("real.wav", bad / "alias.wav")
    (bad / "._real.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # AppleDouble magic + padding
    os.symlink("..", bad / "cycle")  # a folder loop: must not be walked twice
    os.symlink(outside, bad / "outside_folder")
    (bad / "notes.txt").write_text("not audio")
    for excluded in (".git", ".venv", "env_with_cfg"):
        write(root / excluded / "hidden.wav", tone(0.5))
    (root / "env_with_cfg" / "pyvenv.cfg").write_text("home = /usr/bin\n")


# Linux capability bits: root reads any file unless these are dropped.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@contextlib.contextmanager
def file_permissions_enforced():
    """Make mode bits bind this thread even when it runs as root (drops, then restores, DAC override).

    Only the calling thread is affected, so work that must see the
    permission error has to run in this thread (workers=1).
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)
