"""Per-file functions that take their worker process down, for the catalog pool tests.

Kept apart from the test modules so a spawned worker imports nothing heavy.
"""

from __future__ import annotations

import os


def crash_on_b(path: str) -> dict:
    """Stands in for a decoder that crashes its process on one file."""
    if path.endswith("b.wav"):
        os._exit(11)
    return {"status": "ok", "path": path}


def always_crash(path: str) -> dict:
    os._exit(3)
