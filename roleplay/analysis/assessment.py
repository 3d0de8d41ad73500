"""Assessment: a verdict per advice item of the guide, from the figures of an `Analysis`.

Each rule is a small function returning (verdict, figures, turns). Thresholds are named here so a
report can quote them; the feedback sentences are data (`feedback/<language>.yaml`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from roleplay.analysis.pipeline import Analysis, Turn
from roleplay.core.advice import ADVICE_IDS

VERDICTS = ("pass", "fail", "not-applicable")
PROXY_ITEMS = frozenset({"breathe", "stay-calm"})

SLOWER_PCT = -10.0  # listeners notice a tempo change of about 10 %
SOFTER_DB = -2.0  # smaller loudness changes are noise
CLIMB_DB = 2.0
CLIMB_PCT = 10.0
CLIMB_ST = 1.5
VENT_SHARE = 0.6  # the caller's share of talk time while venting
VENT_CALLER_TURNS = 3
SILENCE_S = 0.8  # "about a second" of silence after the caller


@dataclass(frozen=True)
class AdviceResult:
    id: str
    verdict: str
    figures: dict[str, Any]
    turns: tuple[int, ...]
    feedback: str
    proxy: bool


Rule = Callable[[Analysis], tuple[str, dict[str, Any], tuple[int, ...]]]
NA: tuple[str, dict[str, Any], tuple[int, ...]] = ("not-applicable", {}, ())


def _trainee(a: Analysis) -> tuple[Turn, ...]:
    return a.turns_of("trainee")


def _after_baseline(a: Analysis) -> tuple[Turn, ...]:
    used = set(a.baseline.turns)
    return tuple(t for t in _trainee(a) if t.index not in used)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _phrases(turns: tuple[Turn, ...], category: str) -> list[tuple[Turn, str]]:
    return [(t, p.text) for t in turns for p in t.phrases if p.category == category]


def _greeting(a: Analysis):
    tr = _trainee(a)
    if not tr or not a.has_caller:
        return NA
    first = tr[0]
    found = [p.text for p in first.phrases if p.category == "greeting"]
    figures = {"time_to_answer_s": round(first.start_s, 2), "greeting_phrases": found}
    return ("pass" if found else "fail"), figures, (first.index,)


def _climbed(t: Turn) -> list[str]:
    out = []
    if t.loudness_vs_baseline_db is not None and t.loudness_vs_baseline_db >= CLIMB_DB + 1:
        out.append(f"+{t.loudness_vs_baseline_db:.1f} dB")
    if t.rate_vs_baseline_pct is not None and t.rate_vs_baseline_pct >= CLIMB_PCT + 5:
        out.append(f"+{t.rate_vs_baseline_pct:.0f} %")
    if t.pitch_vs_baseline_st is not None and t.pitch_vs_baseline_st >= CLIMB_ST + 0.5:
        out.append(f"+{t.pitch_vs_baseline_st:.1f} st")
    return out


def _stay_calm(a: Analysis):
    later = _after_baseline(a)
    if not a.has_caller or not later:
        return NA
    loud = _median([t.loudness_vs_baseline_db for t in later if t.loudness_vs_baseline_db is not None])
    rate = _median([t.rate_vs_baseline_pct for t in later if t.rate_vs_baseline_pct is not None])
    pitch = _median([t.pitch_vs_baseline_st for t in later if t.pitch_vs_baseline_st is not None])
    climbing = [t for t in later if _climbed(t)]
    failed = ((loud is not None and loud >= CLIMB_DB) or (rate is not None and rate >= CLIMB_PCT)
              or (pitch is not None and pitch >= CLIMB_ST))
    climbed = ", ".join(x for t in climbing[:3] for x in _climbed(t)) or "median above baseline"
    figures = {"loudness_change_db": loud, "rate_change_pct": rate, "pitch_change_st": pitch,
               "climbed": climbed, "thresholds": {"db": CLIMB_DB, "pct": CLIMB_PCT, "st": CLIMB_ST}}
    return ("fail" if failed else "pass"), figures, tuple(t.index for t in climbing)


def _slower_softer(a: Analysis):
    later = _after_baseline(a)
    if not later or a.baseline.source == "none":
        return NA
    rate = _median([t.rate_vs_baseline_pct for t in later if t.rate_vs_baseline_pct is not None])
    loud = _median([t.loudness_vs_baseline_db for t in later if t.loudness_vs_baseline_db is not None])
    if rate is None and loud is None:
        return NA
    slower = rate is not None and rate <= SLOWER_PCT
    softer = loud is not None and loud <= SOFTER_DB
    worse = (rate is not None and rate > -SLOWER_PCT) or (loud is not None and loud > -SOFTER_DB)
    caller_rate = _median([t.articulation_rate_syll_s for t in a.turns_of("caller")
                           if t.articulation_rate_syll_s is not None])
    trainee_rate = _median([t.articulation_rate_syll_s for t in later if t.articulation_rate_syll_s is not None])
    figures = {"rate_change_pct": rate, "loudness_change_db": loud, "trainee_rate_syll_s": trainee_rate,
               "caller_rate_syll_s": caller_rate, "baseline_source": a.baseline.source,
               "thresholds": {"slower_pct": SLOWER_PCT, "softer_db": SOFTER_DB}}
    return ("pass" if (slower or softer) and not worse else "fail"), figures, tuple(t.index for t in later)


def _breathe(a: Analysis):
    later = _after_baseline(a)
    pitch = _median([t.pitch_vs_baseline_st for t in later if t.pitch_vs_baseline_st is not None])
    if pitch is None:
        return NA
    spread = _median([t.pitch_spread_st for t in later if t.pitch_spread_st is not None])
    figures = {"pitch_change_st": pitch, "pitch_spread_st": spread,
               "baseline_pitch_hz": a.baseline.pitch_median_hz, "baseline_spread_st": a.baseline.pitch_spread_st}
    return ("pass" if pitch < CLIMB_ST else "fail"), figures, tuple(t.index for t in later)


def _let_vent(a: Analysis):
    caller = a.turns_of("caller")
    if not caller or not a.has_trainee:
        return NA
    window_end = caller[VENT_CALLER_TURNS].start_s if len(caller) > VENT_CALLER_TURNS else a.duration_s
    window_start = caller[0].start_s
    early = [t for t in a.turns if window_start <= t.start_s < window_end]

    def talk(speaker: str) -> float:
        return sum(min(t.end_s, window_end) - t.start_s for t in early if t.speaker == speaker)

    c, tr = talk("caller"), talk("trainee")
    share = c / (c + tr) if c + tr > 0 else 0.0
    cut_in = [i for i in a.interruptions if i.by == "trainee" and window_start <= i.start_s < window_end]
    figures = {"caller_share_pct": round(100 * share), "window_s": [round(window_start, 2), round(window_end, 2)],
               "trainee_interruptions_while_venting": len(cut_in)}
    verdict = "pass" if share >= VENT_SHARE and not cut_in else "fail"
    return verdict, figures, tuple(t.index for t in early if t.speaker == "trainee")


def _no_interrupt(a: Analysis):
    if not (a.has_caller and a.has_trainee):
        return NA
    by_trainee = [i for i in a.interruptions if i.by == "trainee"]
    figures = {"count": len(by_trainee), "onsets_s": [i.start_s for i in by_trainee],
               "backchannels": sum(1 for b in a.backchannels if b.speaker == "trainee")}
    return ("fail" if by_trainee else "pass"), figures, tuple(i.turn for i in by_trainee)


def _no_discussion(a: Analysis):
    tr = _trainee(a)
    if not tr:
        return NA
    hits = _phrases(tr, "argument")
    figures = {"count": len(hits), "examples": ", ".join(f"'{p}'" for _, p in hits[:3]) or "-"}
    return ("fail" if hits else "pass"), figures, tuple(sorted({t.index for t, _ in hits}))


def _positive(a: Analysis):
    tr = _trainee(a)
    if not tr:
        return NA
    neg = _phrases(tr, "negative")
    pos = _phrases(tr, "acknowledgement") + _phrases(tr, "concrete-offer")
    figures = {"negative": len(neg), "positive": len(pos)}
    return ("pass" if len(neg) <= len(pos) else "fail"), figures, tuple(sorted({t.index for t, _ in neg}))


def _silence(a: Analysis):
    lat = [(t, t.response_latency_s) for t in _trainee(a) if t.response_latency_s is not None]
    if not lat or not a.has_caller:
        return NA
    long_pauses = [t for t, latency in lat if latency >= SILENCE_S]
    figures = {"long_pauses": len(long_pauses), "max_latency_s": max(latency for _, latency in lat),
               "median_latency_s": _median([latency for _, latency in lat]), "threshold_s": SILENCE_S}
    return ("pass" if long_pauses else "fail"), figures, tuple(t.index for t in long_pauses)


def _concrete(a: Analysis):
    tr = _trainee(a)
    if not tr or not a.has_caller:
        return NA
    concrete, vague = _phrases(tr, "concrete-offer"), _phrases(tr, "vague")
    figures = {"concrete": len(concrete), "vague": len(vague)}
    verdict = "pass" if concrete and len(concrete) >= len(vague) else "fail"
    return verdict, figures, tuple(sorted({t.index for t, _ in concrete + vague}))


def _needs(a: Analysis, advice_id: str) -> bool:
    return advice_id in (a.call.get("needs") or ())


def _warm_transfer(a: Analysis):
    hits = _phrases(_trainee(a), "transfer")
    if not hits and not _needs(a, "warm-transfer"):
        return NA
    distinct = sorted({p for _, p in hits})
    # announcing the transfer and saying the colleague is informed: two different transfer phrases
    figures = {"transfer_phrases": distinct}
    return ("pass" if len(distinct) >= 2 else "fail"), figures, tuple(sorted({t.index for t, _ in hits}))


def _first_abuse(a: Analysis) -> Turn | None:
    return next((t for t in a.turns_of("caller") if t.abuse), None)


def _address_behaviour(a: Analysis):
    abuse = _first_abuse(a)
    if abuse is None or not a.has_trainee:
        return NA
    after = [t for t in _trainee(a) if t.start_s > abuse.start_s][:2]
    boundary = [t for t in after if any(p.category == "boundary" for p in t.phrases)]
    figures = {"abusive_turn": abuse.index, "abuse": list(abuse.abuse),
               "named_in_turn": boundary[0].index if boundary else None}
    return ("pass" if boundary else "fail"), figures, (abuse.index, *(t.index for t in boundary))


def _announce_end(a: Analysis):
    tr = _trainee(a)
    boundary = next((t for t in tr if any(p.category == "boundary" for p in t.phrases)), None)
    announce = next((t for t in tr if any(p.category == "end-announcement" for p in t.phrases)), None)
    ignored = boundary is not None and any(c.abuse and c.start_s > boundary.end_s for c in a.turns_of("caller"))
    if not ignored and announce is None:
        return NA
    in_order = announce is not None and boundary is not None and announce.start_s >= boundary.start_s
    figures = {"warning_turn": boundary.index if boundary else None,
               "warning_ignored": ignored, "announcement_turn": announce.index if announce else None}
    turns = tuple(t.index for t in (boundary, announce) if t is not None)
    return ("pass" if in_order else "fail"), figures, turns


def _debrief(a: Analysis):
    return "not-applicable", {"when": "after the call"}, ()


RULES: dict[str, Rule] = {
    "greeting": _greeting, "stay-calm": _stay_calm, "slower-softer": _slower_softer, "breathe": _breathe,
    "let-vent": _let_vent, "no-interrupt": _no_interrupt, "no-discussion": _no_discussion,
    "positive": _positive, "silence": _silence, "concrete": _concrete, "warm-transfer": _warm_transfer,
    "address-behaviour": _address_behaviour, "announce-end": _announce_end, "debrief": _debrief,
}


@lru_cache(maxsize=4)
def _feedback_texts(language: str) -> dict[str, dict[str, str]]:
    path = Path(__file__).with_name("feedback") / f"{language}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _fmt(value: Any, language: str) -> Any:
    if isinstance(value, float):
        text = "0" if abs(value) < 0.05 else f"{value:+.1f}"
        return text.replace(".", ",") if language == "nl" else text  # Dutch writes a decimal comma
    return "?" if value is None else value


def assess(a: Analysis) -> tuple[AdviceResult, ...]:
    texts = _feedback_texts(a.language)
    out = []
    for advice_id in ADVICE_IDS:
        verdict, figures, turns = RULES[advice_id](a)
        template = texts[advice_id][verdict]
        values = _Blank({k: _fmt(v, a.language) for k, v in figures.items()})
        if "time_to_answer_s" in figures:
            values["time_to_answer_s"] = _fmt(float(figures["time_to_answer_s"]), a.language).lstrip("+")
        out.append(AdviceResult(advice_id, verdict, figures, turns, template.format_map(values),
                                advice_id in PROXY_ITEMS))
    return tuple(out)
