"""Command line. Heavy libraries (faster-whisper, librosa, sounddevice) load only inside commands,
so `roleplay --help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from roleplay import __version__
from roleplay.core.errors import RoleplayError


class _Parser(argparse.ArgumentParser):
    """Bad command-line values give one line, like every other error (argparse prints the usage too)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _bounded(accepts, expected: str, *, what: str = "number", cast=float):
    """An argparse type: a number that `accepts` (bad values give argparse's one-line error; a
    negative length made `bench` loop for ever)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_INF = float("inf")
_positive_float = _bounded(lambda v: 0 < v < _INF, "a number above 0")
_anger = _bounded(lambda v: 0 <= v <= 10, "0 (calm) to 10 (furious)")
_days = _bounded(lambda v: 0 <= v < _INF, "0 or more days", what="number of days")
_calls = _bounded(lambda v: 1 <= v <= 50, "a number of calls from 1 to 50", what="whole number", cast=int)
_pause_s = _bounded(lambda v: 0 <= v <= 600, "seconds from 0 to 600")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="NAME|DIR",
                   help="faster-whisper model name or directory (default: ROLEPLAY_MODEL, the config file, "
                        "or the bundled multilingual base model)")


def _add_analyse(sub: Any) -> None:
    a = sub.add_parser("analyse", aliases=["analyze"], help="analyse a recorded call",
                       description="Analyse a call: a call directory, a stereo file with the two parties "
                                   "on separate channels, two mono files, or the trainee alone.")
    a.add_argument("path", nargs="?", help="a call directory or a stereo audio file")
    a.add_argument("--caller-channel", type=int, metavar="N", help="caller's channel in PATH (0-based)")
    a.add_argument("--trainee-channel", type=int, metavar="M", help="trainee's channel in PATH (0-based)")
    a.add_argument("--caller", metavar="FILE", help="the caller's audio (mono)")
    a.add_argument("--trainee", metavar="FILE", help="the trainee's audio (mono)")
    a.add_argument("--calibration", metavar="FILE", help="the trainee reading a sentence at their normal voice")
    a.add_argument("--language", help="nl or en (default: the call's language, else nl)")
    a.add_argument("--json", metavar="FILE", help="where to write the full result (default: "
                   "CALL_DIR/analysis.json, or NAME.analysis.json in the current directory)")
    a.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    a.add_argument("--quiet", action="store_true", help="no summary on the terminal")
    _add_model(a)


def _add_example(sub: Any) -> None:
    ex = sub.add_parser("example", help="make an example two-party call with synthetic voices and analyse it")
    ex.add_argument("--out", metavar="DIR", default="example-call", help="call directory to write")
    ex.add_argument("--language", default="nl", help="nl or en")
    _add_model(ex)


def _add_voices(sub: Any) -> None:
    v = sub.add_parser("voices", help="the caller and trainee voices")
    vs = v.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    vs.add_parser("list", help="list the voice profiles")
    vp = vs.add_parser("preview", help="speak a sample line in a voice")
    vp.add_argument("voice", help="a voice id (see `roleplay voices list`) or a profile file")
    vp.add_argument("--anger", type=_anger, default=0.0, help="0 (calm) to 10 (furious)")
    vp.add_argument("--out", metavar="FILE", help="where to write the WAV (default: a temporary file)")
    vp.add_argument("--play", action="store_true", help="also play it on the default output device")
    vr = vs.add_parser("record", help="record a scenario's caller lines in your own voice, line by line",
                       description="Record the caller's lines through the microphone; writes WAV files and a "
                                   "copy of the scenario that uses them (see docs/recorded-lines.md).")
    vr.add_argument("scenario", help="a scenario id or file")
    vr.add_argument("--out", metavar="DIR", help="where the recordings and the scenario copy go "
                    "(default: recordings/SCENARIO-ID)")
    vr.add_argument("--input-device", metavar="DEV", help="PortAudio index or part of a name")
    vr.add_argument("--situations", metavar="A,B", help="only these situations (default: all)")
    vr.add_argument("--max-line-s", type=_positive_float, default=15.0, metavar="S",
                    help="longest recording of one line (default 15)")


def _add_scenarios(sub: Any) -> None:
    s = sub.add_parser("scenarios", help="the scenarios a caller can play")
    ss = s.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    ss.add_parser("list", help="list the shipped scenarios")
    sh = ss.add_parser("show", help="show one scenario")
    sh.add_argument("scenario", help="a scenario id or file")
    sv = ss.add_parser("validate", help="check scenario files (all shipped ones when none is given)")
    sv.add_argument("files", nargs="*", metavar="FILE")
    sr = ss.add_parser("from-recording", help="a scenario draft from a recorded call (after a real incident)",
                       description="Transcribe the caller's side, estimate the caller's anger per turn, and write "
                                   "a scenario draft with personal details replaced by placeholders; the trainee's "
                                   "side is analysed as the original call and recorded in the history.")
    sr.add_argument("call", nargs="?", metavar="CALL", help="a call directory or a stereo audio file")
    sr.add_argument("--caller-channel", type=int, metavar="N", help="caller's channel in CALL (0-based)")
    sr.add_argument("--trainee-channel", type=int, metavar="M", help="trainee's channel in CALL (0-based)")
    sr.add_argument("--caller", metavar="FILE", help="the caller's audio (mono)")
    sr.add_argument("--trainee", metavar="FILE", help="the trainee's audio (mono)")
    sr.add_argument("--language", help="nl or en (default: the call's language, else nl)")
    sr.add_argument("--out", required=True, metavar="FILE",
                    help="the draft to write; its name is the scenario id (e.g. nl-incident-maart.yaml)")
    sr.add_argument("--taken-by", metavar="NAME", help="who took the original call (for the history)")
    sr.add_argument("--force", action="store_true", help="replace an existing --out file")
    sr.add_argument("--no-history", action="store_true", help="do not record the original call in the history")
    sr.add_argument("--db", metavar="FILE", help="history database (default: ROLEPLAY_DB or the user-data dir)")
    _add_model(sr)
    sn = ss.add_parser("new", help="a scenario draft from a template or from incident notes",
                       description="Write a scenario draft: from a template, or from written incident notes "
                                   "(who called, why, what was said in quotes, how it ended).")
    sn.add_argument("--from-notes", metavar="FILE", help="incident notes (plain text; quoted speech = caller lines)")
    sn.add_argument("--language", help="nl or en (default: guessed from the notes, else nl)")
    sn.add_argument("--out", required=True, metavar="FILE", help="the draft to write; its name is the scenario id")
    sn.add_argument("--force", action="store_true", help="replace an existing --out file")


def _add_demo(sub: Any) -> None:
    d = sub.add_parser("demo", help="a whole simulated call: the angry caller and a simulated trainee, "
                       "recorded, analysed and reported")
    d.add_argument("--scenario", default="nl-visite-derde-keer", metavar="ID",
                   help="scenario id or file (default: nl-visite-derde-keer; see `roleplay scenarios list`)")
    d.add_argument("--trainee", choices=["good", "poor"], default="good", help="how the simulated trainee behaves")
    d.add_argument("--seed", type=int, default=1, help="the same seed gives the same call")
    d.add_argument("--out", metavar="DIR", default="demo-call",
                   help="call directory to write (if it is not empty: DIR-2, DIR-3, ...)")
    _add_model(d)


def _add_drill(sub: Any) -> None:
    dr = sub.add_parser("drill", help="a live call: the caller rings, you answer aloud (microphone "
                        "and speaker; a headset is best)")
    dr.add_argument("scenario", help="scenario id or file (see `roleplay scenarios list`)")
    dr.add_argument("--trainee", default="default", metavar="NAME",
                    help="whose calibration to use (recorded before the first call)")
    dr.add_argument("--input-device", metavar="DEV", help="PortAudio index or part of a name")
    dr.add_argument("--output-device", metavar="DEV", help="PortAudio index or part of a name")
    dr.add_argument("--end-of-turn", type=_positive_float, default=0.7, metavar="S",
                    help="seconds of silence that end your turn when its words and pitch do not "
                         "decide it (default 0.7)")
    dr.add_argument("--out", metavar="DIR", default="drill-call",
                    help="call directory to write (if it is not empty: DIR-2, DIR-3, ...)")
    dr.add_argument("--repeat", type=_calls, default=1, metavar="N",
                    help="N calls in a row, a summary after each and a comparison at the end")
    dr.add_argument("--pause", type=_pause_s, default=10.0, metavar="S",
                    help="seconds between repeated calls (Enter skips the pause; default 10)")
    _add_model(dr)


def _add_devices(sub: Any) -> None:
    dv = sub.add_parser("devices", help="list audio devices; --test checks microphone and delay")
    dv.add_argument("--test", action="store_true", help="play a chirp and a tone, record a few seconds")
    dv.add_argument("--input-device", metavar="DEV")
    dv.add_argument("--output-device", metavar="DEV")


def _add_bench(sub: Any) -> None:
    b = sub.add_parser("bench", help="benchmarks that print figures and the machine")
    b.add_argument("what", choices=["analysis", "accuracy", "latency", "web", "rates", "scenarios", "load",
                                           "voices"],
                   help="web: the browser app's page times, live updates and memory with 1,000 calls; "
                        "rates: demo trainee rates against their scripts; "
                        "scenarios: every scenario as a demo, good and poor trainee, per seed; "
                        "voices: espeak-ng against Kokoro (intelligibility, synthesis time, anger)")
    b.add_argument("--minutes", type=_positive_float, default=5.0, help="length of the benchmark call (analysis)")
    b.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="demo seeds (rates: default 1 2; scenarios: default 1 2 3; latency: drill seeds, default 1 2)")
    b.add_argument("--scenario", action="append", default=[], metavar="ID",
                   help="scenarios: only this one (repeatable)")
    b.add_argument("--drills", default="1,2,3", metavar="N[,N...]",
                   help="load: simulated browsers calling the server at once (default 1,2,3)")
    _add_model(b)


def _add_forget(sub: Any) -> None:
    fg = sub.add_parser("forget", help="remove a trainee's or a call's recordings, reports, calibration and "
                        "history rows for good",
                        description="Remove recordings, transcripts, reports, calibrations and history rows for "
                                    "good. Shows what it will remove and asks first (--yes skips the question).")
    which = fg.add_mutually_exclusive_group(required=True)
    which.add_argument("--trainee", metavar="NAME", help="everything of this trainee, and their calibration")
    which.add_argument("--call", metavar="DIR", help="one call directory and its history rows")
    which.add_argument("--older-than", type=_days, metavar="DAYS", help="every call started more than DAYS ago")
    fg.add_argument("--db", metavar="FILE|URL", help="the history database (default: ROLEPLAY_DB, else the "
                    "user-data directory)")
    fg.add_argument("--yes", action="store_true", help="do not ask; needed when stdin is not a terminal")


def _add_users(sub: Any) -> None:
    u = sub.add_parser("users", help="the accounts of the browser app (roleplay serve)")
    us = u.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    ua = us.add_parser("add", help="add a user (the first admin, for a start)",
                       description="Add a user of the browser app. The password is asked twice on the terminal, "
                                   "or read from standard input with --password-stdin.")
    ua.add_argument("name", help="the user's name; a trainee's name is the one their calls are recorded under")
    ua.add_argument("--role", required=True, choices=["trainee", "trainer", "admin"])
    ua.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ua.add_argument("--db", metavar="FILE|URL", help="history database (default: ROLEPLAY_DB or the user-data dir)")
    ul = us.add_parser("list", help="list the users")
    ul.add_argument("--db", metavar="FILE|URL", help="history database (default: ROLEPLAY_DB or the user-data dir)")


def _add_serve(sub: Any) -> None:
    sv = sub.add_parser("serve", help="the browser app: sign in, practise, read reports, manage trainees",
                        description="Run the browser app on this machine, over the same history as the commands.")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=_bounded(lambda v: 0 <= v <= 65535, "a port from 0 to 65535",
                                            what="whole number", cast=int), default=8000, help="default 8000")
    sv.add_argument("--open", action="store_true", help="open the app in this machine's browser")
    sv.add_argument("--db", metavar="FILE|URL", help="history database (default: ROLEPLAY_DB or the user-data dir)")
    sv.add_argument("--certfile", metavar="FILE", help="TLS certificate: serve HTTPS (with --keyfile)")
    sv.add_argument("--keyfile", metavar="FILE", help="the certificate's private key")
    sv.add_argument("--calls-dir", metavar="DIR", help="where drills started in the app are written "
                    "(default: the user-data dir's calls/)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="roleplay",
        description="Practise calming an angry caller out loud, and measure it against the advice.",
    )
    parser.add_argument("--version", action="version", version=f"roleplay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_analyse(sub)
    _add_example(sub)
    _add_voices(sub)
    _add_scenarios(sub)
    _add_demo(sub)
    _add_drill(sub)
    _add_devices(sub)
    _add_bench(sub)
    _add_forget(sub)
    _add_users(sub)
    _add_serve(sub)

    from roleplay.cli import history as history_cli  # report, history, progress, readiness, review, group

    history_cli.add_parsers(sub)
    from roleplay.cli import jobs as jobs_cli  # worker

    jobs_cli.add_parsers(sub)
    return parser


def _cmd_analyse(args: argparse.Namespace) -> int:
    from roleplay.app.analyse import analyse

    return analyse(args)


def _cmd_example(args: argparse.Namespace) -> int:
    from roleplay.app.analyse import example

    return example(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "web":
        from roleplay.bench.web import run_web_bench

        return run_web_bench()
    if args.what == "load":
        from roleplay.bench.load import run_load_bench
        from roleplay.core.errors import InputError

        try:
            counts = [int(v) for v in args.drills.split(",")]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1:
            raise InputError(f"--drills {args.drills!r}: expected whole numbers from 1, e.g. 1,2,4")
        return run_load_bench(counts)
    if args.what == "voices":
        from roleplay.bench.voices import run_voices_bench

        return run_voices_bench(model=args.model)
    if args.what == "scenarios":
        from roleplay.bench.scenarios import run_scenarios_bench

        return run_scenarios_bench(seeds=args.seeds or [1, 2, 3], model=args.model,
                                   scenario_ids=args.scenario)
    if args.seeds is None:
        args.seeds = [1, 2]
    from roleplay.bench import run as bench

    return bench.run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from roleplay.app.demo import cmd_demo

    return cmd_demo(args)


def _cmd_drill(args: argparse.Namespace) -> int:
    from roleplay.app.drill import cmd_drill

    return cmd_drill(args)


def _cmd_devices(args: argparse.Namespace) -> int:
    from roleplay.app.drill import device_spec
    from roleplay.audio.devices import cmd_devices

    return cmd_devices(test=args.test, input_device=device_spec(args.input_device),
                       output_device=device_spec(args.output_device), out=sys.stdout)


def _cmd_voices(args: argparse.Namespace) -> int:
    from roleplay.speech import voice

    if args.voices_command == "list":
        return voice.cmd_voices_list(sys.stdout)
    if args.voices_command == "record":
        from roleplay.caller.recordlines import cmd_voices_record

        return cmd_voices_record(args)
    return voice.cmd_voices_preview(args.voice, anger=args.anger, out_path=Path(args.out) if args.out else None,
                                    play=args.play)


def _cmd_forget(args: argparse.Namespace) -> int:
    from roleplay.app.forget import cmd_forget

    return cmd_forget(args)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from roleplay.caller import scenario

    if args.scenarios_command == "list":
        return scenario.cmd_scenarios_list(sys.stdout)
    if args.scenarios_command == "show":
        return scenario.cmd_scenarios_show(args.scenario, sys.stdout)
    if args.scenarios_command in ("from-recording", "new"):
        from roleplay.app import incident  # drafts after a real incident

        if args.scenarios_command == "new":
            return incident.cmd_new(args, sys.stdout)
        return incident.cmd_from_recording(args, sys.stdout)
    return scenario.cmd_scenarios_validate(args.files, sys.stdout)


def _cmd_users(args: argparse.Namespace) -> int:
    from roleplay.web.commands import cmd_users

    return cmd_users(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from roleplay.web.commands import cmd_serve

    return cmd_serve(args)


COMMANDS = {"analyse": _cmd_analyse, "analyze": _cmd_analyse, "example": _cmd_example, "bench": _cmd_bench,
            "voices": _cmd_voices, "scenarios": _cmd_scenarios, "demo": _cmd_demo,
            "drill": _cmd_drill, "devices": _cmd_devices, "forget": _cmd_forget, "users": _cmd_users,
            "serve": _cmd_serve}


def _jobs_commands() -> dict:
    from roleplay.cli.jobs import COMMANDS as jobs_commands

    return jobs_commands


def _history_commands() -> dict:
    from roleplay.cli.history import COMMANDS as history_commands

    return history_commands


COMMANDS.update(_history_commands())
COMMANDS.update(_jobs_commands())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except RoleplayError as exc:
        print(f"roleplay: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roleplay: interrupted; everything recorded so far is kept", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"roleplay: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if os.environ.get("ROLEPLAY_DEBUG"):
            raise
        print(f"roleplay: internal error: {type(exc).__name__}: {exc} (set ROLEPLAY_DEBUG=1 for details)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
