"""Progress of long work, as throttled one-line messages in a single parseable format.

The domain code (catalog, rendering, corpus, training) takes an optional plain
callback, `progress(done, total, **info)`, and knows nothing of where the
lines go. The convention: call it once with the starting point before the work
(`done` 0, or the step a resumed run starts from) and then after every unit of
work, with `done` increasing up to `total`. `info` holds a few named figures of
the moment (`loss=1.62`). The callback only observes: it must not draw random
numbers or change what the work computes.

`ProgressLog` is such a callback: it turns the calls into at most one line
every `every_sec` seconds (and always the last one) through a `log` function
(the Dagster assets pass `context.log.info`, so the lines are in the run's
event log in the UI and in the output of `dagster asset materialize`)::

    rendering: 320/800 samples (40 %), 61.2 samples/s, ~8 s left
    training: 400/1000 steps (40 %), 6.1 steps/s, loss 1.623, ~98 s left

`parse` reads such a line back (`make run` draws its terminal progress from
the lines it sees in a run's output).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_EVERY_SEC = 5.0

_LINE = re.compile(
    r"^(?P<label>.+?): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\S+) \((?P<percent>\d+) %\)(?:, (?P<rest>.*))?$"
)


class ProgressCallback(Protocol):
    def __call__(self, done: int, total: int, **info: Any) -> None: ...


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_line(
    label: str, done: int, total: int, unit: str, rate: float | None = None, info: dict[str, Any] | None = None
) -> str:
    """`<label>: <done>/<total> <unit> (<pct> %)[, <rate> <unit>/s][, <name> <value>...][, ~<eta> s left]`."""
    pct = math.floor(100 * done / total) if total > 0 else 100
    parts = [f"{label}: {done}/{total} {unit} ({pct} %)"]
    if rate is not None and rate > 0:
        parts.append(f"{rate:.3g} {unit}/s")
    parts += [f"{k.replace('_', ' ')} {_figure(v)}" for k, v in (info or {}).items() if v is not None]
    if rate is not None and rate > 0 and 0 < done < total:
        parts.append(f"~{math.ceil((total - done) / rate)} s left")
    return ", ".join(parts)


@dataclass(frozen=True)
class ProgressLine:
    label: str
    done: int
    total: int
    unit: str
    rest: str  # rate, figures and time left, as written


def parse(message: str) -> ProgressLine | None:
    """The progress line in `message` (as `format_line` writes it), or None if it is not one."""
    m = _LINE.match(message.strip())
    if m is None:
        return None
    return ProgressLine(m["label"], int(m["done"]), int(m["total"]), m["unit"], m["rest"] or "")


class ProgressLog:
    """A progress callback that writes a throttled line through `log`.

    The first call is the starting point (no line unless the work is already
    done). After it, a line is written when `every_sec` seconds have passed
    since the last one, and always when `done` reaches `total` (once). The rate
    (and the time left) counts from the first unit finished, so neither the
    steps a resumed run skipped nor the start-up of the first unit (a pool's
    workers loading soundfonts) distort it; the first unit's line has no rate.
    """

    def __init__(
        self,
        log: Callable[[str], None],
        label: str,
        unit: str,
        *,
        every_sec: float = DEFAULT_EVERY_SEC,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log, self.label, self.unit, self.every_sec, self.clock = log, label, unit, every_sec, clock
        self._start: tuple[float, int] | None = None
        self._first_unit: tuple[float, int] | None = None
        self._last_line = -math.inf
        self._finished = False
        self.lines: int = 0

    def __call__(self, done: int, total: int, **info: Any) -> None:
        now = self.clock()
        if self._start is None:
            self._start = (now, done)
            self._last_line = now
            if done < total:
                return
        if self._first_unit is None and done > self._start[1]:
            self._first_unit = (now, done)
        finished = done >= total
        if finished and self._finished:
            return
        if not finished and now - self._last_line < self.every_sec:
            return
        t1, done1 = self._first_unit or (now, done)
        rate = (done - done1) / (now - t1) if now > t1 and done > done1 else None
        self._last_line, self._finished = now, finished
        self.lines += 1
        self.log(format_line(self.label, done, total, self.unit, rate, info))
