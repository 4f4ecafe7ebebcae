#!/usr/bin/env bash
# Idempotent set-up: Debian/Ubuntu system packages (only when missing), a
# virtual environment in .venv, and the package in editable mode.
#
#   scripts/setup.sh run    what `make run` needs
#   scripts/setup.sh test   the above plus what the test suite needs
#
# Re-running is cheap: apt-get is only called for missing packages, and pip
# only when pyproject.toml or requirements.lock changed since the last install.
set -euo pipefail

profile="${1:-run}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

# The soundfonts' packages come from their registry (music_assets/audio/soundfonts.py,
# standard library only, so the system Python reads it before .venv exists).
mapfile -t soundfont_pkgs < <("$python" -E -S -m music_assets.audio.soundfonts --apt-packages)
[ "${#soundfont_pkgs[@]}" -gt 0 ] || { echo "setup: no soundfont packages in the registry" >&2; exit 1; }

# FluidSynth + the General MIDI soundfonts for rendering; libsndfile for
# soundfile; the FFmpeg 5 shared libraries that torchcodec (the `datasets`
# Audio decoder) links against.
run_pkgs=(libfluidsynth3 "${soundfont_pkgs[@]}" libsndfile1
          libavcodec59 libavformat59 libavutil57 libswresample4 libswscale6
          libavdevice59 libavfilter8)
# Tests also start a real PostgreSQL server and a Redis broker (the Celery
# cluster test) and drive Debian's Chromium.
test_pkgs=(postgresql redis-server chromium chromium-driver)

pkgs=("${run_pkgs[@]}")
[ "$profile" = "test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "setup: cannot install system packages without root. Please run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi

stamp=".venv/.music_assets-installed"
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing the package and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"
  echo "$want" > "$stamp"
fi
