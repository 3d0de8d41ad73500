"""`roleplay users` and `roleplay serve` as commands: accounts from the command line, one-line
errors, and a real server answering over HTTP."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import assert_one_line

from roleplay.cli.main import main

ROLEPLAY = [sys.executable, "-m", "roleplay"]


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ROLEPLAY, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_users_add_and_list(tmp_path):
    db = str(tmp_path / "h.sqlite3")
    added = _run(["users", "add", "ada", "--role", "admin", "--password-stdin", "--db", db], "long-enough\n")
    assert added.returncode == 0, added.stderr
    assert "admin ada added" in added.stdout
    listed = _run(["users", "list", "--db", db])
    assert listed.returncode == 0 and listed.stdout.split()[:3] == ["ada", "admin", "nl"]


@pytest.mark.parametrize(
    ("args", "stdin", "fragment"),
    [
        (["users", "add", "ada", "--role", "admin", "--password-stdin"], "short\n", "at least 8 characters"),
        (["users", "add", "ada", "--role", "admin"], "", "--password-stdin"),  # no terminal to ask on
        (["users", "add", "ada", "--role", "boss"], "", "invalid choice"),
    ],
)
def test_users_errors_are_one_line(tmp_path, args, stdin, fragment):
    done = _run([*args, "--db", str(tmp_path / "h.sqlite3")], stdin)
    assert done.returncode != 0
    assert_one_line(done.stderr, fragment)


def test_a_taken_name_is_one_line(tmp_path, monkeypatch, capsys):
    db = str(tmp_path / "h.sqlite3")
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough\nlong-enough\n"))
    assert main(["users", "add", "anna", "--role", "trainee", "--password-stdin", "--db", db]) == 0
    assert main(["users", "add", "anna", "--role", "trainee", "--password-stdin", "--db", db]) == 2
    assert_one_line(capsys.readouterr().err, "already a user called 'anna'")


def test_serve_refuses_half_an_https_setup(tmp_path):
    done = _run(["serve", "--certfile", "cert.pem", "--db", str(tmp_path / "h.sqlite3")])
    assert done.returncode == 2
    assert_one_line(done.stderr, "both --certfile and --keyfile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_a_real_server_answers_and_idles_small(tmp_path):
    port = _free_port()
    env = {**os.environ, "ROLEPLAY_DB": str(tmp_path / "h.sqlite3")}
    proc = subprocess.Popen([*ROLEPLAY, "serve", "--port", str(port), "--calls-dir", str(tmp_path / "calls")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
                    assert page.status == 200 and "Aanmelden" in page.read().decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        assert _rss_mb(proc.pid) < 100  # the budget for an idle server
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out
    assert "Traceback" not in err
