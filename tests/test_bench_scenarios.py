"""`roleplay bench scenarios` checks each call from its event log: a question answered right, one
not answered (and what was heard of it), and a turn that asked nothing but got an answer all the
same (a false answer) are counted, and a false answer fails the bench."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from roleplay.bench.scenarios import all_pass, check_call, format_table, summary
from roleplay.caller.scenario import load_scenario

SCENARIO = "nl-visite-eisen"


def _call_dir(tmp_path: Path, events: list[dict]) -> Path:
    d = tmp_path / "call"
    d.mkdir()
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    (d / "analysis.json").write_text(json.dumps({"turns": []}), encoding="utf-8")
    return d


def _turn(t_s: float, heard: str, asks: list[str] | None = None, **extra) -> dict:
    e = {"type": "trainee-turn", "t_s": t_s, "end_s": t_s + 2.0, "heard": heard,
         "behaviours": [], "decided_by": "end-of-turn", **extra}
    return {**e, "asks": asks} if asks else e


def _answer(t_s: float, question: str, fact: str, value: str) -> dict:
    return {"type": "answer", "t_s": t_s, "question": question, "heard": "x", "tone": "plain",
            "placement": "after-line", "text": value, "reason": "test", "fact": fact,
            "value": value}


def _line(t_s: float) -> dict:
    return {"type": "caller-line", "t_s": t_s, "end_s": t_s + 3.0, "text": "Nou?",
            "situation": "venting", "group": "venting", "anger": 6.0, "rate_wpm": 180.0,
            "volume": 0.8}


def test_questions_answered_missed_and_false_answers_are_counted(tmp_path):
    s = load_scenario(SCENARIO)
    events = [
        {"type": "trainee-turn", "t_s": 0.0, "end_s": 2.0, "decided_by": "greeting"},
        _line(2.5),
        _turn(6.0, "Manier is de patiënt gebogen.", ["date_of_birth"]),
        _answer(8.0, "date_of_birth", "date_of_birth", s.facts["date_of_birth"]),
        _line(8.5),
        _turn(12.0, "De brauk te mei de zijnen.", ["medication"]),  # heard as no question
        _line(14.5),
        _turn(18.0, "Ik kan me voorstellen dat u boos bent."),
        _answer(20.0, "since", "since", s.facts["since"]),  # nobody asked
        _line(20.5),
    ]
    c = check_call(s, "good", 1, _call_dir(tmp_path, events), outcome="calmed", advice=(),
                   duration_s=24.0, wall_s=1.0)
    assert (c.asked, c.answered_right, c.wrong) == (2, 1, 0)
    assert c.missed == ("medication: 'De brauk te mei de zijnen.'",)
    assert (c.plain_turns, c.false_answers) == (1, 1)
    poor = replace(c, style="poor", outcome="caller-hung-up", expected=False, asked=0,
                   answered_right=0, missed=(), plain_turns=2, false_answers=0, score=0.1)
    good = replace(c, score=0.9)
    table = format_table([s], [good, poor])
    assert "| 1/2 | 1/3 |" in table  # questions answered right, false answers
    assert "false answers (a turn that asked nothing answered): 1/3" in summary([s], [good, poor])
    # the cost of recognising questions is measured on every turn of the call (4), for the summary
    assert len(c.question_cpu_s) == 4 and all(x >= 0 for x in c.question_cpu_s)
    assert "recognising the questions of a turn (words only, CPU): median " in summary([s], [good, poor])
    assert "over 8 turns" in summary([s], [good, poor])
    answered = replace(good, answered_right=2, missed=())
    assert not all_pass([s], [answered, poor])  # the false answer alone fails it
    assert all_pass([s], [replace(answered, false_answers=0), poor])
