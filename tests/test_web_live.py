"""The live call in the app (roleplay/web/live.py): the call page, its server-sent events, hanging up,
one job at a time, the hidden anger meter, the calibration and the sound devices.

The fast tests drive the real `Drill` (roleplay.session.live) with a microphone stream that runs in
real time but delivers quiet noise, so the updates reach the page at the engine's own pace; the
analysis is replaced by a row in the history. The slow test at the end runs a real call over the
virtual PulseAudio devices through the app's endpoints, with a scripted trainee answering."""

from __future__ import annotations

import html
import json
import random
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import FakePlayback, history_with_accounts
from starlette.testclient import TestClient

from roleplay.audio.clip import Audio
from roleplay.audio.devices import DeviceInfo, DeviceTest, LagMeasurement, StreamStatus
from roleplay.caller.scenario import load_scenario
from roleplay.caller.simtrainee import load_trainee_lines
from roleplay.core.constants import RATE_HZ
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.recording.calldir import CallWriter, read_events, read_meta
from roleplay.session.caller_session import CallerSession
from roleplay.session.live import Drill, DrillSettings, calibration_path
from roleplay.speech.streamvad import StreamingVad
from roleplay.web import auth, live, server
from roleplay.web.settings import WebSettings
from roleplay.web.trainer import HIDE_ANGER_METER

SCENARIO = "nl-visite-derde-keer"
USERS = {"ada": "admin", "tom": "trainer", "anna": "trainee", "bert": "trainee"}
BLOCK = 1024  # samples per microphone block, as the sound card's (64 ms)


@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory) -> Path:
    return history_with_accounts(tmp_path_factory.mktemp("web-live") / "history.sqlite3", USERS)


@pytest.fixture
def db(prepared_db, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # calibrations go here
    return Path(shutil.copy(prepared_db, tmp_path / "history.sqlite3"))


def calibrate(name: str) -> None:
    from roleplay.audio.clip import save_wav

    path = calibration_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, Audio(np.zeros(RATE_HZ, np.float32), RATE_HZ))


class App:
    """The app with its LiveRoom's engine replaced by fakes (or not), and a client per user."""

    def __init__(self, db: Path, tmp_path: Path, room: live.LiveRoom) -> None:
        self.db = db
        self.app = server.create_app(WebSettings(db=db, calls_dir=tmp_path / "calls"))
        self.app.state.live = room
        self.room = room

    def client(self, name: str) -> tuple[TestClient, str]:
        client = TestClient(self.app, follow_redirects=False)
        with History(self.db) as history:
            acc = Accounts(history)
            user = acc.user(name)
            assert user is not None
            token, session = acc.start_session(user)
        client.cookies.set(auth.SESSION_COOKIE, token)
        return client, session.csrf_token


def post(client: TestClient, csrf: str, url: str, **form: str):
    return client.post(url, data=form, headers={"X-CSRF-Token": csrf, "Accept": "application/json"})


# --------------------------------------------------------------------------- a real Drill, a fake stream


class PacedStream:
    """A microphone that delivers quiet noise in real time, block by block, as the sound card does."""

    def __init__(self) -> None:
        self.input_position_samples = self.output_position_samples = 0
        self.restarts = 0
        self.status = StreamStatus(0, 0, 0, 0)
        self.began = time.monotonic()
        self.noise = np.random.default_rng(0)

    def read_input(self, *, timeout_s: float) -> np.ndarray:
        end = self.input_position_samples + BLOCK
        time.sleep(max(0.0, self.began + end / RATE_HZ - time.monotonic()))
        self.input_position_samples = self.output_position_samples = end
        return (0.01 * self.noise.standard_normal(BLOCK)).astype(np.float32)

    def play(self, audio: Audio) -> FakePlayback:
        start = self.output_position_samples
        return FakePlayback(self, start, start + len(audio.samples))

    def stop_playback(self) -> None:
        pass


class SilentSpeaker:
    def audio(self, line, anger: float) -> tuple[Audio, float]:
        return Audio(np.zeros(RATE_HZ, np.float32), RATE_HZ), 0.0

    def prosody(self, anger: float) -> tuple[float, float]:
        return 180.0, 0.8


def fake_call(job: live.Job, plan: live.CallPlan) -> None:
    """run_call with the live engine's loop (Drill) on a PacedStream, and a history row instead of
    the analysis."""
    scenario = load_scenario(plan.scenario_id)
    session = CallerSession(scenario, rng=random.Random(1))
    directory = plan.calls_dir / f"call-{plan.trainee}"
    writer = CallWriter(directory, rate_hz=RATE_HZ, meta={"mode": "live", "scenario": scenario.id,
                                                           "language": scenario.language, "trainee": plan.trainee})
    drill = Drill(session=session, stream=PacedStream(), writer=writer, speaker=SilentSpeaker(),
                  listen=lambda *a, **k: None, live_transcriber=None, vad=StreamingVad(),
                  settings=DrillSettings(), status=job, origin=0,
                  lag=LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=1.0, spread_ms=0.0),
                  hang_up=job.hang_up)
    start = session.call_start_event(trainee=plan.trainee, lag_ms=0.0)
    writer.event(start.type, **start.fields)
    drill.run()
    drill.finish()
    job.analysing()
    time.sleep(0.3)  # the analysis takes a while: the page says so meanwhile
    with History(plan.db) as history:
        call_id = history.record({"schema": "roleplay-analysis", "call": {
            "call_id": directory.name, "trainee": plan.trainee, "scenario": scenario.id}, "advice": []}, directory)
    job.done(call_id=call_id)


@pytest.fixture
def app(db, tmp_path) -> App:
    return App(db, tmp_path, live.LiveRoom(run_call=fake_call))


def sse(response):
    """(arrival time, data) of each server-sent event, as it arrives."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield time.monotonic(), json.loads(line[len("data: "):])


def read_events_until(events, *, stop: set[str], limit_s: float = 20.0) -> list[tuple[float, dict]]:
    """The events (from `sse`) up to the first whose state is in `stop`."""
    got: list[tuple[float, dict]] = []
    began = time.monotonic()
    for arrived, data in events:
        got.append((arrived, data))
        if data["state"] in stop:
            break
        assert time.monotonic() - began < limit_s, got[-3:]
    return got


def wait_until(predicate, *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --------------------------------------------------------------------------- the call


def test_a_call_streams_at_least_five_updates_a_second_then_hangs_up_into_the_report(app):
    calibrate("anna")
    client, csrf = app.client("anna")
    page = client.get(f"/call/{SCENARIO}")
    assert page.status_code == 200
    for selector in ('id="call-button"', 'id="live-status"', 'role="status"', 'id="live-elapsed"',
                     'id="live-who"', 'id="live-level"', 'id="live-anger"', 'src="/static/live.js"'):
        assert selector in page.text, selector
    assert '<label for="live-level">' in page.text and '<label for="live-anger">' in page.text

    assert post(client, csrf, f"/call/{SCENARIO}/start").json() == {"ok": True}
    with client.stream("GET", "/call/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        wait_until(lambda: app.room.current is not None and app.room.current.status().phase == "in_call")
        # one second of the call as the page sees it
        stream = sse(response)
        events: list[tuple[float, dict]] = []
        began = time.monotonic()
        for event in stream:
            events.append(event)
            if time.monotonic() - began >= 1.2:
                break
        in_call = [d for _t, d in events if d["state"] == "in_call"]
        rate = len(in_call) / (events[-1][0] - events[0][0])
        assert rate >= 5, f"{rate:.1f} updates a second"
        last = in_call[-1]
        assert last["who"] == "nobody" and last["who_text"] == "Niemand"
        assert last["elapsed"].startswith("0:0") and 0 < last["level_pct"] < 100  # quiet noise, about -40 dBFS
        assert last["anger"] == load_scenario(SCENARIO).anger.start
        assert last["status_text"] == "Je bent in gesprek."

        # the page now offers hanging up; the button hangs up like Enter in the terminal
        assert 'action="/call/hangup"' in client.get(f"/call/{SCENARIO}").text
        assert post(client, csrf, "/call/hangup").json() == {"ok": True}
        rest = read_events_until(stream, stop={"done", "failed"})
    states = [d["state"] for _t, d in rest]
    assert "analysing" in states and states[-1] == "done", states
    assert any(d["status_text"] == "Je gesprek wordt nagekeken…" for _t, d in rest)
    with History(app.db) as history:
        (row,) = history.calls(trainee="anna")
    assert rest[-1][1]["redirect"] == f"/calls/{row.id}"
    directory = Path(row.call_dir)
    assert read_meta(directory).outcome == "ended-by-trainee"
    assert any(e.type == "trainee-hung-up" for e in read_events(directory))
    assert app.room.current is None


def test_one_call_at_a_time_on_this_machine(app):
    calibrate("anna")
    calibrate("bert")
    anna, anna_csrf = app.client("anna")
    bert, bert_csrf = app.client("bert")
    assert post(anna, anna_csrf, f"/call/{SCENARIO}/start").status_code == 200
    try:
        refused = post(bert, bert_csrf, f"/call/{SCENARIO}/start")
        assert refused.status_code == 409
        assert "Er loopt al een gesprek of opname op deze computer" in refused.json()["error"]
        # without JavaScript: a page saying the same
        form = bert.post(f"/call/{SCENARIO}/start", data={"csrf_token": bert_csrf})
        assert form.status_code == 409 and "Even wachten" in form.text
        # a second call of anna's is refused too, and bert cannot hang up anna's call
        assert post(anna, anna_csrf, f"/call/{SCENARIO}/start").status_code == 409
        assert post(bert, bert_csrf, "/call/hangup").status_code == 409
        assert app.room.current is not None and not app.room.current.hang_up.is_set()
        assert "Er loopt al een gesprek of opname op deze computer" in bert.get(f"/call/{SCENARIO}").text
        with bert.stream("GET", "/call/events") as response:
            (only,) = [d for _t, d in read_events_until(sse(response), stop={"busy"})]
        assert only["state"] == "busy"
    finally:
        post(anna, anna_csrf, "/call/hangup")
    wait_until(lambda: app.room.current is None)
    assert post(bert, bert_csrf, f"/call/{SCENARIO}/start").status_code == 200  # free again
    post(bert, bert_csrf, "/call/hangup")
    wait_until(lambda: app.room.current is None)


def test_hang_up_without_javascript_goes_back_to_the_call_page(app):
    calibrate("anna")
    client, csrf = app.client("anna")
    started = client.post(f"/call/{SCENARIO}/start", data={"csrf_token": csrf})
    assert started.status_code == 303 and started.headers["location"] == f"/call/{SCENARIO}"
    wait_until(lambda: app.room.current is not None and app.room.current.status().phase == "in_call")
    hung = client.post("/call/hangup", data={"csrf_token": csrf})
    assert hung.status_code == 303 and hung.headers["location"] == f"/call/{SCENARIO}"
    wait_until(lambda: app.room.current is None)
    page = client.get(f"/call/{SCENARIO}").text
    assert 'id="live-report-link"' in page  # the report of the call just made


def test_the_anger_meter_is_hidden_when_the_setting_says_so(app):
    calibrate("anna")
    with History(app.db) as history:
        Accounts(history).set_setting(HIDE_ANGER_METER, "1")
    client, csrf = app.client("anna")
    page = client.get(f"/call/{SCENARIO}").text
    assert 'id="live-level"' in page and 'id="live-anger"' not in page
    post(client, csrf, f"/call/{SCENARIO}/start")
    with client.stream("GET", "/call/events") as response:
        wait_until(lambda: app.room.current is not None and app.room.current.status().phase == "in_call")
        events = []
        for _t, data in sse(response):
            events.append(data)
            if len(events) >= 5:
                break
        post(client, csrf, "/call/hangup")
    assert events and all("anger" not in d for d in events)
    wait_until(lambda: app.room.current is None)


def test_a_call_needs_a_calibration_first(app):
    client, csrf = app.client("anna")
    page = client.get(f"/call/{SCENARIO}")
    assert 'id="live-calibrate-first"' in page.text and 'href="/calibration"' in page.text
    assert 'id="call-button"' not in page.text
    refused = post(client, csrf, f"/call/{SCENARIO}/start")
    assert refused.status_code == 400 and "stemproef" in refused.json()["error"]
    assert app.room.current is None


def test_a_call_that_cannot_start_says_so_plainly(db, tmp_path):
    from roleplay.core.errors import RoleplayError

    def no_devices(job: live.Job, plan: live.CallPlan) -> None:
        raise RoleplayError("cannot open the audio stream (PortAudio: Error querying device -1)")

    app = App(db, tmp_path, live.LiveRoom(run_call=no_devices))
    calibrate("anna")
    client, csrf = app.client("anna")
    post(client, csrf, f"/call/{SCENARIO}/start")
    with client.stream("GET", "/call/events") as response:
        final = read_events_until(sse(response), stop={"done", "failed"})[-1][1]
    assert final["state"] == "failed" and "PortAudio" not in final["status_text"]
    assert final["status_text"].startswith("Het gesprek kon niet beginnen.")
    assert app.room.current is None


# --------------------------------------------------------------------------- calibration


class ScriptedMicrophone:
    """A stream for record_calibration: silence, then `speech`, then silence, block by block.
    `paced`: each block is handed over when a sound card would have recorded it, so that the
    page's level meter (sampled every EVENTS_EVERY_S) can see the speech, even on a loaded machine."""

    def __init__(self, speech: np.ndarray, *, paced: bool = False) -> None:
        self.samples = np.concatenate([np.zeros(RATE_HZ // 2, np.float32), speech, np.zeros(2 * RATE_HZ, np.float32)])
        self.position = 0
        self.paced = paced
        self.began = 0.0

    def __enter__(self) -> ScriptedMicrophone:
        self.began = time.monotonic()  # the stream starts recording when it is opened
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read_input(self, *, timeout_s: float) -> np.ndarray | None:
        if self.position >= len(self.samples):
            return np.zeros(BLOCK, np.float32)
        block = self.samples[self.position : self.position + BLOCK]
        self.position += BLOCK
        if self.paced:
            time.sleep(max(0.0, self.began + self.position / RATE_HZ - time.monotonic()))
        return block


def _voice(seconds: float, amplitude: float) -> np.ndarray:
    """A voice-like sound (a buzz with syllable rhythm) the VAD takes for speech."""
    from roleplay.bench.live import espeak

    spoken = espeak(load_trainee_lines("nl").calibration).samples
    spoken = np.tile(spoken, int(np.ceil(seconds * RATE_HZ / len(spoken))))[: int(seconds * RATE_HZ)]
    return (spoken / np.max(np.abs(spoken)) * amplitude).astype(np.float32)


@pytest.mark.parametrize(("seconds", "amplitude", "problem"), [
    (4.0, 0.5, ""), (1.2, 0.5, "too_short"), (4.0, 0.004, "too_quiet"), (4.0, 1.0, "clipped"),
])
def test_check_calibration_says_what_is_wrong(seconds, amplitude, problem):
    samples = _voice(seconds, amplitude)
    if problem == "clipped":
        samples = np.clip(samples * 3, -1.0, 1.0)
    assert live.check_calibration(Audio(samples, RATE_HZ)).problem == problem


def test_calibration_records_the_sentence_and_stores_only_a_good_one(db, tmp_path):
    takes = iter([ScriptedMicrophone(_voice(4.0, 0.4), paced=True), ScriptedMicrophone(_voice(4.0, 0.004))])

    def calibration(job: live.Job, plan: live.CalibrationPlan) -> None:
        live.run_calibration(job, plan, lambda _in, _out: next(takes))

    app = App(db, tmp_path, live.LiveRoom(run_calibration=calibration))
    client, csrf = app.client("anna")
    page = client.get("/calibration").text
    assert html.unescape(page).count(load_trainee_lines("nl").calibration) == 1 and 'id="calibration-sentence"' in page
    assert 'id="record-button"' in page and 'id="calibration-audio"' not in page
    assert client.get("/calibration/recording").status_code == 404

    assert post(client, csrf, "/calibration/record", language="nl").json() == {"ok": True}
    with client.stream("GET", "/call/events") as response:
        events = [d for _t, d in read_events_until(sse(response), stop={"done", "failed"})]
    assert events[-1]["state"] == "done" and events[-1]["redirect"] == "/calibration", events[-3:]
    assert any(d["state"] == "listening" and d["level_pct"] > 0 for d in events)  # the level meter moved
    page = client.get("/calibration").text
    assert 'data-problem="none"' in page and "Gelukt" in page and 'id="calibration-audio"' in page
    stored = client.get("/calibration/recording")
    assert stored.status_code == 200 and stored.headers["content-type"] == "audio/wav"

    # a second, too quiet take is not stored: the good one stays
    post(client, csrf, "/calibration/record", language="nl")
    wait_until(lambda: app.room.current is None)
    page = client.get("/calibration").text
    assert 'data-problem="too_quiet"' in page and "Te zacht" in page
    assert client.get("/calibration/recording").content == stored.content


def test_calibration_that_hears_nothing_says_so(db, tmp_path, monkeypatch):
    monkeypatch.setattr("roleplay.session.live.CALIBRATION_MAX_S", 0.5)

    def calibration(job: live.Job, plan: live.CalibrationPlan) -> None:
        live.run_calibration(job, plan, lambda _in, _out: ScriptedMicrophone(np.zeros(0, np.float32)))

    app = App(db, tmp_path, live.LiveRoom(run_calibration=calibration))
    client, csrf = app.client("anna")
    post(client, csrf, "/calibration/record", language="nl")
    wait_until(lambda: app.room.current is None)
    assert "Er is niets gehoord." in client.get("/calibration").text
    assert not calibration_path("anna").exists()


# --------------------------------------------------------------------------- devices


DEVICES = (
    DeviceInfo(0, "USB headset", "ALSA", 1, 2, 48000.0, False, False),
    DeviceInfo(1, "Built-in speaker", "ALSA", 0, 2, 48000.0, False, True),
    DeviceInfo(2, "default", "ALSA", 32, 32, 44100.0, True, True),
)


def _tested(**changes) -> DeviceTest:
    fields = {"silent": False, "peak_dbfs": -12.0, "rms_dbfs": -30.0, "clipped_samples": 0,
              "lag": LagMeasurement(lag_ms=182.0, lag_samples=2912, confidence=0.9, spread_ms=1.0),
              "glitches": StreamStatus(0, 0, 0, 0)}
    return DeviceTest(**{**fields, **changes})


def test_devices_are_listed_chosen_per_machine_and_used_by_the_call(db, tmp_path):
    plans: list[live.CallPlan] = []

    def record_plan(job: live.Job, plan: live.CallPlan) -> None:
        plans.append(plan)
        job.done(call_id=None)

    app = App(db, tmp_path, live.LiveRoom(run_call=record_plan, list_devices=lambda: DEVICES))
    client, csrf = app.client("anna")
    page = client.get("/settings/devices").text
    assert '<label for="input_device">' in page and '<label for="output_device">' in page
    inputs = page[page.index('id="input_device"'):page.index('id="output_device"')]
    assert "USB headset" in inputs and "Built-in speaker" not in inputs  # no microphone there
    assert "Built-in speaker" in page[page.index('id="output_device"'):]

    bad = client.post("/settings/devices", data={"csrf_token": csrf, "input_device": "Gone away", "output_device": ""})
    assert bad.status_code == 400 and 'href="#input_device"' in bad.text
    saved = client.post("/settings/devices", data={"csrf_token": csrf, "input_device": "USB headset",
                                                   "output_device": "USB headset"})
    assert saved.status_code == 303
    assert '<option value="USB headset" selected>' in client.get("/settings/devices").text
    calibrate("anna")
    post(client, csrf, f"/call/{SCENARIO}/start")
    wait_until(lambda: app.room.current is None)
    assert (plans[0].input_device, plans[0].output_device) == ("USB headset", "USB headset")
    assert plans[0].trainee == "anna"


@pytest.mark.parametrize(("result", "says"), [
    (_tested(), ["Je stem kwam goed binnen.", "Het geluid vervormt niet.", "na 182 milliseconden"]),
    (_tested(silent=True), ["De microfoon neemt alleen stilte op."]),
    (_tested(peak_dbfs=-41.0, clipped_samples=12, glitches=StreamStatus(0, 0, 2, 0),
             lag=LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=0.1, spread_ms=0.0)),
     ["erg zacht", "te hard", "Met een headset is dat precies goed.", "haperde 2 keer"]),
])
def test_the_device_test_result_is_in_plain_words(db, tmp_path, result, says):
    asked: list[tuple] = []

    def check(input_device, output_device) -> DeviceTest:
        asked.append((input_device, output_device))
        return result

    app = App(db, tmp_path, live.LiveRoom(list_devices=lambda: DEVICES, check_devices=check))
    client, csrf = app.client("bert")
    page = client.post("/settings/devices/test", data={"csrf_token": csrf, "input_device": "USB headset",
                                                       "output_device": ""})
    assert page.status_code == 200 and 'id="device-test-result"' in page.text
    for words in says:
        assert words in page.text, words
    assert asked == [("USB headset", None)]
    assert "dBFS" not in page.text


def test_the_device_test_waits_for_a_running_call(app):
    calibrate("anna")
    anna, anna_csrf = app.client("anna")
    bert, bert_csrf = app.client("bert")
    post(anna, anna_csrf, f"/call/{SCENARIO}/start")
    try:
        page = bert.post("/settings/devices/test", data={"csrf_token": bert_csrf})
        assert page.status_code == 409 and "Er loopt al een gesprek of opname op deze computer" in page.text
    finally:
        post(anna, anna_csrf, "/call/hangup")
    wait_until(lambda: app.room.current is None)


def test_no_devices_at_all_is_said_plainly(db, tmp_path):
    from roleplay.core.errors import RoleplayError

    def none() -> tuple[DeviceInfo, ...]:
        raise RoleplayError("no audio devices found (PortAudio: Error querying device -1)")

    app = App(db, tmp_path, live.LiveRoom(list_devices=none))
    client, _csrf = app.client("anna")
    page = client.get("/settings/devices")
    assert page.status_code == 200 and 'id="devices-none"' in page.text and "PortAudio" not in page.text


# --------------------------------------------------------------------------- the real thing (slow)


@pytest.mark.slow
@pytest.mark.devices
@pytest.mark.model
def test_a_real_call_over_the_virtual_devices_through_the_app(vd, db, tmp_path):
    """Start the call from the app, the scripted trainee greets the caller through the virtual
    microphone, hang up while the caller talks: the call is analysed and in the history as anna's."""
    from roleplay.bench.live import GREETING, espeak, prepare_trainee

    prepare_trainee("anna")
    app = App(db, tmp_path, live.LiveRoom())
    client, csrf = app.client("anna")
    assert post(client, csrf, f"/call/{SCENARIO}/start").json() == {"ok": True}
    calls = tmp_path / "calls"
    deadline = time.monotonic() + 240

    def events_text() -> str:
        found = sorted(calls.glob("*/events.jsonl")) if calls.is_dir() else []
        return found[0].read_text() if found else ""

    while "call-start" not in events_text():
        assert time.monotonic() < deadline and app.room.current is not None, "the call never started"
        time.sleep(0.1)
    vd.play_into_mic(espeak(GREETING), delay_s=0.3)
    with client.stream("GET", "/call/events") as response:
        seen: list[dict] = []
        stop = threading.Event()

        def hang_up_when_the_caller_talks() -> None:
            while "caller-line" not in events_text() and not stop.is_set():
                time.sleep(0.1)
            time.sleep(1.0)
            post(client, csrf, "/call/hangup")

        threading.Thread(target=hang_up_when_the_caller_talks, daemon=True).start()
        for _t, data in read_events_until(sse(response), stop={"done", "failed"}, limit_s=240):
            seen.append(data)
        stop.set()
    assert seen[-1]["state"] == "done", seen[-1]
    assert {"you", "caller"} <= {d["who"] for d in seen}
    assert any(d["state"] == "analysing" for d in seen)
    with History(app.db) as history:
        (row,) = history.calls(trainee="anna")
    assert seen[-1]["redirect"] == f"/calls/{row.id}"
    directory = Path(row.call_dir)
    analysis = json.loads((directory / "analysis.json").read_text())
    assert analysis["call"]["trainee"] == "anna" and analysis["advice"]
    assert read_meta(directory).outcome == "ended-by-trainee"
