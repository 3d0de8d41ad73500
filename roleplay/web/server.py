"""The app: the route table, security headers, error pages, and `serve` (uvicorn).

Heavy engine modules (numpy, librosa, faster-whisper) are imported inside the handlers that need
them, never at the top of a web module: the idle server must stay small (under 100 MB).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roleplay.core.errors import RoleplayError
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.web import account, admin, auth, browser_call, live, trainee, trainer
from roleplay.web.headers import SECURITY_HEADERS
from roleplay.web.render import message_page
from roleplay.web.settings import WebSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Every page and form action. A new page: a handler wrapped in auth.require(...) (or auth.public),
# one line here, and its expected status per role in tests/test_web_auth.py ROUTE_ACCESS.
ROUTES: list[BaseRoute] = [
    Route("/", account.home, methods=["GET"]),
    Route("/login", auth.login_form, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/settings", account.settings_page, methods=["GET"]),
    Route("/settings/language", account.change_language, methods=["POST"]),
    Route("/settings/password", account.change_password, methods=["POST"]),
    Route("/admin/users", admin.users_page, methods=["GET"]),
    Route("/admin/users", admin.add_user, methods=["POST"]),
    Route("/admin/users/{name}/role", admin.change_role, methods=["POST"]),
    Route("/admin/users/{name}/password", admin.reset_password, methods=["POST"]),
    Route("/admin/users/{name}/disabled", admin.set_disabled, methods=["POST"]),
    Route("/admin/groups", admin.groups_page, methods=["GET"]),
    Route("/admin/groups", admin.create_group, methods=["POST"]),
    Route("/admin/groups/{group}/trainees", admin.group_trainee, methods=["POST"]),
    Route("/admin/groups/{group}/trainers", admin.group_trainer, methods=["POST"]),
    Route("/admin/access-log", admin.access_log_page, methods=["GET"]),
    # the trainer's pages and the admin's settings (roleplay/web/trainer.py); before /scenarios/{scenario_id}
    Route("/group", trainer.group_page, methods=["GET"]),
    Route("/trainees/{name}", trainer.trainee_page, methods=["GET"]),
    Route("/trainees/{name}/ready", trainer.mark_ready, methods=["POST"]),
    Route("/calls/{call_id:int}/review", trainer.review_call, methods=["POST"]),
    Route("/scenarios/editor", trainer.editor_page, methods=["GET"]),
    Route("/scenarios/editor", trainer.save_scenario, methods=["POST"]),
    Route("/api/scenarios/validate", trainer.validate_api, methods=["POST"]),
    Route("/api/scenarios/preview", trainer.preview_api, methods=["POST"]),
    Route("/scenarios/import", trainer.import_page, methods=["GET"]),
    Route("/scenarios/import", trainer.import_recording, methods=["POST"]),
    Route("/admin/settings", trainer.settings_page, methods=["GET"]),
    Route("/admin/settings", trainer.save_settings, methods=["POST"]),
    Route("/admin/settings/forget", trainer.forget_old_calls, methods=["POST"]),
    # the trainee's pages (roleplay/web/trainee.py)
    Route("/scenarios", trainee.scenarios_page, methods=["GET"]),
    Route("/scenarios/{scenario_id}", trainee.scenario_page, methods=["GET"]),
    Route("/calls", trainee.calls_page, methods=["GET"]),
    Route("/calls/{call_id:int}", trainee.call_page, methods=["GET"]),
    Route("/calls/{call_id:int}/report", trainee.call_report, methods=["GET"]),
    Route("/calls/{call_id:int}/audio/{track}", trainee.call_audio, methods=["GET"]),
    Route("/progress", trainee.progress_page, methods=["GET"]),
    Route("/forget", trainee.forget_page, methods=["GET"]),
    Route("/forget", trainee.forget_data, methods=["POST"]),
    # the live call, calibration and sound devices on this machine (roleplay/web/live.py)
    Route("/call/events", live.events, methods=["GET"]),
    Route("/call/hangup", live.hang_up, methods=["POST"]),
    Route("/call/{scenario_id}", live.call_page, methods=["GET"]),
    Route("/call/{scenario_id}/start", live.start_call, methods=["POST"]),
    Route("/calibration", live.calibration_page, methods=["GET"]),
    Route("/calibration/record", live.start_calibration, methods=["POST"]),
    Route("/calibration/recording", live.calibration_recording, methods=["GET"]),
    Route("/settings/devices", live.devices_page, methods=["GET"]),
    Route("/settings/devices", live.choose_devices, methods=["POST"]),
    Route("/settings/devices/test", live.device_test, methods=["POST"]),
    # a call with the browser's microphone and speaker (roleplay/web/browser_call.py); the socket
    # checks the session, Origin, owner and CSRF token itself (require() wraps HTTP handlers only)
    Route("/call/{scenario_id}/browser", browser_call.browser_call_page, methods=["GET"]),
    Route("/call/{scenario_id}/browser/start", browser_call.start_browser_call, methods=["POST"]),
    WebSocketRoute("/call/browser/{job_id}/socket", browser_call.socket),
    Route("/favicon.ico", account.favicon, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]



class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and `Cache-Control: no-store` to pages (they show
    personal data; the static files may be cached)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # a page may bring its own policy (the engine's report page allows its inline
                # style and script by hash, see trainee.call_report)
                own_policy = headers.get("Content-Security-Policy")
                headers.update(SECURITY_HEADERS)
                if own_policy:
                    headers["Content-Security-Policy"] = own_policy
                if not scope["path"].startswith("/static/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    key = {404: "status.not_found", 405: "status.not_found", 403: "status.forbidden"}.get(status, "status.error")
    return message_page(request, status, key)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The details go to the server's log (uvicorn prints the traceback); the page stays plain.
    return message_page(request, 500, "status.error")


def check_routes(routes: list[BaseRoute]) -> None:
    """Every page goes through auth: a Route whose handler is not wrapped by require() or public
    is a programming error, caught when the app is made rather than by a visitor."""
    for route in routes:
        if isinstance(route, Route) and auth.access_of(route.endpoint) is None:
            raise TypeError(f"route {route.path}: its handler is not wrapped by auth.require() or auth.public")


def create_app(settings: WebSettings) -> Starlette:
    """The app for `settings`. Opens the history once so that a database that cannot be used is
    reported at start (one line), not on the first page."""
    check_routes(ROUTES)
    with History(settings.db):
        pass
    app = Starlette(
        routes=ROUTES,
        # BodyLimit: uploads and scenario texts stop at their limit while they stream in
        middleware=[Middleware(SecurityHeaders), Middleware(trainer.BodyLimit)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.settings = settings
    return app


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (accepted ones
    # copy it); without it every request after the first on a kept-alive connection waited 40 ms
    # (Nagle's algorithm and the delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RoleplayError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "is another server running there? choose another --port") from None
    return sock


def _open_when_started(server: object, url: str) -> None:
    """Open the browser once uvicorn accepts connections (not before: the page would fail)."""
    for _ in range(100):
        if getattr(server, "started", False):
            webbrowser.open(url)
            return
        time.sleep(0.1)


def serve(settings: WebSettings, *, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False,
          certfile: str | None = None, keyfile: str | None = None) -> None:
    """Run the app until Ctrl-C. With certfile and keyfile it serves HTTPS (and sets Secure cookies)."""
    import uvicorn

    if bool(certfile) != bool(keyfile):
        raise RoleplayError("HTTPS needs both --certfile and --keyfile")
    app = create_app(settings)
    with History(settings.db) as history:
        if not Accounts(history).users(role="admin"):
            print("roleplay: no admin account yet; create one with `roleplay users add NAME --role admin`",
                  file=sys.stderr)
    scheme = "https" if certfile else "http"
    if not certfile and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"roleplay: warning: serving on {host} without HTTPS: passwords cross the network unencrypted "
              "(use --certfile and --keyfile)", file=sys.stderr)
    sock = _listen(host, port)
    config = uvicorn.Config(app, ssl_certfile=certfile, ssl_keyfile=keyfile, log_level="warning")
    server = uvicorn.Server(config)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}:{sock.getsockname()[1]}/"
    print(f"roleplay: the app is at {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])
