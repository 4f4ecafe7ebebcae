"""Alert records: one JSON object per line in `<data dir>/alerts.jsonl`.

Appends are whole lines written with one `write` under an exclusive lock, so
concurrent writers (several sensors or processes) never interleave records
and a reader never sees half a line except while a write is in flight.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from music_assets.paths import data_dir


def alerts_path() -> Path:
    return data_dir() / "alerts.jsonl"


def append_alert(record: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Append one record as a JSON line and fsync it."""
    dest = Path(path) if path is not None else alerts_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(dest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return dest


def read_alerts(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    dest = Path(path) if path is not None else alerts_path()
    if not dest.exists():
        return []
    return [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines() if line.strip()]
