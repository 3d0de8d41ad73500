"""The trainer's pages and the admin's settings with Starlette's TestClient on a real SQLite file and
real call directories: the group overview and a trainee's page (only the trainees of the trainer's
groups; 404 for others), the "ready" mark, a trainer's verdict on a call (and the trainee seeing
it), the scenario editor (the validator's line and message, a spoken preview, saving as a new
scenario that loads), importing a recording (bad and huge uploads refused with a message, nothing
changed), and the app settings with removing old calls."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers import history_with_accounts
from starlette.testclient import TestClient

from roleplay.caller.scenario import InputError, list_scenarios, load_scenario, scenario_from_text, scenarios_dir
from roleplay.core.advice import ADVICE_IDS
from roleplay.core.paths import saved_scenarios_dir
from roleplay.history.accounts import Accounts
from roleplay.history.store import History, record_call
from roleplay.recording.calldir import CallWriter
from roleplay.web import auth, server, trainer
from roleplay.web.settings import WebSettings

RATE_HZ = 16000
USERS = {"ada": "admin", "tom": "trainer", "tina": "trainer", "anna": "trainee", "bert": "trainee"}
SCENARIO = "nl-visite-derde-keer"
SHIPPED = scenarios_dir() / f"{SCENARIO}.yaml"


def make_call(root: Path, db: Path, trainee: str, name: str, started_utc: str, *,
              failed: tuple[str, ...] = ()) -> int:
    """A real call directory (both tracks, an event, analysis.json) recorded in the history."""
    directory = root / name
    t = np.arange(RATE_HZ) / RATE_HZ
    with CallWriter(directory, rate_hz=RATE_HZ, meta={"trainee": trainee, "mode": "test", "scenario": SCENARIO}) as w:
        w.append("caller", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        w.append("trainee", (0.1 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
        w.event("call-start", t_s=0.0, anger=6.5)
    data = {
        "schema": "roleplay-analysis", "language": "nl", "duration_s": 1.0, "source": {"call_dir": str(directory)},
        "call": {"call_id": name, "scenario": SCENARIO, "trainee": trainee, "outcome": "calmed", "mode": "test",
                 "intensity": "realistic"},
        "turns": [{"index": 0, "speaker": "trainee", "start_s": 0.1, "end_s": 0.9,
                   "text": "Goedenavond, huisartsenpost.", "phrases": [], "abuse": []}],
        "anger": [{"t_s": 0.0, "anger": 6.5}], "baseline": {"source": "calibration"}, "warnings": [],
        "advice": [{"id": i, "verdict": "fail" if i in failed else "pass", "figures": {}, "turns": [0],
                    "feedback": f"uitleg bij {i}"} for i in ADVICE_IDS],
    }
    (directory / "analysis.json").write_text(json.dumps(data), encoding="utf-8")
    return record_call(data, directory, db, started_utc=started_utc)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """Users, the group "avond" (anna, with trainer tom; bert is in no group of tom's), and calls."""
    root = tmp_path_factory.mktemp("trainer")
    path = history_with_accounts(root / "history.sqlite3", USERS,
                                 groups={"avond": (("anna",), ("tom",)), "nacht": (("bert",), ("tina",))})
    calls = {f"anna{k}": make_call(root / "calls", path, "anna", f"anna{k}", f"2026-11-0{k}T09:00:00+00:00",
                                   failed=("no-interrupt",) if k == 1 else ())
             for k in range(1, 5)}
    calls["bert1"] = make_call(root / "calls", path, "bert", "bert1", "2026-11-01T10:00:00+00:00")
    calls["old"] = make_call(root / "calls", path, "bert", "old", "2020-01-01T10:00:00+00:00")
    return root, calls


@pytest.fixture
def db(prepared, tmp_path) -> Path:
    """A fresh copy of the history (and of the call directories it points to) for each test."""
    root, _ = prepared
    shutil.copytree(root / "calls", tmp_path / "calls")
    copy = Path(shutil.copy(root / "history.sqlite3", tmp_path / "history.sqlite3"))
    with History(copy) as history, history.write() as conn:
        conn.execute("UPDATE calls SET call_dir = replace(call_dir, ?, ?)", (str(root), str(tmp_path)))
    return copy


@pytest.fixture
def calls(prepared) -> dict[str, int]:
    return prepared[1]


@pytest.fixture
def saved_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "saved-scenarios"
    monkeypatch.setenv("ROLEPLAY_SAVED_SCENARIOS_DIR", str(directory))
    assert saved_scenarios_dir() == directory
    return directory


def client_for(db: Path, tmp_path: Path, name: str | None = None, **settings) -> tuple[TestClient, str]:
    app = server.create_app(WebSettings(db=db, calls_dir=tmp_path / "new-calls", **settings))
    client = TestClient(app, follow_redirects=False)
    csrf = ""
    if name:
        with History(db) as history:
            acc = Accounts(history)
            user = acc.user(name)
            assert user is not None
            token, session = acc.start_session(user)
        client.cookies.set(auth.SESSION_COOKIE, token)
        csrf = session.csrf_token
    return client, csrf


def plain(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


# --------------------------------------------------------------------------- the group and one trainee


def test_the_group_overview_shows_readiness_per_trainee_and_item_in_words_and_signs(db, tmp_path):
    client, _ = client_for(db, tmp_path, "tom")
    page = client.get("/group")
    assert page.status_code == 200
    assert 'href="/trainees/anna"' in page.text and "bert" not in page.text  # not in tom's groups
    row = plain(re.search(r'<tr>\s*<th scope="row"><a href="/trainees/anna".*?</tr>', page.text, re.S).group(0))
    assert "Nog niet klaar" in row  # one realistic scenario practised, five not yet
    # the sign and the words, never colour alone: good in the one scenario practised, not in the five others
    assert "✘ nog niet (1 van 6 scenario's)" in row and "– nog niet geoefend" in row
    assert "✔ goed: vaak genoeg goed gedaan" in plain(page.text)  # the legend
    assert "Niet onderbreken" in page.text  # the advice item by its name
    admin, _ = client_for(db, tmp_path, "ada")
    assert 'href="/trainees/bert"' in admin.get("/group").text


def test_a_trainer_sees_a_trainee_of_their_group_and_404_for_any_other(db, tmp_path, calls):
    client, csrf = client_for(db, tmp_path, "tom")
    page = client.get("/trainees/anna")
    assert page.status_code == 200
    assert f'href="/calls/{calls["anna4"]}"' in page.text
    assert "id='items'" in page.text and "<svg" in page.text  # the progress tables and strips
    assert client.get("/trainees/bert").status_code == 404
    assert client.get("/trainees/nobody").status_code == 404
    refused = client.post("/trainees/bert/ready", data={"csrf_token": csrf, "ready": "1", "note": "prima"})
    assert refused.status_code == 404
    review = {"csrf_token": csrf, "item": "no-interrupt", "verdict": "pass", "comment": "goed genoeg"}
    assert client.post(f"/calls/{calls['bert1']}/review", data=review).status_code == 404
    with History(db) as history:
        assert Accounts(history).readiness_mark("bert") is None
        assert history.reviews(calls["bert1"]) == []
        log = Accounts(history).access_log()
    assert [(e.who, e.action, e.target) for e in log] == [("tom", "progress", "/trainees/anna")]


def test_marking_a_trainee_ready_is_stored_with_the_note(db, tmp_path):
    client, csrf = client_for(db, tmp_path, "tom")
    assert client.post("/trainees/anna/ready", data={"csrf_token": csrf, "note": "x"}).status_code == 400
    done = client.post("/trainees/anna/ready", data={"csrf_token": csrf, "ready": "1",
                                                     "note": "Rustig en duidelijk, ook bij de scheldende beller."})
    assert done.status_code == 303 and done.headers["location"] == "/trainees/anna?done=trainer-marked"
    with History(db) as history:
        mark = trainer.readiness_mark(Accounts(history), "anna")
    assert mark is not None and mark.ready and mark.marked_by == "tom" and mark.note.startswith("Rustig en duidelijk")
    page = plain(client.get(done.headers["location"]).text)
    assert "tom vond deze cursist klaar op" in page and "Toelichting: Rustig en duidelijk" in page


# --------------------------------------------------------------------------- a trainer's verdict on a call


def test_a_trainers_verdict_overrides_the_call_and_the_trainee_sees_it(db, tmp_path, calls):
    call_id = calls["anna1"]  # no-interrupt failed automatically
    client, csrf = client_for(db, tmp_path, "tom")
    call_page = client.get(f"/calls/{call_id}").text  # the form is on the call's page
    assert f'action="/calls/{call_id}/review"' in call_page and "Niet onderbreken (nu: nog niet)" in call_page
    form = {"csrf_token": csrf, "item": "no-interrupt", "verdict": "pass"}
    refused = client.post(f"/calls/{call_id}/review", data=form)
    assert refused.status_code == 400 and "Schrijf een toelichting." in refused.text
    assert f'action="/calls/{call_id}/review"' in refused.text  # the form again, to put it right
    comment = "Ze wachtte tot de beller uitgesproken was; de meting telde een kuch mee."
    done = client.post(f"/calls/{call_id}/review", data={**form, "comment": comment})
    assert done.status_code == 303 and done.headers["location"] == f"/calls/{call_id}?done=trainer-review-saved"
    with History(db) as history:
        (review,) = history.reviews(call_id)
        row = next(r for r in history.calls(trainee="anna") if r.id == call_id)
    assert (review["item"], review["verdict"], review["note"], review["by"]) == ("no-interrupt", "pass", comment, "tom")
    assert row.verdict("no-interrupt") == "pass"
    trainee, _ = client_for(db, tmp_path, "anna")
    seen = trainee.get(f"/calls/{call_id}")
    assert seen.status_code == 200 and comment in seen.text and "tom" in seen.text
    assert '/review"' not in seen.text  # no verdict form for the trainee


def test_the_review_form_partial_renders_for_a_trainer(db, tmp_path, calls):
    from starlette.requests import Request

    from roleplay.web.render import render

    with History(db) as history:
        acc = Accounts(history)
        user = acc.user("tom")
        _, session = acc.start_session(user)
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b"",
                 "app": server.create_app(WebSettings(db=db))}
        request = Request(scope)
        request.state.accounts, request.state.session = acc, session
        context = trainer.review_form_context(request, calls["anna1"])
        html = render(request, "trainer_review_form.html", context).body.decode()
    assert f'action="/calls/{calls["anna1"]}/review"' in html and 'name="comment"' in html
    assert "Niet onderbreken (nu: nog niet)" in html


# --------------------------------------------------------------------------- the scenario editor


def broken_scenario() -> tuple[str, int, str]:
    """The shipped scenario with its anger start out of range, the line the validator names, and the
    message a Dutch trainer sees (the CLI's line stays English)."""
    text = SHIPPED.read_text(encoding="utf-8").replace("anger: {start: 6.5,", "anger: {start: 12,")
    with pytest.raises(InputError) as caught:
        scenario_from_text(text, path=trainer.EDITOR_SOURCE)
    found = re.match(r"scenario:(\d+): anger\.start: expected a number from 0 to 10, got 12$", str(caught.value))
    return text, int(found.group(1)), "anger.start: verwacht een getal van 0 tot 10, maar er staat 12."


def test_validation_gives_the_validators_line_and_message(db, tmp_path):
    client, csrf = client_for(db, tmp_path, "tom")
    text, line, message = broken_scenario()
    result = client.post("/api/scenarios/validate", json={"text": text}, headers={auth.CSRF_HEADER: csrf}).json()
    assert result == {"ok": False, "line": line, "message": message, "field": "anger.start", "code": "number_range"}
    assert line == 11
    syntax = client.post("/api/scenarios/validate", json={"text": "id: [broken\n"},
                         headers={auth.CSRF_HEADER: csrf}).json()
    assert syntax["ok"] is False and syntax["line"] == 2 and syntax["code"] == "yaml_unclosed"
    assert syntax["message"].startswith("een haakje of aanhalingsteken wordt niet gesloten.")
    good = client.post("/api/scenarios/validate", json={"text": SHIPPED.read_text(encoding="utf-8")},
                       headers={auth.CSRF_HEADER: csrf}).json()
    assert good["ok"] is True and good["id"] == SCENARIO and good["voice"]
    assert client.post("/api/scenarios/validate", json={"text": "x"}).status_code == 403  # no CSRF token


def test_a_broken_scenario_is_not_saved_and_the_page_says_why(db, tmp_path, saved_dir):
    client, csrf = client_for(db, tmp_path, "tom")
    text, line, message = broken_scenario()
    text = text.replace(f"id: {SCENARIO}", "id: nl-mijn-visite")
    refused = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": text})
    assert refused.status_code == 400
    assert f"Regel {line}: {message}" in refused.text.replace("&#39;", "'")
    assert "nl-mijn-visite" in refused.text  # the text stays on the page, to put it right
    assert not saved_dir.exists() or not list(saved_dir.iterdir())


def test_saving_makes_a_new_scenario_that_loads_and_never_overwrites(db, tmp_path, saved_dir):
    client, csrf = client_for(db, tmp_path, "tom")
    original = SHIPPED.read_text(encoding="utf-8")
    shipped = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": original})
    assert shipped.status_code == 400 and "er is al een scenario met de naam" in shipped.text
    text = original.replace(f"id: {SCENARIO}", "id: nl-visite-oefening-tom")
    done = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": text})
    assert done.status_code == 303
    assert done.headers["location"] == "/scenarios/editor?from=nl-visite-oefening-tom&done=trainer-scenario-saved"
    assert (saved_dir / "nl-visite-oefening-tom.yaml").read_text(encoding="utf-8") == text
    assert load_scenario("nl-visite-oefening-tom").title == load_scenario(SCENARIO).title
    assert "nl-visite-oefening-tom" in [s.id for s in list_scenarios()]
    again = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": text.replace("title:", "title: X")})
    assert again.status_code == 400 and (saved_dir / "nl-visite-oefening-tom.yaml").read_text(encoding="utf-8") == text
    assert SHIPPED.read_text(encoding="utf-8") == original
    page = client.get(done.headers["location"])
    assert page.status_code == 200 and "Het scenario is opgeslagen" in page.text
    assert "media-src 'self' blob:" in page.headers["content-security-policy"]


def test_the_preview_is_real_wav_audio_in_the_scenarios_voice(db, tmp_path):
    client, csrf = client_for(db, tmp_path, "tom")
    text = SHIPPED.read_text(encoding="utf-8")
    answer = client.post("/api/scenarios/preview", json={"text": text, "line": "Waar blijft die dokter nou?",
                                                         "anger": 8}, headers={auth.CSRF_HEADER: csrf})
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    samples, rate_hz = soundfile.read(io.BytesIO(answer.content))
    assert answer.content[:4] == b"RIFF" and rate_hz > 8000 and len(samples) / rate_hz > 0.5
    assert np.abs(samples).max() > 0.05  # speech, not silence
    broken, line, message = broken_scenario()
    refused = client.post("/api/scenarios/preview", json={"text": broken, "anger": 3},
                          headers={auth.CSRF_HEADER: csrf})
    assert refused.status_code == 400 and refused.json()["line"] == line and refused.json()["message"] == message


# --------------------------------------------------------------------------- importing a recording


def test_an_upload_that_is_not_audio_is_refused_with_a_message(db, tmp_path, saved_dir):
    client, csrf = client_for(db, tmp_path, "tom")
    files = {"stereo": ("gesprek.wav", b"dit is geen geluid, maar tekst\n" * 50, "audio/wav")}
    refused = client.post("/scenarios/import", data={"csrf_token": csrf, "scenario_id": "nl-incident-maart"},
                          files=files)
    assert refused.status_code == 400
    assert "Dit bestand is geen geluidsopname die we kunnen lezen." in refused.text
    mono = io.BytesIO()
    soundfile.write(mono, np.zeros(RATE_HZ, dtype=np.float32), RATE_HZ, format="WAV")
    refused = client.post("/scenarios/import", data={"csrf_token": csrf, "scenario_id": "nl-incident-maart"},
                          files={"stereo": ("mono.wav", mono.getvalue(), "audio/wav")})
    assert refused.status_code == 400 and "maar één kanaal" in refused.text
    assert not saved_dir.exists()


def _multipart(csrf: str, size_bytes: int) -> tuple[bytes, str]:
    boundary = "grens123"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"scenario_id\"\r\n\r\nnl-groot\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"stereo\"; filename=\"groot.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    return head + b"\0" * size_bytes + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_huge_upload_is_stopped_while_it_streams_in(db, tmp_path, saved_dir, monkeypatch):
    client, csrf = client_for(db, tmp_path, "tom", upload_limit_bytes=100_000)
    body, content_type = _multipart(csrf, 1_000_000)
    refused = client.post("/scenarios/import", content=body, headers={"Content-Type": content_type})
    assert refused.status_code == 413
    assert "Bestand te groot" in refused.text
    assert "Er is niets opgeslagen of veranderd." in refused.text

    # without a Content-Length (chunked): counted as it arrives, the form is never parsed
    parsed = []
    monkeypatch.setattr(trainer, "_save_upload", lambda *a: parsed.append(a))
    chunks = [body[i:i + 10_000] for i in range(0, len(body), 10_000)]
    refused = client.post("/scenarios/import", content=iter(chunks), headers={"Content-Type": content_type})
    assert refused.status_code == 413 and "Er is niets opgeslagen of veranderd." in refused.text
    assert parsed == [] and not saved_dir.exists()


def test_the_upload_limit_message_names_the_limit(db, tmp_path):
    client, csrf = client_for(db, tmp_path, "tom", upload_limit_bytes=2_000_000)
    body, content_type = _multipart(csrf, 3_000_000)
    refused = client.post("/scenarios/import", content=body, headers={"Content-Type": content_type})
    assert refused.status_code == 413 and "hoogstens 2 MB per keer" in refused.text
    assert "hoogstens 2 MB per keer" in client.get("/scenarios/import").text.replace("Hoogstens", "hoogstens")


# --------------------------------------------------------------------------- the admin's settings


def test_settings_round_trip(db, tmp_path):
    client, csrf = client_for(db, tmp_path, "ada")
    page = client.get("/admin/settings").text
    assert 'name="hide_anger_meter" value="1" aria' in page  # not checked
    done = client.post("/admin/settings", data={"csrf_token": csrf, "hide_anger_meter": "1", "retention_days": "30"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/settings?done=trainer-settings-saved"
    page = client.get(done.headers["location"]).text
    assert 'value="1" checked' in page and 'value="30"' in page and "ouder dan 30 dagen" in page
    with History(db) as history:
        acc = Accounts(history)
        assert trainer.hide_anger_meter(acc) and trainer.retention_days(acc) == 30
    refused = client.post("/admin/settings", data={"csrf_token": csrf, "retention_days": "dertig"})
    assert refused.status_code == 400 and "heel aantal dagen" in refused.text
    client.post("/admin/settings", data={"csrf_token": csrf, "retention_days": ""})
    with History(db) as history:
        acc = Accounts(history)
        assert not trainer.hide_anger_meter(acc) and trainer.retention_days(acc) is None


def test_removing_old_calls_asks_first_then_removes_only_the_old_ones(db, tmp_path, calls):
    client, csrf = client_for(db, tmp_path, "ada")
    assert client.post("/admin/settings/forget", data={"csrf_token": csrf}).status_code == 400  # no retention yet
    client.post("/admin/settings", data={"csrf_token": csrf, "retention_days": "365"})
    with History(db) as history:
        old_dir = Path(history.conn.execute("SELECT call_dir FROM calls WHERE id = ?", (calls["old"],)).fetchone()[0])
    asked = client.post("/admin/settings/forget", data={"csrf_token": csrf})
    assert asked.status_code == 200
    assert "Dan worden 1 gesprekken van 1 cursisten verwijderd (ouder dan 365 dagen)" in asked.text
    assert old_dir.is_dir()  # nothing removed before the confirmation
    done = client.post("/admin/settings/forget", data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/settings?done=trainer-forgotten"
    with History(db) as history:
        left = {r.call_key for r in history.calls()}
    assert "id:old" not in left and {"id:anna1", "id:bert1"} <= left and not old_dir.exists()
