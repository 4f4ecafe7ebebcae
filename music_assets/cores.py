"""How many cores this process may use: the one count every pool and executor sizes itself by."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or `taskset`'s limit),
    not the machine's count, so a pinned process does not start more workers than it has cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
