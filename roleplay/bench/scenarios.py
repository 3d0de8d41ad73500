"""`roleplay bench scenarios`: every scenario as a demo, good and poor trainee, several seeds.

Per call, from its event log and analysis: the outcome and whether it is one the scenario expects;
for `ended-by-trainee`, whether the trainee named the behaviour and announced the end first (the
behaviours the caller heard, in order); the questions the simulated trainee asked (`asks` of its
turns), the ones the caller recognised and answered with the scenario's fact for that question, and
how many of those facts the recognizer heard in the caller's track; and the assessment's share of
advice items passed. The table holds issue 12's demo checks: the good trainee reaches an expected
ending everywhere (with the whole sequence in the severe scenarios), the poor trainee never calms a
severe one, and the good one's assessment beats the poor one's.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rapidfuzz import fuzz

from roleplay.analysis.phrases import normalise
from roleplay.bench.machine import machine
from roleplay.caller.questions import find_questions, load_questions
from roleplay.caller.scenario import Scenario, list_scenarios
from roleplay.recording.calldir import read_events

STYLES = ("good", "poor")
FACT_WORD_MIN_SCORE = 80.0  # a fact word counts as heard at this similarity to a heard word
FACT_HEARD_SHARE = 0.5  # ... and the fact when at least this share of its words are heard


@dataclass(frozen=True)
class CallCheck:
    scenario: str
    style: str
    seed: int
    outcome: str
    expected: bool  # the outcome is one the scenario expects
    full_sequence: bool  # boundary, then end announcement, before the trainee ended the call
    asked: int  # questions the simulated trainee asked
    answered_right: int  # ... that the caller answered with the scenario's fact for them
    wrong: int  # answers that gave another fact than the question asks for
    plain_turns: int  # trainee turns that asked nothing (the greeting aside)
    false_answers: int  # ... that the caller answered all the same
    missed: tuple[str, ...]  # what the recognizer heard of the questions not answered right
    facts_given: int  # answers that gave a fact
    facts_heard: int  # ... heard in the caller track's transcript
    score: float  # share of the applicable advice items passed
    duration_s: float
    wall_s: float
    question_cpu_s: tuple[float, ...] = ()  # recognising the questions of each trainee turn (words only)


def check_call(scenario: Scenario, style: str, seed: int, call_dir: Path, *, outcome: str,
               advice: Sequence[Any], duration_s: float, wall_s: float) -> CallCheck:
    events = [e.to_dict() for e in read_events(call_dir)]
    analysis = json.loads((call_dir / "analysis.json").read_text(encoding="utf-8"))
    questions = load_questions(scenario.language).questions
    turns = [e for e in events if e["type"] == "trainee-turn"]
    asked = [(e["t_s"], q) for e in turns for q in e.get("asks") or ()]
    answers = [e for e in events if e["type"] == "answer"]
    right = 0
    missed = []
    for t_s, q in asked:
        # the caller's answer to this turn: an answer event at the end of the same turn
        turn = next(e for e in turns if e["t_s"] == t_s)
        fact = next((f for f in questions[q].facts if f in scenario.facts), None)
        ok = any(a["t_s"] == turn["end_s"] and a["question"] == q and a.get("fact") == fact
                 for a in answers)
        right += ok
        if not ok:
            ended = not any(e["type"] == "caller-line" and e["t_s"] >= turn["end_s"]
                            for e in events)
            why = " (no caller line followed: the call ended)" if ended else ""
            missed.append(f"{q}: {turn.get('heard', '')!r}{why}")
    plain = [e for e in turns if not e.get("asks") and e.get("decided_by") != "greeting"]
    false = sum(any(a["t_s"] == e["end_s"] for a in answers) for e in plain)
    wrong = sum(1 for a in answers if a.get("fact") is not None
                and a["fact"] not in questions[a["question"]].facts)
    given = [a for a in answers if a.get("value")]
    heard = sum(_fact_heard(a, events, analysis) for a in given)
    cpu_s = []
    for e in turns:  # the words-only path runs on every turn before the caller answers: what it costs
        began = time.process_time()
        find_questions(e.get("heard") or "", language=scenario.language)
        cpu_s.append(time.process_time() - began)
    passed = sum(1 for a in advice if a.verdict == "pass")
    failed = sum(1 for a in advice if a.verdict == "fail")
    return CallCheck(
        scenario=scenario.id, style=style, seed=seed, outcome=outcome,
        expected=outcome in scenario.ending.expected and (
            outcome != "ended-by-trainee" or _full_sequence(turns)),
        full_sequence=_full_sequence(turns), asked=len(asked), answered_right=right, wrong=wrong,
        plain_turns=len(plain), false_answers=false, missed=tuple(missed),
        facts_given=len(given), facts_heard=heard,
        score=round(passed / (passed + failed), 3) if passed + failed else 0.0,
        duration_s=duration_s, wall_s=wall_s, question_cpu_s=tuple(cpu_s))


def _full_sequence(turns: list[dict[str, Any]]) -> bool:
    """The caller heard a boundary, then an end announcement, and the trainee then ended it."""
    step = 0
    for e in turns:
        heard = set(e.get("behaviours") or ())
        if step == 0 and "boundary" in heard:
            step = 1
        elif step == 1 and "end-announcement" in heard:
            step = 2
        if step == 2 and e.get("ends_call"):
            return True
    return False


def _fact_heard(answer: dict[str, Any], events: list[dict[str, Any]],
                analysis: dict[str, Any]) -> bool:
    """Whether the recognizer heard the answer's fact in the caller line that carried it."""
    line = next((e for e in events if e["type"] == "caller-line" and e["t_s"] >= answer["t_s"]),
                None)
    if line is None:
        return False
    text = " ".join(t["text"] for t in analysis["turns"] if t["speaker"] == "caller"
                    and t["start_s"] < line["end_s"] and t["end_s"] > line["t_s"])
    heard = normalise(text).split()
    words = [w for w in normalise(answer["value"]).split() if len(w) >= 3 or w.isdigit()]
    if not words or not heard:
        return False
    found = sum(any(fuzz.ratio(w, h) >= FACT_WORD_MIN_SCORE for h in heard) for w in words)
    return found >= FACT_HEARD_SHARE * len(words)


def run_scenarios_bench(*, seeds: Sequence[int], model: str | None,
                        scenario_ids: Iterable[str] = (), out: TextIO | None = None) -> int:
    """Run the demos, print one line per call as it finishes and the table at the end."""
    from roleplay.app.analyse import load_transcriber
    from roleplay.app.demo import run_demo
    from roleplay.core.paths import cache_dir

    out = out if out is not None else sys.stdout
    wanted = set(scenario_ids)
    scenarios = [s for s in list_scenarios() if not wanted or s.id in wanted]
    transcriber = load_transcriber(model)
    checks = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="roleplay-bench-scenarios-") as tmp:
        for s in scenarios:
            for style in STYLES:
                for seed in seeds:
                    call_dir = Path(tmp) / f"{s.id}-{style}-{seed}"
                    r = run_demo(scenario_id=s.id, style=style, seed=seed, out_dir=call_dir,
                                 transcriber=transcriber, cache_dir=cache_dir() / "tts")
                    c = check_call(s, style, seed, call_dir, outcome=r.outcome, advice=r.advice,
                                   duration_s=r.duration_s, wall_s=r.wall_s)
                    checks.append(c)
                    out.write(f"  {s.id} {style} seed {seed}: {c.outcome}, questions "
                              f"{c.answered_right}/{c.asked} answered right, score {c.score:.2f}"
                              f", false answers {c.false_answers}/{c.plain_turns}"
                              f" ({c.wall_s:.0f} s)\n")
                    for heard in c.missed:
                        out.write(f"    not answered: {heard}\n")
                    out.flush()
    out.write(format_table(scenarios, checks))
    out.write(f"\n{summary(scenarios, checks)}\n")
    m = machine()
    out.write(f"\n{len(checks)} calls ({sum(c.duration_s for c in checks) / 60:.1f} min of "
              f"call) in {(time.monotonic() - started) / 60:.1f} min on {m['cpu']}, "
              f"{m['cores']} cores\n")
    return 0 if all_pass(scenarios, checks) else 1


def _rows(scenarios: Sequence[Scenario], checks: Sequence[CallCheck]) -> list[dict[str, Any]]:
    rows = []
    for s in scenarios:
        good = [c for c in checks if c.scenario == s.id and c.style == "good"]
        poor = [c for c in checks if c.scenario == s.id and c.style == "poor"]
        both = good + poor
        severe = s.intensity == "severe"
        rows.append({
            "id": s.id, "severe": severe,
            "good": _outcomes(good), "poor": _outcomes(poor),
            "good_ok": sum(c.expected and (not severe or c.outcome == "ended-by-trainee")
                           for c in good),
            "n": len(good),
            "poor_calmed": sum(c.outcome == "calmed" for c in poor),
            "asked": sum(c.asked for c in both), "right": sum(c.answered_right for c in both),
            "wrong": sum(c.wrong for c in both),
            "false": sum(c.false_answers for c in both),
            "plain": sum(c.plain_turns for c in both),
            "given": sum(c.facts_given for c in both), "heard": sum(c.facts_heard for c in both),
            "score_good": statistics.mean(c.score for c in good) if good else 0.0,
            "score_poor": statistics.mean(c.score for c in poor) if poor else 0.0,
            "beats": all(g.score > p.score for g, p in zip(good, poor, strict=True)),
        })
    return rows


def _outcomes(calls: Sequence[CallCheck]) -> str:
    short = {"ended-by-trainee": "ended", "caller-hung-up": "hung-up", "time-limit": "time-up"}
    return " ".join(short.get(c.outcome, c.outcome) for c in calls)


def format_table(scenarios: Sequence[Scenario], checks: Sequence[CallCheck]) -> str:
    lines = ["| scenario | good trainee | expected ending | poor trainee | poor calmed a severe one "
             "| questions answered right | false answers | facts heard in caller track "
             "| score good / poor | good beats poor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in _rows(scenarios, checks):
        calmed = (f"yes ({r['poor_calmed']})" if r["poor_calmed"] else "no") if r["severe"] else "-"
        wrong = f" ({r['wrong']} wrong)" if r["wrong"] else ""
        lines.append(
            f"| {r['id']}{' (severe)' if r['severe'] else ''} | {r['good']} | "
            f"{r['good_ok']}/{r['n']} | {r['poor']} | {calmed} | "
            f"{r['right']}/{r['asked']}{wrong} | {r['false']}/{r['plain']} | "
            f"{r['heard']}/{r['given']} | {r['score_good']:.2f} / {r['score_poor']:.2f} | "
            f"{'yes' if r['beats'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def all_pass(scenarios: Sequence[Scenario], checks: Sequence[CallCheck]) -> bool:
    return all(r["good_ok"] == r["n"] and not (r["severe"] and r["poor_calmed"])
               and r["right"] == r["asked"] and not r["wrong"] and not r["false"] and r["beats"]
               for r in _rows(scenarios, checks))


def summary(scenarios: Sequence[Scenario], checks: Sequence[CallCheck]) -> str:
    """The done-when figures in one line each: expected endings, questions, false answers."""
    rows = _rows(scenarios, checks)
    return "\n".join([
        f"good trainee reached an expected ending: {sum(r['good_ok'] for r in rows)}/"
        f"{sum(r['n'] for r in rows)}",
        f"questions answered with the right fact: {sum(c.answered_right for c in checks)}/"
        f"{sum(c.asked for c in checks)} ({sum(c.wrong for c in checks)} with a wrong fact)",
        f"false answers (a turn that asked nothing answered): "
        f"{sum(c.false_answers for c in checks)}/{sum(c.plain_turns for c in checks)}",
        _question_cpu(checks)])


def _question_cpu(checks: Sequence[CallCheck]) -> str:
    cpu_ms = sorted(1000 * x for c in checks for x in c.question_cpu_s)
    if not cpu_ms:
        return "recognising the questions of a turn: no turns"
    return (f"recognising the questions of a turn (words only, CPU): median {statistics.median(cpu_ms):.2f} ms, "
            f"largest {cpu_ms[-1]:.2f} ms over {len(cpu_ms)} turns")
