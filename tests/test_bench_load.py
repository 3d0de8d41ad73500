"""`roleplay bench load` (roleplay/bench/load.py): simulated browsers against a real `roleplay serve`.

Fast: how a browser measures the reply delay from the caller's audio chunks, and the server meter.
Slow (real time, no model): two browsers over real HTTP and WebSockets against the app under
uvicorn with a stand-in caller (a tone 0.3 s after the trainee stops) and a stand-in check on the
queue. Slow (model): the whole harness with one and two browsers and short calls against
`roleplay serve`, the queued round included, ending in its key=value line."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from roleplay.bench import load
from roleplay.bench.web import Client, Server, free_port
from roleplay.core.constants import RATE_HZ


def test_the_delay_runs_from_the_end_of_speech_to_the_first_caller_audio_after_it():
    ear = load.Ear(began_s=100.0)
    ear.output(0, np.full(800, 0.25), now_s=100.0)  # the ring, before anyone spoke: no delay
    assert ear.last_loud == 799 and not ear.received_s
    ear.spoke(RATE_HZ * 2, end_s=102.0)
    ear.output(RATE_HZ * 2, np.zeros(1600), now_s=102.3)  # silence is not a reply
    chunk = np.zeros(2400)
    chunk[1200:] = 0.3  # the caller starts 0.075 s into this chunk, at 2.675 s on the clock
    ear.output(RATE_HZ * 2 + 10000, chunk, now_s=102.5)
    assert ear.received_s == [pytest.approx(0.5)]
    # heard when the browser's clock reaches it (2.7 s), after it came (2.5 s)
    assert ear.heard_s == [pytest.approx(100.0 + (RATE_HZ * 2 + 10000 + 1200) / RATE_HZ - 102.0)]
    assert ear.waiting_since is None and ear.last_loud == RATE_HZ * 2 + 12399
    ear.output(RATE_HZ * 3, np.full(100, 0.3), now_s=103.0)  # more of the same line: no second delay
    assert len(ear.received_s) == 1


def test_barge_in_cuts_what_the_browser_will_play_and_an_unanswered_line_is_given_up():
    ear = load.Ear()
    ear.output(0, np.full(RATE_HZ * 3, 0.3), now_s=0.0)
    ear.stopped(RATE_HZ)
    assert ear.quiet_since(RATE_HZ * 2) == pytest.approx(1.0, abs=1e-3)
    ear.spoke(RATE_HZ * 2, end_s=10.0)
    assert ear.still_waiting(10.0 + load.NO_REPLY_S - 1)
    assert not ear.still_waiting(10.0 + load.NO_REPLY_S + 1) and ear.waiting_since is None


def test_the_meter_reads_a_process_trees_cpu_and_memory():
    assert load._rss_mb(os.getpid()) > 10
    before = load._cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert load._cpu_s(os.getpid()) > before


@pytest.mark.slow
@pytest.mark.model
def test_the_bench_calls_a_real_server_with_one_and_two_browsers(tmp_path, capsys):
    assert load.run_load_bench([1, 2], lines=1, work=tmp_path) == 0
    out = capsys.readouterr().out
    figures = dict(part.split("=", 1) for part in out.strip().splitlines()[-1].split())
    assert figures["drills"] == "1,2"
    p95 = [float(v) for v in figures["p95_s"].split(",")]
    assert all(math.isfinite(v) and v > 0 for v in p95), out  # the figures are the lead's: a quiet machine
    assert all(float(v) > 0 for v in figures["cpu_pct"].split(",")), out
    assert all(float(v) > 100 for v in figures["peak_rss_mb"].split(",")), out  # a recognizer per drill
    assert int(figures["unanswered"]) <= 1, out
    # the queued round: the two-browser round's analyses were waiting when it began
    # (seen once, on a machine at load 29: the queued round's call ended without the trainee's greeting)
    assert int(figures["queued"]) >= 1 and math.isfinite(float(figures["queued_p95_s"])), _explain(tmp_path, out)
    assert "drills=1 queued=0" in out and "drills=2 queued=0" in out
    calls = [d for d in (tmp_path / "calls").iterdir() if (d / "meta.json").is_file()]
    assert len(calls) == 4  # 1 + 2 + the queued round's one, each its own directory


def _explain(work: Path, out: str) -> str:
    """The bench's output, the server's log and each call's events without the level lines."""
    parts = [out, (work / "server.log").read_text(errors="replace")[-4000:]]
    for events in sorted(work.glob("calls/*/events.jsonl")):
        parts.append(f"{events.parent.name}:\n" + "\n".join(
            line[:200] for line in events.read_text().splitlines() if '"level"' not in line))
    return "\n".join(parts)


def stand_in_drill(call, plan) -> None:
    """The browser call's engine replaced by a caller that rings, then plays a 1 s tone 0.3 s after
    each stretch of trainee speech, until the trainee hangs up; the call then goes to the queue."""
    from roleplay.audio.clip import Audio
    from roleplay.web.browser_call import new_call_directory
    from roleplay.web.live import after_call

    calls_dir, db, trainee = plan
    stream, job = call.stream, call.job
    stream.start()
    stream.play(Audio(np.full(RATE_HZ // 2, 0.2, np.float32), RATE_HZ))  # the ring
    job.show(t_s=0.0, who="listening", level_dbfs=-60.0, anger=5.0)
    speech = quiet = 0
    while not job.hang_up.is_set():
        block = stream.read_input(timeout_s=1.0)
        if block is None:
            continue
        if np.sqrt(np.mean(block ** 2)) > 0.01:
            speech, quiet = speech + len(block), 0
        elif speech:
            quiet += len(block)
            if quiet >= 0.3 * RATE_HZ:
                stream.play(Audio(np.full(RATE_HZ, 0.3, np.float32), RATE_HZ))
                speech = 0
    directory = new_call_directory(calls_dir, f"call-{trainee}")
    (directory / "meta.json").write_text("{}")
    after_call(job, directory, "nl", db=db, calls_dir=calls_dir)


@pytest.mark.slow  # real time: two short calls of espeak speech (about 40 s), but no model
def test_two_browsers_over_real_sockets_measure_replies_and_see_the_queue(tmp_path, monkeypatch):
    import uvicorn

    from roleplay.app import jobs
    from roleplay.history.store import History
    from roleplay.web import browser_call, server
    from roleplay.web.settings import WebSettings

    db, calls_dir = tmp_path / "history.sqlite3", tmp_path / "calls"
    names = ["bench-1", "bench-2"]
    load._accounts(db, names)
    release = threading.Event()

    def check(call_dir: Path, language: str, db_) -> int:  # a stand-in analysis, held until released
        release.wait(30)
        (call_dir / "report.html").write_text("report")
        with History(db_) as history:
            return history.record({"schema": "roleplay-analysis", "advice": [], "call": {
                "trainee": call_dir.name.removeprefix("call-"), "scenario": "x"}}, call_dir)

    queue = jobs.LocalQueue(db, work=check)
    monkeypatch.setattr(jobs, "analysis_queue", lambda db_, calls_dir_: queue)
    app = server.create_app(WebSettings(db=db, calls_dir=calls_dir))
    browser_call.browser_calls(app).run = stand_in_drill
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not uv.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        site = Server(port, SimpleNamespace(pid=os.getpid()))  # the meter reads this process
        clients = [Client(site.url).sign_in(name, load.PASSWORD) for name in names]
        first = load.run_round(site, clients, calls_dir, lines=1)
        second = load.run_round(site, clients[:1], calls_dir, lines=1)  # the first round's checks still wait
        release.set()
        for c in clients:
            c.close()
    finally:
        release.set()
        uv.should_exit = True
        thread.join(10)
    for result in (first, second):
        assert [c.lines_said for c in result.calls] == [2] * result.drills  # the greeting and one reply
        assert result.unanswered == 0 and {c.state for c in result.calls} <= {"analysing", "done"}, result
        # the stand-in answers 0.3 s (+ a block) after the speech: what travels adds little on loopback
        assert all(0.25 < d < 1.5 for d in result.delays_s), result.delays_s
        assert all(r <= h + 1e-9 for c in result.calls for r, h in zip(c.received_s, c.heard_s, strict=True))
        assert result.cpu_pct > 0 and result.peak_rss_mb > 50
    assert first.queued == 0 and second.queued == 2 and second.checked_meanwhile == 0
    deadline = time.monotonic() + 20
    while load.waiting_analyses(calls_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert load.waiting_analyses(calls_dir) == 0
