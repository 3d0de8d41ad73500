"""Articulation rates of the simulated trainee against its script: `roleplay bench rates`.

Every trainee turn of a demo call has its script text in the `trainee-turn` event, so its true
syllable count is known; its true articulation rate is that count over the clean clip (trimmed to
the voice, less its own pauses of 0.25 s or more), as in `roleplay bench accuracy`. Each analysed
trainee turn that holds exactly one scripted turn is compared with it: the error is what the report
would have told the trainee wrongly (issue 11: "How can I help you?" heard for a 5.2 s greeting gave
1.03 syll/s, 78 % under the baseline).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STYLES = ("good", "poor")
DEFAULT_SEEDS = (1, 2)
MAX_CALLER_LINES = 5  # still about 30 s per demo call on 2 cores: 17 scenarios x 2 styles take 17 min a seed
OFF_PCT = 20.0  # the bound: no turn off by more than this
GUESSED = "the recognizer guessed"  # in the rate_excluded of the guessed-word rule


@dataclass(frozen=True)
class RateCase:
    call: str  # scenario/style/seed
    t_s: float
    script_syllables: int
    measured_syllables: int
    transcript_syllables: int
    acoustic_syllables: int
    probability: float  # mean word probability of the turn's transcript
    source: str  # the turn's syllable_source
    coverage: float | None
    excluded: str | None  # why the turn is left out of rate verdicts, if it is
    # articulation rate from the turn's `syllables`, against truth; for a left-out turn, the rate
    # the report would have used without the trust rule
    error_pct: float
    before_pct: float  # the same with the rule before coverage (acoustic only when doubtful too)
    text: str
    heard: str


def _truth_rate(text: str, trainee: Any, start_s: float, end_s: float, language: str) -> float | None:
    from roleplay.bench.accuracy import rate_truth
    from roleplay.speech.prosody import speaking_extent_s

    clip = trainee.slice_s(start_s, end_s)
    extent = speaking_extent_s(clip)
    if extent is None:
        return None
    return rate_truth(text, clip.slice_s(*extent), language=language).articulation_rate_syll_s


def score_demo(call_dir: Path, analysis: Any, label: str) -> tuple[list[RateCase], int]:
    """Cases of one analysed demo call, and the number of scripted turns not scored (merged with
    another scripted turn into one analysed turn, or not found)."""
    from roleplay.recording.calldir import load_call
    from roleplay.recording.events import TraineeTurn
    from roleplay.speech.syllables import count_syllables

    rec = load_call(call_dir)
    scripted = [e for e in rec.events if isinstance(e, TraineeTurn) and e.text]
    turns = analysis.turns_of("trainee")
    cases: list[RateCase] = []
    unscored = 0
    for e in scripted:
        def overlap(t: Any, e: Any = e) -> float:
            return max(0.0, min(t.end_s, e.end_s) - max(t.start_s, e.t_s))
        turn = max(turns, key=overlap, default=None)
        others = [o for o in scripted if o is not e and turn is not None and overlap(turn, o) > 0.2]
        truth = _truth_rate(e.text or "", rec.trainee, e.t_s, e.end_s, analysis.language)
        if turn is None or overlap(turn) <= 0 or others or truth is None:
            unscored += 1
            continue
        speaking_s = max(turn.duration_s - turn.pause_total_s, 1e-3)
        error = 100.0 * (turn.syllables / speaking_s / truth - 1.0)
        before = 100.0 * (_before_rate(turn) / truth - 1.0)
        probability = statistics.fmean(w.probability for w in turn.words) if turn.words else 0.0
        cases.append(RateCase(label, round(e.t_s, 2), count_syllables(e.text or "", language=analysis.language),
                              turn.syllables, turn.syllables_transcript, turn.syllables_acoustic, probability,
                              turn.syllable_source, turn.coverage, turn.rate_excluded,
                              error, before, e.text or "", turn.text))
    return cases, unscored


def _before_rate(turn: Any) -> float:
    """The articulation rate the turn had before coverage decided the source (the rule of
    TimingSettings' max_count_disagreement and min_word_probability alone), from the same counts."""
    n_text, n_acoustic = turn.syllables_transcript, turn.syllables_acoustic
    probability = statistics.fmean(w.probability for w in turn.words) if turn.words else 0.0
    doubtful = abs(n_text - n_acoustic) > 0.15 * max(n_acoustic, 1) and probability < 0.5
    return (n_acoustic if doubtful else n_text) / max(turn.duration_s - turn.pause_total_s, 1e-3)


def _percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def lost_rate_verdicts(analysis: Any) -> tuple[bool, bool]:
    """Whether the call's rate verdicts (slower-softer, stay-calm) went without the pace for too few
    trusted syllables, and whether left-out turns were among its turns after the baseline (the
    call lost its rate verdict because of the trust rule)."""
    from roleplay.analysis.assessment import assess

    results = {r.id: r for r in assess(analysis) if r.id in ("slower-softer", "stay-calm")}
    codes = {c.code for r in results.values() for c in r.reasons}
    unjudged = bool(codes & {"too-few-syllables", "voice-steady-pace-not-judged"})
    excluded = any(r.figures.get("rate_excluded_turns") for r in results.values())
    return unjudged, unjudged and excluded


def summarise(cases: list[RateCase]) -> dict[str, str]:
    """Distribution of |error| over all scripted turns (what the turns' counts say) and over the
    turns whose rate goes into verdicts, and how many were left out."""
    kept = [abs(c.error_pct) for c in cases if c.excluded is None]
    # the verdict turns without the guessed-word rule (the same run, the rule's exclusions undone)
    unguessed = [abs(c.error_pct) for c in cases if c.excluded is None or GUESSED in c.excluded]
    every = [abs(c.error_pct) for c in cases]
    before = [abs(c.before_pct) for c in cases]
    out = {"turns": str(len(cases)), "in_verdicts": str(len(kept)),
           "excluded": str(len(cases) - len(kept)), "excluded_guessed": str(len(unguessed) - len(kept))}
    for name, errs in (("all_", every), ("", kept), ("unguessed_", unguessed), ("before_", before)):
        if errs:
            out |= {f"{name}median_err_pct": f"{statistics.median(errs):.1f}",
                    f"{name}p90_err_pct": f"{_percentile(errs, 0.9):.1f}",
                    f"{name}max_err_pct": f"{max(errs):.1f}",
                    f"{name}over_20pct": str(sum(e > OFF_PCT for e in errs))}
    return out


def _print_header() -> None:
    print("  call                          t_s   syl script/meas (text/acou)  p     source      cover  err %  before"
          "  heard / left out", flush=True)


def _print_cases(cases: list[RateCase]) -> None:
    """One line per case, printed as each call is scored (a long run shows its turns as it goes)."""
    for c in cases:
        flag = " !" if abs(c.error_pct) > OFF_PCT and c.excluded is None else " x" if c.excluded else "  "
        cover = f"{c.coverage:.2f}" if c.coverage is not None else "  - "
        print(f"{flag}{c.call:28s} {c.t_s:6.1f}  {c.script_syllables:3d}/{c.measured_syllables:3d} "
              f"({c.transcript_syllables:3d}/{c.acoustic_syllables:3d})  {c.probability:.2f}  {c.source:10s}  "
              f"{cover}  {c.error_pct:+6.1f}  {c.before_pct:+6.1f}  {c.heard!r} {c.excluded or ''}", flush=True)


def _print_summary(f: dict[str, str]) -> None:
    def dist(prefix: str) -> str:
        return (f"median {f.get(prefix + 'median_err_pct', '-')} %, "
                f"90th percentile {f.get(prefix + 'p90_err_pct', '-')} %, max {f.get(prefix + 'max_err_pct', '-')} %, "
                f"{f.get(prefix + 'over_20pct', '-')} over {OFF_PCT:.0f} %")

    print(f"\n{f['turns']} scripted trainee turns scored ({f['unscored']} merged or not found). Articulation rate "
          f"|error| vs script:\n  over all scored turns:            {dist('all_')}\n"
          f"  over the {f['in_verdicts']} turns in rate verdicts: {dist('')}\n"
          f"  {f['excluded']} turns left out of rate verdicts (rate_excluded), {f['excluded_guessed']} of them only "
          f"for guessed words\n  without the guessed-word rule:   {dist('unguessed_')}\n"
          f"  the rule before coverage, all turns: {dist('before_')}\n"
          f"{f['calls']} calls: {f['calls_pace_unjudged']} without a pace in slower-softer/stay-calm (too few trusted "
          f"syllables after the baseline), {f['calls_lost_by_exclusion']} of them with left-out turns after the "
          "baseline")
    print(" ".join(f"{k}={v}" for k, v in f.items()))


def run_rates_bench(*, model: str | None, seeds: tuple[int, ...] = DEFAULT_SEEDS,
                    max_caller_lines: int = MAX_CALLER_LINES) -> int:
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.bench.machine import print_machine
    from roleplay.caller.scenario import list_scenarios
    from roleplay.core.paths import cache_dir
    from roleplay.recording.calldir import load_call
    from roleplay.session.demo import simulate_call
    from roleplay.speech.models import choose_model, prepare_environment

    print_machine()
    prepare_environment()
    from roleplay.speech.asr import FasterWhisperTranscriber

    started = time.perf_counter()
    transcriber = FasterWhisperTranscriber(choose_model(model).path)
    scenarios = [s.id for s in list_scenarios()]
    print(f"demo calls: {len(scenarios)} scenarios x {STYLES} x seeds {seeds}, "
          f"at most {max_caller_lines} caller lines each")
    cases: list[RateCase] = []
    unscored = unjudged = lost = 0
    _print_header()
    with tempfile.TemporaryDirectory(prefix="roleplay-rates-") as tmp:
        for sid in scenarios:
            for style in STYLES:
                for seed in seeds:
                    out = Path(tmp) / f"{sid}-{style}-{seed}"
                    call = simulate_call(scenario_id=sid, style=style, seed=seed, out_dir=out,
                                         transcriber=transcriber, cache_dir=cache_dir() / "tts",
                                         max_caller_lines=max_caller_lines)
                    rec = load_call(call.directory)
                    analysis = analyse_audio(caller=rec.caller, trainee=rec.trainee, language=call.language,
                                             transcriber=transcriber, calibration=rec.calibration)
                    found, missed = score_demo(call.directory, analysis, f"{sid}/{style}/{seed}")
                    _print_cases(found)
                    cases += found
                    unscored += missed
                    no_pace, by_exclusion = lost_rate_verdicts(analysis)
                    unjudged, lost = unjudged + no_pace, lost + by_exclusion
    calls = len(scenarios) * len(STYLES) * len(seeds)
    figures = summarise(cases) | {"unscored": str(unscored), "calls": str(calls), "calls_pace_unjudged": str(unjudged),
                                  "calls_lost_by_exclusion": str(lost), "run_s": f"{time.perf_counter() - started:.0f}"}
    _print_summary(figures)
    return 0
