"""The analysis document: a typed `Analysis` and its assessment as the JSON that `analysis.json`
holds, what the report, the history and the trainer read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from roleplay import __version__
from roleplay.analysis.assessment import AdviceResult
from roleplay.analysis.moments import find_moments
from roleplay.analysis.pipeline import Analysis, Turn
from roleplay.core.files import write_atomic

SCHEMA = "roleplay-analysis"
SCHEMA_VERSION = 1


def _r(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _turn_dict(t: Turn) -> dict[str, Any]:
    return {
        "index": t.index,
        "speaker": t.speaker,
        "start_s": t.start_s,
        "end_s": t.end_s,
        "text": t.text,
        "syllables": t.syllables,
        "syllables_transcript": t.syllables_transcript,
        "syllables_acoustic": t.syllables_acoustic,
        "syllable_source": t.syllable_source,
        "coverage": t.coverage,
        "rate_excluded": t.rate_excluded,
        "pause_total_s": t.pause_total_s,
        "speech_rate_syll_s": _r(t.speech_rate_syll_s, 2),
        "articulation_rate_syll_s": _r(t.articulation_rate_syll_s, 2),
        "loudness_dbfs": _r(t.loudness_dbfs, 2),
        "pitch_median_hz": _r(t.pitch_median_hz, 1),
        "pitch_spread_st": _r(t.pitch_spread_st, 2),
        "rate_vs_baseline_pct": _r(t.rate_vs_baseline_pct, 1),
        "loudness_vs_baseline_db": _r(t.loudness_vs_baseline_db, 2),
        "pitch_vs_baseline_st": _r(t.pitch_vs_baseline_st, 2),
        "response_latency_s": t.response_latency_s,
        "phrases": [
            {"category": p.category, "text": p.text, "start_s": p.start_s, "heard": p.heard} for p in t.phrases
        ],
        "abuse": list(t.abuse),
        "words": [
            {
                "text": w.text,
                "start_s": round(w.start_s, 3),
                "end_s": round(w.end_s, 3),
                "probability": round(w.probability, 3),
                **({"unsure": True} if w.unsure else {}),
            }
            for w in t.words
        ],
    }


def analysis_dict(a: Analysis, advice: tuple[AdviceResult, ...], *, source: dict[str, Any],
                  events: Sequence[Mapping[str, Any]] = (),
                  say_instead: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The document. `events`: the call's event log, for the moments (without anger events they
    come from the analysis); `say_instead`: better sentences, built by the report layer (it needs
    the scenario)."""
    caller_na = "not-applicable" if not a.has_caller else None
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "roleplay_version": __version__,
        "source": source,
        "language": a.language,
        "duration_s": a.duration_s,
        "parties": {"caller": a.has_caller, "trainee": a.has_trainee},
        "call": a.call,
        "turns": [_turn_dict(t) for t in a.turns],
        "backchannels": [asdict(b) for b in a.backchannels],
        "interruptions": caller_na
        or [
            {
                "by": i.by,
                "start_s": i.start_s,
                "overlap_s": i.overlap_s,
                "turn": i.turn,
                "interrupted_turn": i.interrupted_turn,
            }
            for i in a.interruptions
        ],
        "response_latencies_s": caller_na or list(a.response_latencies_s),
        "baseline": {k: _r(v, 3) for k, v in asdict(a.baseline).items()},
        "anger": [{"t_s": t, "anger": v} for t, v in a.anger],
        "advice": [
            {
                "id": r.id,
                "verdict": r.verdict,
                "figures": r.figures,
                "turns": list(r.turns),
                "feedback": r.feedback,
                "proxy": r.proxy,
                "reasons": [{"code": x.code, "figures": {k: _r(v, 2) for k, v in x.figures.items()}}
                            for x in r.reasons],
            }
            for r in advice
        ],
        "moments": [m.to_dict() for m in find_moments(a, events)],
        "say_instead": [dict(x) for x in say_instead],
        "quality": a.quality,
        "warnings": list(a.warnings),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_document(path: Path) -> dict[str, Any] | None:
    """The analysis document at `path`; None when it is unreadable or not an analysis (the caller
    then analyses again)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
