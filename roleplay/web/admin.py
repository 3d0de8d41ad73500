"""The admin's pages: users (add, change role, reset password, disable), groups (create, trainees,
trainers) and the access log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from roleplay.history.accounts import LANGUAGES, ROLES, AccountError
from roleplay.web.auth import accounts, current_user, require
from roleplay.web.i18n import translator
from roleplay.web.render import FormError, account_error, done_redirect, render

# Which form control an account error belongs to (the error summary links to it).
_ERROR_FIELD = {"name-invalid": "name", "name-taken": "name", "password-short": "password", "role-invalid": "role",
                "language-invalid": "language", "group-invalid": "group"}


def _error(request: Request, exc: AccountError, field: str | None = None) -> FormError:
    t = translator(current_user(request).language)
    return FormError(field or _ERROR_FIELD.get(exc.code, "name"), account_error(t, exc))


def _users_page(request: Request, errors: list[FormError] | None = None,
                form: dict[str, str] | None = None) -> Response:
    return render(request, "admin_users.html", {
        "users": accounts(request).users(), "roles": ROLES, "languages": LANGUAGES,
        "form": form or {"name": "", "role": "trainee", "language": "nl"}, "errors": errors or [],
    }, status_code=400 if errors else 200)


def _target(request: Request) -> str:
    """The user named in the URL (404 when there is none), who must not be the admin themself:
    an admin cannot lock themself out by demoting or disabling their own account."""
    name = request.path_params["name"]
    if accounts(request).user(name) is None:
        raise HTTPException(404)
    if name == current_user(request).name:
        raise AccountError("not-yourself", "admins cannot change their own role or disable themselves")
    return name


@require("admin")
async def users_page(request: Request) -> Response:
    return _users_page(request)


@require("admin")
async def add_user(request: Request) -> Response:
    data = await request.form()
    form = {k: str(data.get(k) or "") for k in ("name", "role", "language")}
    try:
        accounts(request).add_user(form["name"], form["role"], str(data.get("password") or ""),
                                   language=form["language"] or "nl")
    except AccountError as exc:
        return _users_page(request, [_error(request, exc)], form)
    return done_redirect("/admin/users", "user-added")


@require("admin")
async def change_role(request: Request) -> Response:
    role = str((await request.form()).get("role") or "")
    try:
        accounts(request).set_role(_target(request), role)
    except AccountError as exc:
        return _users_page(request, [_error(request, exc, "users")])
    return done_redirect("/admin/users", "role-changed")


@require("admin")
async def reset_password(request: Request) -> Response:
    password = str((await request.form()).get("password") or "")
    try:
        accounts(request).set_password(request.path_params["name"], password)
    except AccountError as exc:
        if exc.code == "no-such-user":
            raise HTTPException(404) from None
        return _users_page(request, [_error(request, exc, "users")])
    return done_redirect("/admin/users", "password-reset")


@require("admin")
async def set_disabled(request: Request) -> Response:
    disabled = (await request.form()).get("disabled") == "1"
    try:
        accounts(request).set_disabled(_target(request), disabled)
    except AccountError as exc:
        return _users_page(request, [_error(request, exc, "users")])
    return done_redirect("/admin/users", "user-disabled" if disabled else "user-enabled")


def _groups_page(request: Request, errors: list[FormError] | None = None) -> Response:
    acc = accounts(request)
    groups = [(g, acc.group_trainees(g), acc.group_trainers(g)) for g in acc.groups()]
    return render(request, "admin_groups.html", {
        "groups": groups, "errors": errors or [],
        "all_trainees": [u.name for u in acc.users(role="trainee") if not u.disabled],
        "all_trainers": [u.name for u in acc.users(role="trainer") if not u.disabled],
    }, status_code=400 if errors else 200)


def _group(request: Request) -> str:
    group = request.path_params["group"]
    if group not in accounts(request).groups():
        raise HTTPException(404)
    return group


@require("admin")
async def groups_page(request: Request) -> Response:
    return _groups_page(request)


@require("admin")
async def create_group(request: Request) -> Response:
    try:
        accounts(request).create_group(str((await request.form()).get("group") or ""))
    except AccountError as exc:
        return _groups_page(request, [_error(request, exc)])
    return done_redirect("/admin/groups", "group-created")


async def _member_change(request: Request, role: str) -> tuple[str, str, bool]:
    """(group, user, add?) from a group form; one who is added must be a user with `role` (anyone
    listed can be removed, also names put in a group with `roleplay group`)."""
    data = await request.form()
    group, name, add = _group(request), str(data.get(role) or ""), data.get("action") != "remove"
    user = accounts(request).user(name)
    if add and (user is None or user.role != role):
        raise AccountError(f"not-a-{role}", f"{name!r} is not a {role}")
    return group, name, add


@require("admin")
async def group_trainee(request: Request) -> Response:
    try:
        group, name, add = await _member_change(request, "trainee")
        accounts(request).set_group_trainee(group, name, member=add)
    except AccountError as exc:
        return _groups_page(request, [_error(request, exc, "groups")])
    return done_redirect("/admin/groups", "group-changed")


@require("admin")
async def group_trainer(request: Request) -> Response:
    try:
        group, name, add = await _member_change(request, "trainer")
        accounts(request).set_group_trainer(group, name, member=add)
    except AccountError as exc:
        return _groups_page(request, [_error(request, exc, "groups")])
    return done_redirect("/admin/groups", "group-changed")


@require("admin")
async def access_log_page(request: Request) -> Response:
    return render(request, "admin_access_log.html", {"entries": accounts(request).access_log()})
