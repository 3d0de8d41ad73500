"""`roleplay drill`: one live call (`roleplay.session.live`), or a series with a pause and a
summary in between, each analysed, reported and recorded in the history afterwards."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from roleplay.app.demo import free_directory
from roleplay.audio.devices import DeviceSpec
from roleplay.session.live import (
    DrillResult,
    DrillSettings,
    calibration_path,
    delay_summary,
    run_drill,
)
from roleplay.session.turntaking import TurnSettings


@dataclass(frozen=True)
class AnalysedDrill:
    call: DrillResult
    report_path: Path


def drill_and_analyse(*, transcriber: Any, **drill: Any) -> AnalysedDrill:
    """`run_drill(transcriber=..., **drill)`, then the call analysed, reported and recorded (a
    cut-off call as far as it got)."""
    from roleplay.app.analyse import analyse_call_dir

    call = run_drill(transcriber=transcriber, **drill)
    *_, report_path = analyse_call_dir(call.directory, call.language, transcriber)
    return AnalysedDrill(call, report_path)


def cmd_drill(args: Any, out: TextIO | None = None) -> int:
    """`roleplay drill SCENARIO [--trainee NAME] [--repeat N] [--input-device ..] ...`: one call,
    or N with a pause and a summary in between and a comparison at the end."""
    out = out if out is not None else sys.stdout
    from roleplay.app.analyse import load_transcriber
    from roleplay.caller.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    calibration_path(args.trainee)  # a bad name fails before the model loads
    repeat, pause_s = args.repeat, args.pause  # checked by the parser
    out.write(f"Drill: {scenario.id} ({scenario.title}); trainee {args.trainee}"
              f"{f'; {repeat} calls' if repeat > 1 else ''}. Use a headset if you can: a "
              "loudspeaker's sound in the microphone is only gated, not removed.\n"
              "Enter hangs up; Ctrl-C cuts the call off (both keep it and analyse it).\n")
    out.flush()
    transcriber = load_transcriber(getattr(args, "model", None))
    keys = _EnterKey(sys.stdin)
    directories: list[Path] = []
    any_cut = False
    try:
        for attempt in range(1, repeat + 1):
            if repeat > 1:
                out.write(f"\n=== Call {attempt} of {repeat} ===\n")
                out.flush()
            directory, result = _one_drill(args, transcriber, keys.next_call(), out)
            directories.append(directory)
            any_cut = any_cut or result.cut_off
            if "Ctrl-C" in result.message or attempt == repeat:
                break
            out.write(f"\nNext call in {pause_s:g} s: Enter starts it now, Ctrl-C ends the series.\n")
            out.flush()
            keys.next_call().wait(pause_s)
    except KeyboardInterrupt:
        out.write("\nseries ended (Ctrl-C)\n")
    if len(directories) > 1:
        print_series(directories, out)
        out.write(f"\nEvery attempt so far, and the original call if there was one: "
                  f"roleplay progress --scenario {scenario.id} --trainee {args.trainee}\n")
    return 1 if any_cut else 0


def _one_drill(args: Any, transcriber: Any, hang_up: threading.Event, out: TextIO
               ) -> tuple[Path, DrillResult]:
    from roleplay.core.paths import cache_dir
    from roleplay.recording.calldir import load_call
    from roleplay.report.terminal import print_summary

    directory = free_directory(Path(args.out))
    # the id or the file as given: a recorded copy (`voices record`) lives outside scenarios/
    done = drill_and_analyse(
        scenario_id=args.scenario, trainee=args.trainee, out_dir=directory,
        transcriber=transcriber, input_device=device_spec(args.input_device),
        output_device=device_spec(args.output_device), status_out=sys.stderr,
        cache_dir=cache_dir() / "tts",
        settings=DrillSettings(turn=TurnSettings(end_of_turn_s=args.end_of_turn)), hang_up=hang_up)
    result = done.call
    data = json.loads((directory / "analysis.json").read_text(encoding="utf-8"))
    print_summary(data, out)
    summary = delay_summary(result.reply_delays)
    if summary:
        out.write(f"\nReply delay: median {summary['p50_s']:.2f} s, 95th percentile "
                  f"{summary['p95_s']:.2f} s over {int(summary['n'])} turns\n")
    cut = " (cut off)" if load_call(directory).cut_off else ""
    out.write(f"Outcome: {result.outcome}{cut}\nCall: {directory}\n")
    out.write(f"Report: {done.report_path}\n")
    out.flush()
    return directory, result


def print_series(directories: list[Path], out: TextIO) -> None:
    """The calls of one `--repeat` series side by side: outcome, anger and each advice verdict."""
    calls = []
    for d in directories:
        path = d / "analysis.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        calls.append((meta, {a["id"]: a["verdict"] for a in data.get("advice", [])}))
    ids = list(dict.fromkeys(i for _meta, verdicts in calls for i in verdicts))
    mark = {"pass": "pass", "fail": "FAIL", "not-applicable": "-"}
    out.write("\nThe series, call by call:\n")
    out.write(f"  {'':24}" + "".join(f"{f'call {k}':>9}" for k in range(1, len(calls) + 1)) + "\n")
    short = {"ended-by-trainee": "ended", "caller-hung-up": "hung-up", "time-limit": "time-up",
             "transferred": "transfer", "aborted": "cut off"}
    out.write(f"  {'outcome (ended = by you)':24}"
              + "".join(f"{short.get(str(m.get('outcome')), str(m.get('outcome')))[:8]:>9}" for m, _v in calls)
              + "\n")
    out.write(f"  {'caller anger at end':24}"
              + "".join(f"{m.get('anger_end', float('nan')):>9.1f}" for m, _v in calls) + "\n")
    for advice_id in ids:
        out.write(f"  {advice_id:24}" + "".join(f"{mark.get(v.get(advice_id, ''), '?'):>9}"
                                                  for _m, v in calls) + "\n")
    passed = [sum(v == "pass" for v in verdicts.values()) for _m, verdicts in calls]
    out.write(f"  {'advice items passed':24}" + "".join(f"{p:>9}" for p in passed) + "\n")


class _EnterKey:
    """Enter on `stream` (the terminal): one reader thread for the whole series; each call (and
    each pause) gets its own event, so an Enter ends only the call it was pressed in. End of input
    (no terminal, /dev/null) never hangs up."""

    def __init__(self, stream: TextIO | None) -> None:
        self._event = threading.Event()
        if stream is not None:
            threading.Thread(target=self._read, args=(stream,), name="roleplay-enter",
                             daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        try:
            while stream.readline():
                self._event.set()
        except (OSError, ValueError):
            pass

    def next_call(self) -> threading.Event:
        self._event = threading.Event()
        return self._event


def device_spec(value: str | None) -> DeviceSpec:
    """A `--input-device`/`--output-device` value: an index, a name, or None (the default)."""
    if value is None or value == "":
        return None
    return int(value) if value.isdigit() else value
