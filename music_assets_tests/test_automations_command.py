"""`make dev` prints which sensors and schedules are on, and how to start the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from music_assets.paths import REPO_ROOT
from music_assets_tests.ops.processes import BIN


@pytest.mark.slow
def test_make_dev_says_what_is_on_and_how_to_start_the_rest(dagster_home: Path) -> None:
    from music_assets_tests.ops.test_ui_browser import make_dev_command

    dry = subprocess.run(["make", "-s", "-n", "dev"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert "-m music_assets.ops.automations" in dry.stdout and make_dev_command()  # printed before the UI starts
    printed = subprocess.run(
        [sys.executable, "-m", "music_assets.ops.automations"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line.split()[2]: line.split()[0] for line in printed.splitlines() if line.startswith("  o")}
    assert rows["reap_killed_runs"] == rows["run_failure_alerts"] == "on"
    assert rows["raw_audio_sensor"] == rows["daily_audio_catalog"] == rows["follow_inputs"] == "off"
    command = "dagster sensor start -m music_assets.definitions raw_audio_sensor"
    assert command in printed and "dagster schedule start -m music_assets.definitions" in printed
    # the printed command works, and the next print says so
    started = subprocess.run(
        [str(BIN / "dagster"), *command.split()[1:]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stdout + started.stderr
    again = subprocess.run(
        [sys.executable, "-m", "music_assets.ops.automations"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [ln for ln in again.splitlines() if " raw_audio_sensor " in ln]
    assert line.startswith("  on ") and "started or stopped on this instance" in line, again
