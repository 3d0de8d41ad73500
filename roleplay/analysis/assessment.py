"""Assessment: a verdict per advice item of the guide, from the figures of an `Analysis`.

Each rule is a small function returning its figures, the turns it rests on and its reasons: one
`Reason` per condition that decided the verdict, with the figures that condition rests on. The
verdict follows from the reasons, and the feedback sentence is made from them (one clause per
reason, `feedback/<language>.yaml`), so a sentence can only name what decided the verdict.
Thresholds are named here so a report can quote them.
"""

from __future__ import annotations

import statistics
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from roleplay.analysis.pipeline import Analysis, Turn
from roleplay.core.advice import ADVICE_IDS

VERDICTS = ("pass", "fail", "no-evidence", "not-applicable")
PROXY_ITEMS = frozenset({"breathe", "stay-calm"})

SLOWER_PCT = -10.0  # listeners notice a tempo change of about 10 %
SOFTER_DB = -2.0  # smaller loudness changes are noise
CLIMB_DB = 2.0
CLIMB_PCT = 10.0
CLIMB_ST = 1.5
VENT_SHARE_PCT = 60  # the caller's share of talk time while venting
VENT_CALLER_TURNS = 3
SILENCE_S = 0.8  # "about a second" of silence after the caller
# the guide: a rate needs about 40 syllables or 9 s of speech; fewer trusted syllables after the
# baseline (turns with `rate_excluded` do not count) and no rate verdict is given
RATE_MIN_SYLLABLES = 40
RATE_MIN_SPEECH_S = 9.0

P, F, NE, NA = "pass", "fail", "no-evidence", "not-applicable"
# Every reason a rule can give, per advice item: the verdict it stands for and the figures it
# names. The feedback clause of a reason names exactly these figures (tests/test_reasons.py).
REASON_CODES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "greeting": {
        "greeting-in-first-turn": (P, ("greeting_phrases", "time_to_answer_s")),
        "no-greeting-in-first-turn": (F, ()),
        "no-caller-or-trainee": (NA, ()),
    },
    "stay-calm": {
        "voice-steady": (P, ("loudness_change_db", "rate_change_pct", "pitch_change_st")),
        "voice-steady-pace-not-judged": (P, ("loudness_change_db", "pitch_change_st", "syllables",
                                             "excluded_turns", "needed_syllables")),
        "loudness-climbed": (F, ("loudness_change_db", "limit_db")),
        "rate-climbed": (F, ("rate_change_pct", "limit_pct")),
        "pitch-climbed": (F, ("pitch_change_st", "limit_st")),
        "no-turns-after-baseline": (NE, ()),
        "no-voice-measures": (NE, ()),
        "no-caller-or-trainee": (NA, ()),
    },
    "slower-softer": {
        "slower": (P, ("rate_change_pct", "target_pct")),
        "softer": (P, ("loudness_change_db", "target_db")),
        "rate-went-up": (F, ("rate_change_pct", "limit_pct")),
        "loudness-went-up": (F, ("loudness_change_db", "limit_db")),
        "not-slower-or-softer": (F, ("rate_change_pct", "loudness_change_db", "target_pct", "target_db")),
        "too-few-syllables": (NE, ("syllables", "excluded_turns", "needed_syllables")),
        "no-baseline": (NE, ()),
        "no-turns-after-baseline": (NE, ()),
        "no-voice-measures": (NE, ()),
        "no-trainee": (NA, ()),
    },
    "breathe": {
        "pitch-near-baseline": (P, ("pitch_change_st", "limit_st")),
        "pitch-rose": (F, ("pitch_change_st", "limit_st")),
        "no-pitch": (NE, ()),
        "no-trainee": (NA, ()),
    },
    "let-vent": {
        "caller-had-the-floor": (P, ("caller_share_pct", "target_pct")),
        "caller-share-below-target": (F, ("caller_share_pct", "target_pct")),
        "trainee-interrupted-while-venting": (F, ("count",)),
        "no-speech-while-venting": (NE, ()),
        "no-caller-or-trainee": (NA, ()),
    },
    "no-interrupt": {
        "no-interruption": (P, ()),
        "trainee-interrupted": (F, ("count", "onsets_s")),
        "no-caller-or-trainee": (NA, ()),
    },
    "no-discussion": {
        "no-argument-phrase": (P, ("words",)),
        "argument-phrase": (F, ("count", "examples")),
        "no-words-recognised": (NE, ()),
        "no-trainee": (NA, ()),
    },
    "positive": {
        "more-positive-than-negative": (P, ("positive", "negative")),
        "more-negative-than-positive": (F, ("negative", "positive", "examples")),
        "no-positive-or-negative-phrase": (NE, ()),
        "no-trainee": (NA, ()),
    },
    "silence": {
        "paused-after-caller": (P, ("long_pauses", "threshold_s")),
        "no-pause-after-caller": (F, ("max_latency_s", "threshold_s")),
        "no-answered-caller-turn": (NA, ()),
    },
    "concrete": {
        "concrete-offer": (P, ("concrete", "vague")),
        "no-concrete-offer": (F, ("vague", "examples")),
        "more-vague-than-concrete": (F, ("vague", "concrete")),
        "no-offer-or-vague-phrase": (NE, ()),
        "no-caller-or-trainee": (NA, ()),
    },
    "warm-transfer": {
        "transfer-announced-and-briefed": (P, ("transfer_phrases",)),
        "no-transfer-phrase": (F, ()),
        "one-transfer-phrase": (F, ("transfer_phrases",)),
        "transfer-not-needed": (NA, ()),
    },
    "address-behaviour": {
        "behaviour-named": (P, ("abusive_turn", "named_in_turn")),
        "behaviour-not-named": (F, ("abusive_turn", "abuse")),
        "no-abuse": (NA, ()),
    },
    "announce-end": {
        "end-announced-after-warning": (P, ("warning_turn", "announcement_turn")),
        "no-end-announcement": (F, ("warning_turn",)),
        "ended-without-warning": (F, ()),
        "ended-without-announcement": (F, ("warning_turn",)),
        "end-announced-without-warning": (F, ("announcement_turn",)),
        "end-announced-before-warning": (F, ("announcement_turn", "warning_turn")),
        "no-ignored-warning": (NA, ()),
    },
    "debrief": {"after-the-call": (NA, ())},
}


@dataclass(frozen=True)
class Reason:
    """One condition that decided a verdict (`code`, see REASON_CODES) and the figures it rests on."""

    code: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class AdviceResult:
    id: str
    verdict: str
    figures: dict[str, Any]
    turns: tuple[int, ...]
    feedback: str
    proxy: bool
    reasons: tuple[Reason, ...] = ()


Outcome = tuple[dict[str, Any], tuple[int, ...], list[Reason]]
Rule = Callable[[Analysis], Outcome]


def reason(item: str, code: str, **figures: Any) -> Reason:
    """A reason of `item`, checked against REASON_CODES (a rule cannot name an undeclared figure)."""
    _verdict, names = REASON_CODES[item][code]
    if set(figures) != set(names):
        raise ValueError(f"{item}/{code}: figures {sorted(figures)} but declared {sorted(names)}")
    return Reason(code, figures)


def _only(item: str, code: str) -> Outcome:
    return {}, (), [reason(item, code)]


def _trainee(a: Analysis) -> tuple[Turn, ...]:
    return a.turns_of("trainee")


def _after_baseline(a: Analysis) -> tuple[Turn, ...]:
    used = set(a.baseline.turns)
    return tuple(t for t in _trainee(a) if t.index not in used)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def _phrases(turns: tuple[Turn, ...], category: str) -> list[tuple[Turn, str]]:
    return [(t, p.text) for t in turns for p in t.phrases if p.category == category]


def _examples(hits: list[tuple[Turn, str]]) -> list[str]:
    return [p for _, p in hits[:3]]


def _greeting(a: Analysis) -> Outcome:
    tr = _trainee(a)
    if not tr or not a.has_caller:
        return _only("greeting", "no-caller-or-trainee")
    first = tr[0]
    found = [p.text for p in first.phrases if p.category == "greeting"]
    figures = {"time_to_answer_s": round(first.start_s, 2), "greeting_phrases": found}
    why = (reason("greeting", "greeting-in-first-turn", greeting_phrases=found, time_to_answer_s=first.start_s)
           if found else reason("greeting", "no-greeting-in-first-turn"))
    return figures, (first.index,), [why]


def _climbed(t: Turn) -> bool:
    return ((t.loudness_vs_baseline_db or 0) >= CLIMB_DB or (t.rate_vs_baseline_pct or 0) >= CLIMB_PCT
            or (t.pitch_vs_baseline_st or 0) >= CLIMB_ST)


@dataclass(frozen=True)
class RateEvidence:
    """What a rate verdict after the baseline would rest on: the trusted syllables and speaking time
    of the turns with a rate, and the turns left out because neither syllable count was trusted."""

    syllables: int
    speech_s: float
    excluded_turns: tuple[int, ...]

    @property
    def enough(self) -> bool:
        return self.syllables >= RATE_MIN_SYLLABLES or self.speech_s >= RATE_MIN_SPEECH_S

    def figures(self) -> dict[str, Any]:
        return {"syllables": self.syllables, "excluded_turns": len(self.excluded_turns),
                "needed_syllables": RATE_MIN_SYLLABLES}


def rate_evidence(later: tuple[Turn, ...]) -> RateEvidence:
    rated = [t for t in later if t.rate_vs_baseline_pct is not None]
    return RateEvidence(sum(t.syllables for t in rated), round(sum(t.duration_s - t.pause_total_s for t in rated), 2),
                        tuple(t.index for t in later if t.rate_excluded is not None))


def _voice(later: tuple[Turn, ...]) -> tuple[float | None, float | None, float | None]:
    """Median loudness (dB), rate (%) and pitch (semitones) against the baseline; no rate when too
    few trusted syllables back it."""
    rate = _median([t.rate_vs_baseline_pct for t in later]) if rate_evidence(later).enough else None
    return _median([t.loudness_vs_baseline_db for t in later]), rate, _median([t.pitch_vs_baseline_st for t in later])


def _stay_calm(a: Analysis) -> Outcome:
    item, later = "stay-calm", _after_baseline(a)
    if not a.has_caller or not _trainee(a):
        return _only(item, "no-caller-or-trainee")
    if not later:
        return _only(item, "no-turns-after-baseline")
    loud, rate, pitch = _voice(later)
    if loud is None and rate is None and pitch is None:
        return _only(item, "no-voice-measures")
    climbed = [t.index for t in later if _climbed(t)]
    evidence = rate_evidence(later)
    figures = {"loudness_change_db": loud, "rate_change_pct": rate, "pitch_change_st": pitch, "climbed_turns": climbed,
               "rate_syllables": evidence.syllables, "rate_excluded_turns": list(evidence.excluded_turns),
               "thresholds": {"db": CLIMB_DB, "pct": CLIMB_PCT, "st": CLIMB_ST, "syllables": RATE_MIN_SYLLABLES}}
    why = []
    if loud is not None and loud >= CLIMB_DB:
        why.append(reason(item, "loudness-climbed", loudness_change_db=loud, limit_db=CLIMB_DB))
    if rate is not None and rate >= CLIMB_PCT:
        why.append(reason(item, "rate-climbed", rate_change_pct=rate, limit_pct=CLIMB_PCT))
    if pitch is not None and pitch >= CLIMB_ST:
        why.append(reason(item, "pitch-climbed", pitch_change_st=pitch, limit_st=CLIMB_ST))
    if not why and rate is None:  # a pass on loudness and pitch that says the pace was not judged
        why.append(reason(item, "voice-steady-pace-not-judged", loudness_change_db=loud, pitch_change_st=pitch,
                          **evidence.figures()))
    if not why:
        why.append(reason(item, "voice-steady", loudness_change_db=loud, rate_change_pct=rate, pitch_change_st=pitch))
    turns = climbed if not why[0].code.startswith("voice-steady") else [t.index for t in later]
    return figures, tuple(turns), why


def _slower_softer(a: Analysis) -> Outcome:
    item, later = "slower-softer", _after_baseline(a)
    if not _trainee(a):
        return _only(item, "no-trainee")
    if a.baseline.source == "none":
        return _only(item, "no-baseline")
    if not later:
        return _only(item, "no-turns-after-baseline")
    loud, rate, _pitch = _voice(later)
    if rate is None and loud is None:
        return _only(item, "no-voice-measures")
    caller_rate = _median([t.articulation_rate_syll_s for t in a.turns_of("caller")])
    evidence = rate_evidence(later)
    figures = {"rate_change_pct": rate, "loudness_change_db": loud,
               "trainee_rate_syll_s": _median([t.articulation_rate_syll_s for t in later]),
               "caller_rate_syll_s": caller_rate, "baseline_source": a.baseline.source,
               "rate_syllables": evidence.syllables, "rate_excluded_turns": list(evidence.excluded_turns),
               "thresholds": {"slower_pct": SLOWER_PCT, "softer_db": SOFTER_DB, "syllables": RATE_MIN_SYLLABLES}}
    why = []  # going up in either undoes the other: the caller hears a faster or louder voice
    if rate is not None and rate > -SLOWER_PCT:
        why.append(reason(item, "rate-went-up", rate_change_pct=rate, limit_pct=-SLOWER_PCT))
    if loud is not None and loud > -SOFTER_DB:
        why.append(reason(item, "loudness-went-up", loudness_change_db=loud, limit_db=-SOFTER_DB))
    slower = rate is not None and rate <= SLOWER_PCT
    softer = loud is not None and loud <= SOFTER_DB
    if not why and not softer and rate is None:  # it may have been slower: too few syllables to tell
        why.append(reason(item, "too-few-syllables", **evidence.figures()))
    if not why and not (slower or softer):
        why.append(reason(item, "not-slower-or-softer", rate_change_pct=rate, loudness_change_db=loud,
                          target_pct=SLOWER_PCT, target_db=SOFTER_DB))
    if not why:
        if slower:
            why.append(reason(item, "slower", rate_change_pct=rate, target_pct=SLOWER_PCT))
        if softer:
            why.append(reason(item, "softer", loudness_change_db=loud, target_db=SOFTER_DB))
    return figures, tuple(t.index for t in later), why


def _breathe(a: Analysis) -> Outcome:
    if not _trainee(a):
        return _only("breathe", "no-trainee")
    later = _after_baseline(a)
    pitch = _median([t.pitch_vs_baseline_st for t in later])
    if pitch is None:
        return _only("breathe", "no-pitch")
    figures = {"pitch_change_st": pitch, "pitch_spread_st": _median([t.pitch_spread_st for t in later]),
               "baseline_pitch_hz": a.baseline.pitch_median_hz, "baseline_spread_st": a.baseline.pitch_spread_st}
    code = "pitch-near-baseline" if pitch < CLIMB_ST else "pitch-rose"
    return figures, tuple(t.index for t in later), [reason("breathe", code, pitch_change_st=pitch, limit_st=CLIMB_ST)]


def _let_vent(a: Analysis) -> Outcome:
    item, caller = "let-vent", a.turns_of("caller")
    if not caller or not a.has_trainee:
        return _only(item, "no-caller-or-trainee")
    window_end = caller[VENT_CALLER_TURNS].start_s if len(caller) > VENT_CALLER_TURNS else a.duration_s
    window_start = caller[0].start_s
    early = [t for t in a.turns if window_start <= t.start_s < window_end]

    def talk(speaker: str) -> float:
        return sum(min(t.end_s, window_end) - t.start_s for t in early if t.speaker == speaker)

    c, tr = talk("caller"), talk("trainee")
    if c + tr <= 0:
        return _only(item, "no-speech-while-venting")
    share = round(100 * c / (c + tr))
    cut_in = [i for i in a.interruptions if i.by == "trainee" and window_start <= i.start_s < window_end]
    figures = {"caller_share_pct": share, "window_s": [round(window_start, 2), round(window_end, 2)],
               "trainee_interruptions_while_venting": len(cut_in), "target_pct": VENT_SHARE_PCT}
    why = []
    if share < VENT_SHARE_PCT:
        why.append(reason(item, "caller-share-below-target", caller_share_pct=share, target_pct=VENT_SHARE_PCT))
    if cut_in:
        why.append(reason(item, "trainee-interrupted-while-venting", count=len(cut_in)))
    if not why:
        why.append(reason(item, "caller-had-the-floor", caller_share_pct=share, target_pct=VENT_SHARE_PCT))
    return figures, tuple(t.index for t in early if t.speaker == "trainee"), why


def _no_interrupt(a: Analysis) -> Outcome:
    if not (a.has_caller and a.has_trainee):
        return _only("no-interrupt", "no-caller-or-trainee")
    by_trainee = [i for i in a.interruptions if i.by == "trainee"]
    onsets = [i.start_s for i in by_trainee]
    figures = {"count": len(by_trainee), "onsets_s": onsets,
               "backchannels": sum(1 for b in a.backchannels if b.speaker == "trainee")}
    why = (reason("no-interrupt", "trainee-interrupted", count=len(by_trainee), onsets_s=onsets)
           if by_trainee else reason("no-interrupt", "no-interruption"))
    return figures, tuple(i.turn for i in by_trainee), [why]


def _no_discussion(a: Analysis) -> Outcome:
    item, tr = "no-discussion", _trainee(a)
    if not tr:
        return _only(item, "no-trainee")
    words = sum(len(t.text.split()) for t in tr)
    if not words:  # nothing recognised: an argument would not have been heard either
        return _only(item, "no-words-recognised")
    hits = _phrases(tr, "argument")
    figures = {"count": len(hits), "examples": _examples(hits), "trainee_words": words}
    why = (reason(item, "argument-phrase", count=len(hits), examples=_examples(hits))
           if hits else reason(item, "no-argument-phrase", words=words))
    return figures, tuple(sorted({t.index for t, _ in hits})), [why]


def _positive(a: Analysis) -> Outcome:
    item, tr = "positive", _trainee(a)
    if not tr:
        return _only(item, "no-trainee")
    neg = _phrases(tr, "negative")
    pos = _phrases(tr, "acknowledgement") + _phrases(tr, "concrete-offer")
    if not neg and not pos:
        return _only(item, "no-positive-or-negative-phrase")
    figures = {"negative": len(neg), "positive": len(pos), "examples": _examples(neg)}
    if len(neg) > len(pos):
        why = reason(item, "more-negative-than-positive", negative=len(neg), positive=len(pos), examples=_examples(neg))
    else:
        why = reason(item, "more-positive-than-negative", positive=len(pos), negative=len(neg))
    return figures, tuple(sorted({t.index for t, _ in neg or pos})), [why]


def _silence(a: Analysis) -> Outcome:
    lat = [(t, t.response_latency_s) for t in _trainee(a) if t.response_latency_s is not None]
    if not lat or not a.has_caller:
        return _only("silence", "no-answered-caller-turn")
    long_pauses = [t for t, latency in lat if latency >= SILENCE_S]
    longest = max(latency for _, latency in lat)
    figures = {"long_pauses": len(long_pauses), "max_latency_s": longest,
               "median_latency_s": _median([latency for _, latency in lat]), "threshold_s": SILENCE_S}
    why = (reason("silence", "paused-after-caller", long_pauses=len(long_pauses), threshold_s=SILENCE_S)
           if long_pauses else reason("silence", "no-pause-after-caller", max_latency_s=longest, threshold_s=SILENCE_S))
    return figures, tuple(t.index for t in long_pauses), [why]


def _concrete(a: Analysis) -> Outcome:
    item, tr = "concrete", _trainee(a)
    if not tr or not a.has_caller:
        return _only(item, "no-caller-or-trainee")
    concrete, vague = _phrases(tr, "concrete-offer"), _phrases(tr, "vague")
    if not concrete and not vague:
        return _only(item, "no-offer-or-vague-phrase")
    figures = {"concrete": len(concrete), "vague": len(vague)}
    if not concrete:
        why = reason(item, "no-concrete-offer", vague=len(vague), examples=_examples(vague))
    elif len(vague) > len(concrete):
        why = reason(item, "more-vague-than-concrete", vague=len(vague), concrete=len(concrete))
    else:
        why = reason(item, "concrete-offer", concrete=len(concrete), vague=len(vague))
    return figures, tuple(sorted({t.index for t, _ in concrete + vague})), [why]


def _needs(a: Analysis, advice_id: str) -> bool:
    return advice_id in (a.call.get("needs") or ())


def _warm_transfer(a: Analysis) -> Outcome:
    item, hits = "warm-transfer", _phrases(_trainee(a), "transfer")
    if not hits and not _needs(a, item):
        return _only(item, "transfer-not-needed")
    distinct = sorted({p for _, p in hits})
    # announcing the transfer and saying the colleague is informed: two different transfer phrases
    if len(distinct) >= 2:
        why = reason(item, "transfer-announced-and-briefed", transfer_phrases=distinct)
    else:
        why = reason(item, "one-transfer-phrase", transfer_phrases=distinct) if distinct else reason(
            item, "no-transfer-phrase")
    return {"transfer_phrases": distinct}, tuple(sorted({t.index for t, _ in hits})), [why]


def _first_abuse(a: Analysis) -> Turn | None:
    return next((t for t in a.turns_of("caller") if t.abuse), None)


def _address_behaviour(a: Analysis) -> Outcome:
    item, abuse = "address-behaviour", _first_abuse(a)
    if abuse is None or not a.has_trainee:
        return _only(item, "no-abuse")
    after = [t for t in _trainee(a) if t.start_s > abuse.start_s][:2]
    boundary = [t for t in after if any(p.category == "boundary" for p in t.phrases)]
    named = boundary[0].index if boundary else None
    figures = {"abusive_turn": abuse.index, "abuse": list(abuse.abuse), "named_in_turn": named}
    why = (reason(item, "behaviour-named", abusive_turn=abuse.index, named_in_turn=named) if boundary
           else reason(item, "behaviour-not-named", abusive_turn=abuse.index, abuse=list(abuse.abuse)))
    return figures, (abuse.index, *(t.index for t in boundary)), [why]


def _announce_end(a: Analysis) -> Outcome:
    item, tr = "announce-end", _trainee(a)
    boundary = next((t for t in tr if any(p.category == "boundary" for p in t.phrases)), None)
    announce = next((t for t in tr if any(p.category == "end-announcement" for p in t.phrases)), None)
    ignored = boundary is not None and any(c.abuse and c.start_s > boundary.end_s for c in a.turns_of("caller"))
    # ending the call is only right after naming the behaviour and announcing the end (issue 12)
    ended = a.call.get("outcome") == "ended-by-trainee"
    if not ignored and announce is None and not ended:
        return _only(item, "no-ignored-warning")
    warning = boundary.index if boundary else None
    announced = announce.index if announce else None
    figures = {"warning_turn": warning, "warning_ignored": ignored, "announcement_turn": announced}
    if announce is None and ignored:
        why = reason(item, "no-end-announcement", warning_turn=warning)
    elif announce is None:  # the trainee put the phone down without the sequence
        why = (reason(item, "ended-without-announcement", warning_turn=warning) if boundary is not None
               else reason(item, "ended-without-warning"))
    elif boundary is None:
        why = reason(item, "end-announced-without-warning", announcement_turn=announced)
    elif announce.start_s < boundary.start_s:
        why = reason(item, "end-announced-before-warning", announcement_turn=announced, warning_turn=warning)
    else:
        why = reason(item, "end-announced-after-warning", warning_turn=warning, announcement_turn=announced)
    return figures, tuple(t.index for t in (boundary, announce) if t is not None), [why]


def _debrief(a: Analysis) -> Outcome:
    return {"when": "after the call"}, (), [reason("debrief", "after-the-call")]


RULES: dict[str, Rule] = {
    "greeting": _greeting, "stay-calm": _stay_calm, "slower-softer": _slower_softer, "breathe": _breathe,
    "let-vent": _let_vent, "no-interrupt": _no_interrupt, "no-discussion": _no_discussion,
    "positive": _positive, "silence": _silence, "concrete": _concrete, "warm-transfer": _warm_transfer,
    "address-behaviour": _address_behaviour, "announce-end": _announce_end, "debrief": _debrief,
}


@lru_cache(maxsize=4)
def feedback_texts(language: str) -> dict[str, Any]:
    """The feedback clauses of `language` (`feedback/<language>.yaml`)."""
    path = Path(__file__).with_name("feedback") / f"{language}.yaml"
    if not path.is_file():
        path = path.with_name("en.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class _Value:
    """A figure inside a clause: numbers in the language's notation (Dutch decimal comma), lists
    joined, phrases quoted; `{x:+.1f}` in a clause works as for a float."""

    def __init__(self, value: Any, language: str) -> None:
        self.value, self.language = value, language

    def __format__(self, spec: str) -> str:
        v = self.value
        if isinstance(v, list | tuple):
            return ", ".join(format(_Value(x, self.language), spec) for x in v) or "–"
        if isinstance(v, str):
            return f"‘{v}’"
        if v is None or isinstance(v, bool):
            return "–"
        text = format(v, spec) if spec else str(v)
        if text.lstrip("+-").strip("0.,") == "":  # -0.0 and +0.0 read as 0
            text = text.lstrip("+-")
        return text.replace(".", ",") if self.language == "nl" else text


def verdict_of(item: str, reasons: list[Reason] | tuple[Reason, ...]) -> str:
    """The verdict the reasons stand for: fail if any says fail, else the one verdict they share."""
    verdicts = {REASON_CODES[item][r.code][0] for r in reasons}
    if F in verdicts:
        return F
    if len(verdicts) != 1:
        raise ValueError(f"{item}: reasons {[r.code for r in reasons]} disagree on the verdict")
    return verdicts.pop()


def sentence(item: str, reasons: list[Reason] | tuple[Reason, ...], language: str) -> str:
    """The feedback sentence: one clause per reason (the failing ones when the verdict is a fail),
    then what to do about a fail or what is missing for a verdict."""
    texts = feedback_texts(language)
    verdict = verdict_of(item, reasons)
    shown = [r for r in reasons if REASON_CODES[item][r.code][0] == verdict]
    clauses = [texts["reasons"][item][r.code].format_map({k: _Value(v, language) for k, v in r.figures.items()})
               for r in shown]
    if verdict == F:
        clauses.append(texts["advice"][item])
    elif verdict == NE:
        clauses.append(texts["no_evidence"])
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."


def placeholders(template: str) -> set[str]:
    """The figure names a clause uses."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def assess(a: Analysis) -> tuple[AdviceResult, ...]:
    out = []
    for advice_id in ADVICE_IDS:
        figures, turns, reasons = RULES[advice_id](a)
        out.append(AdviceResult(advice_id, verdict_of(advice_id, reasons), figures, turns,
                                sentence(advice_id, reasons, a.language), advice_id in PROXY_ITEMS, tuple(reasons)))
    return tuple(out)
