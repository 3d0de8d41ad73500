"""`roleplay bench load` (roleplay/bench/load.py): simulated browsers against a real `roleplay serve`.

Fast: how a browser measures the reply delay from the caller's audio chunks, and the server
meter. Slow (model): the whole harness with one and two browsers and short calls, the queued
round included, ending in its key=value line."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from roleplay.bench import load
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
    assert int(figures["queued"]) >= 1 and math.isfinite(float(figures["queued_p95_s"])), out
    assert "drills=1 queued=0" in out and "drills=2 queued=0" in out
    calls = [d for d in (tmp_path / "calls").iterdir() if (d / "meta.json").is_file()]
    assert len(calls) == 4  # 1 + 2 + the queued round's one, each its own directory
