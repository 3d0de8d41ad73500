"""The signed-in user's own pages: home (the trainee's start page, a menu for the others) and
settings (language, password)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from roleplay.history.accounts import LANGUAGES, AccountError
from roleplay.web import trainee
from roleplay.web.auth import SESSION_COOKIE, accounts, current_user, public, require
from roleplay.web.i18n import translator
from roleplay.web.render import FormError, account_error, done_redirect, render


@require()
async def home(request: Request) -> Response:
    if current_user(request).role == "trainee":
        return trainee.home_page(request)  # what to practise, recent calls, progress
    return render(request, "home.html")  # trainers and admins: a menu to their pages


def _settings(request: Request, errors: list[FormError] | None = None) -> Response:
    return render(request, "settings.html", {"languages": LANGUAGES, "errors": errors or []},
                  status_code=400 if errors else 200)


@public
async def favicon(request: Request) -> Response:
    """Browsers and bookmarks that ask for /favicon.ico get the page icon, not a 404 in the log."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@require()
async def settings_page(request: Request) -> Response:
    return _settings(request)


@require()
async def change_language(request: Request) -> Response:
    language = str((await request.form()).get("language") or "")
    user = current_user(request)
    try:
        accounts(request).set_language(user.name, language)
    except AccountError:
        return _settings(request, [FormError("language", translator(user.language)("errors.language-invalid"))])
    return done_redirect("/settings", "language")


@require()
async def change_password(request: Request) -> Response:
    data = await request.form()
    user = current_user(request)
    t = translator(user.language)
    current, new = str(data.get("current_password") or ""), str(data.get("new_password") or "")
    if not accounts(request).check_password(user.name, current):
        return _settings(request, [FormError("current_password", t("errors.password-wrong"))])
    if new != str(data.get("repeat_password") or ""):
        return _settings(request, [FormError("repeat_password", t("errors.password-mismatch"))])
    try:
        accounts(request).set_password(user.name, new, keep_token=request.cookies.get(SESSION_COOKIE))
    except AccountError as exc:
        return _settings(request, [FormError("new_password", account_error(t, exc))])
    return done_redirect("/settings", "password")
