"""The wheel alone carries roleplay: built from a copy of the sources, installed into a fresh
virtual environment, it runs a demo from a directory outside the checkout, and no file of the
checkout is opened on the way (an audit hook records every open)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model]

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "roleplay", "scenarios", "voices")

# Runs the installed console entry point's main() with an audit hook that notes every file opened
# (and every module imported) from the checkout, apart from the borrowed dependencies in its
# .venv; the list is written when the demo exits.
_RUN_DEMO = """
import json, os, sys
repo, borrowed, report, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
seen = []
def hook(event, args):
    if event in ("open", "import") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(repo + os.sep) and not path.startswith(borrowed + os.sep):
            seen.append(event + " " + path)
sys.addaudithook(hook)
import roleplay
from roleplay.cli.main import main
try:
    code = main(argv)
finally:
    with open(report, "w") as f:
        json.dump({"roleplay": roleplay.__file__, "checkout": sorted(set(seen))}, f)
sys.exit(code)
"""


def _wheel(tmp_path: Path) -> Path:
    """Built from a copy of the sources, so the build leaves nothing in the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    out = tmp_path / "dist"
    # no build isolation: offline, with the setuptools the test extra installs
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", "-w", str(out), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = out.glob("roleplay-*.whl")
    return wheel


def test_wheel_carries_every_data_file(tmp_path):
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "roleplay"
    expected = {
        path.relative_to(REPO).as_posix()
        for pattern in ("*.yaml", "*.json")
        for path in package.rglob(pattern)  # rglob does not follow the data/ links
    }
    for sub in ("scenarios", "voices"):  # roleplay/data/NAME -> NAME/
        expected |= {f"roleplay/data/{sub}/{p.name}" for p in (REPO / sub).iterdir()
                     if p.suffix in (".yaml", ".json")}
    expected |= {"roleplay/py.typed"}
    assert expected - names == set()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert len([n for n in names if n.startswith("roleplay/data/scenarios/") and n.endswith(".yaml")]) >= 8


def test_installed_wheel_alone_runs_a_demo(tmp_path):
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    # The dependencies (faster-whisper, the model parts, ...) are big: borrow them from this
    # environment's site-packages as a plain path entry. Its .pth files are not run from there, so
    # the editable install's import hook (the one way this venv reaches the checkout) stays out.
    here = Path(sysconfig.get_paths()["purelib"])
    there = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip())
    (there / "borrowed-dependencies.pth").write_text(f"{here}\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("ROLEPLAY_")}
    env["ROLEPLAY_DB"] = str(tmp_path / "history.sqlite3")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    entry = subprocess.run([str(venv / "bin" / "roleplay"), "--help"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert entry.returncode == 0, entry.stderr  # the console script was installed

    report = tmp_path / "seen.json"
    done = subprocess.run([str(python), "-c", _RUN_DEMO, str(REPO), sys.prefix, str(report), "demo", "--out", "call"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    seen = json.loads(report.read_text())
    assert Path(seen["roleplay"]).is_relative_to(venv), seen["roleplay"]
    assert seen["checkout"] == [], seen["checkout"][:20]
    call = elsewhere / "call"
    assert (call / "report.html").is_file(), sorted(p.name for p in call.iterdir())
    assert (call / "analysis.json").is_file(), sorted(p.name for p in call.iterdir())
