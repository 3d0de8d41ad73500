"""Debian's chromium driven by Playwright (no browser is downloaded), shared by the browser tests
(test_web_e2e.py, test_web_a11y.py). Import as `from browser import ...`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # the app's sound plays on this machine's devices, not the browser's
                 "--mute-audio"]
NPM_DIR = Path(__file__).resolve().parent / ".npm"  # scripts/setup.sh --test installs axe-core here
AXE_JS = NPM_DIR / "node_modules" / "axe-core" / "axe.min.js"


def launch(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in(page, url: str, name: str, password: str) -> None:
    """Through the sign-in form, as a person does; lands on the home page."""
    page.goto(f"{url}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{url}/")


def sign_out(page) -> None:
    page.click("form.logout button")
    page.wait_for_url("**/login*")


def axe_source() -> str:
    """axe-core's script (npm's axe-core@4, installed by setup.sh --test; once more here if npm is
    there and the folder was removed). Skips only when npm is truly absent."""
    if not AXE_JS.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("axe-core needs npm (Debian: apt-get install npm; scripts/setup.sh --test)")
        subprocess.run([npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "axe-core@4"],
                       check=True, capture_output=True, timeout=300)
    return AXE_JS.read_text(encoding="utf-8")
