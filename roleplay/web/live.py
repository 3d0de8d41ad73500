"""The live call in the app, the calibration and the sound devices: this machine's microphone and
speaker, through the same engine as `roleplay drill` (roleplay.session.live).

A call or a calibration runs in a worker thread as a `Job`; the engine reports to it through the
session's StatusSink (`show`: elapsed time, who speaks, input level, anger). The page reads the job
over server-sent events (`/call/events`, EVENTS_EVERY_S) with static/live.js. There is one
microphone, so `LiveRoom` runs one job at a time on this machine (per server process).

numpy, sounddevice and the engine are imported inside functions: the idle server stays small.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from roleplay.core.errors import RoleplayError
from roleplay.history.accounts import LANGUAGES, Accounts
from roleplay.history.store import History
from roleplay.web.auth import accounts, current_user, require, settings_of
from roleplay.web.i18n import Translate, translator
from roleplay.web.render import FormError, done_redirect, message_page, render
from roleplay.web.trainer import hide_anger_meter

if TYPE_CHECKING:
    from roleplay.audio.clip import Audio
    from roleplay.audio.devices import DeviceInfo, DeviceSpec, DeviceTest

log = logging.getLogger(__name__)

EVENTS_EVERY_S = 0.1  # the page needs at least 5 updates a second; 10 leave a margin
LEVEL_FLOOR_DBFS = -60.0  # the level meter's empty end
# A calibration is kept only if the sentence came through whole and clean.
MIN_CALIBRATION_S = 2.5  # the sentence takes about 5 s; less is a pause mid-sentence
MIN_CALIBRATION_RMS_DBFS = -42.0
MAX_CLIPPED_SAMPLES = 3
LOUD_ENOUGH_PEAK_DBFS = -30.0  # the device test: below this the voice is hard to hear
_SCENARIO_ID = re.compile(r"^[\w-]{1,100}$")  # an id, never a path (load_scenario also reads paths)

Kind = Literal["call", "calibration", "device-test"]
Phase = Literal["preparing", "in_call", "listening", "analysing", "done", "failed"]
FINISHED: tuple[Phase, ...] = ("done", "failed")
# why a job stopped, by the phase it stopped in (live.problem.<key>)
_PROBLEM_IN: dict[Phase, str] = {"preparing": "start", "in_call": "start", "listening": "not_heard",
                                 "analysing": "analysis", "done": "start", "failed": "start"}
# the engine's words for who speaks -> the page's
_WHO = {"caller speaking": "caller", "trainee speaking": "you", "listening": "nobody"}


@dataclass(frozen=True)
class CalibrationCheck:
    """Whether a calibration recording is usable; `problem` names why not (a text key's last part)."""

    duration_s: float
    rms_dbfs: float
    clipped_samples: int
    problem: Literal["", "too_short", "too_quiet", "clipped"]


@dataclass(frozen=True)
class JobStatus:
    """What the page shows of a job at one moment."""

    kind: Kind
    phase: Phase
    scenario_id: str
    t_s: float
    who: str
    level_dbfs: float
    anger: float
    problem: str  # text key's last part when failed
    call_id: int | None
    check: CalibrationCheck | None


class Job:
    """One use of the microphone and speaker. The worker thread writes it (it is the session's
    StatusSink), the event stream and the pages read `status()`."""

    def __init__(self, kind: Kind, owner: str, scenario_id: str = "") -> None:
        self.kind, self.owner, self.scenario_id = kind, owner, scenario_id
        self.hang_up = threading.Event()
        self._lock = threading.Lock()
        self._status = JobStatus(kind, "preparing", scenario_id, 0.0, "nobody", LEVEL_FLOOR_DBFS, 0.0, "", None, None)

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    @property
    def running(self) -> bool:
        return self.status().phase not in FINISHED

    # the session's StatusSink
    def show(self, *, t_s: float, who: str, level_dbfs: float, anger: float, force: bool = False) -> None:
        phase = self.status().phase
        self._set(phase="in_call" if phase == "preparing" else phase, t_s=t_s, who=_WHO.get(who, "nobody"),
                  level_dbfs=level_dbfs, anger=anger)

    def say(self, text: str) -> None:
        log.info("%s of %s: %s", self.kind, self.owner, text)  # the engine's news, in English: the log

    # the worker's own steps
    def level(self, level_dbfs: float) -> None:
        self._set(phase="listening", level_dbfs=level_dbfs)

    def analysing(self) -> None:
        self._set(phase="analysing", who="nobody", level_dbfs=LEVEL_FLOOR_DBFS)

    def done(self, *, call_id: int | None = None, check: CalibrationCheck | None = None) -> None:
        self._set(phase="done", call_id=call_id, check=check, who="nobody", level_dbfs=LEVEL_FLOOR_DBFS)

    def fail(self, problem: str) -> None:
        self._set(phase="failed", problem=problem, who="nobody", level_dbfs=LEVEL_FLOOR_DBFS)


@dataclass(frozen=True)
class CallPlan:
    scenario_id: str
    trainee: str
    calls_dir: Path
    db: str | Path | None
    input_device: str | None
    output_device: str | None


@dataclass(frozen=True)
class CalibrationPlan:
    trainee: str
    language: str
    input_device: str | None
    output_device: str | None


def run_call(job: Job, plan: CallPlan) -> None:
    """A live call (session.live.run_drill), then its analysis queued (after_call); the devices
    are free again while it is checked."""
    from roleplay.app.analyse import load_transcriber
    from roleplay.app.demo import free_directory
    from roleplay.core.paths import cache_dir
    from roleplay.session.live import run_drill

    transcriber = load_transcriber(None)
    directory = free_directory(plan.calls_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{plan.scenario_id}")
    call = run_drill(scenario_id=plan.scenario_id, trainee=plan.trainee, out_dir=directory,
                     transcriber=transcriber, input_device=plan.input_device,
                     output_device=plan.output_device, status=job, cache_dir=cache_dir() / "tts",
                     hang_up=job.hang_up)
    del transcriber  # the live recognizer was this call's own; the analysis loads its own on the queue
    after_call(job, call.directory, call.language, db=plan.db, calls_dir=plan.calls_dir)


def after_call(job: Job, call_dir: Path, language: str, *, db: str | Path | None, calls_dir: Path) -> None:
    """What every drill in the app does once its call is over (this machine's devices or the
    browser's): queue the call's analysis and report as a job (app.jobs: procrastinate workers on a
    PostgreSQL history, else a worker thread here) and return; the page says "being checked"
    (phase analysing) until the job is done, then opens the call. Drills never wait for analyses."""
    from roleplay.app.jobs import analysis_queue

    job.analysing()
    queue = analysis_queue(db, Path(calls_dir))
    ticket = queue.enqueue(Path(call_dir), language)
    threading.Thread(target=_await_check, args=(job, queue, ticket, db), name="roleplay-check", daemon=True).start()


def _await_check(job: Job, queue: Any, ticket: Any, db: str | Path | None) -> None:
    from roleplay.app.jobs import wait_for

    try:
        if wait_for(queue, ticket) != "done":
            job.fail("analysis")
            return
        with History(db) as history:
            call_id = history.call_id_for(call_dir=ticket.call_dir)
    except Exception:  # the queue or the history went away: the page says the call was not checked
        log.exception("waiting for the analysis of %s", ticket.call_dir)
        job.fail("analysis")
        return
    if call_id is None:
        job.fail("not_recorded")
    else:
        job.done(call_id=call_id)


def check_calibration(audio: Audio) -> CalibrationCheck:
    """Too short (a pause cut the sentence), too quiet, or clipped: else usable."""
    import numpy as np

    from roleplay.audio.clip import amplitude_to_db
    from roleplay.audio.devices import CLIP_LEVEL

    samples = audio.samples.astype(np.float64)
    rms = amplitude_to_db(float(np.sqrt(np.mean(samples ** 2)))) if len(samples) else LEVEL_FLOOR_DBFS
    clipped = int(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL))
    problem: Literal["", "too_short", "too_quiet", "clipped"] = (
        "too_short" if audio.duration_s < MIN_CALIBRATION_S
        else "too_quiet" if rms < MIN_CALIBRATION_RMS_DBFS
        else "clipped" if clipped > MAX_CLIPPED_SAMPLES else "")
    return CalibrationCheck(round(audio.duration_s, 2), round(rms, 1), clipped, problem)


def open_stream(input_device: DeviceSpec, output_device: DeviceSpec) -> Any:
    from roleplay.audio.devices import DuplexStream

    return DuplexStream(input_device=input_device, output_device=output_device)


def run_calibration(job: Job, plan: CalibrationPlan, stream_factory: Callable[..., Any] = open_stream) -> None:
    """Record the calibration sentence (session.live.record_calibration); store it where the drill
    reads it only when it is usable, so a failed try never replaces a good one."""
    from roleplay.audio.clip import save_wav
    from roleplay.caller.simtrainee import load_trainee_lines
    from roleplay.core.paths import make_private_dir
    from roleplay.session.live import calibration_path, record_calibration

    sentence = load_trainee_lines(plan.language).calibration
    with stream_factory(plan.input_device, plan.output_device) as stream:
        job.level(LEVEL_FLOOR_DBFS)
        audio = record_calibration(stream, sentence=sentence, status=job, on_level=job.level)
    check = check_calibration(audio)
    if not check.problem:
        path = calibration_path(plan.trainee)
        make_private_dir(path.parent)
        save_wav(path, audio)
    job.done(check=check)


def list_devices() -> tuple[DeviceInfo, ...]:
    from roleplay.audio.devices import list_devices as listed

    return listed()


def check_devices(input_device: DeviceSpec, output_device: DeviceSpec) -> DeviceTest:
    from roleplay.audio.devices import check_devices as checked

    return checked(input_device=input_device, output_device=output_device)


@dataclass
class LiveRoom:
    """This machine's microphone and speaker: one job at a time, and each user's last job (the page
    after it). The engine functions are fields so that tests can put fakes in."""

    run_call: Callable[[Job, CallPlan], None] = run_call
    run_calibration: Callable[[Job, CalibrationPlan], None] = run_calibration
    list_devices: Callable[[], tuple[DeviceInfo, ...]] = list_devices
    check_devices: Callable[[DeviceSpec, DeviceSpec], DeviceTest] = check_devices
    current: Job | None = None
    last: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, job: Job) -> bool:
        """Take the devices for `job`; False when another job has them."""
        with self._lock:
            if self.current is not None:
                return False
            self.current = job
            return True

    def release(self, job: Job) -> None:
        with self._lock:
            if self.current is job:
                self.current = None
            self.last[job.owner] = job

    def start(self, job: Job, work: Callable[[Job], None]) -> bool:
        """Run `work(job)` in a worker thread if the devices are free."""
        if not self.claim(job):
            return False
        threading.Thread(target=self._work, args=(job, work), name=f"roleplay-{job.kind}", daemon=True).start()
        return True

    def _work(self, job: Job, work: Callable[[Job], None]) -> None:
        try:
            work(job)
        except Exception as exc:
            # the details go to the server's log; the page says what the phase it stopped in means
            if isinstance(exc, RoleplayError):
                log.warning("%s of %s stopped: %s", job.kind, job.owner, exc)
            else:
                log.exception("%s of %s failed", job.kind, job.owner)
            job.fail(_PROBLEM_IN[job.status().phase])
        finally:
            # a worker that returned without saying how it went (one being checked has a waiter: after_call)
            if job.running and job.status().phase != "analysing":
                job.fail("start")
            self.release(job)

    def job_of(self, user: str) -> Job | None:
        """The user's running job, else their last one."""
        current = self.current
        return current if current is not None and current.owner == user else self.last.get(user)

    @property
    def busy(self) -> bool:
        return self.current is not None


def live_room(request: Request) -> LiveRoom:
    """The app's one LiveRoom (made on first use)."""
    room = getattr(request.app.state, "live", None)
    if room is None:
        room = request.app.state.live = LiveRoom()
    return cast(LiveRoom, room)


# --------------------------------------------------------------------------- settings


def _machine_key(name: str) -> str:
    # the history may be shared by several machines (PostgreSQL); devices belong to one
    return f"live.{name}@{socket.gethostname()}"


def chosen_devices(acc: Accounts) -> tuple[str | None, str | None]:
    """The input and output device chosen on this machine (None: the system's default)."""
    return (acc.setting(_machine_key("input_device")) or None, acc.setting(_machine_key("output_device")) or None)


def _calibrated(trainee: str) -> bool:
    from roleplay.session.live import calibration_path

    return calibration_path(trainee).is_file()


# --------------------------------------------------------------------------- the call page


def _scenario(request: Request) -> Any:
    from roleplay.caller.scenario import load_scenario
    from roleplay.core.errors import InputError

    scenario_id = request.path_params["scenario_id"]
    if not _SCENARIO_ID.match(scenario_id):
        raise HTTPException(404)
    try:
        return load_scenario(scenario_id)
    except InputError:
        raise HTTPException(404) from None


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _refused(request: Request, status: int, key: str) -> Response:
    """A start or hang-up that cannot be done: JSON for live.js, else a page (`<key>.title/.body`)."""
    if _wants_json(request):
        return JSONResponse({"error": translator(current_user(request).language)(f"{key}.body")}, status_code=status)
    return message_page(request, status, key)


def _accepted(request: Request, page: str) -> Response:
    return JSONResponse({"ok": True}) if _wants_json(request) else RedirectResponse(page, status_code=303)


def on_server_itself(request: Request) -> bool:
    """The page is opened on the machine that runs the app, whose sound card is then the trainee's
    ("testclient": Starlette's TestClient)."""
    host = request.client.host if request.client else ""
    return host in ("127.0.0.1", "::1", "testclient")


@require()
async def call_page(request: Request) -> Response:
    scenario = _scenario(request)
    if request.query_params.get("audio") != "server" and not on_server_itself(request):
        # elsewhere the trainee's own microphone is the phone (roleplay/web/browser_call.py)
        return RedirectResponse(f"/call/{scenario.id}/browser", status_code=303)
    user = current_user(request)
    room = live_room(request)
    job = room.job_of(user.name)
    job = job if job is not None and job.kind == "call" else None
    status = job.status() if job is not None else None
    running = status is not None and status.phase not in FINISHED
    return render(request, "live_call.html", {
        "scenario": scenario, "running": running, "status": status,
        "state": status.phase if status is not None and (running or status.scenario_id == scenario.id) else "idle",
        "busy_elsewhere": room.busy and not running, "calibrated": _calibrated(user.name),
        "hide_anger": hide_anger_meter(accounts(request)),
    })


@require()
async def start_call(request: Request) -> Response:
    scenario = _scenario(request)
    user = current_user(request)
    if not _calibrated(user.name):
        return _refused(request, 400, "live.refused.no_calibration")
    input_device, output_device = chosen_devices(accounts(request))
    settings = settings_of(request)
    plan = CallPlan(scenario.id, user.name, settings.calls_dir, settings.db, input_device, output_device)
    room = live_room(request)
    if not room.start(Job("call", user.name, scenario.id), lambda job: room.run_call(job, plan)):
        return _refused(request, 409, "live.refused.busy")
    return _accepted(request, f"/call/{scenario.id}")


@require()
async def hang_up(request: Request) -> Response:
    """Like Enter in `roleplay drill`: the call ends now, as ended by the trainee."""
    user = current_user(request)
    job = live_room(request).current
    if job is None or job.owner != user.name or job.kind != "call" or not job.running:
        return _refused(request, 409, "live.refused.no_call")
    job.hang_up.set()
    return _accepted(request, f"/call/{job.scenario_id}")


def _clock(t_s: float) -> str:
    return f"{int(t_s) // 60}:{int(t_s) % 60:02d}"


def _percent(value: float, low: float, high: float) -> int:
    return int(round(100 * min(1.0, max(0.0, (value - low) / (high - low)))))


def event_data(status: JobStatus, t: Translate, *, hide_anger: bool) -> dict[str, Any]:
    """One update for the page (what live.js shows); the anger is left out when it is hidden."""
    data: dict[str, Any] = {
        "kind": status.kind, "state": status.phase, "elapsed": _clock(status.t_s), "who": status.who,
        "who_text": t(f"live.who.{status.who}"), "level_dbfs": round(status.level_dbfs, 1),
        "level_pct": _percent(status.level_dbfs, LEVEL_FLOOR_DBFS, 0.0),
        "status_text": t(f"live.problem.{status.problem}") if status.phase == "failed"
        else t(f"live.state.{status.kind}.{status.phase}"),
    }
    if not hide_anger:
        data["anger"] = round(status.anger, 1)
    if status.phase == "done" and status.kind == "calibration":
        data["redirect"] = "/calibration"
    elif status.phase == "done" and status.call_id is not None:
        data["redirect"] = f"/calls/{status.call_id}"
    return data


@require()
async def events(request: Request) -> Response:
    """Server-sent events: the signed-in user's job, every EVENTS_EVERY_S until it is over."""
    user = current_user(request)
    t = translator(user.language)
    hide = hide_anger_meter(accounts(request))
    room = live_room(request)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        while True:
            job = room.job_of(user.name)
            if job is None or job.kind == "device-test":  # no call or calibration of this user's
                state = "busy" if room.busy else "idle"
                yield _sse({"state": state, "status_text": t(f"live.state.{state}")})
                return
            status = job.status()
            yield _sse(event_data(status, t, hide_anger=hide))
            if status.phase in FINISHED:
                return
            await asyncio.sleep(EVENTS_EVERY_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


# --------------------------------------------------------------------------- calibration


@require()
async def calibration_page(request: Request) -> Response:
    from roleplay.caller.simtrainee import load_trainee_lines

    user = current_user(request)
    room = live_room(request)
    job = room.job_of(user.name)
    status = job.status() if job is not None and job.kind == "calibration" else None
    running = status is not None and status.phase not in FINISHED
    return render(request, "live_calibration.html", {
        "sentence": load_trainee_lines(user.language).calibration, "status": status, "running": running,
        "busy_elsewhere": room.busy and not running, "calibrated": _calibrated(user.name),
    })


@require()
async def start_calibration(request: Request) -> Response:
    user = current_user(request)
    language = str((await request.form()).get("language") or "")
    if language not in LANGUAGES:  # the language of the sentence on the page
        return _refused(request, 400, "live.refused.language")
    input_device, output_device = chosen_devices(accounts(request))
    plan = CalibrationPlan(user.name, language, input_device, output_device)
    room = live_room(request)
    if not room.start(Job("calibration", user.name), lambda job: room.run_calibration(job, plan)):
        return _refused(request, 409, "live.refused.busy")
    return _accepted(request, "/calibration")


@require()
async def calibration_recording(request: Request) -> Response:
    """The signed-in user's stored calibration, to listen to."""
    from roleplay.session.live import calibration_path

    path = calibration_path(current_user(request).name)
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="audio/wav")


# --------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class Finding:
    """One line of the device test's result in plain words."""

    good: bool
    key: str  # live.test.<key>
    params: dict[str, Any] = field(default_factory=dict)


def findings(result: DeviceTest) -> list[Finding]:
    if result.silent:
        return [Finding(False, "silent")]
    loud = result.peak_dbfs >= LOUD_ENOUGH_PEAK_DBFS
    out = [Finding(loud, "loud_enough" if loud else "quiet")]
    out.append(Finding(False, "clipped") if result.clipped_samples else Finding(True, "not_clipped"))
    out.append(Finding(True, "delay", {"ms": round(result.lag.lag_ms)}) if result.lag_found
               else Finding(True, "no_echo"))
    glitches = sum(asdict(result.glitches).values())
    if glitches:
        out.append(Finding(False, "glitches", {"count": glitches}))
    return out


def _devices_page(request: Request, *, chosen: tuple[str | None, str | None] | None = None,
                  result: list[Finding] | None = None, errors: list[FormError] | None = None,
                  status_code: int | None = None) -> Response:
    room = live_room(request)
    try:
        devices = room.list_devices()
        listing_problem = False
    except RoleplayError as exc:
        log.warning("listing the audio devices: %s", exc)
        devices, listing_problem = (), True
    input_device, output_device = chosen or chosen_devices(accounts(request))
    return render(request, "live_devices.html", {
        "inputs": [d.name for d in devices if d.max_input_channels > 0],
        "outputs": [d.name for d in devices if d.max_output_channels > 0],
        "listing_problem": listing_problem, "input_device": input_device or "", "output_device": output_device or "",
        "result": result, "errors": errors or [],
    }, status_code=status_code or (400 if errors else 200))


@require()
async def devices_page(request: Request) -> Response:
    return _devices_page(request)


async def _posted_devices(request: Request) -> tuple[tuple[str | None, str | None], list[FormError]]:
    """The chosen devices ("" is the default), and an error for each that is not on this machine."""
    data = await request.form()
    chosen = (str(data.get("input_device") or "") or None, str(data.get("output_device") or "") or None)
    if chosen == (None, None):
        return chosen, []
    t = translator(current_user(request).language)
    try:
        devices = live_room(request).list_devices()
    except RoleplayError:
        devices = ()
    names = {"input_device": {d.name for d in devices if d.max_input_channels > 0},
             "output_device": {d.name for d in devices if d.max_output_channels > 0}}
    errors = [FormError(field_id, t("live.devices.unknown")) for field_id, value in zip(names, chosen, strict=True)
              if value is not None and value not in names[field_id]]
    return chosen, errors


@require()
async def choose_devices(request: Request) -> Response:
    chosen, errors = await _posted_devices(request)
    if errors:
        return _devices_page(request, chosen=chosen, errors=errors)
    acc = accounts(request)
    acc.set_setting(_machine_key("input_device"), chosen[0] or "")
    acc.set_setting(_machine_key("output_device"), chosen[1] or "")
    return done_redirect("/settings/devices", "live-devices")


@require()
async def device_test(request: Request) -> Response:
    """`roleplay devices --test` for the chosen devices (about 8 s), the result in plain words."""
    chosen, errors = await _posted_devices(request)
    if errors:
        return _devices_page(request, chosen=chosen, errors=errors)
    user = current_user(request)
    room = live_room(request)
    job = Job("device-test", user.name)
    if not room.claim(job):
        t = translator(user.language)
        return _devices_page(request, chosen=chosen, status_code=409,
                             errors=[FormError("devices-test", t("live.refused.busy.body"))])
    try:
        result = findings(await run_in_threadpool(room.check_devices, *chosen))
    except RoleplayError as exc:
        log.warning("device test: %s", exc)
        result = [Finding(False, "failed")]
    finally:
        job.done()
        room.release(job)
    return _devices_page(request, chosen=chosen, result=result)
