"""Analysing a call: input selection, running the stages, and what is written for a call (the
analysis document, its row in the history, the report page). The `analyse` and `example` commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from roleplay.core.errors import InputError
from roleplay.speech.models import prepare_environment

prepare_environment()

from roleplay.analysis.assessment import AdviceResult, assess  # noqa: E402
from roleplay.analysis.document import analysis_dict, read_document, write_json  # noqa: E402
from roleplay.analysis.pipeline import Analysis, analyse_audio  # noqa: E402
from roleplay.audio.clip import Audio, channel_count, load_audio  # noqa: E402
from roleplay.core.files import write_atomic  # noqa: E402
from roleplay.history.store import open_history, record_quietly  # noqa: E402
from roleplay.recording.calldir import load_call  # noqa: E402
from roleplay.report.html import render_html  # noqa: E402
from roleplay.report.terminal import print_summary  # noqa: E402
from roleplay.speech.asr import LANGUAGES, FasterWhisperTranscriber, Transcriber  # noqa: E402
from roleplay.speech.models import choose_model  # noqa: E402


@dataclass(frozen=True)
class CallInput:
    caller: Audio | None
    trainee: Audio | None
    calibration: Audio | None
    language: str | None  # from the call's metadata, if any
    events: tuple[Mapping[str, Any], ...]  # typed events (roleplay.recording.events) read as JSON objects
    call: dict[str, Any]
    source: dict[str, Any]
    default_json: Path


def _call_summary(meta: Mapping[str, Any], cut_off: bool) -> dict[str, Any]:
    keys = ("call_id", "scenario", "trainee", "mode", "outcome", "anger_start", "anger_peak", "anger_end",
            "needs", "status")
    out = {k: meta[k] for k in keys if k in meta}
    out["cut_off"] = cut_off
    return out


def read_input(args: argparse.Namespace) -> CallInput:
    """Turn the command-line choices into two tracks on one timeline."""
    path = Path(args.path) if args.path else None
    channels = (args.caller_channel, args.trainee_channel)
    if path is not None and (args.caller or args.trainee):
        raise InputError("give either PATH or --caller/--trainee files, not both")
    if path is not None and path.is_dir():
        rec = load_call(path)
        calibration = load_audio(args.calibration, max_channels=2) if args.calibration else rec.calibration
        return CallInput(rec.caller, rec.trainee, calibration, rec.meta.get("language"), rec.events,
                         _call_summary(rec.meta, rec.cut_off), {"call_dir": str(path)}, path / "analysis.json")
    calibration = load_audio(args.calibration, max_channels=2) if args.calibration else None
    if path is not None:
        if None in channels:
            n = channel_count(path)
            raise InputError(f"{path}: a single file needs --caller-channel N and --trainee-channel M "
                             f"(it has {n} channel{'s' if n != 1 else ''}); for the trainee alone use --trainee FILE")
        if channels[0] == channels[1]:
            raise InputError(f"--caller-channel and --trainee-channel are both {channels[0]}; expected two channels")
        caller: Audio | None = load_audio(path, channel=channels[0])  # None below: no caller file
        trainee = load_audio(path, channel=channels[1])
        return CallInput(caller, trainee, calibration, None, (), {}, {"file": str(path), "channels": list(channels)},
                         Path(f"{path.stem}.analysis.json"))
    if any(c is not None for c in channels):
        raise InputError("--caller-channel/--trainee-channel need a stereo PATH")
    if not args.trainee and not args.caller:
        raise InputError("nothing to analyse: give a call directory, a stereo file, or --trainee FILE")
    if args.caller and not args.trainee:
        raise InputError("--caller needs --trainee too (the trainee is the one being assessed)")
    # one party per file: more than two channels is several people, not one voice to mix down
    caller = load_audio(args.caller, max_channels=2) if args.caller else None
    trainee = load_audio(args.trainee, max_channels=2)
    if caller is not None and abs(caller.duration_s - trainee.duration_s) > 1.0:
        print(f"roleplay: note: the two files differ in length ({caller.duration_s:.1f} s and "
              f"{trainee.duration_s:.1f} s); they are taken to start at the same moment", file=sys.stderr)
    source = {"caller": args.caller, "trainee": args.trainee}
    default_json = Path(f"{Path(args.trainee).stem}.analysis.json")
    return CallInput(caller, trainee, calibration, None, (), {}, source, default_json)


def check_language(value: str | None, default: str | None) -> str:
    language = value or default or "nl"
    if language not in LANGUAGES:
        raise InputError(f"unknown language {language!r}; expected one of: {', '.join(LANGUAGES)}")
    return language


def load_transcriber(model: str | None, *, own_model: bool = False) -> Transcriber:
    """The process's shared recognizer, or (`own_model`) one with a single worker of its own for a
    one-off analysis: each of the shared model's four workers keeps its own buffers, which took a
    5-minute call's analysis from 0.6 to 1.0 GB."""
    choice = choose_model(model)
    return FasterWhisperTranscriber(choice.path, own_model=own_model)


class _Progress:
    """A progress bar on stderr for longer calls (tqdm hides itself when stderr is not a terminal)."""

    def __init__(self, duration_s: float, steps: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=steps, desc="analysing", unit="step", file=sys.stderr, leave=False,
                         disable=None if duration_s > 20 else True)

    def __call__(self, message: str) -> None:
        self._bar.set_description(message)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _describe(source: dict[str, Any]) -> str:
    if "call_dir" in source:
        return str(source["call_dir"])
    if "file" in source:
        return str(source["file"])
    return " + ".join(str(source[k]) for k in ("caller", "trainee") if source.get(k)) or "the input"


def run_analysis(inp: CallInput, *, language: str, transcriber: Transcriber
                 ) -> tuple[Analysis, tuple[AdviceResult, ...]]:
    duration = max(a.duration_s for a in (inp.caller, inp.trainee) if a is not None)
    progress = _Progress(duration, steps=2 * sum(a is not None for a in (inp.caller, inp.trainee)) + 1)
    try:
        analysis = analyse_audio(caller=inp.caller, trainee=inp.trainee, language=language,
                                 transcriber=transcriber, calibration=inp.calibration, events=inp.events,
                                 call=inp.call, progress=progress)
    except InputError as exc:  # e.g. "no speech found": say which input it was about
        raise InputError(f"{_describe(inp.source)}: {exc}") from None
    finally:
        progress.close()
    return analysis, assess(analysis)


def call_document(analysis: Analysis, advice: tuple[AdviceResult, ...], inp: CallInput) -> dict[str, Any]:
    """The analysis document of a call: its moments from the event log, and what to say instead
    of each provoking or vague phrase, with the facts of the call's scenario when it is known."""
    from roleplay.caller.scenario import load_scenario
    from roleplay.report.say_instead import say_instead

    scenario = None
    if analysis.call.get("scenario"):
        try:
            scenario = load_scenario(str(analysis.call["scenario"]))
        except InputError:  # a scenario no longer on this machine: general sentences
            scenario = None
    better = [x.to_dict() for x in say_instead(analysis, scenario)]
    return analysis_dict(analysis, advice, source=inp.source, events=inp.events, say_instead=better)


def analyse(args: argparse.Namespace) -> int:
    inp = read_input(args)
    language = check_language(args.language, inp.language)
    transcriber = load_transcriber(args.model, own_model=True)
    analysis, advice = run_analysis(inp, language=language, transcriber=transcriber)
    data = call_document(analysis, advice, inp)
    json_path = Path(args.json) if args.json else inp.default_json
    write_json(json_path, data)
    record_quietly(data, Path(inp.source["call_dir"]) if "call_dir" in inp.source else None)
    if args.html:
        write_atomic(Path(args.html), render_html(data))
    if not args.quiet:
        print_summary(data, sys.stdout)
        print(f"\nFull result: {json_path}" + (f"; page: {args.html}" if args.html else ""))
    return 0


def _call_dir_input(directory: Path) -> CallInput:
    return read_input(argparse.Namespace(path=str(directory), caller_channel=None, trainee_channel=None,
                                         caller=None, trainee=None, calibration=None))


def write_call_outputs(
    call_dir: Path, data: dict[str, Any], *, db: Any = None, record: bool = True, html_path: Path | None = None
) -> tuple[Path, Path]:
    """What `analyse`, `example` and `demo` write for a call directory: analysis.json, the call's
    row in the history (with its reviews) and report.html. A history that cannot be written is a
    warning on stderr, never a lost analysis. Returns (json_path, html_path)."""
    call_dir = Path(call_dir)
    json_path = call_dir / "analysis.json"
    write_json(json_path, data)
    reviews: list[dict[str, Any]] = []
    call_id = record_quietly(data, call_dir, db) if record else None
    if call_id is not None:
        history = open_history(db)
        try:
            reviews = history.reviews(call_id)
        finally:
            if history is not db:
                history.close()
    html_path = Path(html_path) if html_path else call_dir / "report.html"
    write_atomic(html_path, render_html(data, call_dir=call_dir, reviews=reviews))
    return json_path, html_path


def analyse_call_dir(directory: Path, language: str, transcriber: Transcriber, *, db: Any = None
                     ) -> tuple[Analysis, tuple[AdviceResult, ...], dict[str, Any], Path, Path]:
    """What `example`, `demo` and `drill` do with the call they made: analyse the directory, write
    analysis.json and report.html, and record it in the history (so progress and readiness count
    it; `db` as `write_call_outputs`, e.g. the web app's history). Returns (analysis, advice, the
    JSON data, json_path, report_path)."""
    inp = _call_dir_input(Path(directory))
    analysis, advice = run_analysis(inp, language=language, transcriber=transcriber)
    data = call_document(analysis, advice, inp)
    json_path, report_path = write_call_outputs(Path(directory), data, db=db)
    return analysis, advice, data, json_path, report_path


def _newest_audio_mtime(call_dir: Path) -> float:
    return max(
        (
            p.stat().st_mtime
            for p in (call_dir / n for n in ("caller.wav", "trainee.wav", "calibration.wav"))
            if p.is_file()
        ),
        default=0.0,
    )


def load_or_analyse(
    call_dir: Path, *, model: str | None = None, out: TextIO | None = None
) -> tuple[dict[str, Any], bool]:
    """The call's analysis.json; re-analysed (and rewritten) when it is missing, unreadable or
    older than the audio. Returns (data, re_analysed)."""
    call_dir = Path(call_dir)
    if not (call_dir / "meta.json").is_file():
        raise InputError(f"{call_dir}: not a call directory (no meta.json)")
    path = call_dir / "analysis.json"
    if path.is_file() and path.stat().st_mtime >= _newest_audio_mtime(call_dir):
        data = read_document(path)
        if data is not None:
            return data, False
    if out is not None:
        print(f"(re-analysing {call_dir}: analysis.json is missing or older than the audio)", file=out)
    inp = _call_dir_input(call_dir)
    language = check_language(None, inp.language)
    analysis, advice = run_analysis(inp, language=language, transcriber=load_transcriber(model))
    data = call_document(analysis, advice, inp)
    write_json(path, data)
    return data, True


def example(args: argparse.Namespace) -> int:
    from roleplay.app.example import write_example_call

    language = check_language(args.language, None)
    out = Path(args.out)
    print(f"Synthesising an example call into {out} ...")
    write_example_call(out, language=language)
    transcriber = load_transcriber(args.model)
    _analysis, _advice, data, _json, _html = analyse_call_dir(out, language, transcriber)
    print_summary(data, sys.stdout)
    print(f"\nFull result: {out / 'analysis.json'}; page: {out / 'report.html'}")
    return 0
