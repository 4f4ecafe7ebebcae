"""One count of usable cores sizes every pool: a process pinned to one core starts one worker."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from music_assets.paths import REPO_ROOT


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs util-linux taskset")
def test_a_process_pinned_to_one_core_sizes_every_pool_to_one() -> None:
    code = (
        "from music_assets.audio.catalog import default_workers as catalog\n"
        "from music_assets.audio.render import default_workers as render\n"
        "from music_assets.cores import usable_cores\n"
        "print(usable_cores(), catalog(), render())\n"
    )
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "1", "1"], out
