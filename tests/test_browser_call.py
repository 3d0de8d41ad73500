"""A call with the browser as the phone: the stream fed by numbered frames
(roleplay/audio/browserstream.py) and the WebSocket endpoint (roleplay/web/browser_call.py).

Fast: frames placed by sequence number (late or missing ones), the chirp finding a simulated
browser's round trip, barge-in cutting the browser's output, and every refusal of the socket
(no session, another origin, someone else's call, a second connection, no CSRF token, a frame that
is not one) while another call runs. Slow (model): the real drill over the socket with espeak
speech as the microphone, cut off mid-call: an `aborted` call, analysed and in the history."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import history_with_accounts
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from roleplay.audio.browserstream import FRAME_BYTES, FRAME_SAMPLES, BrowserStream, FrameError, parse_frame
from roleplay.audio.clip import Audio
from roleplay.audio.devices import chirp, measure_lag
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import RoleplayError
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.web import auth, browser_call, server
from roleplay.web.settings import WebSettings

SCENARIO = "nl-visite-derde-keer"
ORIGIN = "http://testserver"


def frame_bytes(seq: int, samples: np.ndarray) -> bytes:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    return struct.pack("<I", seq) + pcm.tobytes()


def frames_of(samples: np.ndarray) -> list[np.ndarray]:
    n = len(samples) // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(n)]


def read_all(stream: BrowserStream) -> np.ndarray:
    blocks = []
    while (block := stream.read_input(timeout_s=0.05)) is not None:
        blocks.append(block)
    return np.concatenate(blocks)


# --------------------------------------------------------------------------- the stream


def test_frames_are_placed_by_sequence_number_and_missing_ones_are_silence():
    rng = np.random.default_rng(1)
    frames = [rng.uniform(-0.5, 0.5, FRAME_SAMPLES).astype(np.float32) for _ in range(5)]
    stream = BrowserStream()
    for seq in (0, 1, 3):  # 2 never comes in time
        stream.feed(*parse_frame(frame_bytes(seq, frames[seq])))
    stream.start()
    assert stream.feed(*parse_frame(frame_bytes(2, frames[2]))) is None  # too late: its place is silence
    stream.feed(*parse_frame(frame_bytes(4, frames[4])))
    track = read_all(stream)
    assert len(track) == 5 * FRAME_SAMPLES
    for seq in (0, 1, 3, 4):
        np.testing.assert_allclose(track[seq * FRAME_SAMPLES:(seq + 1) * FRAME_SAMPLES], frames[seq], atol=1 / 16000)
    assert not track[2 * FRAME_SAMPLES:3 * FRAME_SAMPLES].any()
    assert stream.transport.missing_samples == FRAME_SAMPLES and stream.transport.dropped_frames == 1


@pytest.mark.parametrize("data", [b"", b"\0" * (FRAME_BYTES - 1), b"\0" * (FRAME_BYTES + 2), b"x" * 10])
def test_a_frame_of_the_wrong_size_is_refused(data):
    with pytest.raises(FrameError):
        parse_frame(data)


def test_a_frame_far_ahead_is_refused_and_the_end_fails_the_reader():
    stream = BrowserStream()
    stream.feed(0, np.zeros(FRAME_SAMPLES, np.float32))
    with pytest.raises(FrameError):
        stream.feed(10_000_000, np.zeros(FRAME_SAMPLES, np.float32))
    stream.start()
    stream.end("the connection to the browser was lost")
    assert stream.read_input(timeout_s=0.1) is not None  # what came before the end is still read
    with pytest.raises(RoleplayError, match="lost"):
        stream.read_input(timeout_s=0.1)


class SimulatedBrowser:
    """The worklet's clock in a thread: plays the server's output at its sample index and hears it
    `echo_samples` later at half the level (a laptop's speaker and microphone), in real time."""

    def __init__(self, stream: BrowserStream, echo_samples: int, *, speed: float = 4.0) -> None:
        self.stream, self.echo, self.speed = stream, echo_samples, speed
        self.out = np.zeros(RATE_HZ * 60, np.float32)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        rng = np.random.default_rng(2)
        seq = 0
        while not self.stopped.is_set() and (seq + 1) * FRAME_SAMPLES < len(self.out):
            a = seq * FRAME_SAMPLES
            heard = 0.5 * self.out[max(0, a - self.echo):a - self.echo + FRAME_SAMPLES] if a >= self.echo else \
                np.zeros(FRAME_SAMPLES, np.float32)
            mic = heard + rng.normal(0, 0.002, FRAME_SAMPLES).astype(np.float32)
            chunk = self.stream.feed(seq, mic)
            if chunk is not None:
                self.out[chunk.start:chunk.start + len(chunk.samples)] = chunk.samples
            for control in self.stream.controls():
                if control["type"] == "stop":  # ("microphone" at the start: it is already open)
                    self.out[int(control["from"]):] = 0.0  # type: ignore[call-overload]
            seq += 1
            time.sleep(FRAME_SAMPLES / RATE_HZ / self.speed)


def test_the_chirp_finds_the_browsers_round_trip():
    stream = BrowserStream()
    browser = SimulatedBrowser(stream, echo_samples=2437)
    browser.thread.start()
    try:
        stream.start()
        lag = measure_lag(stream)
    finally:
        browser.stopped.set()
    assert lag.lag_samples == 2437 and lag.confidence > 0.9 and lag.spread_ms == 0.0
    assert abs(lag.gain - 0.5) < 0.05


def test_barge_in_stops_the_browsers_output_where_the_caller_track_is_cut():
    stream = BrowserStream()
    browser = SimulatedBrowser(stream, echo_samples=0)
    browser.thread.start()
    try:
        stream.start()
        tone = Audio(np.full(RATE_HZ * 3, 0.25, np.float32), RATE_HZ)
        handle = stream.play(tone)
        time.sleep(0.3)  # 1.2 s of the browser's clock at 4x
        stream.stop_playback()
        cut = handle.played_until_sample
        time.sleep(0.3)
    finally:
        browser.stopped.set()
    assert handle.start_sample < cut < handle.end_sample and handle.done
    played = browser.out[handle.start_sample:handle.end_sample]
    assert (played[: cut - handle.start_sample] == 0.25).all()  # what the caller track keeps was played
    assert not played[cut - handle.start_sample:].any()  # and nothing after it


def test_the_chirp_is_loud_enough_to_be_found_through_pcm16():
    probe = chirp().samples
    pcm = parse_frame(frame_bytes(0, probe[:FRAME_SAMPLES]))[1]
    np.testing.assert_allclose(pcm, probe[:FRAME_SAMPLES], atol=2 / 32768)


# --------------------------------------------------------------------------- the socket


USERS = {"anna": "trainee", "bert": "trainee"}


@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory) -> Path:
    return history_with_accounts(tmp_path_factory.mktemp("browser-call") / "history.sqlite3", USERS)


@pytest.fixture
def db(prepared_db, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return Path(shutil.copy(prepared_db, tmp_path / "history.sqlite3"))


class Site:
    def __init__(self, db: Path, tmp_path: Path, run=None) -> None:
        self.db = db
        self.app = server.create_app(WebSettings(db=db, calls_dir=tmp_path / "calls"))
        self.calls = browser_call.browser_calls(self.app)
        if run is not None:
            self.calls.run = run

    def client(self, name: str | None) -> tuple[TestClient, str]:
        client = TestClient(self.app, follow_redirects=False)
        if name is None:
            return client, ""
        with History(self.db) as history:
            acc = Accounts(history)
            user = acc.user(name)
            assert user is not None
            token, session = acc.start_session(user)
        client.cookies.set(auth.SESSION_COOKIE, token)
        return client, session.csrf_token

    def start(self, client: TestClient, csrf: str) -> str:
        response = client.post(f"/call/{SCENARIO}/browser/start", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 200, response.text
        return str(response.json()["socket"])


def echo_run(call, plan) -> int | None:
    """A stand-in for the drill: reads the stream until the connection ends, counting samples."""
    stream = call.stream
    stream.start()
    call.samples = 0
    try:
        while True:
            block = stream.read_input(timeout_s=5.0)
            if block is None:
                return None
            call.samples += len(block)
    except RoleplayError:
        return None


def start_message(csrf: str) -> dict:
    return {"type": "start", "csrf": csrf, "latency": {"base_s": 0.01, "output_s": 0.02, "input_s": 0.01}}


def refused(client: TestClient, path: str, **headers: str) -> int:
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(path, headers=headers) as ws:
        ws.receive_text()
    return caught.value.code


def test_the_socket_refuses_whoever_is_not_the_calls_trainee_and_bad_frames(db, tmp_path):
    site = Site(db, tmp_path, run=echo_run)
    anna, anna_csrf = site.client("anna")
    bert, bert_csrf = site.client("bert")
    nobody, _ = site.client(None)
    path = site.start(anna, anna_csrf)
    silence = np.zeros(FRAME_SAMPLES, np.float32)
    with anna.websocket_connect(path, headers={"origin": ORIGIN}) as ws:
        ws.send_json(start_message(anna_csrf))
        for seq in range(50):
            ws.send_bytes(frame_bytes(seq, silence))
        # while anna's call runs: no session, another site, bert on anna's call, a second connection
        assert refused(nobody, path, origin=ORIGIN) == browser_call.CLOSE_POLICY
        assert refused(anna, path, origin="http://evil.example") == browser_call.CLOSE_POLICY
        assert refused(anna, path) == browser_call.CLOSE_POLICY  # no Origin at all
        assert refused(bert, path, origin=ORIGIN) == browser_call.CLOSE_POLICY
        assert refused(anna, path, origin=ORIGIN) == browser_call.CLOSE_POLICY  # one connection per call
        assert refused(anna, "/call/browser/no-such-job/socket", origin=ORIGIN) == browser_call.CLOSE_POLICY
        # bert's own call: a wrong CSRF token, then (a new call) a frame that is not one
        with bert.websocket_connect(site.start(bert, bert_csrf), headers={"origin": ORIGIN}) as other:
            other.send_json(start_message(anna_csrf))
            with pytest.raises(WebSocketDisconnect) as caught:
                other.receive_text()
            assert caught.value.code == browser_call.CLOSE_POLICY
        with bert.websocket_connect(site.start(bert, bert_csrf), headers={"origin": ORIGIN}) as other:
            other.send_json(start_message(bert_csrf))
            other.send_bytes(b"\0" * 17)
            message = other.receive()
            while message["type"] != "websocket.close":  # a status may come first
                message = other.receive()
            assert message["code"] == browser_call.CLOSE_INVALID
        # anna's call went on untouched: more frames, its own output back
        for seq in range(50, 100):
            ws.send_bytes(frame_bytes(seq, silence))
        got = ws.receive()
        assert got.get("bytes") is not None or got.get("text") is not None
        call = next(c for c in site.calls.calls.values() if c.job.owner == "anna")
        deadline = time.monotonic() + 5
        while getattr(call, "samples", 0) < 100 * FRAME_SAMPLES and time.monotonic() < deadline:
            time.sleep(0.02)
        assert call.samples == 100 * FRAME_SAMPLES
        assert call.stream.transport.missing_samples == 0


def test_the_call_page_offers_both_ways_and_defaults_to_the_browser_away_from_the_server(db, tmp_path):
    site = Site(db, tmp_path)
    anna, _ = site.client("anna")
    page = anna.get(f"/call/{SCENARIO}/browser")
    assert page.status_code == 200
    assert "browser_call_worklet.js" in page.text and "?audio=server" in page.text
    assert "echo" in page.text.lower()  # the microphone settings are said on the page
    local = anna.get(f"/call/{SCENARIO}")  # TestClient: the server itself
    assert local.status_code == 200 and f"/call/{SCENARIO}/browser" in local.text
    remote = TestClient(site.app, follow_redirects=False, client=("192.0.2.7", 50000))
    remote.cookies = anna.cookies
    moved = remote.get(f"/call/{SCENARIO}")
    assert moved.status_code == 303 and moved.headers["location"] == f"/call/{SCENARIO}/browser"
    assert remote.get(f"/call/{SCENARIO}?audio=server").status_code == 200


# --------------------------------------------------------------------------- the real drill, cut off


class PacedMicrophone:
    """A headset in a browser that loses its connection: numbered frames in real time over the
    socket, low noise until `say` puts speech in; the caller's audio is received and dropped."""

    def __init__(self, ws) -> None:
        self.ws, self.seq, self.speech = ws, 0, np.zeros(0, np.float32)
        self.rng = np.random.default_rng(3)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def say(self, audio: Audio) -> None:
        self.speech = audio.samples.astype(np.float32)

    def run(self) -> None:
        began = time.monotonic()
        while not self.stop.is_set():
            frame = self.rng.normal(0, 0.001, FRAME_SAMPLES).astype(np.float32)
            if len(self.speech):
                part, self.speech = self.speech[:FRAME_SAMPLES], self.speech[FRAME_SAMPLES:]
                frame[: len(part)] += part
            self.ws.send_bytes(frame_bytes(self.seq, frame))
            self.seq += 1
            time.sleep(max(0.0, began + self.seq * FRAME_SAMPLES / RATE_HZ - time.monotonic()))


def _events(calls_dir: Path) -> str:
    found = sorted(calls_dir.glob("*/events.jsonl")) if calls_dir.is_dir() else []
    return found[0].read_text() if found else ""


def _wait(predicate, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.model
def test_a_dropped_connection_leaves_an_aborted_call_analysed_and_reported(db, tmp_path):
    from roleplay.audio.clip import save_wav
    from roleplay.bench.live import CALIBRATION_TEXT, GREETING, espeak
    from roleplay.recording.calldir import read_meta
    from roleplay.session.live import calibration_path

    calibration_path("anna").parent.mkdir(parents=True)
    save_wav(calibration_path("anna"), espeak(CALIBRATION_TEXT))
    site = Site(db, tmp_path)
    anna, csrf = site.client("anna")
    calls_dir = tmp_path / "calls"
    path = site.start(anna, csrf)
    with anna.websocket_connect(path, headers={"origin": ORIGIN}) as ws:
        ws.send_json(start_message(csrf))
        mic = PacedMicrophone(ws)
        mic.thread.start()
        _wait(lambda: "call-start" in _events(calls_dir), "the call to start", 120)
        mic.say(espeak(GREETING))
        _wait(lambda: "caller-line" in _events(calls_dir), "the caller's opening", 60)
        time.sleep(1.0)
        mic.stop.set()  # the lid closes: the socket goes without a word
        mic.thread.join()
    call = site.calls.last["anna"]
    _wait(lambda: not call.job.running, "the analysis", 600)  # on the queue, at a lower priority
    status = call.job.status()
    assert status.phase == "done" and status.call_id is not None, status
    assert call.dropped_at_s is not None and call.dropped_at_s > 0
    directory = next(calls_dir.iterdir())
    meta = read_meta(directory)
    assert meta["status"] == "aborted" and meta["outcome"] == "aborted" and meta["audio"] == "browser"
    assert (directory / "analysis.json").is_file() and (directory / "report.html").is_file()
    with History(db) as history:
        assert history.call_id_for(call_dir=directory) == status.call_id
    page = anna.get(f"/call/{SCENARIO}/browser")  # the page opened again says what happened
    assert "De verbinding viel weg na" in page.text and f"/calls/{status.call_id}" in page.text


# --------------------------------------------------------------------------- the analysis on the queue


def test_the_calls_analyses_wait_on_the_queue_and_the_page_gets_each_report(db, tmp_path, monkeypatch):
    """browser_call.run_call hands the call to the job queue as the local drill does
    (live.after_call): two calls' analyses wait their turn, one at a time, while the sockets say
    "being checked"; once its job is done each socket sends the way to its report."""
    from types import SimpleNamespace

    from roleplay.app import jobs

    directories: dict[str, Path] = {}

    def fake_drill(*, out_dir: Path, trainee: str, **kwargs) -> SimpleNamespace:  # the drill is tested above
        assert out_dir.is_dir() and not any(out_dir.iterdir())  # its own, though both start at once
        directories[trainee] = out_dir
        return SimpleNamespace(directory=out_dir, language="nl", cut_off=False)

    release = threading.Event()
    running: list[str] = []
    ran: list[str] = []

    def work(call_dir: Path, language: str, db_) -> int:
        running.append(call_dir.name)
        release.wait(20)
        assert len(running) == 1, running  # one analysis at a time
        ran.append(running.pop())
        with History(db_) as history:
            trainee = next(name for name, path in directories.items() if path == call_dir)
            return history.record({"schema": "roleplay-analysis", "advice": [], "call": {
                "trainee": trainee, "scenario": SCENARIO}}, call_dir)

    queue = jobs.LocalQueue(db, work=work)
    monkeypatch.setattr(jobs, "analysis_queue", lambda db_, calls_dir: queue)
    monkeypatch.setattr("roleplay.session.live.run_drill", fake_drill)
    monkeypatch.setattr("roleplay.app.analyse.load_transcriber", lambda model: None)
    site = Site(db, tmp_path)
    sockets = {}
    with contextlib.ExitStack() as stack:
        for name in ("anna", "bert"):
            client, csrf = site.client(name)
            ws = stack.enter_context(client.websocket_connect(site.start(client, csrf), headers={"origin": ORIGIN}))
            ws.send_json(start_message(csrf))
            assert next_status(ws, {"analysing"})["state"] == "analysing"
            sockets[name] = ws
        _wait(lambda: len(running) == 1, "the first analysis to start", 10)
        time.sleep(0.3)
        assert len(running) == 1 and not ran  # the second call waits on the queue
        assert {c.job.status().phase for c in site.calls.last.values()} == {"analysing"}
        release.set()
        done = {name: next_status(ws, {"done", "failed"}) for name, ws in sockets.items()}
    assert len(ran) == 2
    with History(db) as history:
        for name, status in done.items():
            call_id = history.call_id_for(call_dir=directories[name])
            assert status["state"] == "done" and call_id is not None, status
            assert status["redirect"] == f"/calls/{call_id}" and site.calls.last[name].job.status().call_id == call_id
    assert done["anna"]["redirect"] != done["bert"]["redirect"]


def next_status(ws, states: set[str], timeout_s: float = 20.0) -> dict:
    """The socket's next status message in one of `states` (audio and other statuses skipped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = ws.receive()
        if message.get("text"):
            data = json.loads(message["text"])
            if data.get("type") == "status" and data.get("state") in states:
                return data
    raise AssertionError(f"no status in {states}")
