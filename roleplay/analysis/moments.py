"""The moments that changed a call: where the caller's anger rose or fell most, with the trainee
turn it followed and its words.

From the event log when there is one (each anger change carries its reason); for an imported call
without anger events, from the analysis itself: an interruption, an argument phrase, a long
silence followed by a calmer caller. The events come in as plain mappings (the event log is read
by the layer above), so this module needs nothing but the analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from roleplay.analysis.pipeline import Analysis, Turn

MAX_MOMENTS = 3
MIN_ANGER_CHANGE = 0.5  # on the 0..10 scale: smaller changes are the caller's own drift
SILENCE_S = 0.8  # as the `silence` advice item
CALMER_DB = 2.0  # a caller turn this much softer than the one before counts as calmer
CALMER_PCT = 10.0  # ... or this much slower
SAME_MOMENT_S = 0.05  # anger events this close are one reaction to one turn


@dataclass(frozen=True)
class Moment:
    t_s: float
    kind: str  # anger-rose, anger-fell (events); interruption, argument, silence-calmed (analysis)
    source: str  # events | analysis
    reasons: tuple[str, ...]  # the behaviours behind it (the event log's reasons, or the kind)
    anger_before: float | None
    anger_after: float | None
    turn: int | None  # the trainee turn it followed (index in the analysis)
    quote: str | None  # what the trainee said in that turn
    start_s: float  # the span to play: the trainee turn, or the moment itself
    end_s: float
    while_caller_spoke: bool  # the turn started while the caller was speaking

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def _turn_at(a: Analysis, start_s: float, end_s: float) -> Turn | None:
    """The trainee turn of the analysis that overlaps [start_s, end_s] most."""
    best, overlap = None, 0.0
    for t in a.turns_of("trainee"):
        o = min(t.end_s, end_s) - max(t.start_s, start_s)
        if o > overlap:
            best, overlap = t, o
    return best


def _interrupting(a: Analysis, turn: Turn | None) -> bool:
    return turn is not None and any(i.by == "trainee" and i.turn == turn.index for i in a.interruptions)


def _anger_groups(events: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, float, list[str]]]:
    """(t_s, anger before, anger after, reasons) per reaction: the anger events at one moment;
    the reasons that pushed the same way as the whole change (a rise names what provoked)."""
    anger = next((float(e["anger"]) for e in events if e.get("type") == "call-start" and "anger" in e), None)
    groups: list[tuple[float, float, float, list[tuple[str, float]]]] = []
    for e in events:
        if e.get("type") != "anger" or "anger" not in e:
            continue
        t, after = float(e["t_s"]), float(e["anger"])
        delta = float(e.get("delta") or 0.0)
        before = anger if anger is not None else after - delta
        if groups and abs(groups[-1][0] - t) <= SAME_MOMENT_S:
            t0, b0, _, why = groups[-1]
            groups[-1] = (t0, b0, after, [*why, (str(e.get("reason") or ""), delta)])
        else:
            groups.append((t, before, after, [(str(e.get("reason") or ""), delta)]))
        anger = after
    return [(t, b, a, [r for r, d in why if r and (d > 0) == (a > b)]) for t, b, a, why in groups]


def _pick(candidates: list[Moment], firsts: list[Moment]) -> tuple[Moment, ...]:
    """`firsts` (deduplicated), then the other candidates in their order, up to MAX_MOMENTS, by time."""
    chosen: list[Moment] = []
    for m in [*firsts, *candidates]:
        if m not in chosen and len(chosen) < MAX_MOMENTS:
            chosen.append(m)
    return tuple(sorted(chosen, key=lambda m: m.t_s))


def _from_events(a: Analysis, events: Sequence[Mapping[str, Any]]) -> tuple[Moment, ...]:
    turns = [e for e in events if e.get("type") in ("trainee-turn", "trainee-line")]
    found = []
    for t, before, after, reasons in _anger_groups(events):
        if abs(after - before) < MIN_ANGER_CHANGE:
            continue
        # the trainee turn the caller reacted to: the last one that ended by the reaction
        ev = next((e for e in reversed(turns) if float(e.get("end_s", e["t_s"])) <= t + SAME_MOMENT_S), None)
        start, end = (float(ev["t_s"]), float(ev.get("end_s", ev["t_s"]))) if ev else (t, t)
        turn = _turn_at(a, start, end) if ev else None
        quote = (ev or {}).get("text") or (turn.text if turn else None) or (ev or {}).get("heard") or None
        found.append(Moment(
            t_s=round(t, 3), kind="anger-rose" if after > before else "anger-fell", source="events",
            reasons=tuple(reasons), anger_before=round(before, 2), anger_after=round(after, 2),
            turn=turn.index if turn else None, quote=quote, start_s=round(start, 3), end_s=round(end, 3),
            while_caller_spoke="interruption" in reasons or _interrupting(a, turn)))
    by_size = sorted(found, key=lambda m: -abs((m.anger_after or 0) - (m.anger_before or 0)))
    firsts = [next(m for m in by_size if m.kind == kind) for kind in ("anger-rose", "anger-fell")
              if any(m.kind == kind for m in by_size)]
    return _pick(by_size, firsts)


def _calmer(before: Turn, after: Turn) -> bool:
    softer = (before.loudness_dbfs is not None and after.loudness_dbfs is not None
              and after.loudness_dbfs <= before.loudness_dbfs - CALMER_DB)
    b, c = before.articulation_rate_syll_s, after.articulation_rate_syll_s
    slower = b is not None and c is not None and b > 0 and c <= b * (1 - CALMER_PCT / 100)
    return softer or slower


def _analysis_moment(t: Turn, kind: str, t_s: float, *, interrupting: bool) -> Moment:
    return Moment(t_s=round(t_s, 3), kind=kind, source="analysis", reasons=(kind,), anger_before=None,
                  anger_after=None, turn=t.index, quote=t.text or None, start_s=t.start_s, end_s=t.end_s,
                  while_caller_spoke=interrupting)


def _from_analysis(a: Analysis) -> tuple[Moment, ...]:
    by_index = {t.index: t for t in a.turns}
    found: list[Moment] = []
    for i in a.interruptions:
        if i.by == "trainee" and i.turn in by_index:
            found.append(_analysis_moment(by_index[i.turn], "interruption", i.start_s, interrupting=True))
    for t in a.turns_of("trainee"):
        if any(p.category == "argument" for p in t.phrases):
            found.append(_analysis_moment(t, "argument", t.start_s, interrupting=_interrupting(a, t)))
    callers = a.turns_of("caller")
    for t in a.turns_of("trainee"):
        if t.response_latency_s is None or t.response_latency_s < SILENCE_S:
            continue
        before = [c for c in callers if c.end_s <= t.start_s]
        after = [c for c in callers if c.start_s >= t.end_s]
        if before and after and _calmer(before[-1], after[0]):
            found.append(_analysis_moment(t, "silence-calmed", t.start_s - t.response_latency_s, interrupting=False))
    found.sort(key=lambda m: m.t_s)
    firsts = [next(m for m in found if m.kind == k) for k in ("interruption", "argument", "silence-calmed")
              if any(m.kind == k for m in found)]
    return _pick(found, firsts)


def find_moments(a: Analysis, events: Sequence[Mapping[str, Any]] = ()) -> tuple[Moment, ...]:
    """Up to MAX_MOMENTS moments that changed the call, in time order."""
    if any(e.get("type") == "anger" for e in events):
        return _from_events(a, events)
    return _from_analysis(a)
