"""The trainer's pages and the admin's settings: the group overview (readiness per trainee and per
advice item), one trainee (calls, progress, "ready" mark), a trainer's verdict on a call, the
scenario editor (validation as you type, a spoken preview, save as a new scenario), a scenario
draft from a recording, and the app settings (anger meter, how long calls are kept).

Engine modules (readiness rules, scenarios, voices, the analysis) are imported inside the handlers:
the idle server stays small."""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roleplay.core.errors import CodedInputError, Found, InputError, RoleplayError
from roleplay.history.accounts import Accounts, ReadinessMark, User
from roleplay.web.auth import accounts, audit, check_call, check_trainee, current_user, require, settings_of
from roleplay.web.i18n import Translate, translator
from roleplay.web.render import FormError, done_redirect, message_page, render

if TYPE_CHECKING:
    from roleplay.history.store import CallRow
    from roleplay.report.readiness import Rules, TraineeReadiness

# --------------------------------------------------------------------------- settings other pages read

HIDE_ANGER_METER = "hide_anger_meter"  # "1": the live call page shows no anger meter
RETENTION_DAYS = "retention_days"  # calls older than this may be removed (empty: kept)
MAX_RETENTION_DAYS = 36_500


def hide_anger_meter(acc: Accounts) -> bool:
    """The admin's choice for the live call page (the trainee does not see the caller's anger)."""
    return acc.setting(HIDE_ANGER_METER, "0") == "1"


def retention_days(acc: Accounts) -> int | None:
    value = acc.setting(RETENTION_DAYS, "") or ""
    return int(value) if value.isdigit() else None


def readiness_mark(acc: Accounts, trainee: str) -> ReadinessMark | None:
    """The trainer's newest "ready" mark with its note, for the trainee's own home page."""
    return acc.readiness_mark(trainee)


# --------------------------------------------------------------------------- request size limits

TEXT_LIMIT_BYTES = 2_000_000  # a scenario is at most 1 MB (roleplay.caller.scenario.MAX_FILE_BYTES)


class UploadTooBig(Exception):
    """The request body went over its path's limit (raised while it streams in)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"more than {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


def body_limit_bytes(scope: Scope) -> int | None:
    """The limit of this request's body, or None: uploads and scenario texts only."""
    if scope.get("method") != "POST":
        return None
    path = scope.get("path", "")
    if path == "/scenarios/import":
        return int(scope["app"].state.settings.upload_limit_bytes)
    if path in ("/scenarios/editor", "/api/scenarios/validate", "/api/scenarios/preview"):
        return TEXT_LIMIT_BYTES
    return None


class BodyLimit:
    """Counts a request body while it arrives and stops it at the path's limit, before the form is
    parsed (and spooled to disk): a huge upload is refused with a page saying so, and nothing of it
    is kept. A Content-Length over the limit is refused at once. What the client still sends is
    read and dropped (up to DRAIN_MAX_BYTES), so its browser sees the page instead of a reset."""

    DRAIN_MAX_BYTES = 4_000_000_000

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = body_limit_bytes(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        received = int(declared) if declared.isdigit() and int(declared) > limit else 0

        async def counted() -> Message:
            nonlocal received
            if received > limit:  # announced too big: nothing is passed on
                await self._drain(receive)
                raise UploadTooBig(limit)
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                if message.get("more_body"):
                    await self._drain(receive)
                raise UploadTooBig(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except UploadTooBig as exc:
            request = Request(scope)
            response = message_page(request, 413, "trainer.too_big", limit_mb=exc.limit_bytes // 1_000_000)
            await response(scope, receive, send)

    async def _drain(self, receive: Receive) -> None:
        dropped = 0
        while dropped < self.DRAIN_MAX_BYTES:
            message = await receive()
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                return


# --------------------------------------------------------------------------- readiness per trainee

ItemState = Literal["pass", "fail", "none"]


@dataclass(frozen=True)
class ItemStatus:
    item: str
    state: ItemState  # pass: every requirement with this item met; none: not practised yet
    met: int  # requirements with this item that are met
    total: int


@dataclass(frozen=True)
class TraineeStatus:
    name: str
    ready: bool
    calls: int
    items: tuple[ItemStatus, ...]
    mark: ReadinessMark | None


def _rules() -> Rules:
    from roleplay.report.readiness import load_rules

    return load_rules()


def _item_statuses(result: TraineeReadiness, items: Iterable[str]) -> tuple[ItemStatus, ...]:
    out = []
    for item in items:
        found = [ir for rr in result.requirements for ir in rr.items if ir.item == item]
        met = sum(ir.met for ir in found)
        practised = any(ir.evidence for ir in found)
        state: ItemState = "pass" if met == len(found) else ("fail" if practised else "none")
        out.append(ItemStatus(item, state, met, len(found)))
    return tuple(out)


def visible_trainee_names(acc: Accounts, user: User) -> list[str]:
    """The trainees `user` looks after: those of their groups; for an admin every trainee account
    and every name with calls."""
    visible = acc.visible_trainees(user)
    if visible is None:
        visible = {u.name for u in acc.users(role="trainee")} | set(acc.history.trainees())
    return sorted(visible)


def _report_texts(user: User) -> dict[str, Any]:
    from roleplay.report.text import texts

    return texts(user.language)


@require("trainer", "admin")
async def group_page(request: Request) -> Response:
    from roleplay.report.readiness import evaluate

    acc = accounts(request)
    names = visible_trainee_names(acc, current_user(request))
    rules = _rules()
    rows = acc.history.calls(trainees=names)
    statuses = []
    for name in names:
        result = evaluate(name, rows, rules)
        calls = sum(r.trainee == name for r in rows)
        statuses.append(TraineeStatus(name, result.ready, calls, _item_statuses(result, rules.items),
                                      acc.readiness_mark(name)))
    return render(request, "trainer_group.html", {
        "trainees": statuses, "items": rules.items, "item_names": _report_texts(current_user(request))["items"],
    })


# --------------------------------------------------------------------------- one trainee


def _trainee_page(request: Request, name: str, errors: list[FormError] | None = None,
                  note: str = "") -> Response:
    from roleplay.history.store import scenario_info
    from roleplay.report.progress import progress_body_html
    from roleplay.report.readiness import evaluate

    acc = accounts(request)
    user = current_user(request)
    rules = _rules()
    rows = acc.history.calls(trainee=name)
    result = evaluate(name, rows, rules)
    requirements = [(rr, (scenario_info(rr.requirement.scenario) or {}).get("title", rr.requirement.scenario))
                    for rr in result.requirements]
    report_t = _report_texts(user)
    return render(request, "trainer_trainee.html", {
        "name": name, "result": result, "requirements": requirements, "calls": list(reversed(rows)),
        "items": _item_statuses(result, rules.items), "item_names": report_t["items"],
        "outcomes": report_t["outcomes"], "mark": acc.readiness_mark(name),
        "progress_html": progress_body_html(rows, language=user.language), "note": note,
        "errors": errors or [],
    }, status_code=400 if errors else 200)


@require("trainer", "admin")
async def trainee_page(request: Request) -> Response:
    name = request.path_params["name"]
    check_trainee(request, name)
    audit(request, "progress", trainee=name)
    return _trainee_page(request, name)


@require("trainer", "admin")
async def mark_ready(request: Request) -> Response:
    name = request.path_params["name"]
    check_trainee(request, name)
    data = await request.form()
    note = str(data.get("note") or "").strip()
    ready = data.get("ready")
    if ready not in ("1", "0"):
        t = translator(current_user(request).language)
        return _trainee_page(request, name, [FormError("ready-yes", t("trainer.mark_choose"))], note)
    accounts(request).mark_ready(name, by=current_user(request).name, ready=ready == "1", note=note[:2000])
    return done_redirect(f"/trainees/{name}", "trainer-marked")


# --------------------------------------------------------------------------- a trainer's verdict on a call


def review_items() -> tuple[str, ...]:
    """The advice items a trainer may judge (the debrief is never scored; the outcome is what
    happened, not a judgement)."""
    from roleplay.core.advice import ADVICE_IDS

    return tuple(a for a in ADVICE_IDS if a != "debrief")


def review_form_context(request: Request, call_id: int) -> dict[str, Any]:
    """What `trainer_review_form.html` needs, for the call page to merge into its context:
    `{% if trainer_review %}{% include "trainer_review_form.html" %}{% endif %}`; `trainer_review`
    is None for users who may not judge (trainees)."""
    user = current_user(request)
    if user.role not in ("trainer", "admin"):
        return {"trainer_review": None}
    acc = accounts(request)
    trainee = acc.call_trainee(call_id)
    row = next((r for r in acc.history.calls(trainee=trainee) if r.id == call_id), None) if trainee else None
    return {"trainer_review": _review_view(user, call_id, row)}


@dataclass(frozen=True)
class ReviewView:
    call_id: int
    items: tuple[tuple[str, str, str], ...]  # item, its name, the verdict that counts now ("" none)
    verdict_names: dict[str, str]
    reviews: tuple[dict[str, Any], ...]  # the overrides so far, oldest first


def _review_view(user: User, call_id: int, row: CallRow | None) -> ReviewView:
    report_t = _report_texts(user)
    names = report_t["items"]
    items = tuple((i, names.get(i, i), (row.verdict(i) or "") if row else "") for i in review_items())
    reviews = tuple({"item": i, "item_name": names.get(i, i), **r}
                    for i, r in (row.reviews.items() if row else ()))
    return ReviewView(call_id, items, report_t["verdicts"], reviews)


@require("trainer", "admin")
async def review_call(request: Request) -> Response:
    from roleplay.history.store import HistoryError

    call_id = int(request.path_params["call_id"])
    trainee = check_call(request, call_id)
    data = await request.form()
    item, verdict = str(data.get("item") or ""), str(data.get("verdict") or "")
    comment = str(data.get("comment") or "").strip()[:2000]
    user = current_user(request)
    t = translator(user.language)
    errors = []
    if item not in review_items():
        errors.append(FormError("review-item", t("trainer.review_item_missing")))
    if verdict not in ("pass", "fail"):
        errors.append(FormError("review-verdict-pass", t("trainer.review_verdict_missing")))
    if not comment:
        errors.append(FormError("review-comment", t("trainer.review_comment_missing")))
    history = accounts(request).history
    if not errors:
        try:
            history.add_review(call_id, item=item, verdict=verdict, note=comment, by=user.name)
        except HistoryError:  # checked above; kept so a changed rule still gives a page, not a trace
            errors.append(FormError("review-item", t("trainer.review_item_missing")))
    if errors:
        row = next((r for r in history.calls(trainee=trainee) if r.id == call_id), None)
        return render(request, "trainer_review.html", {
            "trainer_review": _review_view(user, call_id, row), "form": {"item": item, "verdict": verdict,
                                                                 "comment": comment}, "errors": errors,
        }, status_code=400)
    row = history.conn.execute("SELECT call_dir FROM calls WHERE id = ?", (call_id,)).fetchone()
    if row and row[0] and (Path(row[0]) / "report.html").is_file():
        await run_in_threadpool(_rebuild_report, Path(row[0]), settings_of(request).db)
    return done_redirect(f"/calls/{call_id}", "trainer-review-saved")


def _rebuild_report(call_dir: Path, db: Any) -> None:
    """As `roleplay review`: the call's report.html shows the new verdict (in a worker thread,
    with its own connection to the history)."""
    from roleplay.app.report import build_report

    # the verdict is stored either way; the app's call page reads the history, the file catches up next time
    with contextlib.suppress(RoleplayError, OSError):
        build_report(call_dir, db=db)


# --------------------------------------------------------------------------- the scenario editor

_WHERE = re.compile(r"^(?P<line>\d+): ")


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str  # in the page's language when the validator gave a code
    field: str = ""  # dotted (`anger.max`); "" for the text as a whole or an uncoded error
    code: str = ""  # the validator's message code (texts `scenario_problem.<code>`)


EDITOR_SOURCE = Path("scenario")  # the name validation errors carry; no .yaml: the id is checked on save


def problem_of(exc: InputError, source: Path, t: Translate) -> Problem:
    """Line and message of the validator's error, worded in `t`'s language from its code; an error
    without a code falls back to its English one-line form `SOURCE[:LINE]: MESSAGE`."""
    if isinstance(exc, CodedInputError):
        params = {name: t(f"scenario_problem.found.{value.kind}", value=value.value)
                  if isinstance(value, Found) else value for name, value in exc.params.items()}
        said = t(f"scenario_problem.{exc.code}", **params)
        if exc.field:
            said = t("scenario_problem.at_field", field=exc.field, problem=said)
        return Problem(exc.line, said, exc.field, exc.code)
    text = str(exc)
    prefix = str(source)
    rest = text[len(prefix):] if text.startswith(prefix) else text
    rest = rest[1:] if rest.startswith(":") else rest
    found = _WHERE.match(rest)
    if found:
        return Problem(int(found["line"]), rest[found.end():])
    return Problem(None, rest.removeprefix(" "))


def _template_text(language: str) -> str:
    from roleplay.caller.incident import render_draft, template_draft

    return render_draft(template_draft(scenario_id="nieuw-scenario" if language == "nl" else "new-scenario",
                                       language=language))


# The app's policy (web.headers.SECURITY_HEADERS) plus blob: audio: the preview plays the WAV it fetched.
EDITOR_CSP = ("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
              "object-src 'none'; media-src 'self' blob:")


def _editor_page(request: Request, *, text: str, base: str = "", errors: list[FormError] | None = None,
                 problem: Problem | None = None, status_code: int = 200) -> Response:
    from roleplay.caller.scenario import scenario_files

    response = render(request, "trainer_editor.html", {
        "text": text, "base": base, "scenario_ids": list(scenario_files()), "problem": problem,
        "errors": errors or [],
    }, status_code=status_code)
    response.headers["Content-Security-Policy"] = EDITOR_CSP
    return response


@require("trainer", "admin")
async def editor_page(request: Request) -> Response:
    from roleplay.caller.scenario import scenario_files

    base = request.query_params.get("from", "")
    files = scenario_files()
    if base and base not in files:
        raise HTTPException(404)
    text = files[base].read_text(encoding="utf-8") if base else _template_text(current_user(request).language)
    return _editor_page(request, text=text, base=base)


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object the editor's script sends (with its CSRF token as a header); anything else is 400."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(400)
    try:
        data = await request.json()
    except ValueError:
        raise HTTPException(400) from None
    if not isinstance(data, dict):
        raise HTTPException(400)
    return data


@require("trainer", "admin")
async def validate_api(request: Request) -> Response:
    from roleplay.caller.scenario import scenario_from_text

    text = str((await _json_body(request)).get("text") or "")
    try:
        scenario = scenario_from_text(text, path=EDITOR_SOURCE)
    except InputError as exc:
        problem = problem_of(exc, EDITOR_SOURCE, translator(current_user(request).language))
        return JSONResponse({"ok": False, "line": problem.line, "message": problem.message,
                             "field": problem.field, "code": problem.code})
    return JSONResponse({"ok": True, "line": None, "message": "", "id": scenario.id,
                         "voice": scenario.caller_voice, "opening": scenario.lines["opening"][0].text})


MAX_PREVIEW_CHARS = 400


@require("trainer", "admin")
async def preview_api(request: Request) -> Response:
    """A caller line spoken in the scenario's voice at an anger (0..10), as WAV."""
    from roleplay.caller.scenario import scenario_from_text

    data = await _json_body(request)
    line = " ".join(str(data.get("line") or "").split())[:MAX_PREVIEW_CHARS]
    try:
        anger = min(max(float(data.get("anger", 5)), 0.0), 10.0)
    except (TypeError, ValueError):
        anger = 5.0
    try:
        scenario = scenario_from_text(str(data.get("text") or ""), path=EDITOR_SOURCE)
    except InputError as exc:
        problem = problem_of(exc, EDITOR_SOURCE, translator(current_user(request).language))
        return JSONResponse({"ok": False, "line": problem.line, "message": problem.message,
                             "field": problem.field, "code": problem.code}, status_code=400)
    line = line or scenario.lines["opening"][0].text
    try:
        wav = await run_in_threadpool(_speak_wav, line, scenario.caller_voice, anger)
    except RoleplayError:
        t = translator(current_user(request).language)
        return JSONResponse({"ok": False, "line": None, "message": t("trainer.preview_failed")}, status_code=500)
    return Response(wav, media_type="audio/wav")


def _speak_wav(text: str, voice: str, anger: float) -> bytes:
    import io

    import soundfile

    from roleplay.core.paths import cache_dir
    from roleplay.speech.voice import synthesize

    audio = synthesize(text, voice=voice, anger=anger, cache_dir=cache_dir() / "tts")
    buf = io.BytesIO()
    soundfile.write(buf, audio.samples, audio.rate_hz, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _not_saved(request: Request, *, text: str, base: str, problem: Problem, t: Translate) -> Response:
    """The editor again, saying why nothing was saved (a problem of the whole text has no line)."""
    said = (t("trainer.editor_broken_text", message=problem.message) if problem.line is None
            else t("trainer.editor_broken", line=problem.line, message=problem.message))
    return _editor_page(request, text=text, base=base, problem=problem, status_code=400,
                        errors=[FormError("text", said)])


@require("trainer", "admin")
async def save_scenario(request: Request) -> Response:
    """Save the text as a new scenario in the saved-scenarios directory: its id must be new (a
    shipped or saved scenario is never overwritten) and the validator must accept it; else the
    page says why and nothing is written."""
    from roleplay.caller.scenario import _ID_RE, scenario_files, scenario_from_text
    from roleplay.core.files import write_atomic
    from roleplay.core.paths import saved_scenarios_dir

    data = await request.form()
    text = str(data.get("text") or "").replace("\r\n", "\n")
    base = str(data.get("base") or "")
    t = translator(current_user(request).language)
    if data.get("from_import") == "1" and data.get("checked") != "1":
        return _editor_page(request, text=text, base=base, status_code=400,
                            errors=[FormError("text", t("trainer.import_not_checked"))])
    try:
        scenario = scenario_from_text(text, path=EDITOR_SOURCE)
    except InputError as exc:
        return _not_saved(request, text=text, base=base, problem=problem_of(exc, EDITOR_SOURCE, t), t=t)
    if not _ID_RE.match(scenario.id) or scenario.id in scenario_files():
        return _editor_page(request, text=text, base=base, status_code=400,
                            errors=[FormError("text", t("trainer.editor_id_taken", id=scenario.id))])
    directory = saved_scenarios_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{scenario.id}.yaml"
    try:  # checked again under its real name: relative audio paths resolve against it
        scenario_from_text(text, path=target)
    except InputError as exc:
        return _not_saved(request, text=text, base=base, problem=problem_of(exc, target, t), t=t)
    write_atomic(target, text)
    # done_redirect's `?done=` with the new scenario open in the editor
    return RedirectResponse(f"/scenarios/editor?from={scenario.id}&done=trainer-scenario-saved", status_code=303)


# --------------------------------------------------------------------------- a draft from a recording

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a")


@dataclass(frozen=True)
class ImportResult:
    text: str  # the draft scenario
    reviews: tuple[Any, ...]  # roleplay.caller.incident.Review: where, placeholder, original, rule


def _import_page(request: Request, *, form: dict[str, str], errors: list[FormError] | None = None,
                 result: ImportResult | None = None, status_code: int = 200) -> Response:
    limit_mb = settings_of(request).upload_limit_bytes // 1_000_000
    return render(request, "trainer_import.html", {
        "form": form, "result": result, "limit_mb": limit_mb, "errors": errors or [],
    }, status_code=status_code)


_IMPORT_DEFAULTS = {"scenario_id": "", "language": "nl", "kind": "stereo", "caller_channel": "0"}


@require("trainer", "admin")
async def import_page(request: Request) -> Response:
    return _import_page(request, form=dict(_IMPORT_DEFAULTS))


async def _save_upload(upload: object, directory: Path, name: str) -> Path | None:
    """The uploaded file in `directory` (None when none was chosen)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    suffix = Path(upload.filename).suffix.lower()
    path = directory / f"{name}{suffix if suffix in AUDIO_SUFFIXES else '.bin'}"
    with path.open("wb") as f:
        while chunk := await upload.read(1 << 20):
            f.write(chunk)
    return path


def _check_audio(path: Path, *, stereo: bool) -> str | None:
    """The texts key of what is wrong with an uploaded recording, or None."""
    from roleplay.audio.clip import channel_count, load_audio

    try:
        channels = channel_count(path)
        if stereo and channels < 2:
            return "trainer.import_not_stereo"
        audio = load_audio(path, channel=0 if stereo else None, max_channels=None if stereo else 2)
    except (InputError, OSError, ValueError, RuntimeError):
        return "trainer.import_not_audio"
    return None if audio.duration_s > 0.5 else "trainer.import_too_short"


def _draft(files: dict[str, Path], *, stereo: bool, caller_channel: int, scenario_id: str,
           language: str) -> ImportResult:
    """`roleplay scenarios from-recording` without writing: analyse, draft, personal details out."""
    import argparse

    from roleplay.app import analyse as stages
    from roleplay.caller.incident import draft_from_analysis, render_draft
    from roleplay.caller.scenario import scenario_from_text

    ns = argparse.Namespace(path=str(files["stereo"]) if stereo else None,
                            caller_channel=caller_channel if stereo else None,
                            trainee_channel=1 - caller_channel if stereo else None,
                            caller=None if stereo else str(files["caller"]),
                            trainee=None if stereo else str(files["trainee"]), calibration=None)
    inp = stages.read_input(ns)
    analysis, _advice = stages.run_analysis(inp, language=language, transcriber=stages.load_transcriber(None))
    source = files["stereo" if stereo else "caller"].name
    today = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    draft, _curve, _voice = draft_from_analysis(analysis, scenario_id=scenario_id, language=language,
                                                date=today, source_name=source)
    text = render_draft(draft)
    scenario_from_text(text, path=Path(f"{scenario_id}.yaml"))
    return ImportResult(text, draft.reviews())


@require("trainer", "admin")
async def import_recording(request: Request) -> Response:
    from roleplay.caller.scenario import _ID_RE, scenario_files

    data = await request.form()
    form = {k: str(data.get(k) or v) for k, v in _IMPORT_DEFAULTS.items()}
    t = translator(current_user(request).language)
    stereo = form["kind"] != "two"
    errors = []
    if not _ID_RE.match(form["scenario_id"]):
        errors.append(FormError("scenario_id", t("trainer.import_bad_id")))
    elif form["scenario_id"] in scenario_files():
        errors.append(FormError("scenario_id", t("trainer.editor_id_taken", id=form["scenario_id"])))
    if form["language"] not in ("nl", "en"):
        form["language"] = "nl"
    with tempfile.TemporaryDirectory(prefix="roleplay-import-") as tmp:
        fields = ("stereo",) if stereo else ("caller", "trainee")
        files = {f: await _save_upload(data.get(f), Path(tmp), f) for f in fields}
        for field, path in files.items():
            if path is None:
                errors.append(FormError(field, t("trainer.import_no_file")))
                continue
            problem = await run_in_threadpool(_check_audio, path, stereo=stereo)
            if problem:
                errors.append(FormError(field, t(problem)))
        if errors:
            return _import_page(request, form=form, errors=errors, status_code=400)
        present = {k: v for k, v in files.items() if v is not None}
        try:
            result = await run_in_threadpool(_draft, present, stereo=stereo,
                                             caller_channel=1 if form["caller_channel"] == "1" else 0,
                                             scenario_id=form["scenario_id"], language=form["language"])
        except InputError:
            return _import_page(request, form=form, status_code=400,
                                errors=[FormError(fields[0], t("trainer.import_no_speech"))])
    return _import_page(request, form=form, result=result)


# --------------------------------------------------------------------------- the admin's settings


def _settings_page(request: Request, *, errors: list[FormError] | None = None, days: str | None = None,
                   confirm: Any = None) -> Response:
    acc = accounts(request)
    stored = retention_days(acc)
    return render(request, "trainer_settings.html", {
        "hide_meter": hide_anger_meter(acc), "retention": stored,
        "days": days if days is not None else ("" if stored is None else str(stored)),
        "confirm": confirm, "errors": errors or [],
    }, status_code=400 if errors else 200)


@require("admin")
async def settings_page(request: Request) -> Response:
    return _settings_page(request)


@require("admin")
async def save_settings(request: Request) -> Response:
    data = await request.form()
    days = str(data.get("retention_days") or "").strip()
    if days and not (days.isdigit() and 1 <= int(days) <= MAX_RETENTION_DAYS):
        t = translator(current_user(request).language)
        return _settings_page(request, days=days,
                              errors=[FormError("retention_days", t("trainer.retention_invalid",
                                                                    max=MAX_RETENTION_DAYS))])
    acc = accounts(request)
    acc.set_setting(HIDE_ANGER_METER, "1" if data.get(HIDE_ANGER_METER) == "1" else "0")
    acc.set_setting(RETENTION_DAYS, str(int(days)) if days else "")
    return done_redirect("/admin/settings", "trainer-settings-saved")


@dataclass(frozen=True)
class ForgetPreview:
    days: int
    calls: int
    trainees: int


@require("admin")
async def forget_old_calls(request: Request) -> Response:
    """First a page saying how many calls would go (confirm with the button there), then for good
    (`roleplay forget --older-than DAYS`)."""
    from roleplay.app.forget import forget, plan_forget

    acc = accounts(request)
    days = retention_days(acc)
    t: Translate = translator(current_user(request).language)
    if days is None:
        return _settings_page(request, errors=[FormError("retention_days", t("trainer.retention_first"))])
    db = settings_of(request).db
    plan = await run_in_threadpool(lambda: plan_forget(older_than_days=days, db=db))
    if (await request.form()).get("confirm") != "yes":
        in_history = [c for c in plan.calls if c.row_id is not None]
        preview = ForgetPreview(days, len(in_history), len({c.trainee for c in in_history}))
        return _settings_page(request, confirm=preview)
    await run_in_threadpool(forget, plan, db=db)
    acc.log_access(current_user(request).name, "forget", detail=f"calls older than {days} days: {len(plan.calls)}")
    return done_redirect("/admin/settings", "trainer-forgotten")
