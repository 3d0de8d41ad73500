"""`roleplay bench web`: the browser app's figures with a realistic history (issue 13).

A history of CALLS calls by TRAINEES trainees (verdicts, figures, reviews, groups, real but short
call directories shared per trainee), a real `roleplay serve` process on a free loopback port, and:
- every page's median answer time over PAGE_REQUESTS requests, signed in as the role that opens it
  (target under 200 ms);
- the live page's update rate (server-sent events a second) during a real drill over the virtual
  PulseAudio devices (target at least 5);
- the server's memory (RSS) after start and after all the page requests, no call running
  (target under 100 MB).

It talks to the server over HTTP only (http.client), so it needs nothing of roleplay.web; the
seeding and the server helpers are shared with the browser tests (tests/test_web_e2e.py,
tests/test_web_a11y.py).
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import RoleplayError

CALLS = 1000
TRAINEES = 50
TRAINERS = 5  # one per group of ten trainees
PAGE_REQUESTS = 20
PAGE_TARGET_MS = 200.0
EVENTS_TARGET_PER_S = 5.0
IDLE_TARGET_MB = 100.0
PASSWORD = "bench-password"  # the seeded accounts' (a throw-away history)
SESSION_COOKIE = "roleplay_session"  # roleplay.web.auth's cookie names (the bench stays below web)
LOGIN_COOKIE = "roleplay_login"
RATE_HZ = 16000
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
MISSED_OUTCOMES = ("caller-hung-up", "time-limit")  # how a seeded call ends when it goes wrong


# --------------------------------------------------------------------------- the history


@dataclass(frozen=True)
class Seeded:
    """What `seed` made: the accounts (all with PASSWORD) and a call of the first trainee's."""

    db: Path
    admin: str
    trainers: tuple[str, ...]
    trainees: tuple[str, ...]
    groups: tuple[str, ...]
    scenario_id: str
    call_id: int  # the first trainee's newest call
    calls: int


def _analysis(trainee: str, call_key: str, scenario: str, language: str, outcome: str, skill: float,
              rng: random.Random) -> dict:
    """An analysis document as the pipeline writes it (the fields the pages and reports read); a
    trainee with more `skill` passes more items."""
    turns = []
    t = 0.2
    for index in range(8):
        speaker = "trainee" if index % 2 == 0 else "caller"
        length = rng.uniform(1.5, 4.0)
        text = ("Huisartsenpost, goedenavond, u spreekt met de assistente." if speaker == "trainee"
                else "Waar blijft de dokter nou? Ik bel al de derde keer!")
        turns.append({"index": index, "speaker": speaker, "start_s": round(t, 2), "end_s": round(t + length, 2),
                      "text": text, "phrases": [], "abuse": []})
        t += length + rng.uniform(0.3, 1.2)
    anger_start = round(rng.uniform(5.5, 8.0), 1)
    anger_end = round(max(0.5, anger_start - rng.uniform(0.0, 6.0) * skill), 1)
    advice = []
    for item in ADVICE_IDS:
        verdict = "pass" if rng.random() < 0.35 + 0.6 * skill else "fail"
        if item in ("warm-transfer", "address-behaviour") and rng.random() < 0.7:
            verdict = "not-applicable"
        every: dict[str, dict[str, float]] = {
            "slower-softer": {"rate_change_pct": round(rng.uniform(-20, 10), 1),
                              "loudness_change_db": round(rng.uniform(-6, 3), 1)},
            "breathe": {"pitch_change_st": round(rng.uniform(-2, 3), 2)},
            "no-interrupt": {"count": rng.randint(0, 3)},
            "let-vent": {"caller_share_pct": round(rng.uniform(40, 75), 1)},
            "silence": {"long_pauses": rng.randint(0, 2), "threshold_s": 3.0,
                        "max_latency_s": round(rng.uniform(0.4, 3.5), 2), "median_latency_s": 0.8},
            "greeting": {"time_to_answer_s": round(rng.uniform(0.3, 2.5), 2)},
            "no-discussion": {"count": rng.randint(0, 2)},
            "positive": {"positive": rng.randint(0, 3), "negative": rng.randint(0, 3)},
            "concrete": {"concrete": rng.randint(0, 2), "vague": rng.randint(0, 2)},
        }
        figures = every.get(item, {})
        advice.append({"id": item, "verdict": verdict, "figures": figures, "turns": [0],
                       "feedback": f"Wat we hoorden bij {item}."})
    return {
        "schema": "roleplay-analysis", "language": language, "duration_s": round(t, 2),
        "call": {"call_id": call_key, "scenario": scenario, "trainee": trainee, "outcome": outcome, "mode": "live",
                 "anger_start": anger_start, "anger_peak": min(10.0, anger_start + 1.0), "anger_end": anger_end},
        "turns": turns,
        "anger": [{"t_s": 0.0, "anger": anger_start}, {"t_s": round(t / 2, 2), "anger": anger_start + 0.5},
                  {"t_s": round(t, 2), "anger": anger_end}],
        "baseline": {"source": "calibration"}, "warnings": [], "advice": advice,
    }


def _call_dir(directory: Path, trainee: str, scenario: str) -> Path:
    """A short real call directory (both tracks, a call-start event): what a call's page and its
    audio read. Shared by a trainee's seeded calls: its size does not change what is measured."""
    import numpy as np

    from roleplay.recording.calldir import CallWriter

    t = np.arange(2 * RATE_HZ) / RATE_HZ
    with CallWriter(directory, rate_hz=RATE_HZ, meta={"trainee": trainee, "mode": "live", "scenario": scenario}) as w:
        w.append("caller", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        w.append("trainee", (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
        w.event("call-start", t_s=0.0, anger=6.5)
    return directory


def seed(db: Path, calls_root: Path, *, trainees: int = TRAINEES, calls: int = CALLS,
         trainers: int = TRAINERS, rng_seed: int = 1) -> Seeded:
    """A history as a post has it after a few months: `trainees` trainees in groups of ten, each
    group with its trainer, an admin, and `calls` calls spread over the trainees and the scenarios
    (a trainee improves over their calls), some with a trainer's review."""
    from roleplay.caller.scenario import list_scenarios
    from roleplay.history.accounts import Accounts
    from roleplay.history.store import History

    rng = random.Random(rng_seed)
    scenarios = [s for s in list_scenarios() if s.language == "nl"]
    trainee_names = tuple(f"trainee{n:02d}" for n in range(1, trainees + 1))
    trainer_names = tuple(f"trainer{n}" for n in range(1, trainers + 1))
    group_names = tuple(f"groep-{n}" for n in range(1, trainers + 1))
    with History(db) as history:
        acc = Accounts(history)
        acc.add_user("beheer", "admin", PASSWORD)
        for name in trainer_names:
            acc.add_user(name, "trainer", PASSWORD)
        for name in trainee_names:
            acc.add_user(name, "trainee", PASSWORD)
        for n, group in enumerate(group_names):
            acc.create_group(group)
            acc.set_group_trainer(group, trainer_names[n], member=True)
            for name in trainee_names[n::trainers]:
                acc.set_group_trainee(group, name, member=True)
        directories = {name: _call_dir(calls_root / name, name, scenarios[0].id) for name in trainee_names}
        per_trainee = dict.fromkeys(trainee_names, 0)
        start = time.time() - 120 * 86400
        newest: dict[str, int] = {}
        for n in range(calls):
            trainee = trainee_names[n % trainees]
            per_trainee[trainee] += 1
            skill = min(1.0, per_trainee[trainee] / (calls / trainees))
            scenario = scenarios[rng.randrange(len(scenarios))]
            hoped = scenario.ending.expected[0]
            outcome = hoped if rng.random() < 0.4 + 0.5 * skill else rng.choice(MISSED_OUTCOMES)
            data = _analysis(trainee, f"bench-{n:05d}", scenario.id, scenario.language, outcome, skill, rng)
            when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + n * 120 * 86400 / calls))
            call_id = history.record(data, directories[trainee], started_utc=when, trainee=trainee)
            newest[trainee] = call_id
            if rng.random() < 0.05:
                history.add_review(call_id, item="no-interrupt", verdict="pass", note="alleen een 'hm'",
                                   by=trainer_names[trainee_names.index(trainee) % trainers])
        first = trainee_names[0]
        (directories[first] / "analysis.json").write_text(
            json.dumps(_analysis(first, "bench-page", scenarios[0].id, "nl", "calmed", 0.8, rng)), encoding="utf-8")
    return Seeded(db=db, admin="beheer", trainers=trainer_names, trainees=trainee_names, groups=group_names,
                  scenario_id=scenarios[0].id, call_id=newest[first], calls=calls)


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Server:
    """A running `roleplay serve` process."""

    port: int
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def serve(db: Path, calls_dir: Path, *, env: dict[str, str] | None = None, log: Path | None = None,
          timeout_s: float = 60.0) -> Iterator[Server]:
    """`roleplay serve` in a child process on a free loopback port, until the block ends. Its output
    goes to `log` (else is dropped), so a long run never blocks on a full pipe."""
    port = free_port()
    out = open(log, "w") if log is not None else open(os.devnull, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "roleplay", "serve", "--port", str(port), "--db", str(db),
         "--calls-dir", str(calls_dir)],
        env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, text=True)
    server = Server(port, process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError):
                if Client(server.url).get("/login").status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RoleplayError(f"roleplay serve did not start (exit {process.poll()}); see {log or 'its output'}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]
    elapsed_ms: float


class Client:
    """One signed-in (or not) user over one kept-alive HTTP connection, with its cookies."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self._conn.connect()
            assert self._conn.sock is not None
            # as browsers do: without it, Nagle's algorithm and the delayed ACK add 40 ms to a request
            # on a kept-alive connection
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        began = time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more on a new one
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                text = response.read().decode("utf-8", errors="replace")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
        elapsed = 1000 * (time.perf_counter() - began)
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                cookie_value = rest.split(";", 1)[0]
                if cookie_value in ('""', "") or "Max-Age=0" in value:
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = cookie_value
        found = _CSRF.search(text)
        if found and self.cookies.get(SESSION_COOKIE):
            self.csrf = html.unescape(found.group(1))
        return Answer(response.status, text, {k.lower(): v for k, v in response.getheaders()}, elapsed)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str] | None = None, *, json_reply: bool = False) -> Answer:
        headers = {"X-CSRF-Token": self.csrf}
        if json_reply:
            headers["Accept"] = "application/json"
        return self.request("POST", path, {"csrf_token": self.csrf, **(form or {})}, headers)

    def sign_in(self, name: str, password: str = PASSWORD) -> Client:
        page = self.get("/login")
        token = _CSRF.search(page.body)
        if token is None:
            raise RoleplayError("the sign-in page has no form token")
        done = self.request("POST", "/login", {"csrf_token": html.unescape(token.group(1)), "name": name,
                                               "password": password, "next": "/", "lang": "nl"})
        if done.status != 303 or SESSION_COOKIE not in self.cookies:
            raise RoleplayError(f"signing in as {name} failed (HTTP {done.status})")
        self.get("/")  # picks up the session's form token
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --------------------------------------------------------------------------- the figures


def pages_by_role(seeded: Seeded) -> dict[str, list[str]]:
    """The pages each role opens (issue 13's list: each main page once, as its usual visitor)."""
    trainee, call, scenario = seeded.trainees[0], seeded.call_id, seeded.scenario_id
    return {
        "anonymous": ["/login"],
        "trainee": ["/", "/scenarios", f"/scenarios/{scenario}", "/calls", f"/calls/{call}",
                    f"/calls/{call}/report", "/progress", "/calibration", f"/call/{scenario}", "/forget",
                    "/settings", "/settings/devices"],
        "trainer": ["/", "/group", f"/trainees/{trainee}", f"/calls/{call}", "/scenarios/editor",
                    "/scenarios/import"],
        "admin": ["/", "/group", "/admin/users", "/admin/groups", "/admin/access-log", "/admin/settings"],
    }


@dataclass(frozen=True)
class PageTime:
    role: str
    path: str
    median_ms: float
    max_ms: float


def time_pages(server: Server, seeded: Seeded, *, requests: int = PAGE_REQUESTS) -> list[PageTime]:
    users = {"anonymous": None, "trainee": seeded.trainees[0], "trainer": seeded.trainers[0], "admin": seeded.admin}
    out = []
    for role, paths in pages_by_role(seeded).items():
        name = users[role]
        client = Client(server.url)
        if name is not None:
            client.sign_in(name)
        for path in paths:
            times = []
            for _ in range(requests):
                answer = client.get(path)
                if answer.status != 200:
                    raise RoleplayError(f"{path} as {role}: HTTP {answer.status}")
                times.append(answer.elapsed_ms)
            out.append(PageTime(role, path, statistics.median(times), max(times)))
        client.close()
    return out


@dataclass(frozen=True)
class EventRate:
    events: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def events(server: Server, client: Client) -> Iterator[dict]:
    """The updates of /call/events for `client`'s call or calibration, as the page's EventSource
    gets them, until the stream ends."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    conn.request("GET", "/call/events", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    response = conn.getresponse()
    try:
        while line := response.fp.readline():
            if line.startswith(b"data: "):
                yield json.loads(line[len(b"data: "):])
    finally:
        conn.close()


def read_events(server: Server, client: Client, *, seconds: float,
                on_in_call: Callable[[], object] | None = None) -> EventRate:
    """Count the updates of `client`'s running call for `seconds` from its first `in_call` one."""
    began: float | None = None
    count = 0
    for data in events(server, client):
        state = data["state"]
        if state in ("done", "failed", "idle", "busy"):
            raise RoleplayError(f"the call stopped early ({state})")
        if state != "in_call":
            continue
        now = time.monotonic()
        if began is None:
            began = now
            if on_in_call is not None:
                on_in_call()
            continue
        count += 1
        if now - began >= seconds:
            return EventRate(count, now - began)
    raise RoleplayError("the event stream ended before the call did")


def drill_event_rate(seeded: Seeded, calls_dir: Path, data_home: Path, *, seconds: float = 4.0,
                     log: Path | None = None) -> EventRate:
    """A real drill on its own server over the virtual PulseAudio devices (the scripted trainee
    greets the caller), its updates counted, then hung up; its analysis is left to finish."""
    from roleplay.audio.virtual import virtual_devices
    from roleplay.bench.live import GREETING, espeak, prepare_trainee

    trainee = seeded.trainees[0]
    os.environ["XDG_DATA_HOME"] = str(data_home)  # where the server finds the calibration
    prepare_trainee(trainee)
    greeting = espeak(GREETING)
    with virtual_devices() as vd, serve(seeded.db, calls_dir, env={**vd.env, "XDG_DATA_HOME": str(data_home)},
                                        log=log) as server:
        client = Client(server.url).sign_in(trainee)
        started = client.post(f"/call/{seeded.scenario_id}/start", json_reply=True)
        if started.status != 200:
            raise RoleplayError(f"the call did not start (HTTP {started.status}: {started.body[:200]})")
        try:
            return read_events(server, client, seconds=seconds,
                               on_in_call=lambda: vd.play_into_mic(greeting, delay_s=0.3))
        finally:
            client.post("/call/hangup", json_reply=True)
            for data in events(server, client):  # the analysis, so that the server stops cleanly
                if data["state"] not in ("in_call", "preparing", "analysing"):
                    break
            client.close()


def run_web_bench(*, calls: int = CALLS, trainees: int = TRAINEES, drill: bool = True) -> int:
    """The figures, printed with the machine; a key=value last line. 1 when a target is missed."""
    from roleplay.bench.machine import print_machine

    work = Path(tempfile.mkdtemp(prefix="roleplay-bench-web-"))
    began = time.perf_counter()
    seeded = seed(work / "history.sqlite3", work / "seeded-calls", trainees=trainees, calls=calls)
    seed_s = time.perf_counter() - began
    print_machine()
    print(f"history: {seeded.calls} calls of {len(seeded.trainees)} trainees in {len(seeded.groups)} groups "
          f"(seeded in {seed_s:.1f} s), server and files in {work}")
    with serve(seeded.db, work / "calls", env={"XDG_DATA_HOME": str(work / "data")}, log=work / "server.log") as server:
        time.sleep(1.0)
        rss_start = rss_mb(server.process.pid)
        times = time_pages(server, seeded)
        time.sleep(1.0)
        rss_after = rss_mb(server.process.pid)
    print(f"pages (median of {PAGE_REQUESTS} requests each, over loopback; target under {PAGE_TARGET_MS:.0f} ms):")
    for p in times:
        flag = "" if p.median_ms < PAGE_TARGET_MS else "  <- over target"
        print(f"  {p.role:<9} {p.path:<32} median {p.median_ms:7.1f} ms  max {p.max_ms:7.1f} ms{flag}")
    slowest = max(times, key=lambda p: p.median_ms)
    print(f"server memory (RSS), no call running: {rss_start:.0f} MB after start, {rss_after:.0f} MB after "
          f"the page requests; target under {IDLE_TARGET_MB:.0f} MB")
    rate: EventRate | None = None
    if drill:
        try:
            rate = drill_event_rate(seeded, work / "calls", work / "data", log=work / "server-drill.log")
            print(f"live page: {rate.events} updates in {rate.seconds:.1f} s of a real drill = {rate.per_s:.1f} a "
                  f"second; target at least {EVENTS_TARGET_PER_S:.0f}")
        except RoleplayError as exc:
            print(f"live page: not measured ({exc})")
    ok = (slowest.median_ms < PAGE_TARGET_MS and max(rss_start, rss_after) < IDLE_TARGET_MB
          and (rate is None or rate.per_s >= EVENTS_TARGET_PER_S))
    figures = {"calls": seeded.calls, "trainees": len(seeded.trainees), "pages": len(times),
               "slowest_page_ms": round(slowest.median_ms, 1), "slowest_page": slowest.path,
               "median_page_ms": round(statistics.median(p.median_ms for p in times), 1),
               "rss_start_mb": round(rss_start), "rss_after_pages_mb": round(rss_after),
               "events_per_s": round(rate.per_s, 1) if rate else "nan", "ok": int(ok)}
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0 if ok else 1
