"""`roleplay demo`: a whole simulated call (`roleplay.session.demo`), then its analysis,
assessment and report, like any recorded call."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from roleplay.analysis.assessment import AdviceResult
from roleplay.analysis.pipeline import Analysis
from roleplay.audio.clip import Audio
from roleplay.caller.scenario import load_scenario
from roleplay.core.errors import InputError
from roleplay.session.demo import MAX_CALLER_LINES, simulate_call
from roleplay.speech.asr import Transcriber


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    scenario: str
    style: str
    seed: int
    outcome: str
    anger_start: float
    anger_peak: float
    anger_end: float
    caller_lines: int
    trainee_turns: int
    duration_s: float  # of the call's audio
    wall_s: float  # time taken, synthesis, live analysis and the full analysis together
    analysis: Analysis
    advice: tuple[AdviceResult, ...]
    json_path: Path
    report_path: Path

    def verdicts(self) -> dict[str, str]:
        return {a.id: a.verdict for a in self.advice}


def free_directory(path: Path) -> Path:
    """`path` if it does not exist or is empty, else the first free `path-2`, `path-3`, ..."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    for n in range(2, 1000):
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise InputError(f"{path}: exists and so do {path.name}-2 to -999; choose another --out")


def run_demo(*, scenario_id: str, style: str, seed: int, out_dir: Path, transcriber: Transcriber,
             cache_dir: Path | None = None, max_caller_lines: int = MAX_CALLER_LINES,
             trainee_audio: Callable[[Audio], Audio] | None = None,
             progress: TextIO | None = None) -> DemoResult:
    """Run one simulated call into `out_dir` (must not exist or be empty), analyse and assess it,
    write analysis.json and report.html and record it in the history."""
    from roleplay.app.analyse import analyse_call_dir

    started = time.monotonic()
    call = simulate_call(scenario_id=scenario_id, style=style, seed=seed, out_dir=out_dir,
                         transcriber=transcriber, cache_dir=cache_dir,
                         max_caller_lines=max_caller_lines, trainee_audio=trainee_audio,
                         progress=progress)
    if progress is not None:
        print("analysing the call ...", file=progress, flush=True)
    analysis, advice, _data, json_path, report_path = analyse_call_dir(
        call.directory, call.language, transcriber)
    return DemoResult(
        directory=call.directory, scenario=call.scenario, style=style, seed=seed,
        outcome=call.outcome, anger_start=call.anger_start, anger_peak=call.anger_peak,
        anger_end=call.anger_end, caller_lines=call.caller_lines, trainee_turns=call.trainee_turns,
        duration_s=round(analysis.duration_s, 2), wall_s=round(time.monotonic() - started, 2),
        analysis=analysis, advice=advice, json_path=json_path, report_path=report_path,
    )


def cmd_demo(args: Any, out: TextIO | None = None) -> int:
    """The `roleplay demo` command."""
    out = out if out is not None else sys.stdout
    from roleplay.app.analyse import load_transcriber
    from roleplay.core.paths import cache_dir
    from roleplay.report.terminal import print_summary

    scenario = load_scenario(args.scenario)  # fail early on a bad id
    requested = Path(args.out)
    directory = free_directory(requested)
    if directory != requested:
        out.write(f"{requested} is not empty; writing to {directory}\n")
    out.write(f"Demo call: scenario {scenario.id} ({scenario.title}), {args.trainee} trainee, "
              f"seed {args.seed}\n")
    transcriber = load_transcriber(args.model)
    # the id or file as given: a scenario file outside scenarios/ (a recorded copy) loads too
    result = run_demo(scenario_id=args.scenario, style=args.trainee, seed=args.seed,
                      out_dir=directory, transcriber=transcriber,
                      cache_dir=cache_dir() / "tts", progress=out)
    data = json.loads(result.json_path.read_text(encoding="utf-8"))  # as written: moments, say-instead
    print_summary(data, out)
    out.write(f"\nOutcome: {result.outcome}; caller anger {result.anger_start:.1f} at the start, "
              f"{result.anger_peak:.1f} at its peak, {result.anger_end:.1f} at the end "
              f"({result.caller_lines} caller lines, {result.duration_s:.0f} s of call, "
              f"{result.wall_s:.0f} s to make and analyse)\n")
    out.write(f"Call: {directory}\nReport: {result.report_path}\n")
    return 0
