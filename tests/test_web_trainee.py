"""The trainee's pages with Starlette's TestClient on a real SQLite file and real call directories
(CallWriter tracks and events, an analysis.json, recorded with record_call): home, scenarios, my
calls, a call's report and audio, progress, and forgetting one's own data. Who may open whose call
(404 for others, an access-log line for a trainer or admin) is checked on every call URL."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import history_with_accounts
from starlette.testclient import TestClient

from roleplay.audio.clip import Audio, save_wav
from roleplay.core.advice import ADVICE_IDS
from roleplay.history.accounts import Accounts
from roleplay.history.store import History, record_call
from roleplay.recording.calldir import CallWriter
from roleplay.web import auth, server
from roleplay.web.settings import WebSettings

RATE_HZ = 16000
USERS = {"ada": "admin", "tom": "trainer", "tina": "trainer", "anna": "trainee", "bert": "trainee"}
SCENARIO = "nl-visite-derde-keer"


def analysis(trainee: str, call_id: str, call_dir: Path, *, failed: tuple[str, ...] = ()) -> dict:
    """An analysis document as the pipeline writes it (the fields the report reads)."""
    turns = [
        {"index": 0, "speaker": "trainee", "start_s": 0.1, "end_s": 0.9,
         "text": "Goedenavond, huisartsenpost, u spreekt met Anna.", "phrases": [], "abuse": []},
        {"index": 1, "speaker": "caller", "start_s": 1.0, "end_s": 1.9,
         "text": "Waar blijft de dokter nou?", "phrases": [], "abuse": []},
    ]
    return {
        "schema": "roleplay-analysis", "language": "nl", "duration_s": 2.0,
        "source": {"call_dir": str(call_dir)},
        "call": {"call_id": call_id, "scenario": SCENARIO, "trainee": trainee, "outcome": "calmed", "mode": "test",
                 "anger_start": 6.5, "anger_peak": 7.0, "anger_end": 2.5},
        "turns": turns, "anger": [{"t_s": 0.0, "anger": 6.5}, {"t_s": 1.9, "anger": 2.5}],
        "baseline": {"source": "calibration"}, "warnings": [],
        "advice": [{"id": i, "verdict": "fail" if i in failed else "pass", "figures": {}, "turns": [0],
                    "feedback": f"uitleg bij {i}"} for i in ADVICE_IDS],
    }


def make_call(root: Path, db: Path, trainee: str, name: str, day: int, *, failed: tuple[str, ...] = ()) -> int:
    """A real call directory (both tracks, events, analysis.json) recorded in the history."""
    directory = root / name
    t = np.arange(2 * RATE_HZ) / RATE_HZ
    with CallWriter(directory, rate_hz=RATE_HZ, meta={"trainee": trainee, "mode": "test", "scenario": SCENARIO}) as w:
        w.append("caller", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        w.append("trainee", (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
        w.event("call-start", t_s=0.0, anger=6.5)
    data = analysis(trainee, name, directory, failed=failed)
    (directory / "analysis.json").write_text(json.dumps(data), encoding="utf-8")
    return record_call(data, directory, db, started_utc=f"2026-11-{day:02d}T09:00:00+00:00")


@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory) -> Path:
    """Users and a group, made once (hashing their passwords is the slow part)."""
    return history_with_accounts(tmp_path_factory.mktemp("web") / "history.sqlite3", USERS,
                                 groups={"avond": (("anna",), ("tom",))})  # bert is in no group


@pytest.fixture
def world(prepared_db, tmp_path, monkeypatch) -> dict:
    """anna: two calls (the first interrupts), a calibration and a trainer's review; bert: one call."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where calibrations live
    db = Path(shutil.copy(prepared_db, tmp_path / "history.sqlite3"))
    calls = tmp_path / "calls"
    ids = {
        "anna-1": make_call(calls, db, "anna", "anna-1", 20, failed=("no-interrupt",)),
        "anna-2": make_call(calls, db, "anna", "anna-2", 21),
        "bert-1": make_call(calls, db, "bert", "bert-1", 22),
    }
    with History(db) as h:
        h.add_review(ids["anna-1"], item="no-interrupt", verdict="pass", note="alleen een 'hm', geen onderbreking",
                     by="tom")
    calibration = tmp_path / "data" / "roleplay" / "trainees" / "anna" / "calibration.wav"
    calibration.parent.mkdir(parents=True)
    save_wav(calibration, Audio(np.zeros(RATE_HZ, np.float32), RATE_HZ))
    return {"db": db, "ids": ids, "calls": calls, "calibration": calibration, "root": tmp_path}


def client_as(world: dict, name: str) -> tuple[TestClient, str]:
    """A client signed in as `name` (a session made in the database), and its CSRF token."""
    client = TestClient(server.create_app(WebSettings(db=world["db"], calls_dir=world["calls"])),
                        follow_redirects=False)
    with History(world["db"]) as history:
        acc = Accounts(history)
        user = acc.user(name)
        assert user is not None
        token, session = acc.start_session(user)
    client.cookies.set(auth.SESSION_COOKIE, token)
    return client, session.csrf_token


def access_log(db: Path) -> list[tuple[str, str, int | None]]:
    with History(db) as history:
        return sorted((e.who, e.action, e.call_id) for e in Accounts(history).access_log())


# --------------------------------------------------------------------------- home, scenarios, lists


def test_home_says_what_to_practise_next_with_recent_calls_and_progress(world):
    client, _ = client_as(world, "anna")
    page = client.get("/").text
    assert "Wat nu oefenen" in page
    assert "Langzamer en zachter praten" in page  # a readiness item not yet shown often enough
    assert f'href="/scenarios/{SCENARIO}"' in page  # where to practise it
    assert f'href="/calls/{world["ids"]["anna-2"]}"' in page and f'href="/calls/{world["ids"]["bert-1"]}"' not in page
    assert "beller gekalmeerd" in page  # the outcome in words
    assert '<svg class="strip"' in page and '<svg class="spark"' in page


def test_trainers_keep_the_menu_on_their_home(world):
    client, _ = client_as(world, "tom")
    page = client.get("/").text
    assert "Wat nu oefenen" not in page and "Je bent aangemeld als trainer." in page


def test_scenario_library_filters_by_language_and_links_to_the_call(world):
    client, _ = client_as(world, "anna")
    every = client.get("/scenarios").text
    assert "Derde keer bellen over de visite" in every and 'href="/scenarios/en-abusive-caller"' in every
    english = client.get("/scenarios?language=en").text
    assert 'href="/scenarios/en-abusive-caller"' in english and f'href="/scenarios/{SCENARIO}"' not in english
    one = client.get(f"/scenarios/{SCENARIO}").text
    assert "Meneer De Vries" in one and "Stiltes laten vallen" in one
    assert f'href="/call/{SCENARIO}"' in one and "Je hebt dit gesprek 2 keer geoefend." in one
    assert client.get("/scenarios/no-such-scenario").status_code == 404


def test_my_calls_lists_only_my_own(world):
    client, _ = client_as(world, "anna")
    page = client.get("/calls").text
    for name, call_id in world["ids"].items():
        assert (f'href="/calls/{call_id}"' in page) == name.startswith("anna"), name


# --------------------------------------------------------------------------- a call's report and audio


def test_my_call_shows_verdicts_with_the_trainers_review_turn_audio_and_debrief(world):
    client, _ = client_as(world, "anna")
    call_id = world["ids"]["anna-1"]
    page = client.get(f"/calls/{call_id}").text
    row = re.search(r'<tr class="verdict-(\w+)" id="item-no-interrupt">(.*?)</tr>', page, re.DOTALL)
    assert row is not None and row.group(1) == "pass"  # the trainer's verdict counts
    assert "nog niet" in row.group(2) and "alleen een &#39;hm&#39;, geen onderbreking" in row.group(2)
    assert f'src="/calls/{call_id}/audio/trainee#t=0.10,0.90"' in page
    assert f'src="/calls/{call_id}/audio/caller#t=1.00,1.90"' in page
    assert 'id="debrief-title"' in page and "Praat erover" in page and "Neem vijf minuten" in page
    assert access_log(world["db"]) == []  # her own call: nothing to log


def test_audio_answers_ranges(world):
    client, _ = client_as(world, "anna")
    url = f"/calls/{world['ids']['anna-1']}/audio/trainee"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.content[:4] == b"RIFF"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    mixed = client.get(f"/calls/{world['ids']['anna-1']}/audio/call")
    assert mixed.status_code == 200 and mixed.content[:4] == b"OggS"
    assert client.get(f"/calls/{world['ids']['anna-1']}/audio/calibration").status_code == 404


def test_the_full_report_allows_only_its_own_inline_style_and_script(world):
    client, _ = client_as(world, "anna")
    call_id = world["ids"]["anna-1"]
    page = client.get(f"/calls/{call_id}/report")
    assert page.status_code == 200 and f'src="/calls/{call_id}/audio/call"' in page.text
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    for tag in ("style", "script"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page.text, re.DOTALL).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "geen onderbreking" in page.text  # the trainer's review is on it


def _call_urls(call_id: int) -> list[str]:
    return [f"/calls/{call_id}", f"/calls/{call_id}/report", f"/calls/{call_id}/audio/caller",
            f"/calls/{call_id}/audio/trainee", f"/calls/{call_id}/audio/call"]


def test_another_trainees_call_report_and_audio_are_not_found(world):
    client, _ = client_as(world, "bert")
    for url in _call_urls(world["ids"]["anna-1"]):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Niet gevonden" in response.text and "uitleg bij" not in response.text
    client, _ = client_as(world, "tina")  # a trainer, but not of anna's group
    assert all(client.get(url).status_code == 404 for url in _call_urls(world["ids"]["anna-1"]))
    assert access_log(world["db"]) == []


def test_the_groups_trainer_sees_the_call_and_the_access_log_says_so(world):
    client, _ = client_as(world, "tom")
    call_id = world["ids"]["anna-1"]
    for url in _call_urls(call_id):
        assert client.get(url).status_code == 200, url
    client.get(f"/calls/{call_id}/audio/trainee", headers={"Range": "bytes=100-199"})  # seeking: not a new listen
    assert client.get(f"/calls/{world['ids']['bert-1']}").status_code == 404  # bert is not in his group
    page = client.get(f"/calls/{call_id}").text
    assert "Cursist" in page and "anna" in page
    assert access_log(world["db"]) == sorted(
        [("tom", "report", call_id)] * 3 + [("tom", "recording", call_id)] * 3)
    admin, _ = client_as(world, "ada")
    assert admin.get(f"/calls/{world['ids']['bert-1']}").status_code == 200
    assert ("ada", "report", world["ids"]["bert-1"]) in access_log(world["db"])


# --------------------------------------------------------------------------- progress


def test_progress_shows_items_and_figures_over_attempts(world):
    client, _ = client_as(world, "anna")
    page = client.get("/progress").text
    assert "Mijn voortgang" in page and 'data-item="no-interrupt"' in page and '<svg class="strip"' in page
    assert client.get(f"/progress?scenario={SCENARIO}").status_code == 200
    empty, _ = client_as(world, "tom")
    assert "nog geen gesprekken" in empty.get("/progress").text


# --------------------------------------------------------------------------- forget my data


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_forget_needs_the_confirmation_and_the_form_token(world):
    client, csrf = client_as(world, "anna")
    page = client.get("/forget").text
    assert "Je oefengesprekken (2)" in page and "Je ijkopname" in page and "Je account" in page
    refused = client.post("/forget", data={"csrf_token": csrf})
    assert refused.status_code == 400 and 'href="#confirm"' in refused.text
    assert client.post("/forget", data={"confirm": "yes"}).status_code == 403
    assert (world["calls"] / "anna-1").is_dir() and len(_rows(world["db"], "SELECT id FROM calls")) == 3


def test_forget_removes_my_calls_recordings_calibration_and_rows_and_keeps_others(world):
    client, csrf = client_as(world, "anna")
    anna_ids = [world["ids"]["anna-1"], world["ids"]["anna-2"]]
    done = client.post("/forget", data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/forget?done=trainee-forgotten"
    after = client.get(done.headers["location"]).text
    assert "zijn gewist" in after and "Er is niets van je bewaard" in after
    assert not (world["calls"] / "anna-1").exists() and not (world["calls"] / "anna-2").exists()
    assert not world["calibration"].exists()
    db = world["db"]
    assert _rows(db, "SELECT id FROM calls WHERE trainee = 'anna'") == []
    marks = ", ".join("?" * len(anna_ids))
    for table in ("verdicts", "figures", "reviews"):
        assert _rows(db, f"SELECT call_id FROM {table} WHERE call_id IN ({marks})", *anna_ids) == [], table
    assert _rows(db, "SELECT name FROM users WHERE name = 'anna'") == [("anna",)]  # the account stays
    assert client.get("/").status_code == 200  # and she is still signed in
    assert (world["calls"] / "bert-1" / "trainee.wav").is_file()
    assert _rows(db, "SELECT trainee FROM calls") == [("bert",)]
    bert, _ = client_as(world, "bert")
    assert bert.get(f"/calls/{world['ids']['bert-1']}").status_code == 200
    for url in _call_urls(anna_ids[0]):
        assert client.get(url).status_code == 404


def test_forget_is_for_trainees_only(world):
    client, csrf = client_as(world, "tom")
    assert client.get("/forget").status_code == 403
    assert client.post("/forget", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 403
    assert len(_rows(world["db"], "SELECT id FROM calls")) == 3
