"""A call with the browser as the phone: the trainee's own microphone and speaker, over a WebSocket.

The page (templates/browser_call.html, static/browser_call.js and its AudioWorklet) posts
`/call/{scenario}/browser/start` (a job for the signed-in user) and opens
`/call/browser/{job}/socket`. The socket is accepted only with the session cookie of the job's
owner and this server's own Origin; its first message must carry the session's CSRF token. One call per
connection. When the engine is loaded the server sends `{"type": "microphone"}`; only then does the
browser open the microphone (so the call's audio starts a fixed time before the phone rings), send
`{"type": "latency", ...}` (the audio context's) and numbered microphone frames (binary), and later
`{"type": "hangup"}`; the server sends the caller's audio (binary), `{"type": "stop"}` on barge-in
and the call's status (JSON, EVENTS_EVERY_S).

The engine is the local drill's (`session.live.run_drill`) with `audio.browserstream.BrowserStream`
in place of the sound card. A connection that drops (a closed lid, Wi-Fi gone) ends the call cut
off, `aborted`, with everything up to the drop analysed and reported; the page shows what
happened when it is opened again (`BrowserCalls.last`). A call's analysis and report go to the job
queue as a local drill's do (`live.after_call`, app.jobs), never run beside the drills here.
Frames that are not frames close that connection (1007) and touch no other call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from roleplay.core.errors import RoleplayError
from roleplay.history.accounts import Accounts, WebSession
from roleplay.history.store import History
from roleplay.web.auth import SESSION_COOKIE, accounts, current_user, require
from roleplay.web.i18n import translator
from roleplay.web.live import EVENTS_EVERY_S, FINISHED, Job, _scenario, after_call, event_data
from roleplay.web.render import render
from roleplay.web.trainer import hide_anger_meter

if TYPE_CHECKING:
    from roleplay.audio.browserstream import BrowserStream

log = logging.getLogger(__name__)

FIRST_MESSAGE_TIMEOUT_S = 10.0
SEND_EVERY_S = 0.01  # output chunks and stop messages wait at most this long in the queue
MAX_LATENCY_S = 2.0  # a reported latency above this is not a latency
# WebSocket close codes (RFC 6455): policy (not allowed), invalid data (not a frame)
CLOSE_POLICY, CLOSE_INVALID = 1008, 1007
LOST = "the connection to the browser was lost"


@dataclass
class BrowserCall:
    """One browser call: the job the page follows, the stream the socket feeds."""

    job_id: str
    job: Job
    scenario_id: str
    language: str
    connected: bool = False  # one connection per call, ever
    stream: BrowserStream | None = None
    dropped_at_s: float | None = None  # call time when the connection was lost


def new_call_directory(calls_dir: Path, name: str) -> Path:
    """A new empty directory `name` (else `name-2`, ...) under `calls_dir`, made here so that two
    calls of the same scenario starting in the same second never share one."""
    Path(calls_dir).mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        directory = Path(calls_dir) / (name if n == 1 else f"{name}-{n}")
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return directory
    raise RoleplayError(f"{calls_dir}: {name} and {name}-2 to -999 exist")


def run_call(call: BrowserCall, plan: tuple[Path, Any, str]) -> None:
    """The local drill's engine on the browser's stream, then its analysis queued as the local
    drill's is (`live.after_call`): several drills' analyses wait on the queue instead of
    competing with the drills still running; the page shows "being checked" until the job is done."""
    from roleplay.app.analyse import load_transcriber
    from roleplay.core.paths import cache_dir
    from roleplay.session.live import run_drill

    calls_dir, db, trainee = plan
    transcriber = load_transcriber(None)
    directory = new_call_directory(calls_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{call.scenario_id}")
    result = run_drill(scenario_id=call.scenario_id, trainee=trainee, out_dir=directory,
                       transcriber=transcriber, status=call.job, cache_dir=cache_dir() / "tts",
                       hang_up=call.job.hang_up, stream=call.stream)
    del transcriber  # the live recognizer was this call's own; the analysis loads its own on the queue
    if result.cut_off and call.dropped_at_s is None:
        call.dropped_at_s = call.job.status().t_s
    after_call(call.job, result.directory, result.language, db=db, calls_dir=calls_dir)


@dataclass
class BrowserCalls:
    """The browser calls of this server process, and each user's last (the page after it)."""

    run: Callable[[BrowserCall, tuple[Path, Any, str]], None] = run_call
    calls: dict[str, BrowserCall] = field(default_factory=dict)
    last: dict[str, BrowserCall] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, owner: str, scenario_id: str, language: str) -> BrowserCall:
        call = BrowserCall(secrets.token_urlsafe(16), Job("call", owner, scenario_id), scenario_id, language)
        with self._lock:
            # a page that was left before it connected leaves a job that never ran: forget it
            for old in [c for c in self.calls.values() if c.job.owner == owner and not c.connected]:
                del self.calls[old.job_id]
            self.calls[call.job_id] = call
            self.last[owner] = call
        return call

    def get(self, job_id: str) -> BrowserCall | None:
        with self._lock:
            return self.calls.get(job_id)

    def claim(self, call: BrowserCall) -> bool:
        """The call's one connection; False if it had one."""
        with self._lock:
            if call.connected:
                return False
            call.connected = True
            return True

    def finished(self, call: BrowserCall) -> None:
        with self._lock:
            self.calls.pop(call.job_id, None)


def browser_calls(app: Any) -> BrowserCalls:
    calls = getattr(app.state, "browser_calls", None)
    if calls is None:
        calls = app.state.browser_calls = BrowserCalls()
    return cast(BrowserCalls, calls)


# --------------------------------------------------------------------------- pages


@require()
async def browser_call_page(request: Request) -> Response:
    from roleplay.caller.simtrainee import load_trainee_lines
    from roleplay.session.live import calibration_path

    scenario = _scenario(request)
    user = current_user(request)
    last = browser_calls(request.app).last.get(user.name)
    last = last if last is not None and last.connected else None
    status = last.job.status() if last is not None else None
    return render(request, "browser_call.html", {
        "scenario": scenario, "last": last, "status": status,
        "running": status is not None and status.phase not in FINISHED,
        "calibrated": calibration_path(user.name).is_file(),
        "sentence": load_trainee_lines(scenario.language).calibration,
        "hide_anger": hide_anger_meter(accounts(request)),
        "dropped_clock": _clock(last.dropped_at_s) if last is not None and last.dropped_at_s is not None else "",
    })


@require()
async def start_browser_call(request: Request) -> Response:
    """A job for the signed-in user; the page then opens its socket."""
    scenario = _scenario(request)
    user = current_user(request)
    call = browser_calls(request.app).add(user.name, scenario.id, scenario.language)
    return JSONResponse({"job": call.job_id, "socket": f"/call/browser/{call.job_id}/socket"})


def _clock(t_s: float) -> str:
    return f"{int(t_s) // 60}:{int(t_s) % 60:02d}"


# --------------------------------------------------------------------------- the socket


def _session(websocket: WebSocket) -> WebSession | None:
    token = websocket.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with History(websocket.app.state.settings.db) as history:
        return Accounts(history).session(token)


def _same_origin(websocket: WebSocket) -> bool:
    """The page that opens the socket is this server's (a browser always sends Origin)."""
    origin = websocket.headers.get("origin", "")
    host = websocket.headers.get("host", "")
    return bool(origin) and bool(host) and urlsplit(origin).netloc == host


async def socket(websocket: WebSocket) -> None:
    """The call's audio and status; refused (closed before it is accepted, or with 1008/1007)
    without a session, from another origin, for someone else's or an unknown job, on a second
    connection, without the CSRF token, or on a frame that is not one."""
    calls = browser_calls(websocket.app)
    call = calls.get(websocket.path_params["job_id"])
    session = _session(websocket)
    if (session is None or not _same_origin(websocket) or call is None
            or call.job.owner != session.user.name or not calls.claim(call)):
        await websocket.close(code=CLOSE_POLICY)  # before accept: the handshake gets 403
        return
    await websocket.accept()
    reported_lag_s = await _first_message(websocket, session)
    if reported_lag_s is None:
        call.job.fail("start")
        calls.finished(call)
        await websocket.close(code=CLOSE_POLICY)
        return
    from roleplay.audio.browserstream import BrowserStream

    call.stream = BrowserStream(reported_lag_s=reported_lag_s)
    settings = websocket.app.state.settings
    plan = (settings.calls_dir, settings.db, session.user.name)
    threading.Thread(target=_work, args=(calls, call, plan), name="roleplay-browser-call", daemon=True).start()
    t = translator(session.user.language)
    with History(settings.db) as history:
        hide = hide_anger_meter(Accounts(history))
    sender = asyncio.create_task(_send(websocket, call, lambda s: event_data(s, t, hide_anger=hide)))
    try:
        await _receive(websocket, call)
    finally:
        if call.job.running and call.dropped_at_s is None and call.job.status().phase != "analysing":
            call.dropped_at_s = call.job.status().t_s
        call.stream.end(LOST)
        sender.cancel()


async def _first_message(websocket: WebSocket, session: WebSession) -> float | None:
    """The reported output + input latency (s) from a first message with the right CSRF token;
    None if it is not that."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_TIMEOUT_S)
        data = json.loads(text)
        token = str(data.get("csrf", ""))
        if data.get("type") != "start" or not secrets.compare_digest(token.encode(), session.csrf_token.encode()):
            return None
        # the page sends its latencies when it opens the microphone ("latency"); an older one here
        return _latency_s(data.get("latency") or {})
    except (TimeoutError, ValueError, TypeError, KeyError, AttributeError, WebSocketDisconnect):
        return None


async def _receive(websocket: WebSocket, call: BrowserCall) -> None:
    """Frames in, the caller's audio out, until the browser goes away or sends a bad frame."""
    from roleplay.audio.browserstream import FrameError, parse_frame

    stream = call.stream
    assert stream is not None
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data, text = message.get("bytes"), message.get("text")
        try:
            if data is not None:
                chunk = stream.feed(*parse_frame(data))
                if chunk is not None:
                    await websocket.send_bytes(chunk.to_bytes())
            elif text is not None:
                _control(call, json.loads(text))
        except (FrameError, ValueError, TypeError, AttributeError) as exc:
            log.warning("browser call of %s: refused a message: %s", call.job.owner, exc)
            await websocket.close(code=CLOSE_INVALID)
            return
        except (WebSocketDisconnect, RuntimeError):  # gone while we sent
            return


def _latency_s(latency: dict[str, Any]) -> float:
    """The audio context's base + output + input latency (s); 0 if it is not a latency."""
    total = sum(float(latency.get(k) or 0.0) for k in ("base_s", "output_s", "input_s"))
    return total if 0.0 <= total <= MAX_LATENCY_S else 0.0


def _control(call: BrowserCall, data: dict[str, Any]) -> None:
    kind = data.get("type")
    if kind == "hangup":
        call.job.hang_up.set()
    elif kind == "latency":  # comes before the first frame, so before the drill needs it
        assert call.stream is not None
        call.stream.reported_lag_s = _latency_s(data)
    elif kind == "late":
        assert call.stream is not None
        call.stream.late_output(int(data.get("samples", 0)))
    else:
        raise ValueError(f"unknown message {kind!r}")


async def _send(websocket: WebSocket, call: BrowserCall, shown: Callable[[Any], dict[str, Any]]) -> None:
    """Stop messages as they come, the status every EVENTS_EVERY_S, and the end of the call."""
    assert call.stream is not None
    last_status = 0.0
    while websocket.application_state == WebSocketState.CONNECTED:
        for control in call.stream.controls():
            await websocket.send_text(json.dumps(control))
        status = call.job.status()
        if time.monotonic() - last_status >= EVENTS_EVERY_S or status.phase in FINISHED:
            last_status = time.monotonic()
            await websocket.send_text(json.dumps({"type": "status", **shown(status)}, ensure_ascii=False))
            if status.phase in FINISHED:
                await websocket.close()
                return
        await asyncio.sleep(SEND_EVERY_S)


def _work(calls: BrowserCalls, call: BrowserCall, plan: tuple[Path, Any, str]) -> None:
    """The drill, then its analysis queued (also of a call cut off by a dropped connection)."""
    job = call.job
    try:
        calls.run(call, plan)
    except Exception as exc:
        if isinstance(exc, RoleplayError):
            log.warning("browser call of %s stopped: %s", job.owner, exc)
        else:
            log.exception("browser call of %s failed", job.owner)
        job.fail("analysis" if job.status().phase == "analysing" else "start")
    finally:
        # a drill that ended without a call to check (one being checked has its waiter: after_call)
        if job.running and job.status().phase != "analysing":
            job.fail("not_recorded")
        calls.finished(call)
