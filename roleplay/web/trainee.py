"""The trainee's pages: home (what to practise next, recent calls, progress at a glance), the
scenario library and one scenario, my calls and one call's report (with its audio), progress, and
forgetting one's own data.

A call's pages go through auth.check_call (404 for anyone who may not see it, so a URL does not
tell whether the call exists) and auth.audit (a trainer or admin opening a trainee's report or
recording is logged). Engine modules (scenarios, report, readiness, forget) are imported inside
the functions that use them: they pull in numpy and YAML that the idle server does not need.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from roleplay.history.store import CallRow
from roleplay.web.auth import accounts, audit, check_call, current_user, require, settings_of
from roleplay.web.headers import SECURITY_HEADERS
from roleplay.web.i18n import translator
from roleplay.web.render import FormError, done_redirect, render
from roleplay.web.trainer import review_form_context

if TYPE_CHECKING:
    from roleplay.caller.scenario import Scenario
    from roleplay.report.readiness import Rules, TraineeReadiness

RECENT_CALLS = 5
GLANCE_ATTEMPTS = 10  # squares per item in the home page's strip
# The sound of a call: each party's own track (as recorded), or both mixed (small Ogg, made once).
AUDIO_TRACKS = ("caller", "trainee", "call")
MIXED_AUDIO = "report.audio.ogg"  # what report.audio.write_audio_beside writes beside report.html


@dataclass(frozen=True)
class CallSummary:
    """One line of a call list, in plain words."""

    call_id: int
    date: str  # YYYY-MM-DD HH:MM (UTC, as stored)
    scenario_id: str
    title: str
    intensity: str | None
    outcome: str  # in words
    good_outcome: bool | None  # the outcome the scenario hoped for
    duration_s: float | None


@dataclass(frozen=True)
class PracticeItem:
    """An advice item the trainee has not yet shown often enough, and where to practise it."""

    item: str
    name: str
    tip: str
    passes: int  # good attempts among the ones that count
    attempts: int
    scenarios: tuple[tuple[str, str], ...]  # (id, title), best fit first


@dataclass(frozen=True)
class ItemGlance:
    item: str
    name: str
    strip_svg: str  # one square per attempt, oldest left
    passes: int
    attempts: int


def _report_texts(request: Request) -> dict[str, Any]:
    """The report's words (item names, tips, outcomes) in the user's language."""
    from roleplay.report.text import texts

    return texts(current_user(request).language)


# Each scenario file parsed once per version: reading and checking them all took 80 ms and more on
# every request, most of a trainee page's time (roleplay bench web); a changed file is read again.
_SCENARIO_CACHE: dict[Path, tuple[tuple[int, int], Scenario]] = {}


def _scenarios() -> dict[str, Scenario]:
    """Every scenario (the shipped ones and those saved in the app) by id, as list_scenarios."""
    from roleplay.caller.scenario import load_scenario, scenario_files

    out = {}
    for path in scenario_files().values():
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _SCENARIO_CACHE.get(path)
        if cached is None or cached[0] != stamp:
            cached = _SCENARIO_CACHE[path] = (stamp, load_scenario(path))
        out[cached[1].id] = cached[1]
    return out


def _summary(row: CallRow, scenarios: dict[str, Scenario], outcomes: dict[str, str]) -> CallSummary:
    scenario = scenarios.get(row.scenario)
    return CallSummary(
        call_id=row.id, date=row.started_utc[:16].replace("T", " "), scenario_id=row.scenario,
        title=scenario.title if scenario else row.scenario, intensity=row.intensity,
        outcome=outcomes.get(row.outcome or "", row.outcome or "–"), good_outcome=row.outcome_expected,
        duration_s=row.duration_s,
    )


def _own_calls(request: Request) -> list[CallRow]:
    """The signed-in user's calls, oldest first (a drill's original real call is not an attempt)."""
    from roleplay.report.progress import ORIGINAL_MODE

    rows = accounts(request).history.calls(trainee=current_user(request).name)
    return [r for r in rows if r.mode != ORIGINAL_MODE]


# --------------------------------------------------------------------------- home


def practice_next(readiness: TraineeReadiness, rules: Rules, scenarios: dict[str, Scenario],
                  words: dict[str, Any]) -> list[PracticeItem]:
    """Per readiness item not yet met: how it went in the attempts that count, and the scenarios
    where it is still missing (those that list the item among their `needs` first)."""
    out = []
    for item in rules.items:
        unmet = [(rr.requirement, ir) for rr in readiness.requirements for ir in rr.items
                 if ir.item == item and not ir.met]
        if not unmet:
            continue
        where = [req.scenario for req, _ in unmet if req.scenario in scenarios]
        where.sort(key=lambda sid: item not in scenarios[sid].needs)  # stable: rule order otherwise
        out.append(PracticeItem(
            item=item, name=words["items"].get(item, item), tip=words["tips"].get(item, ""),
            passes=sum(ir.passes for _, ir in unmet), attempts=sum(len(ir.evidence) for _, ir in unmet),
            scenarios=tuple((sid, scenarios[sid].title) for sid in dict.fromkeys(where))[:2],
        ))
    out.sort(key=lambda p: p.attempts == 0)  # what went wrong before what was not tried yet
    return out


def glance(rows: list[CallRow], items: tuple[str, ...], words: dict[str, Any]) -> list[ItemGlance]:
    from roleplay.report.svg import verdict_strip_svg

    out = []
    for item in items:
        verdicts = [v for v in (r.verdict(item) for r in rows) if v in ("pass", "fail")][-GLANCE_ATTEMPTS:]
        if verdicts:
            out.append(ItemGlance(item, words["items"].get(item, item), verdict_strip_svg(list(verdicts)),
                                  verdicts.count("pass"), len(verdicts)))
    return out


def home_page(request: Request) -> Response:
    """The trainee's start page (account.home sends trainees here)."""
    from roleplay.report.readiness import evaluate, load_rules
    from roleplay.report.svg import sparkline_svg

    user = current_user(request)
    words = _report_texts(request)
    rows = _own_calls(request)
    rules = load_rules()
    scenarios = _scenarios()
    readiness = evaluate(user.name, rows, rules)
    # the share of readiness items passed per call: one line that should go up
    share: list[float | None] = [
        100.0 * sum(r.verdict(i) == "pass" for i in rules.items) / len(rules.items) for r in rows[-20:]]
    return render(request, "trainee_home.html", {
        "ready": readiness.ready,
        "mark": accounts(request).readiness_mark(user.name),
        "practice": practice_next(readiness, rules, scenarios, words),
        "recent": [_summary(r, scenarios, words["outcomes"]) for r in reversed(rows[-RECENT_CALLS:])],
        "glance": glance(rows, rules.items, words),
        "trend_svg": sparkline_svg(share, width=240, height=48, band=(75, 100)) if len(share) > 1 else "",
        "has_calls": bool(rows),
    })


# --------------------------------------------------------------------------- scenarios


@require("trainee", "trainer", "admin")
async def scenarios_page(request: Request) -> Response:
    words = _report_texts(request)
    every = list(_scenarios().values())
    languages = sorted({s.language for s in every})
    chosen = request.query_params.get("language", "")
    shown = [s for s in every if not chosen or s.language == chosen]
    return render(request, "trainee_scenarios.html", {
        "scenarios": shown, "languages": languages, "chosen": chosen if chosen in languages else "",
        "item_names": words["items"],
    })


@require("trainee", "trainer", "admin")
async def scenario_page(request: Request) -> Response:
    scenario = _scenarios().get(request.path_params["scenario_id"])
    if scenario is None:
        raise HTTPException(404)
    words = _report_texts(request)
    mine = [r for r in _own_calls(request) if r.scenario == scenario.id]
    return render(request, "trainee_scenario.html", {
        "scenario": scenario,
        "items": [(i, words["items"].get(i, i), words["tips"].get(i, "")) for i in scenario.needs],
        "expected": [words["outcomes"].get(o, o) for o in scenario.ending.expected],
        "attempts": len(mine),
    })


# --------------------------------------------------------------------------- calls


@require("trainee", "trainer", "admin")
async def calls_page(request: Request) -> Response:
    words = _report_texts(request)
    scenarios = _scenarios()
    return render(request, "trainee_calls.html", {
        "calls": [_summary(r, scenarios, words["outcomes"]) for r in reversed(_own_calls(request))],
    })


def _call_row(request: Request, call_id: int) -> CallRow:
    """The call if the signed-in user may see it (else 404), with its reviews."""
    trainee = check_call(request, call_id)
    row = next((r for r in accounts(request).history.calls(trainee=trainee) if r.id == call_id), None)
    if row is None:
        raise HTTPException(404)
    return row


def _call_dir(row: CallRow) -> Path | None:
    if not row.call_dir:
        return None
    path = Path(row.call_dir)
    return path if (path / "meta.json").is_file() else None


def _analysis(call_dir: Path | None) -> dict[str, Any] | None:
    """The call's analysis.json (written when the call was analysed); None when there is none."""
    if call_dir is None:
        return None
    try:
        data = json.loads((call_dir / "analysis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == "roleplay-analysis" else None


@dataclass(frozen=True)
class Verdict:
    """One advice item of a call: the automatic verdict and, beside it, the trainer's."""

    item: str
    name: str
    automatic: str  # pass, fail, no-evidence, not-applicable
    feedback: str
    review: dict[str, Any] | None  # the newest trainer review of this item
    tip: str

    @property
    def counts(self) -> str:
        return str(self.review["verdict"]) if self.review else self.automatic


@require()
async def call_page(request: Request) -> Response:
    call_id = int(request.path_params["call_id"])
    row = _call_row(request, call_id)
    audit(request, "report", trainee=row.trainee, call_id=call_id)
    from roleplay.core.advice import ADVICE_IDS
    from roleplay.report.html import debrief_html
    from roleplay.report.terminal import latest_reviews

    words = _report_texts(request)
    call_dir = _call_dir(row)
    data = _analysis(call_dir)
    reviews = accounts(request).history.reviews(call_id)
    latest = latest_reviews(reviews)
    verdicts: list[Verdict] = []
    turns: list[dict[str, Any]] = []
    debrief = ""
    if data is not None:
        order = {a: n for n, a in enumerate(ADVICE_IDS)}
        for a in sorted(data.get("advice") or [], key=lambda a: order.get(a["id"], 99)):
            if a["id"] == "debrief":
                continue  # never scored: it is the debrief prompt below
            verdicts.append(Verdict(a["id"], words["items"].get(a["id"], a["id"]), a["verdict"],
                                    a.get("feedback", ""), latest.get(a["id"]), words["tips"].get(a["id"], "")))
        turns = data.get("turns") or []
        debrief = debrief_html(data, reviews=reviews)
    tracks = {t for t in ("caller", "trainee") if call_dir is not None and (call_dir / f"{t}.wav").is_file()}
    return render(request, "trainee_call.html", {
        "call": _summary(row, _scenarios(), words["outcomes"]), "trainee": row.trainee,
        "own": row.trainee == current_user(request).name, "verdicts": verdicts, "turns": turns,
        "tracks": tracks, "debrief_html": debrief, "has_report": data is not None,
        "outcome_review": latest.get("outcome"), "verdict_words": words["verdicts"],
        **review_form_context(request, call_id),  # a trainer's or admin's verdict form (trainer.py)
    })


def _inline_hashes(page: str, tag: str) -> str:
    """CSP source expressions for the page's inline <style> or <script> elements."""
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"
        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    )


@require()
async def call_report(request: Request) -> Response:
    """The engine's own report page (the one `roleplay report` writes), with the call's sound from
    the app instead of embedded. It carries its style and script inline, so this page's policy
    allows exactly those (by hash) and nothing else."""
    call_id = int(request.path_params["call_id"])
    row = _call_row(request, call_id)
    data = _analysis(_call_dir(row))
    if data is None:
        raise HTTPException(404)
    audit(request, "report", trainee=row.trainee, call_id=call_id)
    from roleplay.report.html import render_html

    page = render_html(data, call_dir=_call_dir(row), reviews=accounts(request).history.reviews(call_id),
                       audio=f"/calls/{call_id}/audio/call")
    policy = (f"{SECURITY_HEADERS['Content-Security-Policy']}; style-src 'self' {_inline_hashes(page, 'style')}; "
              f"script-src 'self' {_inline_hashes(page, 'script')}")
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


def _mixed_audio(call_dir: Path) -> Path | None:
    """Both tracks mixed (made once, beside the report as `roleplay report` does for a long call;
    made again when a track is newer)."""
    from roleplay.report.audio import write_audio_beside

    tracks = [p for p in (call_dir / "caller.wav", call_dir / "trainee.wav") if p.is_file()]
    if not tracks:
        return None
    path = call_dir / MIXED_AUDIO
    if not path.is_file() or path.stat().st_mtime < max(p.stat().st_mtime for p in tracks):
        write_audio_beside(call_dir, call_dir / "report.html")
    return path if path.is_file() else None


@require()
async def call_audio(request: Request) -> Response:
    """A call's sound: `caller`, `trainee` (the recorded tracks) or `call` (both mixed). Range
    requests are answered (the player seeks to a turn)."""
    call_id = int(request.path_params["call_id"])
    track = request.path_params["track"]
    row = _call_row(request, call_id)
    call_dir = _call_dir(row)
    if track not in AUDIO_TRACKS or call_dir is None:
        raise HTTPException(404)
    path = _mixed_audio(call_dir) if track == "call" else call_dir / f"{track}.wav"
    if path is None or not path.is_file():
        raise HTTPException(404)
    # One log line per listening, not per chunk: the player's later requests ask for a later range.
    if re.fullmatch(r"bytes=0-\d*", request.headers.get("range", "bytes=0-")):
        audit(request, "recording", trainee=row.trainee, call_id=call_id, detail=track)
    return FileResponse(path, media_type="audio/ogg" if track == "call" else "audio/wav")


# --------------------------------------------------------------------------- progress


@require("trainee", "trainer", "admin")
async def progress_page(request: Request) -> Response:
    from roleplay.report.progress import progress_body_html

    rows = _own_calls(request)
    scenarios = _scenarios()
    mine = sorted({r.scenario for r in rows})
    chosen = request.query_params.get("scenario", "")
    chosen = chosen if chosen in mine else ""
    shown = [r for r in rows if not chosen or r.scenario == chosen]
    return render(request, "trainee_progress.html", {
        "body_html": progress_body_html(shown, scenario=chosen or None, language=current_user(request).language)
        if shown else "",
        "scenarios": [(sid, scenarios[sid].title if sid in scenarios else sid) for sid in mine],
        "chosen": chosen,
    })


# --------------------------------------------------------------------------- forget my data


@dataclass(frozen=True)
class ForgetSummary:
    """What forgetting would remove, counted for the page."""

    calls: int
    recordings: int
    calibration: bool


def _forget_plan(request: Request) -> Any:
    """The forget workflow's plan for the signed-in user (None: nothing is stored about them)."""
    from roleplay.app.forget import plan_forget
    from roleplay.core.errors import InputError

    try:
        return plan_forget(trainee=current_user(request).name, db=settings_of(request).db)
    except InputError:  # nothing recorded for this name
        return None


def _forget_page(request: Request, errors: list[FormError] | None = None) -> Response:
    plan = _forget_plan(request)
    summary = None if plan is None else ForgetSummary(
        calls=sum(c.row_id is not None for c in plan.calls),
        recordings=sum(c.directory is not None for c in plan.calls), calibration=bool(plan.calibration_dirs))
    return render(request, "trainee_forget.html", {"summary": summary, "errors": errors or []},
                  status_code=400 if errors else 200)


@require("trainee")
async def forget_page(request: Request) -> Response:
    return _forget_page(request)


@require("trainee")
async def forget_data(request: Request) -> Response:
    from roleplay.app.forget import forget

    if (await request.form()).get("confirm") != "yes":
        t = translator(current_user(request).language)
        return _forget_page(request, [FormError("confirm", t("trainee.forget.confirm_missing"))])
    plan = _forget_plan(request)
    if plan is not None:
        forget(plan, db=settings_of(request).db)
    return done_redirect("/forget", "trainee-forgotten")
