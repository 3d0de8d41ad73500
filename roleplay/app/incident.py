"""Drills after a real incident, the commands: `roleplay scenarios from-recording` and `roleplay
scenarios new`. The drafting itself (caller lines, anger estimate, personal details out, the
scenario YAML) is `roleplay.caller.incident`; here: the options checked, the recording analysed,
the draft and the "original call" report written, and that call recorded in the history."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, TextIO

from roleplay.analysis.assessment import AdviceResult
from roleplay.analysis.document import analysis_dict, write_json
from roleplay.analysis.pipeline import Analysis
from roleplay.app import analyse as stages  # as a module: tests swap its load_transcriber
from roleplay.caller.incident import (
    CALMED_BELOW,
    TEXTS,
    AngerCurve,
    Draft,
    draft_from_analysis,
    draft_from_notes,
    guess_language,
    parse_notes,
    redact_analysis,
    render_draft,
    template_draft,
)
from roleplay.caller.scenario import _ID_RE, scenario_from_text
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.files import write_atomic
from roleplay.history.store import record_call
from roleplay.report.html import render_html
from roleplay.report.progress import ORIGINAL_MODE  # the history `mode` of the original call

# --------------------------------------------------------------------------- files and checks


def check_out_path(value: str | None, *, force: bool) -> tuple[Path, str]:
    """The draft's path and scenario id (its file name), checked before any work is done."""
    if not value:
        raise InputError("--out FILE is required: where to write the scenario draft (e.g. nl-incident-maart.yaml)")
    path = Path(value)
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"{path}: expected a .yaml file name for the scenario draft")
    if not _ID_RE.match(path.stem):
        raise InputError(f"{path}: the file name is the scenario id: expected lower-case letters, digits and '-' "
                         f"(e.g. nl-incident-maart.yaml), got {path.stem!r}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a file name for the scenario draft")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; choose another --out or add --force to replace it")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory for --out")
    return path, path.stem


def write_draft(draft: Draft, path: Path) -> None:
    """Render, check that the scenario loader accepts it, then write it (never a broken draft)."""
    text = render_draft(draft)
    scenario_from_text(text, path=path)  # an error here is a bug in the draft writer, not the input
    write_atomic(path, text)


def print_reviews(draft: Draft, out: TextIO) -> None:
    reviews = draft.reviews()
    if not reviews:
        print("No personal details found in the lines; read them all before the draft is used.", file=out)
        return
    print(f"Replaced {len(reviews)} personal detail(s); check them (the draft lists where, not what):", file=out)
    for r in reviews:
        print(f"  {r.where}: {r.original!r} -> {r.placeholder}  ({r.rule})", file=out)
    templates = sum(line.template for line in draft.lines)
    if templates:
        print(f"{templates} template line(s) fill situations the incident did not show; marked in the draft.",
              file=out)


# --------------------------------------------------------------------------- from a recording


def _recorded_date(inp: stages.CallInput, path: Path | None) -> str:
    """When the call was made: its meta.json, else the audio file's time, else now."""
    meta_date = None
    if "call_dir" in inp.source:
        from roleplay.recording.calldir import read_meta

        try:
            meta_date = read_meta(inp.source["call_dir"]).created_utc
        except InputError:  # gone or damaged: the audio file's time instead
            meta_date = None
    if meta_date:
        return str(meta_date)
    files = [Path(p) for p in (path, inp.source.get("caller"), inp.source.get("file")) if p]
    for f in files:
        if f.is_file():
            return _dt.datetime.fromtimestamp(f.stat().st_mtime, _dt.UTC).isoformat(timespec="seconds")
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _read_recording(args: argparse.Namespace) -> stages.CallInput:
    ns = argparse.Namespace(path=args.call, caller_channel=args.caller_channel,
                            trainee_channel=args.trainee_channel, caller=args.caller, trainee=args.trainee,
                            calibration=None)
    inp = stages.read_input(ns)
    if inp.caller is None:
        raise InputError("the caller's side is missing: give a call directory, a stereo file with "
                         "--caller-channel N --trainee-channel M, or --caller FILE --trainee FILE")
    return inp


def original_call_document(analysis: Analysis, advice: tuple[AdviceResult, ...], *, source: dict[str, Any],
                           draft: Draft, curve: AngerCurve, taken_by: str | None) -> dict[str, Any]:
    """"How it went the first time": the trainee's side as a normal analysis document, without
    personal details, filed as the original call of the new scenario."""
    data = analysis_dict(analysis, advice, source=source)
    data, _ = redact_analysis(data, language=draft.language)
    call = dict(data.get("call") or {})
    call.update({
        "call_id": f"{ORIGINAL_MODE}:{draft.scenario_id}", "scenario": draft.scenario_id, "mode": ORIGINAL_MODE,
        "trainee": taken_by or call.get("trainee") or "unknown", "needs": list(draft.needs),
        "original_source": source, "anger_estimated": not data.get("anger"),
    })
    for key, value in (("anger_start", curve.start), ("anger_peak", curve.peak), ("anger_end", curve.end)):
        call.setdefault(key, value)
    data["call"] = call
    if not data.get("anger"):  # imported audio has no event log: show the estimate instead
        data["anger"] = [{"t_s": a.start_s, "anger": a.anger} for a in curve.turns]
    return data


def _write_original(data: dict[str, Any], draft: Draft, out_path: Path) -> tuple[Path, Path]:
    """The original call's JSON and page beside the draft (no audio: the recording stays where it was)."""
    json_path = out_path.with_name(f"{draft.scenario_id}.original.json")
    html_path = out_path.with_name(f"{draft.scenario_id}.original.html")
    write_json(json_path, data)
    info = {"title": draft.title, "debrief": draft.debrief, "expected": draft.expected,
            "calmed_below": CALMED_BELOW, "intensity": draft.intensity, "needs": draft.needs,
            "language": draft.language}
    write_atomic(html_path, render_html(data, audio=False, scenario=info))
    return json_path, html_path


def record_original(data: dict[str, Any], *, started_utc: str, db: Any = None) -> int | None:
    """Record the original call's analysis; a history that cannot be written is one warning."""
    # No call directory: the original's own meta.json (its scenario, its expected outcomes) must
    # not override the new scenario's.
    plain = {**data, "source": {"original_call": json.dumps(data.get("source"), sort_keys=True)}}
    try:
        return record_call(plain, None, db, started_utc=started_utc)
    except (RoleplayError, OSError, sqlite3.Error) as exc:
        print(f"roleplay: warning: the original call was not recorded in the history: {exc}", file=sys.stderr)
        return None


def cmd_from_recording(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    out_path, scenario_id = check_out_path(args.out, force=args.force)
    inp = _read_recording(args)
    language = stages.check_language(args.language, inp.language)
    source_name = args.call or args.caller
    print(f"Analysing {source_name} ({language}) ...", file=out, flush=True)
    transcriber = stages.load_transcriber(args.model)
    analysis, advice = stages.run_analysis(inp, language=language, transcriber=transcriber)
    date = _recorded_date(inp, Path(args.call) if args.call else None)
    draft, curve, voice = draft_from_analysis(analysis, scenario_id=scenario_id, language=language, date=date,
                                              source_name=Path(source_name).name)
    write_draft(draft, out_path)
    data = original_call_document(analysis, advice, source=inp.source, draft=draft, curve=curve,
                                  taken_by=args.taken_by)
    json_path, html_path = _write_original(data, draft, out_path)
    recorded = None if args.no_history else record_original(data, started_utc=date, db=args.db)

    print(f"\nScenario draft: {out_path} (id {scenario_id}, voice {voice.voice_id}, anger "
          f"{curve.start:g} -> peak {curve.peak:g} -> {curve.end:g})", file=out)
    print_reviews(draft, out)
    print(f"\nThe original call (trainee side): {html_path} and {json_path}", file=out)
    if recorded is not None:
        print(f"Recorded in the history as the original call of {scenario_id} (taken by "
              f"{data['call']['trainee']}).", file=out)
    print(f"Next: roleplay scenarios validate {out_path}; roleplay demo --scenario {out_path}; "
          f"roleplay progress --scenario {scenario_id} --trainee NAME", file=out)
    return 0


# --------------------------------------------------------------------------- from notes, or a template


def _read_notes(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected incident notes (plain text)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}); expected incident notes (plain text)") from None
    if len(text) > 200_000:
        raise InputError(f"{path}: {len(text)} characters; expected incident notes of at most 200,000")
    return text


def cmd_new(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    out_path, scenario_id = check_out_path(args.out, force=args.force)
    if args.language is not None and args.language not in TEXTS:
        raise InputError(f"unknown language {args.language!r}; expected one of: {', '.join(TEXTS)}")
    if args.from_notes:
        path = Path(args.from_notes)
        text = _read_notes(path)
        notes = parse_notes(text)
        if not notes.caller_quotes:
            raise InputError(f"{path}: no quoted caller lines found; expected what the caller said in quotes, "
                             "e.g. Beller: \"Waar blijft die dokter nou?\"")
        language = args.language or guess_language(text)
        draft = draft_from_notes(notes, scenario_id=scenario_id, language=language, source_name=path.name)
    else:
        language = args.language or "nl"
        draft = template_draft(scenario_id=scenario_id, language=language)
    write_draft(draft, out_path)
    print(f"Scenario draft: {out_path} (id {scenario_id}, {language}, voice {draft.caller_voice})", file=out)
    if args.from_notes:
        print_reviews(draft, out)
    print(f"Next: edit it, then roleplay scenarios validate {out_path}; roleplay demo --scenario {out_path}",
          file=out)
    return 0
