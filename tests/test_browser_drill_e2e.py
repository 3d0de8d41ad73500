"""A whole drill with the browser as the phone, in a real browser against a real server.

Debian's chromium (Playwright) with a fake microphone that plays a WAV file (chromium loops it, at
48 kHz, from the moment the page opens the microphone) and a real `roleplay serve`: a trainee with a
calibration signs in, opens /call/SCENARIO/browser, presses Bellen; the WAV greets, talks over the
caller's opening (an interruption), answers, then is silent; Ophangen; the report.

Checked: the WAV lies on the call's trainee track (found by cross-correlation) with every planned
turn starting within 0.2 s of where the call's events put a trainee turn or interruption, and the
analysis has the interruption. The page opens the microphone only when the server is ready, so the
greeting lands a known time after the phone rings."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, axe_source, sign_in
from test_web_a11y import BLOCKING, RUN_AXE

from roleplay.audio.clip import Audio, load_audio, save_wav
from roleplay.bench.live import BENCH_SCENARIO, GREETING, espeak, prepare_trainee
from roleplay.bench.web import serve
from roleplay.core.constants import RATE_HZ
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.recording.calldir import read_events
from roleplay.web.i18n import translator

playwright_api = pytest.importorskip("playwright.sync_api")

PASSWORD = "trainee-password"
FAKE_RATE_HZ = 48000  # chromium's fake capture runs at 48 kHz
ONSET_TOLERANCE_S = 0.2
# The WAV's script (s): from the microphone opening. The server reads the calibration, measures
# the delay with its chirp and rings in the first seconds; the greeting comes after that, and the
# caller's opening follows the greeting by about a second, so the interruption starts inside it.
LEAD_S = 6.0
INTERRUPT_AFTER_GREETING_S = 4.3  # the caller answers 2.5-3 s after it; openings last 4-6 s
# one run of speech from its first word: a word and a pause would first be taken for a "hm"
INTERRUPTION = "Mag ik even iets zeggen want ik wil u graag helpen."
# after the caller's reply to the interruption (3-7 s), before it asks whether anyone is there (9 s)
ANSWER_AFTER_INTERRUPTION_S = 7.5
ANSWER = "Ik begrijp dat u ongerust bent over uw vader."
TAIL_S = 40.0  # silence after the answer (the call hangs up long before the WAV loops)
t = translator("nl")


def trainee_wav() -> tuple[Audio, list[tuple[str, float]]]:
    """The scripted trainee at 16 kHz with low noise, and its planned onsets (s)."""
    greeting, interruption, answer = espeak(GREETING), espeak(INTERRUPTION), espeak(ANSWER)
    plan = [("greeting", LEAD_S)]
    plan.append(("interruption", LEAD_S + greeting.duration_s + INTERRUPT_AFTER_GREETING_S))
    plan.append(("answer", plan[1][1] + interruption.duration_s + ANSWER_AFTER_INTERRUPTION_S))
    total_s = plan[2][1] + answer.duration_s + TAIL_S
    samples = np.random.default_rng(5).normal(0, 0.001, int(total_s * RATE_HZ)).astype(np.float32)
    for (_, at_s), audio in zip(plan, (greeting, interruption, answer), strict=True):
        a = int(at_s * RATE_HZ)
        samples[a:a + len(audio.samples)] += 0.7 * audio.samples
    return Audio(samples, RATE_HZ), plan


def locate(wav: np.ndarray, track: np.ndarray) -> float:
    """Where WAV sample 0 lies on the track (s; negative: before the track starts), by
    cross-correlation."""
    n = len(wav) + len(track)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(track, size) * np.conj(np.fft.rfft(wav, size)), size)
    lags = np.concatenate([np.arange(0, len(track)), np.arange(-len(wav) + 1, 0)])
    values = np.concatenate([corr[:len(track)], corr[size - len(wav) + 1:]])
    return float(lags[int(np.argmax(values))]) / RATE_HZ


@pytest.fixture
def server(tmp_path, monkeypatch):
    db, calls, data_home = tmp_path / "history.sqlite3", tmp_path / "calls", tmp_path / "data"
    with History(db) as history:
        Accounts(history).add_user("anna", "trainee", PASSWORD)
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    prepare_trainee("anna")  # a calibration in place: the call begins at once
    with serve(db, calls, env={"XDG_DATA_HOME": str(data_home)}, log=tmp_path / "server.log") as running:
        yield running, calls
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def _events(calls: Path) -> list:
    found = sorted(calls.glob("*/events.jsonl")) if calls.is_dir() else []
    return list(read_events(found[0].parent)) if found else []


def _wait(predicate, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.model
def test_a_drill_in_the_browser_puts_the_trainees_turns_where_the_microphone_had_them(server, tmp_path):
    running, calls = server
    wav, plan = trainee_wav()
    wav_path = tmp_path / "trainee-48k.wav"
    save_wav(wav_path, wav.resampled(FAKE_RATE_HZ))
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav_path}", "--autoplay-policy=no-user-gesture-required"])
        # past the app's script policy, so that axe can look at the page in a call
        page = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"error: {e}"))
        page.on("response", lambda r: console.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        sign_in(page, running.url, "anna", PASSWORD)
        page.goto(f"{running.url}/call/{BENCH_SCENARIO}/browser")
        page.screenshot(path=str(tmp_path / "browser-call-idle.png"))
        page.click("#call-button")
        page.wait_for_function("text => document.getElementById('call-button').textContent === text",
                               arg=t("live.call.hang_up"))
        try:
            _wait(lambda: any(e.type == "call-start" for e in _events(calls)), "the call to start", 120)
            # the answer's turn (written when it ends), placed after the greeting's as in the WAV
            def answered() -> bool:
                turns = [e.t_s for e in _events(calls) if e.type == "trainee-turn"]
                return bool(turns) and any(abs(o - turns[0] - (plan[2][1] - plan[0][1])) < 0.5 for o in turns)
            _wait(answered, "the answer's turn", 90)
            page.screenshot(path=str(tmp_path / "browser-call-in-call.png"))
            page.add_script_tag(content=axe_source())
            found = page.evaluate(RUN_AXE)
            assert not [v for v in found if v["impact"] in BLOCKING], found
            time.sleep(1.5)
        finally:
            print("\n".join(console))
        page.click("#call-button")
        page.wait_for_url(re.compile(r".*/calls/\d+$"), timeout=240_000)
        report_text = page.inner_text("main")
        browser.close()

    directory = next(calls.iterdir())
    events = list(read_events(directory))
    track = load_audio(directory / "trainee.wav").samples
    offset_s = locate(wav.samples, track)
    onsets = sorted(e.t_s for e in events if e.type in ("trainee-turn", "interruption"))
    errors = {name: min((abs(o - (offset_s + at_s)) for o in onsets), default=99.0) for name, at_s in plan}
    print(f"WAV at {offset_s:.3f} s on the trainee track; onsets {onsets}; errors {errors}")
    assert all(err <= ONSET_TOLERANCE_S for err in errors.values()), (errors, onsets, offset_s)
    interruptions = [e for e in events if e.type == "interruption"]
    assert interruptions and abs(interruptions[0].t_s - (offset_s + plan[1][1])) <= ONSET_TOLERANCE_S
    analysis = json.loads((directory / "analysis.json").read_text())
    assert any(i["by"] == "trainee" for i in analysis["interruptions"]), analysis["interruptions"]
    said = re.search(r"viel de beller (\d+) keer in de rede", report_text)  # report.text nl: interruptions
    assert said and int(said.group(1)) >= 1, report_text[:3000]
