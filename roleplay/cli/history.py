"""Command-line parts of reports, history, progress, readiness and trainer reviews.

`roleplay.cli.main` calls `add_parsers(sub)` and merges `COMMANDS`; nothing heavy is imported here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="FILE",
        help="history database (default: ROLEPLAY_DB, else "
        "$XDG_DATA_HOME/roleplay/history.sqlite3 or the platform's user-data directory)",
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "report",
        help="rebuild a call's report (HTML page, JSON, terminal summary)",
        description="Rebuild the report of a call directory. The analysis is reused unless "
        "analysis.json is missing or older than the audio. The call is recorded in "
        "the history, and trainer reviews from there are shown.",
    )
    r.add_argument("call_dir", metavar="CALL_DIR")
    r.add_argument("--html", metavar="FILE", help="where to write the page (default CALL_DIR/report.html)")
    r.add_argument("--json", metavar="FILE", help="also write the analysis plus the reviews as JSON")
    r.add_argument("--no-history", action="store_true", help="do not record the call in the history")
    r.add_argument("--quiet", action="store_true", help="no summary on the terminal")
    r.add_argument("--model", metavar="NAME|DIR", help="speech model, if the call must be re-analysed")
    _add_db(r)

    h = sub.add_parser("history", help="list the recorded calls", description="List the calls in the history.")
    h.add_argument("--trainee", metavar="NAME")
    h.add_argument("--scenario", metavar="ID")
    h.add_argument("--csv", metavar="FILE", help="also write the list (every verdict and figure) as CSV")
    h.add_argument(
        "--add",
        metavar="CALL_DIR",
        nargs="+",
        help="record analysed call directories first (e.g. calls recorded elsewhere)",
    )
    _add_db(h)

    p = sub.add_parser("progress", help="a trainee's trend per advice item and figure over attempts")
    p.add_argument("--trainee", metavar="NAME", required=True)
    p.add_argument("--scenario", metavar="ID")
    p.add_argument("--html", metavar="FILE", help="also write a page with the trend plots")
    _add_db(p)

    rd = sub.add_parser(
        "readiness",
        help="is a trainee (or a group) ready? what is missing?",
        description="Apply the readiness rules (default: the shipped readiness_rules.yaml) "
        "to the history, trainer overrides included.",
    )
    who = rd.add_mutually_exclusive_group()
    who.add_argument("--trainee", metavar="NAME")
    who.add_argument("--group", metavar="NAME", help="a group made with `roleplay group`")
    rd.add_argument("--html", metavar="FILE", help="also write an overview page")
    rd.add_argument("--rules", metavar="FILE", help="a rules file instead of the shipped one")
    rd.add_argument("--exit-code", action="store_true", help="exit with 1 when someone is not ready")
    _add_db(rd)

    rv = sub.add_parser(
        "review",
        help="a trainer's verdict and note on one advice item of a call",
        description="Store a trainer's override beside the automatic verdict; it is shown in "
        "the report and counted in readiness. The newest review of an item counts.",
    )
    rv.add_argument("call_dir", metavar="CALL_DIR")
    rv.add_argument("--item", required=True, metavar="ID", help="an advice id, or `outcome`")
    rv.add_argument("--verdict", required=True, choices=["pass", "fail"])
    rv.add_argument("--note", required=True, metavar="TEXT")
    rv.add_argument("--by", metavar="NAME", help="who reviewed")
    _add_db(rv)

    g = sub.add_parser("group", help="add trainees to a group (or list it) for `readiness --group`")
    g.add_argument("name", metavar="GROUP")
    g.add_argument("trainees", nargs="*", metavar="TRAINEE")
    g.add_argument("--remove", action="store_true", help="remove the named trainees instead")
    _add_db(g)


def _cmd_report(args: argparse.Namespace) -> int:
    from roleplay.app.report import cmd_report

    return cmd_report(args, sys.stdout)


def _cmd_history(args: argparse.Namespace) -> int:
    import json

    from roleplay.core.errors import InputError
    from roleplay.history.store import open_history, print_history, write_csv

    with open_history(args.db) as h:
        for d in args.add or []:
            path = Path(d) / "analysis.json"
            if not path.is_file():
                raise InputError(f"{d}: no analysis.json; run `roleplay analyse {d}` first")
            h.record(json.loads(path.read_text(encoding="utf-8")), Path(d))
        rows = h.calls(trainee=args.trainee, scenario=args.scenario)
        print_history(rows, sys.stdout)
        if args.csv:
            write_csv(Path(args.csv), rows)
            print(f"CSV: {args.csv}")
        print(f"Database: {h.path}")
    return 0


def _cmd_progress(args: argparse.Namespace) -> int:
    from roleplay.app.report import cmd_progress

    return cmd_progress(args, sys.stdout)


def _cmd_readiness(args: argparse.Namespace) -> int:
    from roleplay.app.report import cmd_readiness

    return cmd_readiness(args, sys.stdout)


def _cmd_review(args: argparse.Namespace) -> int:
    from roleplay.app.report import cmd_review

    return cmd_review(args, sys.stdout)


def _cmd_group(args: argparse.Namespace) -> int:
    from roleplay.history.store import open_history

    with open_history(args.db) as h:
        if args.trainees:
            h.set_group(args.name, args.trainees, remove=args.remove)
        members = h.group(args.name)
    print(f"{args.name}: {', '.join(members) or '(no members)'}")
    return 0


COMMANDS = {
    "report": _cmd_report,
    "history": _cmd_history,
    "progress": _cmd_progress,
    "readiness": _cmd_readiness,
    "review": _cmd_review,
    "group": _cmd_group,
}
