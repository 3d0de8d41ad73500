"""The same history on a real PostgreSQL server (Debian's `postgresql` package), started by the test
in a temporary directory on a Unix socket only, and stopped afterwards."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from roleplay.history.store import MIGRATIONS, SCHEMA_VERSION, History, _pg_ddl, record_call
from roleplay.report.readiness import evaluate, load_rules

psycopg = pytest.importorskip("psycopg")
BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if (p / "initdb").is_file()), None
)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def server():
    if BIN is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian package postgresql)")
    # not under pytest's tmp dir: as root that is 0700, and the server runs as the postgres user
    root = Path(tempfile.mkdtemp(prefix="roleplay-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = 54000 + os.getpid() % 1000
    subprocess.run(
        _as_postgres(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        url = f"postgresql://postgres@/postgres?host={sock}&port={port}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE roleplay_test")
            conn.execute("CREATE DATABASE roleplay_v1")
        yield f"postgresql://postgres@/{{db}}?host={sock}&port={port}"
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def _analysis(trainee: str, call_id: str, no_interrupt: str = "pass") -> dict:
    return {
        "schema": "roleplay-analysis",
        "language": "nl",
        "duration_s": 42.0,
        "source": {"id": call_id},
        "call": {"call_id": call_id, "scenario": "nl-visite-derde-keer", "trainee": trainee, "outcome": "calmed"},
        "anger": [],
        "advice": [
            {"id": i, "verdict": v, "figures": {}}
            for i, v in (("no-interrupt", no_interrupt), ("slower-softer", "pass"))
        ],
    }


def _writer(url: str, worker: int) -> None:
    with History(url) as h:
        for n in range(25):
            h.record(_analysis(f"p{worker}", f"{worker}-{n}"), None, started_utc=f"2026-11-{1 + n % 28:02d}T08:00:00")


def test_postgres_history_records_reviews_and_decides_readiness(server):
    url = server.format(db="roleplay_test")
    for day in range(1, 6):
        record_call(_analysis("anna", f"a{day}", "fail" if day == 3 else "pass"), None, url)
    with History(url) as h:
        assert h.dialect == "postgresql" and h.schema_version() == SCHEMA_VERSION
        rows = h.calls(trainee="anna")
        assert len(rows) == 5 and rows[0].intensity == "realistic" and rows[0].outcome_expected is True
        h.add_review(h.call_id_for(call_key="id:a3"), item="no-interrupt", verdict="pass", note="backchannel", by="t")
        h.set_group("avond", ["anna"])
        h.set_group("avond", ["anna"])  # twice is fine
        assert h.group("avond") == ["anna"]
        rows = h.calls(trainees=h.group("avond"))
    rules = load_rules()
    visit = evaluate("anna", rows, rules).requirements[0]
    assert visit.met and [i.passes for i in visit.items] == [4, 4, 4]


def test_postgres_several_processes_write_at_once(server):
    url = server.format(db="roleplay_test")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(url, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with History(url) as h:
        assert sum(len(h.calls(trainee=f"p{w}")) for w in range(3)) == 75


def test_postgres_migration_from_v1(server):
    url = server.format(db="roleplay_v1")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in MIGRATIONS[1][0].split(";"):
            if statement.strip():
                conn.execute(_pg_ddl(statement))
        conn.execute("CREATE TABLE roleplay_schema (version INTEGER NOT NULL, migrated_utc TEXT NOT NULL)")
        conn.execute("INSERT INTO roleplay_schema VALUES (1, 'then')")
        conn.execute(
            "INSERT INTO calls (call_key, trainee, scenario, started_utc, recorded_utc, outcome) "
            "VALUES ('id:old', 'bram', 'nl-scheldende-beller', '2026-10-01', '2026-10-01', 'calmed')"
        )
    with History(url) as h:
        assert h.schema_version() == SCHEMA_VERSION
        (row,) = h.calls()
        assert row.trainee == "bram" and row.intensity == "severe" and row.outcome_expected is True


def test_history_command_takes_a_postgres_url(server, capsys):
    from roleplay.cli.main import main

    assert main(["history", "--trainee", "anna", "--db", server.format(db="roleplay_test")]) == 0
    assert "nl-visite-derde-keer" in capsys.readouterr().out
