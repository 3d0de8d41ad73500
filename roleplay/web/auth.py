"""Who may do what: signing in and out, the session cookie, CSRF, roles, and which calls a user may
see.

Every handler in the route table is wrapped by `require(...)` (signed-in users, optionally of some
roles) or `public` (anyone); create_app refuses a route whose handler is neither. The wrapper opens
the history for the request (`accounts(request)`), finds the session, refuses what the user may not
do, and checks the CSRF token of every POST/PUT/PATCH/DELETE (a hidden `csrf_token` form field, or
an `X-CSRF-Token` header for fetch()).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import cast
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from roleplay.history.accounts import LANGUAGES, Accounts, Role, User, WebSession
from roleplay.history.store import History
from roleplay.web.i18n import translator
from roleplay.web.render import FormError, message_page, render, session_of
from roleplay.web.settings import WebSettings

SESSION_COOKIE = "roleplay_session"
# The sign-in form has no session yet: its CSRF token is a random cookie that the form must repeat.
LOGIN_COOKIE = "roleplay_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Access:
    """What a handler demands. roles None: anyone, signed in or not; () any signed-in user."""

    roles: tuple[Role, ...] | None


def access_of(handler: object) -> Access | None:
    """The access a handler was wrapped with (None: not wrapped, which create_app refuses)."""
    return getattr(handler, "roleplay_access", None)


def settings_of(request: Request) -> WebSettings:
    return cast(WebSettings, request.app.state.settings)


def accounts(request: Request) -> Accounts:
    """The accounts in this request's history (open while the handler runs)."""
    return cast(Accounts, request.state.accounts)


def current_user(request: Request) -> User:
    """The signed-in user (handlers behind require() always have one)."""
    session = session_of(request)
    if session is None:
        raise HTTPException(404)
    return session.user


def _wrap(handler: Handler, access: Access) -> Handler:
    @wraps(handler)
    async def guarded(request: Request) -> Response:
        # One connection per request: sqlite3 connections stay in the thread that made them.
        with History(settings_of(request).db) as history:
            request.state.accounts = Accounts(history)
            token = request.cookies.get(SESSION_COOKIE)
            session = accounts(request).session(token) if token else None
            request.state.session = session
            if access.roles is not None:
                if session is None:
                    return _to_login(request)
                if access.roles and session.user.role not in access.roles:
                    return message_page(request, 403, "status.forbidden")
            if request.method in UNSAFE_METHODS and not await _csrf_ok(request, session):
                return message_page(request, 403, "status.csrf")
            return await handler(request)

    guarded.roleplay_access = access  # type: ignore[attr-defined]
    return guarded


def require(*roles: Role) -> Callable[[Handler], Handler]:
    """For signed-in users only; with roles, only those roles (others get a 403 page). A request
    without a live session is sent to /login?next=<this page>."""
    return lambda handler: _wrap(handler, Access(tuple(roles)))


def public(handler: Handler) -> Handler:
    """Open to anyone (the sign-in page); unsafe methods still need the sign-in form's token."""
    return _wrap(handler, Access(None))


async def _csrf_ok(request: Request, session: WebSession | None) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    expected = session.csrf_token if session else request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected) and secrets.compare_digest(sent.encode(), expected.encode())


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an address elsewhere (`//host`, `https://...`)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _to_login(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if request.method in UNSAFE_METHODS else f"/login?next={quote(here, safe='')}"
    response = RedirectResponse(target, status_code=302)
    if request.cookies.get(SESSION_COOKIE):  # expired or ended: drop it
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or settings_of(request).secure_cookies


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age_s: float | None) -> None:
    response.set_cookie(name, value, max_age=None if max_age_s is None else int(max_age_s), path="/",
                        httponly=True, samesite="lax", secure=_secure(request))


# --------------------------------------------------------------------------- pages: sign in, sign out


def _login_page(request: Request, *, language: str, status_code: int = 200, error: FormError | None = None,
                name: str = "", next_path: str | None = None) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", {
        "login_token": token, "next": _safe_next(next_path or request.query_params.get("next")),
        "name": name, "errors": [error] if error else [], "other_language": "en" if language == "nl" else "nl",
    }, status_code=status_code, language=language)
    _set_cookie(request, response, LOGIN_COOKIE, token, None)
    return response


def _login_language(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else "nl"


@public
async def login_form(request: Request) -> Response:
    if session_of(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=302)
    return _login_page(request, language=_login_language(request.query_params.get("lang")))


@public
async def login(request: Request) -> Response:
    data = await request.form()
    name, password = str(data.get("name") or "").strip(), str(data.get("password") or "")
    next_path = str(data.get("next") or "")
    language = _login_language(data.get("lang"))
    t = translator(language)
    address = request.client.host if request.client else "unknown"
    result = accounts(request).login(name, password, address)
    if result.wait_s > 0:
        wait_s = math.ceil(result.wait_s)
        response = _login_page(request, language=language, status_code=429, name=name, next_path=next_path,
                               error=FormError("name", t("login.wait", seconds=wait_s)))
        response.headers["Retry-After"] = str(wait_s)
        return response
    if result.user is None:
        return _login_page(request, language=language, status_code=400, name=name, next_path=next_path,
                           error=FormError("name", t("login.wrong")))
    token, _ = accounts(request).start_session(result.user, lifetime_s=settings_of(request).session_lifetime_s)
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, token, settings_of(request).session_lifetime_s)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@require()
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts(request).end_session(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --------------------------------------------------------------------------- whose calls


def check_trainee(request: Request, trainee: str) -> None:
    """404 unless the signed-in user may see this trainee's calls (own calls for a trainee, the
    trainees of their groups for a trainer, everyone for an admin). 404, not 403, so that a URL
    does not tell whether the trainee or call exists."""
    if not accounts(request).may_see(current_user(request), trainee):
        raise HTTPException(404)


def check_call(request: Request, call_id: int) -> str:
    """The trainee of call `call_id` if the signed-in user may see it; else 404 (as check_trainee)."""
    trainee = accounts(request).call_trainee(call_id)
    if trainee is None:
        raise HTTPException(404)
    check_trainee(request, trainee)
    return trainee


def audit(request: Request, action: str, *, trainee: str, call_id: int | None = None, detail: str = "") -> None:
    """Log an opened recording or report (action e.g. "recording", "report") when the one opening it
    is not its trainee; admins read the log at /admin/access-log."""
    user = current_user(request)
    if user.name != trainee:
        accounts(request).log_access(user.name, action, call_id=call_id, target=request.url.path, detail=detail)
