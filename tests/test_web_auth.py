"""The browser app's front door, with Starlette's TestClient on a real SQLite file: signing in and
out, rate limiting, CSRF, expiry, cookies, headers, texts, and who may open which route.

ROUTE_ACCESS below is the one list of every route and the status each kind of visitor gets. A new
route in roleplay/web/server.py ROUTES needs a line here (test_every_route_is_in_the_access_table
fails until it has one)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import history_with_accounts
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.web import auth, server
from roleplay.web.i18n import TEXTS_DIR, texts
from roleplay.web.render import TEMPLATES_DIR
from roleplay.web.settings import WebSettings

PASSWORD = "correct horse"
USERS = {"ada": "admin", "tom": "trainer", "anna": "trainee", "bert": "trainee"}
VISITORS = ("anonymous", "trainee", "trainer", "admin")
SIGNED_IN_AS = {"trainee": "anna", "trainer": "tom", "admin": "ada"}


@dataclass(frozen=True)
class RouteCase:
    method: str
    route: str  # the path as in server.ROUTES
    url: str  # a concrete URL for it
    status: tuple[int, int, int, int]  # anonymous, trainee, trainer, admin
    form: dict[str, str] = field(default_factory=dict)


# Every route x every kind of visitor. 302: sent to /login; 303: the form did its work; 400: the form
# was refused with a message; 403: not for this role; 404: no such thing (or not yours to see).
ROUTE_ACCESS: list[RouteCase] = [
    RouteCase("GET", "/", "/", (302, 200, 200, 200)),
    RouteCase("GET", "/login", "/login", (200, 302, 302, 302)),
    RouteCase("POST", "/login", "/login", (400, 400, 400, 400), {"name": "nobody", "password": "wrong-one"}),
    RouteCase("POST", "/logout", "/logout", (302, 303, 303, 303)),
    RouteCase("GET", "/settings", "/settings", (302, 200, 200, 200)),
    RouteCase("POST", "/settings/language", "/settings/language", (302, 303, 303, 303), {"language": "nl"}),
    RouteCase("POST", "/settings/password", "/settings/password", (302, 400, 400, 400),
              {"current_password": "not it", "new_password": "whatever-new", "repeat_password": "whatever-new"}),
    RouteCase("GET", "/admin/users", "/admin/users", (302, 403, 403, 200)),
    RouteCase("POST", "/admin/users", "/admin/users", (302, 403, 403, 400), {"name": "", "role": "trainee"}),
    RouteCase("POST", "/admin/users/{name}/role", "/admin/users/bert/role", (302, 403, 403, 303), {"role": "trainee"}),
    RouteCase("POST", "/admin/users/{name}/role", "/admin/users/nobody/role", (302, 403, 403, 404),
              {"role": "trainee"}),
    RouteCase("POST", "/admin/users/{name}/password", "/admin/users/bert/password", (302, 403, 403, 303),
              {"password": "bert-new-password"}),
    RouteCase("POST", "/admin/users/{name}/disabled", "/admin/users/bert/disabled", (302, 403, 403, 303),
              {"disabled": "0"}),
    RouteCase("GET", "/admin/groups", "/admin/groups", (302, 403, 403, 200)),
    RouteCase("POST", "/admin/groups", "/admin/groups", (302, 403, 403, 303), {"group": "avond"}),
    RouteCase("POST", "/admin/groups/{group}/trainees", "/admin/groups/avond/trainees", (302, 403, 403, 303),
              {"trainee": "anna", "action": "add"}),
    RouteCase("POST", "/admin/groups/{group}/trainees", "/admin/groups/nogroup/trainees", (302, 403, 403, 404),
              {"trainee": "anna", "action": "add"}),
    RouteCase("POST", "/admin/groups/{group}/trainers", "/admin/groups/avond/trainers", (302, 403, 403, 303),
              {"trainer": "tom", "action": "add"}),
    RouteCase("GET", "/admin/access-log", "/admin/access-log", (302, 403, 403, 200)),
    # the trainer's pages and the admin's settings (tests/test_web_trainer.py has the group rules with calls;
    # here tom looks after anna, not bert, and there are no calls)
    RouteCase("GET", "/group", "/group", (302, 403, 200, 200)),
    RouteCase("GET", "/trainees/{name}", "/trainees/anna", (302, 403, 200, 200)),
    RouteCase("GET", "/trainees/{name}", "/trainees/bert", (302, 403, 404, 200)),
    RouteCase("POST", "/trainees/{name}/ready", "/trainees/anna/ready", (302, 403, 303, 303), {"ready": "1"}),
    RouteCase("POST", "/trainees/{name}/ready", "/trainees/bert/ready", (302, 403, 404, 303), {"ready": "1"}),
    RouteCase("POST", "/calls/{call_id:int}/review", "/calls/999/review", (302, 403, 404, 404),
              {"item": "no-interrupt", "verdict": "pass", "comment": "goed"}),
    RouteCase("GET", "/scenarios/editor", "/scenarios/editor", (302, 403, 200, 200)),
    RouteCase("POST", "/scenarios/editor", "/scenarios/editor", (302, 403, 400, 400), {"text": "id: [kapot"}),
    RouteCase("POST", "/api/scenarios/validate", "/api/scenarios/validate", (302, 403, 400, 400)),  # not JSON
    RouteCase("POST", "/api/scenarios/preview", "/api/scenarios/preview", (302, 403, 400, 400)),
    RouteCase("GET", "/scenarios/import", "/scenarios/import", (302, 403, 200, 200)),
    RouteCase("POST", "/scenarios/import", "/scenarios/import", (302, 403, 400, 400), {"scenario_id": "nl-x"}),
    RouteCase("GET", "/admin/settings", "/admin/settings", (302, 403, 403, 200)),
    RouteCase("POST", "/admin/settings", "/admin/settings", (302, 403, 403, 303), {"retention_days": "30"}),
    RouteCase("POST", "/admin/settings/forget", "/admin/settings/forget", (302, 403, 403, 400)),
    # the trainee's pages (tests/test_web_trainee.py has whose call is whose; here there are no calls)
    RouteCase("GET", "/scenarios", "/scenarios", (302, 200, 200, 200)),
    RouteCase("GET", "/scenarios/{scenario_id}", "/scenarios/nl-visite-derde-keer", (302, 200, 200, 200)),
    RouteCase("GET", "/scenarios/{scenario_id}", "/scenarios/no-such-scenario", (302, 404, 404, 404)),
    RouteCase("GET", "/calls", "/calls", (302, 200, 200, 200)),
    RouteCase("GET", "/calls/{call_id:int}", "/calls/999", (302, 404, 404, 404)),
    RouteCase("GET", "/calls/{call_id:int}/report", "/calls/999/report", (302, 404, 404, 404)),
    RouteCase("GET", "/calls/{call_id:int}/audio/{track}", "/calls/999/audio/caller", (302, 404, 404, 404)),
    RouteCase("GET", "/progress", "/progress", (302, 200, 200, 200)),
    RouteCase("GET", "/forget", "/forget", (302, 200, 403, 403)),
    RouteCase("POST", "/forget", "/forget", (302, 400, 403, 403)),
    # the live call, calibration and devices (tests/test_web_live.py); nothing here starts the devices
    RouteCase("GET", "/call/{scenario_id}", "/call/nl-visite-derde-keer", (302, 200, 200, 200)),
    RouteCase("GET", "/call/{scenario_id}", "/call/no-such-scenario", (302, 404, 404, 404)),
    RouteCase("POST", "/call/{scenario_id}/start", "/call/no-such-scenario/start", (302, 404, 404, 404)),
    RouteCase("POST", "/call/hangup", "/call/hangup", (302, 409, 409, 409)),
    RouteCase("GET", "/call/events", "/call/events", (302, 200, 200, 200)),
    # a call with the browser's microphone (roleplay/web/browser_call.py; its WebSocket: test_browser_call.py)
    RouteCase("GET", "/call/{scenario_id}/browser", "/call/nl-visite-derde-keer/browser", (302, 200, 200, 200)),
    RouteCase("GET", "/call/{scenario_id}/browser", "/call/no-such-scenario/browser", (302, 404, 404, 404)),
    RouteCase("POST", "/call/{scenario_id}/browser/start", "/call/no-such-scenario/browser/start",
              (302, 404, 404, 404)),
    RouteCase("GET", "/calibration", "/calibration", (302, 200, 200, 200)),
    RouteCase("POST", "/calibration/record", "/calibration/record", (302, 400, 400, 400), {"language": "xx"}),
    RouteCase("GET", "/calibration/recording", "/calibration/recording", (302, 404, 404, 404)),
    RouteCase("GET", "/settings/devices", "/settings/devices", (302, 200, 200, 200)),
    RouteCase("POST", "/settings/devices", "/settings/devices", (302, 303, 303, 303),
              {"input_device": "", "output_device": ""}),
    RouteCase("POST", "/settings/devices/test", "/settings/devices/test", (302, 400, 400, 400),
              {"input_device": "no-such-device-here"}),
    RouteCase("GET", "/static/{path}", "/static/style.css", (200, 200, 200, 200)),
    RouteCase("GET", "/favicon.ico", "/favicon.ico", (301, 301, 301, 301)),
]


@pytest.fixture(scope="module")
def prepared_db(tmp_path_factory) -> Path:
    """The users and a group, made once (hashing their passwords is the slow part)."""
    return history_with_accounts(tmp_path_factory.mktemp("web") / "history.sqlite3", USERS, password=PASSWORD,
                                 groups={"avond": (("anna",), ("tom",))})


@pytest.fixture
def db(prepared_db, tmp_path) -> Path:
    """A fresh copy of the prepared database for each test."""
    return Path(shutil.copy(prepared_db, tmp_path / "history.sqlite3"))


def client_for(db: Path, tmp_path: Path, *, https: bool = False, secure_cookies: bool = False) -> TestClient:
    settings = WebSettings(db=db, calls_dir=tmp_path / "calls", secure_cookies=secure_cookies)
    base = "https://testserver" if https else "http://testserver"
    return TestClient(server.create_app(settings), base_url=base, follow_redirects=False)


@pytest.fixture
def client(db, tmp_path) -> TestClient:
    return client_for(db, tmp_path)


@pytest.fixture(autouse=True)
def _own_user_data(tmp_path, monkeypatch) -> None:
    """Calibrations (user data) of this machine's users stay out of the tests (/calibration/recording)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))


def sign_in_directly(client: TestClient, db: Path, name: str) -> str:
    """A session made straight in the database (no password hashing: fast); returns its CSRF token."""
    with History(db) as history:
        acc = Accounts(history)
        user = acc.user(name)
        assert user is not None
        token, session = acc.start_session(user)
    client.cookies.set(auth.SESSION_COOKIE, token)
    return session.csrf_token


def login_token(client: TestClient) -> str:
    client.cookies.delete(auth.LOGIN_COOKIE)
    assert client.get("/login").status_code == 200
    return client.cookies[auth.LOGIN_COOKIE]


def sign_in(client: TestClient, name: str, password: str, **extra: str) -> Response:
    token = login_token(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, **extra})


def page_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# --------------------------------------------------------------------------- signing in and out


def test_sign_in_with_the_right_password(client):
    done = sign_in(client, "anna", PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "Welkom, anna" in home.text and '<html lang="nl">' in home.text


def test_a_wrong_password_is_told_plainly_and_gives_no_session(client):
    done = sign_in(client, "anna", "not the password")
    assert done.status_code == 400
    assert "De naam of het wachtwoord klopt niet." in done.text
    assert auth.SESSION_COOKIE not in client.cookies
    assert client.get("/").status_code == 302


def test_the_sixth_try_after_five_wrong_passwords_is_slowed(client):
    for _ in range(5):
        assert sign_in(client, "anna", "not the password").status_code == 400
    slowed = sign_in(client, "anna", PASSWORD)  # even the right password waits
    assert slowed.status_code == 429
    assert int(slowed.headers["Retry-After"]) > 0
    assert re.search(r"Wacht \d+ seconden", slowed.text)
    assert auth.SESSION_COOKIE not in client.cookies


def test_sign_in_goes_back_to_the_page_asked_for_but_never_elsewhere(client):
    assert client.get("/settings").headers["location"] == "/login?next=%2Fsettings"
    assert sign_in(client, "anna", PASSWORD, next="/settings").headers["location"] == "/settings"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        assert sign_in(client, "anna", PASSWORD, next=target).headers["location"] == "/"


def test_sign_out_ends_the_session_for_good(client, db):
    csrf = sign_in_directly(client, db, "anna")
    token = client.cookies[auth.SESSION_COOKIE]
    done = client.post("/logout", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    client.cookies.set(auth.SESSION_COOKIE, token)  # someone kept the old cookie
    assert client.get("/").status_code == 302


def test_an_expired_session_goes_to_sign_in(client, db):
    sign_in_directly(client, db, "ada")
    with History(db) as history, history.write() as conn:
        conn.execute("UPDATE web_sessions SET expires_utc = '2000-01-01T00:00:00+00:00'")
    gone = client.get("/admin/users")
    assert gone.status_code == 302 and gone.headers["location"] == "/login?next=%2Fadmin%2Fusers"


# --------------------------------------------------------------------------- CSRF


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(client, db):
    sign_in_directly(client, db, "ada")
    form = {"name": "mallory", "role": "admin", "password": "long-enough", "language": "nl"}
    for bad in ({}, {"csrf_token": "guessed"}):
        refused = client.post("/admin/users", data={**form, **bad})
        assert refused.status_code == 403 and "Formulier verlopen" in refused.text
        assert "Traceback" not in refused.text
    with History(db) as history:
        assert Accounts(history).user("mallory") is None


def test_fetch_may_send_the_csrf_token_as_a_header(client, db):
    csrf = sign_in_directly(client, db, "anna")
    done = client.post("/settings/language", data={"language": "en"}, headers={auth.CSRF_HEADER: csrf})
    assert done.status_code == 303
    assert '<html lang="en">' in client.get("/").text


def test_the_sign_in_form_needs_its_own_token(client):
    refused = client.post("/login", data={"name": "anna", "password": PASSWORD})
    assert refused.status_code == 403 and auth.SESSION_COOKIE not in client.cookies


# --------------------------------------------------------------------------- cookies and headers


def _set_cookie(response: Response, name: str) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}="))


@pytest.mark.parametrize(("https", "secure_cookies", "secure"), [(False, False, False), (True, False, True),
                                                                  (False, True, True)])
def test_cookie_flags(db, tmp_path, https, secure_cookies, secure):
    client = client_for(db, tmp_path, https=https, secure_cookies=secure_cookies)
    cookies = [_set_cookie(client.get("/login"), auth.LOGIN_COOKIE)]
    if https or not secure:  # a Secure cookie does not come back over plain HTTP (a proxy's HTTPS in real use)
        cookies.append(_set_cookie(sign_in(client, "anna", PASSWORD), auth.SESSION_COOKIE))
    for cookie in (c.lower() for c in cookies):
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert ("secure" in cookie.split("; ")) == secure


def test_security_headers(client):
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


def test_unknown_pages_are_a_plain_not_found(client):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Niet gevonden" in missing.text


# --------------------------------------------------------------------------- every route x every role


@pytest.mark.parametrize("case", ROUTE_ACCESS, ids=lambda c: f"{c.method} {c.url}")
def test_route_access(db, tmp_path, case):
    for visitor, expected in zip(VISITORS, case.status, strict=True):
        client = client_for(db, tmp_path)
        form = dict(case.form)
        if visitor in SIGNED_IN_AS:
            form["csrf_token"] = sign_in_directly(client, db, SIGNED_IN_AS[visitor])
        elif case.method == "POST" and case.url == "/login":
            form["csrf_token"] = login_token(client)
        response = client.request(case.method, case.url, data=form or None)
        assert response.status_code == expected, f"{visitor}: {case.method} {case.url} -> {response.status_code}"
        if expected == 302 and case.url != "/login":
            assert response.headers["location"].startswith("/login")


def _app_routes() -> set[tuple[str, str]]:
    found = set()
    for route in server.ROUTES:
        if isinstance(route, Mount):
            found.add(("GET", route.path + "/{path}"))
        elif isinstance(route, Route):
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_is_in_the_access_table():
    table = {(c.method, c.route) for c in ROUTE_ACCESS}
    assert _app_routes() - table == set(), "routes missing from ROUTE_ACCESS"
    assert table - _app_routes() == set(), "ROUTE_ACCESS names routes that do not exist"


def test_a_route_without_require_or_public_is_refused():
    async def naked(request: Request) -> Response:
        return PlainTextResponse("open")

    with pytest.raises(TypeError, match="not wrapped"):
        server.check_routes([Route("/naked", naked)])


# --------------------------------------------------------------------------- whose calls: check_call and audit


def _call(db: Path, trainee: str, key: str) -> int:
    with History(db) as history:
        return history.record({"schema": "roleplay-analysis", "call": {"call_id": key, "trainee": trainee,
                                                                       "scenario": "unscripted"}, "advice": []}, None)


def test_check_call_gives_404_to_outsiders_and_audit_logs_others(db, tmp_path, monkeypatch):
    """The helpers a call page will use, on a stand-in route."""

    @auth.require()
    async def report(request: Request) -> Response:
        call_id = int(request.path_params["call_id"])
        trainee = auth.check_call(request, call_id)
        auth.audit(request, "report", trainee=trainee, call_id=call_id)
        return PlainTextResponse(trainee)

    monkeypatch.setattr(server, "ROUTES", [*server.ROUTES, Route("/calls/{call_id:int}", report)])
    annas, berts = _call(db, "anna", "a1"), _call(db, "bert", "b1")
    expected = {"anna": {annas: 200, berts: 404, 999: 404}, "tom": {annas: 200, berts: 404},
                "bert": {annas: 404, berts: 200}, "ada": {annas: 200, berts: 200, 999: 404}}
    for name, statuses in expected.items():
        client = client_for(db, tmp_path)
        sign_in_directly(client, db, name)
        for call_id, status in statuses.items():
            assert client.get(f"/calls/{call_id}").status_code == status, (name, call_id)
    with History(db) as history:
        log = Accounts(history).access_log()
    assert sorted((e.who, e.call_id, e.action) for e in log) == [("ada", annas, "report"), ("ada", berts, "report"),
                                                                 ("tom", annas, "report")]


# --------------------------------------------------------------------------- pages and texts


def test_admin_adds_a_user_and_sees_plain_errors(client, db):
    sign_in_directly(client, db, "ada")
    csrf = page_csrf(client.get("/admin/users").text)
    form = {"csrf_token": csrf, "name": "carla", "role": "trainer", "language": "en", "password": "short"}
    refused = client.post("/admin/users", data=form)
    assert refused.status_code == 400 and "minstens 8 tekens" in refused.text and 'href="#password"' in refused.text
    done = client.post("/admin/users", data={**form, "password": "long-enough"})
    assert done.headers["location"] == "/admin/users?done=user-added"
    page = client.get(done.headers["location"]).text
    assert "De gebruiker is toegevoegd." in page and "carla" in page
    own = client.post("/admin/users/ada/disabled", data={"csrf_token": csrf, "disabled": "1"})
    assert own.status_code == 400 and "jezelf niet blokkeren" in own.text


def test_a_user_changes_their_own_password(client, db):
    sign_in(client, "anna", PASSWORD)
    csrf = page_csrf(client.get("/settings").text)
    form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": "new-password-1"}
    assert client.post("/settings/password", data={**form, "repeat_password": "typo"}).status_code == 400
    done = client.post("/settings/password", data={**form, "repeat_password": "new-password-1"})
    assert done.status_code == 303 and client.get("/settings").status_code == 200  # still signed in here
    with History(db) as history:
        assert Accounts(history).check_password("anna", "new-password-1")


def test_the_menu_follows_the_role(client, db):
    sign_in_directly(client, db, "anna")
    assert "/admin/users" not in client.get("/").text
    client.cookies.clear()
    sign_in_directly(client, db, "ada")
    assert 'href="/admin/users"' in client.get("/").text


def test_both_languages_have_the_same_texts_and_placeholders():
    nl, en = texts("nl"), texts("en")
    assert sorted(nl) == sorted(en)
    for key in nl:
        assert set(re.findall(r"{(\w+)}", nl[key])) == set(re.findall(r"{(\w+)}", en[key])), key
    assert sorted(p.name for p in TEXTS_DIR.glob("*.yaml")) == ["en.yaml", "nl.yaml"]


def test_every_text_a_template_names_exists():
    nl = texts("nl")
    for template in TEMPLATES_DIR.glob("*.html"):
        for key in re.findall(r"""\bt\('([\w.-]+)'\s*[,)]""", template.read_text(encoding="utf-8")):
            assert key in nl, f"{template.name}: t('{key}') is not in texts/nl.yaml"
