"""`make run`'s terminal progress: run-output lines to tqdm bars (a terminal) or plain lines (CI logs)."""

from __future__ import annotations

import io

from music_assets.ops.demo import StageProgress

RUN = "2bfc70e0-182a-4a67-8472-fbf893ef7a7e"


def _line(step: str, message: str) -> str:
    return f"2026-12-02 14:46:37 +0000 - dagster - INFO - __ASSET_JOB - {RUN} - {step} - {message}\n"


OUTPUT = [
    f"2026-12-02 14:46:33 +0000 - dagster - DEBUG - __ASSET_JOB - {RUN} - 7745 - RUN_START - Started execution.\n",
    _line("rudiment_audio", "rendering: 320/800 samples (40 %), 61.2 samples/s, ~8 s left"),
    _line("rudiment_audio", "flam: 20 samples in 0.3 s"),
    _line("lora_adapters", "[novice] training: 10/100 steps (10 %), 5 steps/s, loss 1.6, ~18 s left"),
    _line("rudiment_audio", "rendering: 800/800 samples (100 %), 60 samples/s"),
    "2026-12-02 - dagster - INFO - not a user line: 3/4 files (75 %)\n",
]


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    shown = StageProgress(tty=False, out=out)
    for text in OUTPUT:
        shown.line(text)
    assert out.getvalue().splitlines() == [
        "    rudiment_audio: rendering: 320/800 samples, 61.2 samples/s, ~8 s left",
        "    lora_adapters: [novice] training: 10/100 steps, 5 steps/s, loss 1.6, ~18 s left",
        "    rudiment_audio: rendering: 800/800 samples, 60 samples/s",
    ]
    assert "\r" not in out.getvalue()


def test_bars_on_a_terminal_leave_one_line_per_finished_bar(capsys) -> None:
    out = io.StringIO()
    shown = StageProgress(tty=True, out=out)
    for text in OUTPUT:
        shown.line(text)
    assert set(shown.bars) == {("lora_adapters", "[novice] training")}  # rendering finished, its bar closed
    assert shown.bars[("lora_adapters", "[novice] training")].n == 10
    shown.close()
    assert not shown.bars
    assert out.getvalue().splitlines() == ["    rudiment_audio: rendering: 800/800 samples, 60 samples/s"]
    assert "rendering" in capsys.readouterr().err  # the bars were drawn on stderr
