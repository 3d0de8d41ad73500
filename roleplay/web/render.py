"""Pages from the Jinja2 templates in templates/, with what every page needs: the texts in the
user's language, the user, the CSRF token for forms and the role's menu."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.templating import Jinja2Templates

from roleplay.history.accounts import MIN_PASSWORD_CHARS, AccountError, Role, User, WebSession
from roleplay.web.i18n import DEFAULT_LANGUAGE, Translate, texts, translator

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# StrictUndefined: a variable a handler forgot fails the page tests instead of showing as blank.
_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined)
templates = Jinja2Templates(env=_env)


@dataclass(frozen=True)
class NavLink:
    path: str
    text_key: str  # in texts/*.yaml
    roles: tuple[Role, ...]  # who sees the link


# The menu, in order. A page for some roles gets its link here (its access is set by require()).
NAV: tuple[NavLink, ...] = (
    NavLink("/", "nav.home", ("trainee", "trainer", "admin")),
    NavLink("/scenarios", "trainee.nav.scenarios", ("trainee",)),
    NavLink("/calls", "trainee.nav.calls", ("trainee",)),
    NavLink("/progress", "trainee.nav.progress", ("trainee",)),
    NavLink("/group", "trainer.nav_group", ("trainer", "admin")),
    NavLink("/scenarios/editor", "trainer.nav_editor", ("trainer", "admin")),
    NavLink("/scenarios/import", "trainer.nav_import", ("trainer", "admin")),
    NavLink("/admin/users", "nav.users", ("admin",)),
    NavLink("/admin/groups", "nav.groups", ("admin",)),
    NavLink("/admin/access-log", "nav.access_log", ("admin",)),
    NavLink("/admin/settings", "trainer.nav_settings", ("admin",)),
    NavLink("/calibration", "live.nav_calibration", ("trainee", "trainer", "admin")),
    NavLink("/settings/devices", "live.nav_devices", ("trainee", "trainer", "admin")),
    NavLink("/settings", "nav.settings", ("trainee", "trainer", "admin")),
)


@dataclass(frozen=True)
class FormError:
    """One entry of a form's error summary: the control's id (the summary links to it) and the text."""

    field: str
    text: str


def account_error(t: Translate, exc: AccountError) -> str:
    """An AccountError in the user's words (`errors.<code>` in the texts)."""
    return t(f"errors.{exc.code}", min_chars=MIN_PASSWORD_CHARS)


def nav_for(user: User) -> list[NavLink]:
    return [link for link in NAV if user.role in link.roles]


def session_of(request: Request) -> WebSession | None:
    """The signed-in session auth.py found for this request (None when signed out)."""
    return getattr(request.state, "session", None)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, language: str | None = None) -> HTMLResponse:
    """`template` with `context`, plus: t (the texts), lang, user, csrf_token, nav, path, errors
    (empty) and done (the notice named by `?done=`, see `done_redirect`). `language` is for pages
    without a signed-in user (else the user's own)."""
    session = session_of(request)
    user = session.user if session else None
    lang = user.language if user else (language or DEFAULT_LANGUAGE)
    done_key = f"done.{request.query_params.get('done')}"
    t = translator(lang)
    base = {
        "t": t,
        "done": t(done_key) if done_key in texts(lang) else "",
        "lang": lang,
        "user": user,
        "csrf_token": session.csrf_token if session else "",
        "nav": nav_for(user) if user else [],
        "path": request.url.path,
        "errors": [],
        "min_password_chars": MIN_PASSWORD_CHARS,
    }
    return templates.TemplateResponse(request, template, {**base, **(context or {})}, status_code=status_code)


def done_redirect(path: str, done: str) -> RedirectResponse:
    """After a form did its work: back to a page (303, so a reload does not post again) that shows
    the notice `done.<done>` from the texts."""
    return RedirectResponse(f"{path}?done={done}", status_code=303)


def message_page(request: Request, status_code: int, key: str, **params: Any) -> HTMLResponse:
    """A page with one message (texts `<key>.title` and `<key>.body`): refusals, errors, not found."""
    return render(request, "message.html", {"key": key, "params": params}, status_code=status_code)
