"""`roleplay bench load --drills N[,N...] [--backlog K]`: N drills at once in one process, as the
server runs them, each with its own live recognizer, answered by a scripted trainee in real time;
with K post-call analyses queued meanwhile on the SQLite server's worker thread (app.jobs).

Each drill runs the local drill's engine (`session.live.run_drill`) on `ScriptedStream`: a
stand-in for the sound card (and for the browser's stream) that delivers the microphone in real
time, block by block, and plays the caller by advancing the output clock; the trainee's espeak-ng
replies are placed on the microphone `pause` s after each caller line has finished playing. This is
the server side of a browser drill without the WebSocket between (the browser transport,
web/browser_call.py, was being built at the same time). Reply delay: the engine's own (end of
the trainee's speech -> the caller's first sample), as in `roleplay bench latency`.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.audio.devices import StreamStatus
from roleplay.bench.live import BENCH_REPLIES, BENCH_SCENARIO, GREETING, espeak, prepare_trainee
from roleplay.core.constants import RATE_HZ

BLOCK = 1024  # samples per microphone block (64 ms), as the sound card's
P95_TARGET_S = 2.0


class _Handle:
    def __init__(self, stream: ScriptedStream, start: int, end: int) -> None:
        self.stream, self.start_sample, self.end_sample = stream, start, end

    @property
    def played_until_sample(self) -> int:
        return min(self.stream.output_position_samples, self.end_sample, self.stream.cut_at)

    @property
    def done(self) -> bool:
        return self.played_until_sample >= min(self.end_sample, self.stream.cut_at)


class ScriptedStream:
    """The microphone in real time with a scripted trainee on it: the greeting after the ring, then
    one reply `pause_s` after each caller line ends (quiet noise in between)."""

    rate_hz = RATE_HZ
    restarts = 0
    reported_lag_samples = 0

    def __init__(self, replies: list[Audio], *, pause_s: float = 0.7, seed: int = 0) -> None:
        self.replies = list(replies)
        self.pause = int(pause_s * RATE_HZ)
        self.mic = np.zeros(0, np.float32)  # scheduled trainee speech, from sample mic_start
        self.mic_start = 0
        self.position = 0
        self.cut_at = 1 << 62
        self.caller_end: int | None = None  # the latest caller line's end (output samples)
        self.noise = np.random.default_rng(seed)
        self.began = 0.0
        self.status = StreamStatus(0, 0, 0, 0)

    @property
    def input_position_samples(self) -> int:
        return self.position

    @property
    def output_position_samples(self) -> int:
        return self.position

    def start(self) -> None:
        self.began = time.monotonic()

    def stop(self) -> None:
        pass

    def _say_next(self, at: int) -> None:
        if self.replies and at >= self.mic_start + len(self.mic):
            self.mic, self.mic_start = self.replies.pop(0).samples, at

    def read_input(self, *, timeout_s: float) -> np.ndarray:
        end = self.position + BLOCK
        time.sleep(max(0.0, self.began + end / RATE_HZ - time.monotonic()))
        if self.caller_end is not None and self.position >= self.caller_end + self.pause:
            self.caller_end = None
            self._say_next(self.position)
        block = (0.003 * self.noise.standard_normal(BLOCK)).astype(np.float32)
        lo, hi = max(self.position, self.mic_start), min(end, self.mic_start + len(self.mic))
        if hi > lo:
            block[lo - self.position:hi - self.position] += self.mic[lo - self.mic_start:hi - self.mic_start]
        self.position = end
        return block

    def play(self, audio: Audio, *, at_sample: int | None = None) -> _Handle:
        start = max(self.position, at_sample or 0)
        end = start + len(audio.samples)
        if len(audio.samples) > RATE_HZ:  # a caller line (the ring and the chirp are shorter or earlier)
            self.caller_end, self.cut_at = end, 1 << 62
        return _Handle(self, start, end)

    def stop_playback(self) -> None:
        self.cut_at = self.position
        if self.caller_end is not None:
            self.caller_end = self.position


@dataclass(frozen=True)
class LoadResult:
    drills: int
    backlog: int
    delays_s: tuple[float, ...]
    cpu_pct: float  # of all cores
    peak_rss_mb: float
    analyses_done: int

    @property
    def p50_s(self) -> float:
        return float(np.median(self.delays_s)) if self.delays_s else float("nan")

    @property
    def p95_s(self) -> float:
        return float(np.percentile(self.delays_s, 95)) if self.delays_s else float("nan")


def _one_drill(n: int, work: Path, delays: list[float], lines: int) -> None:
    from roleplay.app.analyse import load_transcriber
    from roleplay.session.live import DrillSettings, StatusSink, run_drill

    class Quiet(StatusSink):
        def show(self, **kwargs: Any) -> None:
            pass

        def say(self, text: str) -> None:
            pass

    replies = [espeak(GREETING)] + [espeak(r[0]) for r in BENCH_REPLIES]
    result = run_drill(scenario_id=BENCH_SCENARIO, trainee="bench", out_dir=work / f"drill-{n}",
                       transcriber=load_transcriber(None), status=Quiet(), stream=ScriptedStream(replies, seed=n),
                       settings=DrillSettings(max_caller_lines=lines, seed=n))
    delays.extend(d.total_s for d in result.reply_delays)


def run_load(drills: int, *, backlog: int, work: Path, example: Path | None, lines: int = 6) -> LoadResult:
    """N drills at once (threads, as the server), with `backlog` analyses queued meanwhile."""
    from roleplay.app.jobs import LocalQueue, wait_for

    done = 0
    queue = None
    if backlog:
        assert example is not None
        queue = LocalQueue(work / "history.sqlite3")
        tickets = [queue.enqueue(Path(shutil.copytree(example, work / f"queued-{drills}-{k}")), "nl")
                   for k in range(backlog)]
    delays: list[float] = []
    cpu0, wall0 = os.times(), time.monotonic()
    threads = [threading.Thread(target=_one_drill, args=(n, work / f"n{drills}-b{backlog}", delays, lines))
               for n in range(drills)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1, wall = os.times(), time.monotonic() - wall0
    if queue is not None:
        done = sum(queue.state(ticket) == "done" for ticket in tickets)
        for ticket in tickets:  # drained before the next run, which would otherwise share the CPU with them
            wait_for(queue, ticket)
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return LoadResult(drills, backlog, tuple(delays), round(100 * cpu_s / wall / (os.cpu_count() or 1), 1),
                      round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), done)


def run_load_bench(drill_counts: list[int], *, backlog: int = 0) -> int:
    """`roleplay bench load`: one line per N (and per backlog), then the largest N under the target."""
    from roleplay.app.example import write_example_call
    from roleplay.bench.machine import print_machine

    work = Path(tempfile.mkdtemp(prefix="roleplay-bench-load-"))
    os.environ.setdefault("XDG_DATA_HOME", str(work / "data"))
    prepare_trainee("bench")
    example = write_example_call(work / "example") if backlog else None
    print_machine()
    print(f"scenario {BENCH_SCENARIO}; each drill its own live recognizer; a scripted trainee answers "
          f"0.7 s after each caller line; target p95 < {P95_TARGET_S} s")
    best = 0
    for n in drill_counts:
        for b in ([0, backlog] if backlog else [0]):
            r = run_load(n, backlog=b, work=work, example=example)
            print(f"drills={n} backlog={b}: {len(r.delays_s)} replies, median {r.p50_s:.2f} s, p95 {r.p95_s:.2f} s, "
                  f"CPU {r.cpu_pct:.0f} % of {os.cpu_count()} cores, peak RSS {r.peak_rss_mb:.0f} MB"
                  + (f", {r.analyses_done}/{b} queued analyses done meanwhile" if b else ""), flush=True)
            if b == 0 and r.delays_s and r.p95_s < P95_TARGET_S:
                best = max(best, n)
    print(f"largest N with p95 < {P95_TARGET_S} s: {best}")
    return 0
