"""The soundfonts the project renders with: one registry, read by everything that needs one.

Each entry says where the file is, which Debian package installs it, its licence (the name the
dataset card prints, and where the licence is stated) and what it is. Rendering
(`synthesis.DEFAULT_SOUNDFONTS`, in registry order: the order deals soundfonts to samples), the
dataset card's licence column, the models' listening renders and the `music-assets generate`
default (`DEFAULT`), and `scripts/setup.sh` (the apt packages) all read it, so adding a soundfont
is one entry here.

`scripts/setup.sh` runs this module before the virtual environment exists
(`python3 -m music_assets.audio.soundfonts --apt-packages`), so it imports the standard library
only. Licences are as stated in each Debian package's copyright file
(`/usr/share/doc/<package>/copyright`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1


class SoundfontError(ValueError):
    """A soundfont that is not registered, not installed, or a registry entry that is malformed."""


@dataclass(frozen=True)
class Soundfont:
    """One General MIDI soundfont (it needs a drum kit at bank 128 to render the rudiments)."""

    name: str  # short name, lower case: `--soundfont timgm6mb`
    path: Path  # absolute, where the Debian package installs it
    apt_package: str  # the Debian package that installs `path`
    license: str  # as the dataset card prints it (SPDX identifier)
    license_source: str  # where the licence is stated
    description: str  # what it is

    @property
    def file_name(self) -> str:
        """The name the data records (`audio.parquet`'s `soundfont` column)."""
        return self.path.name

    def is_installed(self) -> bool:
        return self.path.is_file()

    def require(self) -> Path:
        """The file, or a `SoundfontError` naming the soundfont, the file and the package to install."""
        if not self.is_installed():
            raise SoundfontError(_not_installed(self))
        return self.path


def _not_installed(sf: Soundfont) -> str:
    return (
        f"soundfont {sf.name!r} ({sf.description}) is not installed: {sf.path} not found; "
        f"install the Debian package {sf.apt_package} (scripts/setup.sh installs it)"
    )


def validate(entries: Sequence[Soundfont]) -> dict[str, Soundfont]:
    """The entries by name, or a `SoundfontError` naming the first malformed entry and what is wrong."""
    by_name: dict[str, Soundfont] = {}
    files: dict[str, str] = {}
    for sf in entries:
        label = f"soundfont registry entry {sf.name!r}"
        if not _NAME.match(sf.name):
            raise SoundfontError(f"{label}: the name must be lower case letters, digits and _")
        if sf.name in by_name:
            raise SoundfontError(f"{label}: the name is registered twice")
        if not sf.path.is_absolute() or sf.path.suffix.lower() != ".sf2":
            raise SoundfontError(f"{label}: {sf.path} is not an absolute path to a .sf2 file")
        if sf.file_name in files:
            raise SoundfontError(f"{label}: file name {sf.file_name} is also {files[sf.file_name]!r}'s")
        if not _PACKAGE.match(sf.apt_package):
            raise SoundfontError(f"{label}: {sf.apt_package!r} is not a Debian package name")
        for field in ("license", "license_source", "description"):
            value = getattr(sf, field)
            if not value.strip() or "|" in value or "\n" in value:
                raise SoundfontError(f"{label}: {field} must be one non-empty line without '|'")
        by_name[sf.name] = sf
        files[sf.file_name] = sf.name
    if not by_name:
        raise SoundfontError("the soundfont registry is empty")
    return by_name


# Registry order is the rendering order: samples are dealt over `DEFAULT_SOUNDFONTS` by index.
SOUNDFONTS: dict[str, Soundfont] = validate(
    (
        Soundfont(
            name="timgm6mb",
            path=SOUNDFONT_DIR / "TimGM6mb.sf2",
            apt_package="timgm6mb-soundfont",
            license="GPL-2.0",
            license_source="/usr/share/doc/timgm6mb-soundfont/copyright",
            description="TimGM6mb, a small (6 MB) General MIDI set by Tim Brechbill",
        ),
        Soundfont(
            name="fluidr3_gm",
            path=SOUNDFONT_DIR / "FluidR3_GM.sf2",
            apt_package="fluid-soundfont-gm",
            license="MIT",
            license_source="/usr/share/doc/fluid-soundfont-gm/copyright",
            description="Fluid R3, a full (148 MB) General MIDI set by Frank Wen",
        ),
    )
)

# The soundfont of the models' listening renders and of `music-assets generate --flac`.
DEFAULT = SOUNDFONTS["timgm6mb"]
# The soundfonts `rudiment_audio` deals its samples over, in this order.
DEFAULT_RENDER: tuple[Soundfont, ...] = tuple(SOUNDFONTS.values())


def get(name: str) -> Soundfont:
    """The registered soundfont called `name`, or a `SoundfontError` listing the registered names."""
    try:
        return SOUNDFONTS[name]
    except KeyError:
        raise SoundfontError(f"unknown soundfont {name!r}; registered: {', '.join(SOUNDFONTS)}") from None


def by_file_name(file_name: str) -> Soundfont | None:
    """The registered soundfont whose file is called `file_name` (as the data records it), if any."""
    return next((sf for sf in SOUNDFONTS.values() if sf.file_name == file_name), None)


def by_path(path: str | os.PathLike[str]) -> Soundfont | None:
    """The registered soundfont at `path`, if any."""
    p = Path(path)
    return next((sf for sf in SOUNDFONTS.values() if sf.path == p), None)


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """A registered name's file, or the path itself (a soundfont outside the registry)."""
    value = os.fspath(name_or_path)
    return SOUNDFONTS[value].path if value in SOUNDFONTS else Path(value)


def not_found_message(path: str | os.PathLike[str]) -> str:
    """Why `path` cannot be rendered with: it names the registered soundfont and its package when
    `path` is one, the file alone otherwise."""
    sf = by_path(path)
    return _not_installed(sf) if sf is not None else f"{path}: soundfont not found"


def apt_packages() -> list[str]:
    """The Debian packages that install the registered soundfonts, in registry order, once each."""
    return list(dict.fromkeys(sf.apt_package for sf in SOUNDFONTS.values()))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m music_assets.audio.soundfonts", description=__doc__.split("\n")[0])
    ap.add_argument("--apt-packages", action="store_true", help="print the Debian packages, one a line")
    args = ap.parse_args(argv)
    if args.apt_packages:
        print("\n".join(apt_packages()))
        return 0
    for sf in SOUNDFONTS.values():
        state = "installed" if sf.is_installed() else "NOT INSTALLED"
        print(f"{sf.name}\t{sf.path}\t{sf.apt_package}\t{sf.license}\t{state}\t{sf.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
