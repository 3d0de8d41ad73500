"""No network at run time: a whole demo call and an analysis run in a network namespace without
interfaces (`unshare --net`: not even loopback is up), and an audit hook in every Python process of
the run records any attempt to resolve a name or open an internet socket. Both must stay silent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

# Loaded by every Python process of the run (PYTHONPATH): logs name lookups and internet sockets.
AUDIT = '''
import os, socket, sys

_LOG = os.environ["ROLEPLAY_NET_LOG"]


def _note(what):
    with open(_LOG, "a") as f:
        f.write(f"{os.getpid()} {what}\\n")


def _hook(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        _note(f"{event} {args[0]!r}")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"):
        sock = args[0]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            _note(f"{event} {args[1:]!r}")


sys.addaudithook(_hook)
'''


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """Run a command with no network and the audit hook; returns (run, log path)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here ({probe.stderr.strip()}): needs root or user namespaces")
    root = tmp_path_factory.mktemp("offline")
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(AUDIT)
    log = root / "network.log"
    env = {**os.environ, "PYTHONPATH": str(root / "hook"), "ROLEPLAY_NET_LOG": str(log),
           "ROLEPLAY_DB": str(root / "history.sqlite3")}

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "--net", sys.executable, *args], env=env, cwd=root,
                              capture_output=True, text=True, timeout=timeout)

    return run, log, root


def test_the_namespace_really_has_no_network(offline):
    run, log, _root = offline
    r = run("-c", "import socket\n"
                  "for addr in [('1.1.1.1', 80), ('127.0.0.1', 9)]:\n"
                  "    s = socket.socket(); s.settimeout(3)\n"
                  "    print(s.connect_ex(addr))\n")
    assert r.returncode == 0
    assert all(int(code) != 0 for code in r.stdout.split()), r.stdout  # unreachable, even loopback
    assert "socket.connect" in log.read_text()  # and the hook sees such attempts
    log.unlink()


@pytest.mark.model
def test_a_demo_call_and_its_analysis_need_no_network(offline):
    run, log, root = offline
    demo = run("-m", "roleplay", "demo", "--out", "call", "--seed", "3")
    assert demo.returncode == 0, demo.stderr
    assert (root / "call" / "report.html").stat().st_size > 1000
    analysis = run("-m", "roleplay", "analyse", "call", "--json", "again.json", "--quiet")
    assert analysis.returncode == 0, analysis.stderr
    assert json.loads((root / "again.json").read_text())["turns"]
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"network attempted:\n{attempts}"
