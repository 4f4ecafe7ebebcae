"""Progress lines: the format, its parser, and the throttle."""

from __future__ import annotations

from music_assets.progress import ProgressLog, format_line, parse


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_reads_back_as_written() -> None:
    line = format_line("[novice] training", 400, 1000, "steps", rate=6.1, info={"loss": 1.62345, "lr": None})
    assert line == "[novice] training: 400/1000 steps (40 %), 6.1 steps/s, loss 1.623, ~99 s left"
    p = parse(line)
    assert (p.label, p.done, p.total, p.unit) == ("[novice] training", 400, 1000, "steps")
    assert p.rest == "6.1 steps/s, loss 1.623, ~99 s left"
    assert parse("catalog: 6/6 files (100 %)").rest == ""
    assert parse("6 files: 6 analysed, 0 reused in 1.2 s") is None
    assert parse("step 125: val loss 2.1, watch grammar 0.9") is None


def test_at_most_one_line_every_few_seconds_and_always_the_last() -> None:
    clock, lines = Clock(), []
    progress = ProgressLog(lines.append, "rendering", "samples", every_sec=5.0, clock=clock)
    progress(0, 100)  # the starting point: no line
    for done in range(1, 101):
        clock.now += 0.25  # 4 samples/s: 25 s in all
        progress(done, 100)
    progress(100, 100)  # a repeated end is not a second last line
    assert [parse(x).done for x in lines] == [20, 40, 60, 80, 100]
    assert lines[0] == "rendering: 20/100 samples (20 %), 4 samples/s, ~20 s left"
    assert lines[-1] == "rendering: 100/100 samples (100 %), 4 samples/s"


def test_a_slow_first_unit_does_not_make_the_rate() -> None:
    clock, lines = Clock(), []
    progress = ProgressLog(lines.append, "rendering", "samples", every_sec=5.0, clock=clock)
    progress(0, 60)
    clock.now += 10.0  # the workers start and load their soundfonts
    progress(1, 60)
    for done in range(2, 61):
        clock.now += 0.5
        progress(done, 60)
    assert lines[0] == "rendering: 1/60 samples (1 %)"  # something is happening; no rate from one point
    assert lines[1] == "rendering: 11/60 samples (18 %), 2 samples/s, ~25 s left"
    assert lines[-1] == "rendering: 60/60 samples (100 %), 2 samples/s"


def test_the_rate_counts_from_where_a_resumed_run_starts() -> None:
    clock, lines = Clock(), []
    progress = ProgressLog(lines.append, "training", "steps", every_sec=1.0, clock=clock)
    progress(500, 1000)
    clock.now += 0.2
    progress(501, 1000, loss=2.5)
    clock.now += 10.0
    progress(551, 1000, loss=2.0)
    assert lines == ["training: 551/1000 steps (55 %), 5 steps/s, loss 2, ~90 s left"]


def test_work_already_done_at_the_start_is_one_line() -> None:
    lines: list[str] = []
    ProgressLog(lines.append, "training", "steps")(1000, 1000)
    assert lines == ["training: 1000/1000 steps (100 %)"]
