"""The app in a real browser against a real server.

A post's first evening with the app, end to end: a real `roleplay serve` (uvicorn) on a free port
with a real SQLite file, this machine's sound card being the virtual PulseAudio devices (`vd`),
and Debian's chromium driven by Playwright as each person.

The first admin is made on the command line; the admin signs in and makes a trainer, a trainee and
a group; the trainee signs in, does the voice check (the scripted trainee reads the sentence into
the virtual microphone), calls a scenario, answers the caller, hangs up early and lands on the
report; the trainer sees the call in the group and overrides a verdict with a comment; the trainee's
page shows it.

Bad input through the browser (what the TestClient tests of test_web_trainer.py cannot show): the
editor's check while typing, a file that is not sound, and an upload over the limit that the
server stops while it streams in — the browser gets the page saying so, not a broken connection."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from browser import launch, sign_in, sign_out

from roleplay.bench.live import BENCH_SCENARIO, GREETING, espeak
from roleplay.bench.web import free_port, serve
from roleplay.caller.scenario import list_scenarios
from roleplay.caller.simtrainee import load_trainee_lines
from roleplay.core.paths import saved_scenarios_dir
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.web import server as web_server
from roleplay.web.i18n import translator
from roleplay.web.settings import WebSettings

playwright_api = pytest.importorskip("playwright.sync_api")

PASSWORDS = {"ada": "admin-password", "tom": "trainer-password", "anna": "trainee-password"}
t = translator("nl")


def events_text(calls: Path) -> str:
    found = sorted(calls.glob("*/events.jsonl")) if calls.is_dir() else []
    return found[0].read_text() if found else ""


def wait_for(predicate, what: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def add_user(page, url: str, name: str, role: str) -> None:
    page.goto(f"{url}/admin/users")
    page.fill("#name", name)
    page.select_option("#role", role)
    page.fill("#password", PASSWORDS[name])
    page.click("form[action='/admin/users'] button[type=submit]")
    page.wait_for_url(re.compile(r".*done=user-added"))
    assert page.locator("#users th[scope=row]", has_text=name).count() == 1


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.devices
def test_first_admin_to_a_trainers_override_in_the_browser(vd, tmp_path):
    db, calls, data_home = tmp_path / "history.sqlite3", tmp_path / "calls", tmp_path / "data"
    added = subprocess.run([sys.executable, "-m", "roleplay", "users", "add", "ada", "--role", "admin",
                            "--password-stdin", "--db", str(db)], input=PASSWORDS["ada"] + "\n",
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    greeting = espeak(GREETING)
    sentence = espeak(load_trainee_lines("nl").calibration)

    with serve(db, calls, env={**vd.env, "XDG_DATA_HOME": str(data_home)}, log=tmp_path / "server.log") as server, \
            playwright_api.sync_playwright() as p:
        url = server.url
        browser = launch(p)
        page = browser.new_page()
        page.set_default_timeout(30_000)

        # the admin: a trainer, a trainee, a group with both
        sign_in(page, url, "ada", PASSWORDS["ada"])
        add_user(page, url, "tom", "trainer")
        add_user(page, url, "anna", "trainee")
        page.goto(f"{url}/admin/groups")
        page.fill("#group", "avond")
        page.click("form[action='/admin/groups'] button[type=submit]")
        page.wait_for_url(re.compile(r".*done=group-created"))
        page.select_option("#add-trainee-1", "anna")
        page.click("form:has(#add-trainee-1) button[type=submit]")
        page.wait_for_url(re.compile(r".*done=group-changed"))
        page.select_option("#add-trainer-1", "tom")
        page.click("form:has(#add-trainer-1) button[type=submit]")
        page.wait_for_url(re.compile(r".*done=group-changed"))
        sign_out(page)

        # the trainee: the voice check, read aloud into the (virtual) microphone
        sign_in(page, url, "anna", PASSWORDS["anna"])
        page.goto(f"{url}/calibration")
        page.click("#record-button")
        page.wait_for_function("text => document.getElementById('live-status').textContent === text",
                               arg=t("live.state.calibration.listening"))
        vd.play_into_mic(sentence, delay_s=0.5)
        page.wait_for_selector("#calibration-result[data-problem=none]", timeout=60_000)

        # a call: the scenario from the library, Bellen, the greeting, the caller answers, Ophangen
        page.goto(f"{url}/scenarios")
        page.click(f"a[href='/scenarios/{BENCH_SCENARIO}']")
        page.click(f"a[href='/call/{BENCH_SCENARIO}']")
        assert page.inner_text("#call-button") == t("live.call.start")
        page.click("#call-button")
        wait_for(lambda: "call-start" in events_text(calls), "the call to start", timeout_s=120)
        vd.play_into_mic(greeting, delay_s=0.3)
        page.wait_for_function("text => document.getElementById('call-button').textContent === text",
                               arg=t("live.call.hang_up"))
        wait_for(lambda: "caller-line" in events_text(calls), "the caller to speak", timeout_s=60)
        time.sleep(1.0)
        page.click("#call-button")
        page.wait_for_url(re.compile(r".*/calls/\d+$"), timeout=240_000)  # after the analysis
        call_path = page.url[len(url):]
        assert page.locator("table.verdicts tbody tr").count() >= 5
        sign_out(page)

        # the trainer: the group, anna, her call; a verdict overridden with a comment
        sign_in(page, url, "tom", PASSWORDS["tom"])
        page.click("nav a[href='/group']")
        page.click("#group-readiness a[href='/trainees/anna']")
        page.click(f"a[href='{call_path}']")
        item = page.locator("#review-item option").nth(1).get_attribute("value")
        automatic = page.locator(f"#item-{item} td .verdict").first.get_attribute("class")
        verdict = "fail" if "pass" in (automatic or "") else "pass"
        page.select_option("#review-item", item)
        page.check(f"#review-verdict-{verdict}")
        page.fill("#review-comment", "Goed gehoord, maar zeg je naam langzamer.")
        page.click("form[action$='/review'] button[type=submit]")
        page.wait_for_load_state()
        assert "Goed gehoord" in page.inner_text("#reviews")
        sign_out(page)

        # the trainee sees the trainer's verdict beside the automatic one
        sign_in(page, url, "anna", PASSWORDS["anna"])
        page.goto(f"{url}{call_path}")
        row = page.locator(f"#item-{item}")
        assert "Goed gehoord, maar zeg je naam langzamer." in row.inner_text()
        assert "tom" in row.inner_text()
        assert row.get_attribute("class") == f"verdict-{verdict}"
        browser.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()


# --------------------------------------------------------------------------- bad input


UPLOAD_LIMIT_BYTES = 1_000_000


@pytest.fixture
def small_limit_server(tmp_path):
    """The app under uvicorn in this process (to set a small upload limit), a trainer account."""
    import uvicorn

    db = tmp_path / "history.sqlite3"
    with History(db) as history:
        Accounts(history).add_user("tom", "trainer", PASSWORDS["tom"])
    app = web_server.create_app(WebSettings(db=db, calls_dir=tmp_path / "calls", upload_limit_bytes=UPLOAD_LIMIT_BYTES))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server", timeout_s=30)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.mark.slow
def test_bad_input_in_the_browser_says_so_and_changes_nothing(small_limit_server):
    url = small_limit_server
    shipped = Path(__file__).resolve().parent.parent / "scenarios" / f"{BENCH_SCENARIO}.yaml"
    broken = shipped.read_text(encoding="utf-8").replace(f"id: {BENCH_SCENARIO}", "id: nl-kapot") + "\nonbekend: 1\n"
    before = [s.id for s in list_scenarios()]
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        sign_in(page, url, "tom", PASSWORDS["tom"])

        # a broken scenario: the editor says which line while typing, and saving refuses it
        page.goto(f"{url}/scenarios/editor")
        page.fill("#text", broken)
        page.wait_for_selector("#validation.invalid")
        said = page.inner_text("#validation")
        assert "onbekend" in said and re.search(r"\d", said), said
        assert "dit veld bestaat niet" in said, said  # in the trainer's language, not the CLI's English
        page.click("#editor-form button[type=submit]")
        page.wait_for_selector(".error-summary")
        assert "onbekend" in page.inner_text(".error-summary")
        assert page.input_value("#text") == broken  # kept, to put right
        page.fill("#text", "")  # a problem without a line: the message alone, no "Regel ?"
        page.wait_for_selector("#validation:has-text('leeg')")
        assert page.inner_text("#validation").startswith("De tekst is leeg"), page.inner_text("#validation")

        # a file that is not sound
        page.goto(f"{url}/scenarios/import")
        page.fill("#scenario_id", "nl-incident-maart")
        page.set_input_files("#stereo", files=[{"name": "gesprek.wav", "mimeType": "audio/wav",
                                                "buffer": b"dit is geen geluid, maar tekst\n" * 50}])
        page.click("form[action='/scenarios/import'] button[type=submit]")
        page.wait_for_load_state()
        assert "Dit bestand is geen geluidsopname die we kunnen lezen." in page.inner_text("main")

        # an upload over the limit: stopped while it streams in, and the browser shows why
        page.goto(f"{url}/scenarios/import")
        page.fill("#scenario_id", "nl-groot")
        page.set_input_files("#stereo", files=[{"name": "groot.wav", "mimeType": "audio/wav",
                                                "buffer": b"\0" * (3 * UPLOAD_LIMIT_BYTES)}])
        with page.expect_navigation() as navigation:
            page.click("form[action='/scenarios/import'] button[type=submit]")
        response = navigation.value
        assert response is not None and response.status == 413
        text = page.inner_text("main")
        assert "Bestand te groot" in page.title() + text and "Er is niets opgeslagen of veranderd." in text
        browser.close()
    assert [s.id for s in list_scenarios()] == before
    saved = saved_scenarios_dir()
    assert not saved.exists() or not list(saved.iterdir())
