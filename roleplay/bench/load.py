"""`roleplay bench load --drills N[,N...]`: N simulated browsers calling one real `roleplay serve`
at once, as the trainees of a post would (issue 14).

The bench starts `roleplay serve` on a free loopback port with a throw-away SQLite history, calls
directory and data directory (one trainee account per browser, each with a stored voice check),
signs each browser in over HTTP and starts its call as the page does (`/call/<scenario>/browser/start`,
then the WebSocket with the session cookie, the page's Origin and CSRF token). A `SimulatedBrowser`
speaks the browser page's protocol (web/static/browser_call.js and its AudioWorklet): after the
server's `microphone` it sends numbered 16 kHz PCM frames of 20 ms in real time, low noise with the
scripted espeak-ng trainee in it (the greeting once the phone has rung, then one reply PAUSE_S after
each caller line has finished playing on its clock), takes the caller's audio chunks and `stop`
messages, and hangs up after the last reply has been answered.

Reply delay, per answered trainee line: from the end of the trainee's speech (when the frame with
its last loud sample was sent) to the arrival of the first caller audio after it ("received", the
issue's figure); "heard" adds the wait until the browser's clock reaches that sample (the server
sends output LEAD_S ahead of the microphone). CPU and memory are the server's process tree's,
sampled every SAMPLE_EVERY_S. Each N starts with no analysis waiting; then one more browser calls
right after the largest N, while that round's analyses wait on the server's queue, to show that
queued analyses wait instead of slowing a drill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roleplay.audio.browserstream import FRAME_SAMPLES
from roleplay.bench.live import BENCH_REPLIES, BENCH_SCENARIO, GREETING, espeak, prepare_trainee
from roleplay.bench.web import Client, Server, serve
from roleplay.core.constants import RATE_HZ

P95_TARGET_S = 2.0
PAUSE_S = 0.7  # the trainee answers this long after the caller's line has finished playing
GREETING_AFTER_S = 0.5  # after the ring
LINES = 4  # trainee replies after the greeting; the call is hung up once the last is answered
HEARD_LEVEL = 0.02  # output louder than this is the caller (the ring is 0.2, silence 0)
NOISE_LEVEL = 0.002  # the microphone between the trainee's lines
NO_REPLY_S = 30.0  # a line the caller has not answered by then stays unanswered, and the trainee goes on
CALL_TIMEOUT_S = 300.0  # a browser gives up on a call that takes longer (the bench stops by itself)
DRAIN_TIMEOUT_S = 600.0  # waiting for the queued analyses before the next N
SAMPLE_EVERY_S = 0.5
PASSWORD = "bench-load-password"  # the throw-away accounts'
LATENCY = {"base_s": 0.01, "output_s": 0.02, "input_s": 0.01}  # what a browser's audio context reports


# --------------------------------------------------------------------------- one browser


@dataclass
class Ear:
    """What the browser heard of the caller, and the reply delays of the trainee's lines. Sample
    indices are the browser's clock (frame seq x FRAME_SAMPLES); times are time.monotonic()."""

    began_s: float = 0.0  # the clock's sample 0
    last_loud: int = -1  # the latest caller sample known to be audible (after barge-in cuts)
    waiting_since: tuple[int, float] | None = None  # (sample, time) a trainee line ended, no reply yet
    received_s: list[float] = field(default_factory=list)
    heard_s: list[float] = field(default_factory=list)

    def output(self, start: int, samples: np.ndarray, now_s: float) -> None:
        loud = np.flatnonzero(np.abs(samples) > HEARD_LEVEL)
        if not len(loud):
            return
        self.last_loud = max(self.last_loud, start + int(loud[-1]))
        if self.waiting_since is None:
            return
        end_sample, end_s = self.waiting_since
        after = loud[start + loud >= end_sample]
        if len(after):
            first = start + int(after[0])
            self.received_s.append(now_s - end_s)
            self.heard_s.append(max(now_s, self.began_s + first / RATE_HZ) - end_s)
            self.waiting_since = None

    def stopped(self, from_sample: int) -> None:
        """Barge-in: the browser drops its output from `from_sample` on."""
        self.last_loud = min(self.last_loud, from_sample - 1)

    def spoke(self, end_sample: int, end_s: float) -> None:
        self.waiting_since = (end_sample, end_s)

    def still_waiting(self, now_s: float) -> bool:
        """A trainee line is waiting for its reply; after NO_REPLY_S it counts as unanswered."""
        if self.waiting_since is not None and now_s - self.waiting_since[1] > NO_REPLY_S:
            self.waiting_since = None
        return self.waiting_since is not None

    def quiet_since(self, now_sample: int) -> float:
        """Seconds since the caller's last audible sample played (negative: still to come)."""
        return (now_sample - self.last_loud) / RATE_HZ


@dataclass(frozen=True)
class CallFigures:
    received_s: tuple[float, ...]
    heard_s: tuple[float, ...]
    lines_said: int
    state: str  # the call's last state as the socket said it (analysing / done / failed), or what went wrong


class SimulatedBrowser:
    """The browser page with a scripted trainee at the microphone (see the module docstring)."""

    def __init__(self, server: Server, client: Client, *, lines: int = LINES, seed: int = 0) -> None:
        self.server, self.client, self.seed = server, client, seed
        self.speech = [espeak(GREETING)] + [espeak(text) for text, _, _ in BENCH_REPLIES[:lines]]
        self.ear = Ear()
        self.state = "preparing"
        self.in_call_s: float | None = None
        self.microphone = asyncio.Event()
        self.finished = asyncio.Event()

    async def call(self) -> CallFigures:
        import websockets

        answer = await asyncio.to_thread(self.client.post, f"/call/{BENCH_SCENARIO}/browser/start", json_reply=True)
        if answer.status != 200:
            return CallFigures((), (), 0, f"start refused (HTTP {answer.status})")
        path = json.loads(answer.body)["socket"]
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        said = 0
        try:
            async with websockets.connect(f"ws://127.0.0.1:{self.server.port}{path}", max_size=None,
                                          additional_headers={"Origin": self.server.url, "Cookie": cookie}) as ws:
                await ws.send(json.dumps({"type": "start", "csrf": self.client.csrf, "latency": LATENCY}))
                listener = asyncio.create_task(self._listen(ws))
                try:
                    said = await asyncio.wait_for(self._speak(ws), CALL_TIMEOUT_S)
                    await asyncio.wait_for(self.finished.wait(), 30.0)
                finally:
                    listener.cancel()
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self.state = f"{self.state}, then {type(exc).__name__}"
        return CallFigures(tuple(self.ear.received_s), tuple(self.ear.heard_s), said, self.state)

    async def _listen(self, ws: object) -> None:
        async for message in ws:  # type: ignore[attr-defined]
            now = time.monotonic()
            if isinstance(message, bytes):
                (start,) = struct.unpack_from("<I", message)
                self.ear.output(start, np.frombuffer(message, "<i2", offset=4) / 32768.0, now)
                continue
            data = json.loads(message)
            if data["type"] == "microphone":
                self.microphone.set()
            elif data["type"] == "stop":
                self.ear.stopped(int(data["from"]))
            elif data["type"] == "status":
                self.state = data["state"]
                if self.state == "in_call" and self.in_call_s is None:
                    self.in_call_s = now
                if self.state in ("analysing", "done", "failed"):
                    self.finished.set()
        self.finished.set()

    async def _speak(self, ws: object) -> int:
        """Frames in real time until the last line is answered (then hang up) or the call ends;
        the number of lines said."""
        await self.microphone.wait()
        rng = np.random.default_rng(self.seed)
        began = self.ear.began_s = time.monotonic()
        queue, said, seq = list(self.speech), 0, 0
        line, line_at, hung_up = np.zeros(0, np.float32), 0, False
        while not self.finished.is_set():
            at = seq * FRAME_SAMPLES
            speaking = at < line_at + len(line)
            if not speaking and not hung_up and self._turn_now(at, said):
                if queue:
                    line, line_at, said = queue.pop(0).samples, at, said + 1
                    speaking = True
                else:  # the last line was answered: hang up
                    await ws.send(json.dumps({"type": "hangup"}))  # type: ignore[attr-defined]
                    hung_up = True
            frame = (NOISE_LEVEL * rng.standard_normal(FRAME_SAMPLES)).astype(np.float32)
            if speaking:
                part = line[at - line_at: at - line_at + FRAME_SAMPLES]
                frame[: len(part)] += part
            pcm = np.clip(np.round(frame * 32767), -32768, 32767).astype("<i2")
            await ws.send(struct.pack("<I", seq) + pcm.tobytes())  # type: ignore[attr-defined]
            seq += 1
            if speaking and at + FRAME_SAMPLES >= line_at + len(line):  # the line's last loud sample went out
                self.ear.spoke(line_at + len(line), time.monotonic())
            await asyncio.sleep(max(0.0, began + seq * FRAME_SAMPLES / RATE_HZ - time.monotonic()))
        return said

    def _turn_now(self, at: int, said: int) -> bool:
        """The greeting once the phone has rung; a reply PAUSE_S after the caller's line has played."""
        if said == 0:
            return (self.in_call_s is not None and time.monotonic() - self.in_call_s > 0.4
                    and self.ear.quiet_since(at) >= GREETING_AFTER_S)
        return not self.ear.still_waiting(time.monotonic()) and self.ear.quiet_since(at) >= PAUSE_S


# --------------------------------------------------------------------------- the server's figures


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (the speech synthesis runs in child processes)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _cpu_s(pid: int) -> float:
    """CPU time of the process tree so far, with its waited-for children's."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:13] + (fields[13:15] if p == pid else []))
    return total / tick


def _rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class Meter:
    """The server tree's CPU share (of all cores) and peak memory while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb, self.cpu_pct = pid, 0.0, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak_mb = max(self.peak_mb, _rss_mb(self.pid))

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Meter]:
        thread = threading.Thread(target=self._sample, daemon=True)
        cpu0, wall0 = _cpu_s(self.pid), time.monotonic()
        self.peak_mb = _rss_mb(self.pid)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.cpu_pct = 100 * (_cpu_s(self.pid) - cpu0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)


def waiting_analyses(calls_dir: Path, server_log: Path | None = None) -> int:
    """Calls recorded but not yet checked (no report.html), less those whose check failed (the
    server logs it): the server's queue, seen from outside."""
    log = server_log.read_text(errors="replace") if server_log is not None and server_log.is_file() else ""
    return sum(1 for meta in calls_dir.glob("*/meta.json")
               if not (meta.parent / "report.html").is_file() and f"analysis of {meta.parent} failed" not in log)


def drain(calls_dir: Path, server_log: Path, *, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
    """Wait until the queue is empty (at most `timeout_s`); the number still waiting."""
    deadline = time.monotonic() + timeout_s
    while (waiting := waiting_analyses(calls_dir, server_log)) and time.monotonic() < deadline:
        time.sleep(1.0)
    return waiting


# --------------------------------------------------------------------------- a round


@dataclass(frozen=True)
class LoadResult:
    """One round: `drills` browsers at once, `queued` analyses waiting when it began."""

    drills: int
    queued: int
    calls: tuple[CallFigures, ...]
    cpu_pct: float  # the server's, of all cores
    peak_rss_mb: float
    checked_meanwhile: int  # analyses of earlier calls finished during the round

    @property
    def delays_s(self) -> tuple[float, ...]:
        return tuple(d for c in self.calls for d in c.received_s)

    @property
    def p50_s(self) -> float:
        return float(np.median(self.delays_s)) if self.delays_s else float("nan")

    @property
    def p95_s(self) -> float:
        return float(np.percentile(self.delays_s, 95)) if self.delays_s else float("nan")

    @property
    def heard_p95_s(self) -> float:
        heard = [d for c in self.calls for d in c.heard_s]
        return float(np.percentile(heard, 95)) if heard else float("nan")

    @property
    def unanswered(self) -> int:
        return sum(c.lines_said - len(c.received_s) for c in self.calls)


def run_round(server: Server, clients: list[Client], calls_dir: Path, *, lines: int) -> LoadResult:
    waiting = {m.parent for m in calls_dir.glob("*/meta.json") if not (m.parent / "report.html").is_file()}

    async def together() -> list[CallFigures]:
        browsers = [SimulatedBrowser(server, c, lines=lines, seed=k) for k, c in enumerate(clients)]
        return list(await asyncio.gather(*(b.call() for b in browsers)))

    with Meter(server.process.pid).measuring() as meter:
        calls = asyncio.run(together())
    checked = sum(1 for d in waiting if (d / "report.html").is_file())
    return LoadResult(len(clients), len(waiting), tuple(calls), round(meter.cpu_pct, 1), round(meter.peak_mb, 1),
                      checked)


def _row(r: LoadResult) -> str:
    states = ", ".join(sorted({c.state for c in r.calls}))
    return (f"drills={r.drills} queued={r.queued}: {len(r.delays_s)} replies ({r.unanswered} unanswered), "
            f"median {r.p50_s:.2f} s, p95 {r.p95_s:.2f} s (heard p95 {r.heard_p95_s:.2f} s); server CPU "
            f"{r.cpu_pct:.0f} % of {os.cpu_count()} cores, peak RSS {r.peak_rss_mb:.0f} MB; "
            f"{r.checked_meanwhile} earlier analyses finished meanwhile; calls ended {states}")


def _accounts(db: Path, names: list[str]) -> None:
    from roleplay.history.accounts import Accounts
    from roleplay.history.store import History

    with History(db) as history:
        accounts = Accounts(history)
        for name in names:
            accounts.add_user(name, "trainee", PASSWORD)


def run_load_bench(drill_counts: list[int], *, lines: int = LINES, work: Path | None = None) -> int:
    """`roleplay bench load`: a row per N and one with a queue, the largest N under the target,
    and a key=value line."""
    from roleplay.bench.machine import print_machine

    work = Path(work or tempfile.mkdtemp(prefix="roleplay-bench-load-"))
    os.environ["XDG_DATA_HOME"] = str(work / "data")  # the server's too: the trainees' voice checks
    names = [f"bench-{k + 1}" for k in range(max(drill_counts))]
    for name in names:
        prepare_trainee(name)
    db, calls_dir = work / "history.sqlite3", work / "calls"
    _accounts(db, names)
    print_machine()
    print(f"{max(drill_counts)} simulated browsers over WebSockets against roleplay serve (SQLite: the "
          f"analyses on its one worker thread at nice 10); scenario {BENCH_SCENARIO}, greeting and {lines} "
          f"replies each, {PAUSE_S} s after each caller line; reply delay = end of trainee speech -> first "
          f"caller audio received; target p95 < {P95_TARGET_S} s", flush=True)
    results: list[LoadResult] = []
    with serve(db, calls_dir, log=work / "server.log") as server:
        clients = [Client(server.url).sign_in(name, PASSWORD) for name in names]
        for n in drill_counts:
            left = drain(calls_dir, work / "server.log")
            if left:
                print(f"({left} analyses still waiting after {DRAIN_TIMEOUT_S:.0f} s)")
            results.append(run_round(server, clients[:n], calls_dir, lines=lines))
            print(_row(results[-1]), flush=True)
        queued = run_round(server, clients[:1], calls_dir, lines=lines)  # right after the largest N
        print(_row(queued), flush=True)
        for c in clients:
            c.close()
    fresh = next((r for r in results if r.drills == 1), None)
    best = max((r.drills for r in results if r.delays_s and r.p95_s < P95_TARGET_S), default=0)
    print(f"largest N with p95 < {P95_TARGET_S} s: {best}")
    if fresh is not None:
        print(f"one drill with {queued.queued} analyses queued: p95 {queued.p95_s:.2f} s against {fresh.p95_s:.2f} s "
              f"with none; {queued.checked_meanwhile} of them finished during it")
    figures = {"drills": ",".join(str(r.drills) for r in results),
               "p50_s": ",".join(f"{r.p50_s:.2f}" for r in results),
               "p95_s": ",".join(f"{r.p95_s:.2f}" for r in results),
               "heard_p95_s": ",".join(f"{r.heard_p95_s:.2f}" for r in results),
               "cpu_pct": ",".join(f"{r.cpu_pct:.0f}" for r in results),
               "peak_rss_mb": ",".join(f"{r.peak_rss_mb:.0f}" for r in results),
               "largest_n_p95_under_2s": best, "queued": queued.queued, "queued_p95_s": f"{queued.p95_s:.2f}",
               "queued_checked_meanwhile": queued.checked_meanwhile,
               "unanswered": sum(r.unanswered for r in [*results, queued])}
    print(" ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    return 0
