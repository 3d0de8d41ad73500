"""Reports after the fact: rebuild a call's report (the `report` command, and after a trainer's
review with `review`), a trainee's progress, and readiness. Each reads the history, renders with
`roleplay.report`, and writes the pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from roleplay.analysis.document import write_json
from roleplay.app.analyse import load_or_analyse
from roleplay.core.errors import InputError
from roleplay.core.files import write_atomic
from roleplay.history.store import CallRow, History, open_history
from roleplay.report.audio import EMBED_MAX_S, write_audio_beside
from roleplay.report.html import render_html
from roleplay.report.progress import ORIGINAL_MODE, print_progress, render_progress_html
from roleplay.report.readiness import evaluate, load_rules, print_readiness, render_readiness_html, texts_title
from roleplay.report.terminal import print_summary


def _record_with_reviews(data: dict[str, Any], call_dir: Path, db: Any) -> list[dict[str, Any]]:
    """Record the call in the history (insert or update) and return its trainer reviews."""
    history = open_history(db)
    try:
        call_id = history.record(data, call_dir)
        return history.reviews(call_id)
    finally:
        if history is not db:
            history.close()


def build_report(
    call_dir: Path,
    *,
    html_path: Path | None = None,
    json_path: Path | None = None,
    db: Any = None,
    record: bool = True,
    model: str | None = None,
    out: TextIO | None = None,
) -> tuple[dict[str, Any], Path]:
    """Rebuild a call's report: analysis (reused or redone), history row, reviews, HTML, JSON."""
    call_dir = Path(call_dir)
    data, _ = load_or_analyse(call_dir, model=model, out=out)
    reviews = _record_with_reviews(data, call_dir, db) if record else []
    html_path = Path(html_path) if html_path else call_dir / "report.html"
    audio: str | bool = True
    if (data.get("duration_s") or 0) > EMBED_MAX_S:
        audio = write_audio_beside(call_dir, html_path) or True
    write_atomic(html_path, render_html(data, call_dir=call_dir, reviews=reviews, audio=audio))
    if json_path:
        write_json(Path(json_path), {**data, "reviews": reviews})
    return {**data, "reviews": reviews}, html_path


def cmd_report(args: Any, out: TextIO) -> int:
    data, html_path = build_report(
        Path(args.call_dir),
        html_path=args.html,
        json_path=args.json,
        db=args.db,
        record=not args.no_history,
        model=getattr(args, "model", None),
        out=out,
    )
    if not args.quiet:
        print_summary(data, out, reviews=data.get("reviews"))
    print(f"\nPage: {html_path}" + (f"; JSON: {args.json}" if args.json else ""), file=out)
    return 0


def cmd_review(args: Any, out: TextIO) -> int:
    """Store a trainer's verdict on one item of a call (recording the call first if the history
    does not have it), and rebuild the call's page when there is one."""
    call_dir = Path(args.call_dir)
    with open_history(args.db) as h:
        call_id = h.call_id_for(call_dir=call_dir)
        if call_id is None:
            path = call_dir / "analysis.json"
            if not path.is_file():
                raise InputError(
                    f"{call_dir}: not in the history and no analysis.json; run `roleplay report {call_dir}` first"
                )
            call_id = h.record(json.loads(path.read_text(encoding="utf-8")), call_dir)
        h.add_review(call_id, item=args.item, verdict=args.verdict, note=args.note, by=args.by)
    print(f"Review stored: {args.item} = {args.verdict}" + (f" by {args.by}" if args.by else ""), file=out)
    if (call_dir / "report.html").is_file():
        build_report(call_dir, db=args.db)
        print(f"Report updated: {call_dir / 'report.html'}", file=out)
    return 0


# --------------------------------------------------------------------------- progress


def progress_rows(h: History, trainee: str, scenario: str | None) -> tuple[list[CallRow], CallRow | None]:
    """A trainee's calls (oldest first) and, for a drill made from a real call, that original call
    (whoever took it), which is then not one of the attempts."""
    rows = h.calls(trainee=trainee, scenario=scenario)
    if not scenario:
        return rows, None
    originals = [r for r in h.calls(scenario=scenario) if r.mode == ORIGINAL_MODE]
    return [r for r in rows if r.mode != ORIGINAL_MODE], originals[-1] if originals else None


def cmd_progress(args: Any, out: TextIO) -> int:
    with open_history(args.db) as h:
        rows, original = progress_rows(h, args.trainee, args.scenario)
    print_progress(args.trainee, rows, out, scenario=args.scenario, original=original)
    if args.html:
        write_atomic(
            Path(args.html), render_progress_html(args.trainee, rows, scenario=args.scenario, original=original)
        )
        print(f"\nPage: {args.html}", file=out)
    return 0


# --------------------------------------------------------------------------- readiness


def _readiness_trainees(h: History, args: Any) -> list[str]:
    """The trainees asked about: a group's members, one trainee (who must have calls: a typo must
    not read as "not ready"), or everyone with calls."""
    if args.group:
        trainees = h.group(args.group)
        if not trainees:
            raise InputError(
                f"group {args.group!r} has no members; add them with `roleplay group {args.group} NAME ...`"
            )
        return trainees
    if args.trainee:
        known = h.trainees()
        if args.trainee not in known:
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise InputError(f"no calls recorded for trainee {args.trainee!r}"
                             + (f"; trainees with calls: {listed}" if known else ""))
        return [args.trainee]
    return h.trainees()


def cmd_readiness(args: Any, out: TextIO) -> int:
    rules = load_rules(args.rules)
    with open_history(args.db) as h:
        trainees = _readiness_trainees(h, args)
        rows = h.calls(trainees=trainees)
    if not trainees:
        print("No calls recorded yet.", file=out)
        return 0
    results = [evaluate(name, rows, rules) for name in trainees]
    for res in results:
        print_readiness(res, out)
    if args.html:
        title = f"{texts_title(rules)} · {args.group}" if args.group else None
        write_atomic(Path(args.html), render_readiness_html(results, rows, rules, title=title))
        print(f"\nPage: {args.html}", file=out)
    return 0 if all(r.ready for r in results) or not args.exit_code else 1
