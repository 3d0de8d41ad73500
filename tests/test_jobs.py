"""Post-call analyses as jobs (roleplay/app/jobs.py): the worker thread of a SQLite server, and
procrastinate with `roleplay worker` processes on a real PostgreSQL server (started as in
test_history_postgres.py), where a worker killed mid-analysis leaves its job to another."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_history_postgres import server  # noqa: F401  (the fixture: a throw-away PostgreSQL server)

from roleplay.app import jobs
from roleplay.history.store import History
from roleplay.web import live


def _row(call_dir: Path) -> dict:
    return {"schema": "roleplay-analysis", "call": {"trainee": "anna", "scenario": "nl-visite-derde-keer"},
            "advice": []}


# --------------------------------------------------------------------------- the SQLite path: a thread


def test_local_queue_runs_jobs_one_at_a_time_in_order(tmp_path):
    ran: list[str] = []
    gate = threading.Event()

    def work(call_dir: Path, language: str, db) -> int:
        gate.wait(10)
        ran.append(call_dir.name)
        if call_dir.name == "bad":
            raise RuntimeError("no speech")
        return 1

    queue = jobs.LocalQueue(tmp_path / "h.sqlite3", work=work)
    tickets = [queue.enqueue(tmp_path / name, "nl") for name in ("a", "bad", "c")]
    time.sleep(0.2)
    assert [queue.state(t) for t in tickets] == ["running", "queued", "queued"]
    gate.set()
    assert [jobs.wait_for(queue, t, every_s=0.02, timeout_s=10) for t in tickets] == ["done", "failed", "done"]
    assert ran == ["a", "bad", "c"]


def test_after_call_shows_being_checked_until_the_job_is_done(tmp_path, monkeypatch):
    """The web drill's step after the call: the job is `analysing` (the page: "being checked")
    while the queue works, then done with the call's history row; a failed job says so."""
    db = tmp_path / "h.sqlite3"
    release = threading.Event()

    def work(call_dir: Path, language: str, db_) -> int:
        release.wait(10)
        if call_dir.name == "broken":
            raise RuntimeError("no speech")
        with History(db_) as history:
            return history.record(_row(call_dir), call_dir)

    queue = jobs.LocalQueue(db, work=work)
    monkeypatch.setattr(jobs, "analysis_queue", lambda db_, calls_dir: queue)
    results = {}
    for name in ("call-1", "broken"):
        (tmp_path / name).mkdir()
        job = live.Job("call", "anna", "nl-visite-derde-keer")
        live.after_call(job, tmp_path / name, "nl", db=db, calls_dir=tmp_path)
        results[name] = job
    time.sleep(0.3)
    assert {j.status().phase for j in results.values()} == {"analysing"}
    release.set()
    deadline = time.monotonic() + 10
    while any(j.running for j in results.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with History(db) as history:
        expected = history.call_id_for(call_dir=tmp_path / "call-1")
    assert results["call-1"].status().phase == "done" and results["call-1"].status().call_id == expected
    assert results["broken"].status().phase == "failed" and results["broken"].status().problem == "analysis"


def test_job_names_only_directories_in_the_calls_dir(tmp_path):
    assert jobs.call_name(tmp_path, tmp_path / "c1") == "c1"
    with pytest.raises(jobs.JobError):
        jobs.call_name(tmp_path, tmp_path.parent / "elsewhere")
    for bad in ("", "..", "../x", "a/b"):
        with pytest.raises(jobs.JobError):
            jobs.call_path(tmp_path, bad)


@pytest.fixture(scope="module")
def example_call(tmp_path_factory) -> Path:
    from roleplay.app.example import write_example_call

    return write_example_call(tmp_path_factory.mktemp("example") / "call")


@pytest.mark.slow
def test_local_queue_analyses_a_real_call_once(example_call, tmp_path, transcriber, monkeypatch):
    """The SQLite path with the real analysis: report, analysis and one history row; the same job
    again finds the call complete and leaves it as it is."""
    monkeypatch.setattr(jobs, "_transcriber", lambda: transcriber)
    call = Path(shutil.copytree(example_call, tmp_path / "calls" / "c1"))
    db = tmp_path / "h.sqlite3"
    queue = jobs.LocalQueue(db)
    assert jobs.wait_for(queue, queue.enqueue(call, "nl"), timeout_s=300) == "done"
    report = call / "report.html"
    first = report.stat().st_mtime_ns
    assert jobs.wait_for(queue, queue.enqueue(call, "nl"), timeout_s=60) == "done"
    assert report.stat().st_mtime_ns == first
    with History(db) as history:
        assert len(history.calls()) == 1


# --------------------------------------------------------------------------- PostgreSQL: procrastinate


def _database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.format(db=name)


def _worker(url: str, calls: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "roleplay", "worker", "--db", url, "--calls-dir", str(calls), "--stalled-after", "3"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)


def _wait_line(log: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{log.name} never said {text!r}:\n{log.read_text()}"
        time.sleep(0.1)


@pytest.mark.slow
def test_postgres_queue_state_and_one_job_per_waiting_call(server, tmp_path):  # noqa: F811
    url = _database(server, "roleplay_jobs_state")
    (tmp_path / "c1").mkdir()
    queue = jobs.PostgresQueue(url, tmp_path)
    jobs.ensure_schema(url)  # a second time is fine
    ticket = queue.enqueue(tmp_path / "c1", "nl")
    assert queue.state(ticket) == "queued"
    procrastinate = pytest.importorskip("procrastinate")
    with pytest.raises(procrastinate.exceptions.AlreadyEnqueued):
        queue.enqueue(tmp_path / "c1", "nl")


@pytest.mark.slow
@pytest.mark.model
def test_killed_worker_leaves_its_job_to_another_and_the_report_appears_once(server, example_call, tmp_path):  # noqa: F811
    url = _database(server, "roleplay_jobs_kill")
    calls = tmp_path / "calls"
    call = Path(shutil.copytree(example_call, calls / "c1"))
    queue = jobs.PostgresQueue(url, calls)
    ticket = queue.enqueue(call, "nl")
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    first = _worker(url, calls, logs[0])
    second = None
    try:
        _wait_line(logs[0], "analysing c1", 60)  # the first worker took it (the second is not there yet)
        second = _worker(url, calls, logs[1])
        _wait_line(logs[1], "waiting for calls", 60)
        time.sleep(3.0)  # mid-analysis: the model is loaded and working
        assert not (call / "report.html").exists() and queue.state(ticket) == "running"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert jobs.wait_for(queue, ticket, timeout_s=300) == "done"
        text = logs[1].read_text()
        assert "put back in the queue" in text and "c1 done" in text
        assert "c1 done" not in logs[0].read_text()
        (job,) = queue.app.job_manager.list_jobs(id=int(ticket.job_id))
        assert job.attempts == 2  # the killed one (counted when it was put back) and the one that finished
        with History(url) as history:
            rows = history.calls()
        assert len(rows) == 1 and rows[0].call_dir == str(call.resolve())
        assert (call / "report.html").is_file() and (call / "analysis.json").is_file()
        assert not list(call.glob(".*.tmp*"))  # no half-written file left by the killed worker
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
        queue.app.close()
