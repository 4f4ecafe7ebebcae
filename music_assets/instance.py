"""Prepare $DAGSTER_HOME: the Dagster instance folder under the data dir.

`python -m music_assets.instance` creates the folder and links the checkout's
`dagster.yaml` into it. `MUSIC_ASSETS_INSTANCE=<variant>` links
`dagster.<variant>.yaml` instead (for example `postgres`), which is how the
instance is switched to another storage in one step.
"""

from __future__ import annotations

import os
from pathlib import Path

from music_assets.paths import REPO_ROOT, dagster_home


def instance_config_file() -> Path:
    variant = os.environ.get("MUSIC_ASSETS_INSTANCE", "").strip()
    name = f"dagster.{variant}.yaml" if variant else "dagster.yaml"
    path = REPO_ROOT / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no instance config for MUSIC_ASSETS_INSTANCE={variant!r}")
    return path


def ensure_dagster_home() -> Path:
    """Create $DAGSTER_HOME and point its dagster.yaml at the selected config."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = instance_config_file()
    if target.is_symlink() or target.exists():
        if target.is_symlink() and Path(os.readlink(target)) == source:
            return home
        target.unlink()
    target.symlink_to(source)
    return home


if __name__ == "__main__":
    print(ensure_dagster_home())
