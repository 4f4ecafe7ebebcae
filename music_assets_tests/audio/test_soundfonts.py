"""The soundfont registry: validated entries, lookups, a clear error for one that is not installed,
and every reader (rendering, the CLI, the models' listening renders, set-up) taking it from there."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from music_assets import cli
from music_assets.audio import render, soundfonts
from music_assets.audio.soundfonts import Soundfont, SoundfontError
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS, Renderer, SynthesisError
from music_assets.paths import REPO_ROOT

TIM = soundfonts.SOUNDFONTS["timgm6mb"]


def _ghost(tmp_path: Path, **changes) -> Soundfont:
    """A well-formed entry whose file is not installed."""
    fields = dict(
        name="ghost_kit",
        path=tmp_path / "GhostKit.sf2",
        apt_package="ghost-soundfont",
        license="CC0-1.0",
        license_source="/usr/share/doc/ghost-soundfont/copyright",
        description="a soundfont nobody installed",
    )
    return Soundfont(**{**fields, **changes})


@pytest.fixture
def ghost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Soundfont:
    """A registered soundfont whose file is missing."""
    sf = _ghost(tmp_path)
    monkeypatch.setitem(soundfonts.SOUNDFONTS, sf.name, sf)
    return sf


def test_the_registry_lists_the_installed_soundfonts_in_rendering_order() -> None:
    assert list(soundfonts.SOUNDFONTS) == ["timgm6mb", "fluidr3_gm"]
    assert [sf.file_name for sf in soundfonts.DEFAULT_RENDER] == ["TimGM6mb.sf2", "FluidR3_GM.sf2"]
    assert DEFAULT_SOUNDFONTS == tuple(sf.path for sf in soundfonts.DEFAULT_RENDER)
    assert soundfonts.DEFAULT is TIM
    for sf in soundfonts.SOUNDFONTS.values():
        assert sf.is_installed() and sf.require() == sf.path
        # the licence is the one the package's copyright file states
        assert Path(sf.license_source).is_file(), sf.license_source
    assert soundfonts.apt_packages() == ["timgm6mb-soundfont", "fluid-soundfont-gm"]


def test_each_file_is_installed_by_its_package() -> None:
    """The package named is the one that ships the file (what set-up installs provides what rendering opens)."""
    for sf in soundfonts.SOUNDFONTS.values():
        listed = subprocess.run(["dpkg", "-L", sf.apt_package], capture_output=True, text=True, check=True)
        assert str(sf.path) in listed.stdout.splitlines(), (sf.name, sf.apt_package)


def test_lookups_by_name_file_name_and_path() -> None:
    assert soundfonts.get("timgm6mb") is TIM
    with pytest.raises(SoundfontError, match=r"unknown soundfont 'nope'; registered: timgm6mb, fluidr3_gm"):
        soundfonts.get("nope")
    assert soundfonts.by_file_name("TimGM6mb.sf2") is TIM and soundfonts.by_file_name("MyKit.sf2") is None
    assert soundfonts.by_path(str(TIM.path)) is TIM and soundfonts.by_path("/elsewhere/TimGM6mb.sf2") is None
    assert soundfonts.resolve("timgm6mb") == TIM.path
    assert soundfonts.resolve("/path/to/MyKit.sf2") == Path("/path/to/MyKit.sf2")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "Ghost Kit"}, "lower case"),
        ({"path": Path("GhostKit.sf2")}, "not an absolute path"),
        ({"path": Path("/x/GhostKit.sf3")}, "not an absolute path to a .sf2"),
        ({"apt_package": "Ghost Soundfont"}, "not a Debian package name"),
        ({"license": " "}, "license must be one non-empty line"),
        ({"description": "a | b"}, "description must be one non-empty line"),
        ({"license_source": "two\nlines"}, "license_source must be one non-empty line"),
    ],
)
def test_validation_names_the_entry_and_what_is_wrong(tmp_path: Path, change: dict, reason: str) -> None:
    bad = _ghost(tmp_path, **change)
    with pytest.raises(SoundfontError, match=f"entry {bad.name!r}: .*{reason}"):
        soundfonts.validate([TIM, bad])


def test_validation_refuses_duplicates_and_an_empty_registry(tmp_path: Path) -> None:
    with pytest.raises(SoundfontError, match="'timgm6mb': the name is registered twice"):
        soundfonts.validate([TIM, dataclasses.replace(TIM, path=tmp_path / "Other.sf2")])
    with pytest.raises(SoundfontError, match="file name TimGM6mb.sf2 is also 'timgm6mb'"):
        soundfonts.validate([TIM, _ghost(tmp_path, path=Path("/opt/TimGM6mb.sf2"))])
    with pytest.raises(SoundfontError, match="empty"):
        soundfonts.validate([])
    assert soundfonts.validate([TIM, _ghost(tmp_path)]) == {"timgm6mb": TIM, "ghost_kit": _ghost(tmp_path)}


def test_a_registered_soundfont_that_is_not_installed_is_named_with_its_file_and_package(ghost: Soundfont) -> None:
    expected = (
        f"soundfont 'ghost_kit' (a soundfont nobody installed) is not installed: {ghost.path} not found; "
        "install the Debian package ghost-soundfont"
    )
    with pytest.raises(SoundfontError) as err:
        ghost.require()
    assert expected in str(err.value)
    # rendering, the models' listening renders (through the renderer) and the CLI say the same
    with pytest.raises(SynthesisError) as err:
        Renderer(ghost.path)
    assert expected in str(err.value)
    with pytest.raises(render.RenderError) as err:
        render.render_partitions(["flam"], ghost.path.parent, soundfonts=[TIM.path, ghost.path], workers=1)
    assert expected in str(err.value) and str(TIM.path) not in str(err.value)
    # an unregistered file is named alone
    assert soundfonts.not_found_message("/x/MyKit.sf2") == "/x/MyKit.sf2: soundfont not found"


def test_cli_takes_a_registered_name_and_names_a_missing_one(
    ghost: Soundfont, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--rudiment", "flam", "--flac", "--out", str(tmp_path / "out"), "--model", str(tmp_path)]
    assert cli.main([*args, "--soundfont", "ghost_kit"]) == 2
    assert f"soundfont 'ghost_kit' (a soundfont nobody installed) is not installed: {ghost.path}" in (
        capsys.readouterr().err
    )
    assert cli._parser().parse_args(args).soundfont == "timgm6mb"  # the default, resolved to its file
    assert soundfonts.resolve(cli.DEFAULT_SOUNDFONT) == TIM.path
    # an installed name passes the soundfont check (the command then stops at the missing model)
    assert cli.main([*args, "--soundfont", "fluidr3_gm"]) == 2
    err = capsys.readouterr().err
    assert "no model.json" in err and "soundfont" not in err


def test_the_models_listening_renders_default_to_the_registry_default() -> None:
    from music_assets.defs.models.training import GenerationConfig  # noqa: PLC0415

    assert GenerationConfig().soundfont == str(soundfonts.DEFAULT.path)


def test_apt_packages_print_with_the_standard_library_only() -> None:
    """What set-up runs before .venv exists: no site-packages (-S), no PYTHONPATH (-E)."""
    out = subprocess.run(
        [sys.executable, "-E", "-S", "-m", "music_assets.audio.soundfonts", "--apt-packages"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines() == soundfonts.apt_packages()


def test_setup_installs_every_registered_soundfont_package(tmp_path: Path) -> None:
    """scripts/setup.sh on a machine where nothing is installed yet asks apt for the registry's packages."""
    root = tmp_path / "repo"
    for rel in ("scripts/setup.sh", "music_assets/__init__.py", "music_assets/audio/__init__.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, root / rel)
    # a registry with one more soundfont than the real one: set-up must follow the registry
    registry = (REPO_ROOT / "music_assets/audio/soundfonts.py").read_text()
    marker = "# The soundfont of the models' listening renders"
    assert marker in registry
    extra = (
        "SOUNDFONTS = validate([*SOUNDFONTS.values(), Soundfont('ghost_kit', SOUNDFONT_DIR / 'GhostKit.sf2', "
        "'ghost-soundfont', 'CC0-1.0', '/usr/share/doc/ghost-soundfont/copyright', 'a test entry')])\n"
    )
    (root / "music_assets/audio/soundfonts.py").write_text(registry.replace(marker, extra + marker, 1))
    # the venv and its install stamp exist, so set-up stops after apt
    for name in ("pyproject.toml", "requirements.lock"):
        (root / name).write_text("")
    (root / ".venv/bin").mkdir(parents=True)
    (root / ".venv/bin/python").symlink_to(sys.executable)
    (root / ".venv/.music_assets-installed").write_text(hashlib.sha256(b"").hexdigest() + "\n")
    # fake system tools: nothing is installed, apt-get records what it is asked for
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    tools = {
        "dpkg-query": "exit 1",
        "apt-get": f'echo "$@" >> {log}',
        "id": "echo 0",
    }
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable}
    subprocess.run(["bash", str(root / "scripts/setup.sh"), "run"], env=env, check=True, capture_output=True)
    install = next(line.split() for line in log.read_text().splitlines() if line.startswith("install"))
    assert [*soundfonts.apt_packages(), "ghost-soundfont"] == [p for p in install if "soundfont" in p]
