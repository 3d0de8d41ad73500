"""The report's words: its strings in the call's language (`text/<language>.yaml`), numbers in
that language's notation, and each advice item's figures in plain words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeGuard

import yaml

# The mark before a verdict, on the terminal and on the page.
MARK = {"pass": "✔", "fail": "✘", "no-evidence": "?", "not-applicable": "–"}


@lru_cache(maxsize=4)
def texts(language: str) -> dict[str, Any]:
    """The report's strings in `language` (English when there is no file for it)."""
    folder = Path(__file__).with_name("text")
    path = folder / f"{language}.yaml"
    if not path.is_file():
        path = folder / "en.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def fmt_num(value: Any, digits: int = 1, language: str = "en", *, sign: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    s = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return s.replace(".", ",") if language == "nl" else s


def _is_num(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float)


def _quoted(phrases: list[str]) -> str:
    return ", ".join(f"‘{p}’" for p in phrases)


@dataclass(frozen=True)
class _Words:
    """The explanation strings of one language and its number notation."""

    x: dict[str, str]
    language: str

    def n(self, v: Any, d: int = 1) -> str:
        return fmt_num(v, d, self.language)

    def absn(self, v: Any, d: int = 1) -> str:
        return self.n(abs(v), d) if _is_num(v) else "–"

    def signed(self, v: Any, d: int) -> str:
        return fmt_num(v, d, self.language, sign=True)


# --------------------------------------------------------------------------- one function per item


def _slower_softer(w: _Words, f: dict[str, Any]) -> list[str]:
    x, out = w.x, []
    rate, loud = f.get("rate_change_pct"), f.get("loudness_change_db")
    if _is_num(rate):
        key = "rate_slower" if rate <= -10 else "rate_faster" if rate >= 10 else "rate_same"
        out.append(x[key].format(pct=w.absn(rate, 0) if key != "rate_same" else w.n(rate, 0)))
    if _is_num(loud):
        key = "loud_softer" if loud <= -2 else "loud_louder" if loud >= 2 else "loud_same"
        out.append(x[key].format(db=w.absn(loud) if key != "loud_same" else w.n(loud)))
    if _is_num(f.get("caller_rate_syll_s")):
        caller, you = w.n(f["caller_rate_syll_s"]), w.n(f.get("trainee_rate_syll_s"))
        out.append(x["rate_vs_caller"].format(caller=caller, you=you))
    if (_is_num(rate) and rate <= -10) or (_is_num(loud) and loud <= -2):
        out.append(x["rate_hint_ok"])
    if f.get("baseline_source") == "first-turns":
        out.append(x["baseline_first_turns"])
    return out


def _stay_calm(w: _Words, f: dict[str, Any]) -> list[str]:
    out = []
    loud, rate, pitch = f.get("loudness_change_db"), f.get("rate_change_pct"), f.get("pitch_change_st")
    if f:  # a measure that was not judged is said in words, never shown as a blank figure
        parts = [w.x[f"stay_calm_{unit}"].format(v=w.signed(v, d)) if _is_num(v) else w.x[f"stay_calm_{unit}_none"]
                 for unit, v, d in (("db", loud, 1), ("pct", rate, 0), ("st", pitch, 1))]
        out.append(w.x["stay_calm"].format(parts=", ".join(parts)))
    if f.get("climbed_turns") and any(_is_num(v) and v > 0 for v in (loud, rate, pitch)):
        out.append(w.x["climbed"].format(what=", ".join(f"#{i}" for i in f["climbed_turns"])))
    return out


def _breathe(w: _Words, f: dict[str, Any]) -> list[str]:
    out, pitch = [], f.get("pitch_change_st")
    if _is_num(pitch):
        key = "pitch_higher" if pitch >= 0.5 else "pitch_lower" if pitch <= -0.5 else "pitch_same"
        out.append(w.x[key].format(st=w.absn(pitch) if key != "pitch_same" else w.n(pitch)))
    if _is_num(f.get("pitch_spread_st")):
        out.append(w.x["pitch_spread"].format(st=w.n(f["pitch_spread_st"])))
    return out


def _no_interrupt(w: _Words, f: dict[str, Any]) -> list[str]:
    out, count = [], f.get("count")
    if count == 0:
        out.append(w.x["interruptions_none"])
    elif isinstance(count, int):
        out.append(w.x["interruptions"].format(n=count, times=", ".join(w.n(t) for t in f.get("onsets_s", []))))
    if f.get("backchannels"):
        out.append(w.x["backchannels"].format(n=f["backchannels"]))
    return out


def _let_vent(w: _Words, f: dict[str, Any]) -> list[str]:
    out = []
    if "caller_share_pct" in f:
        out.append(w.x["caller_share"].format(pct=f["caller_share_pct"]))
    if f.get("trainee_interruptions_while_venting"):
        out.append(w.x["vent_interrupt"].format(n=f["trainee_interruptions_while_venting"]))
    return out


def _greeting(w: _Words, f: dict[str, Any]) -> list[str]:
    out = []
    if "time_to_answer_s" in f:
        out.append(w.x["time_to_answer"].format(s=w.n(f["time_to_answer_s"])))
    phrases = f.get("greeting_phrases")
    if phrases:
        out.append(w.x["greeting_phrases"].format(phrases=_quoted(phrases)))
    elif phrases is not None:
        out.append(w.x["no_greeting"])
    return out


def _silence(w: _Words, f: dict[str, Any]) -> list[str]:
    if "long_pauses" not in f:
        return []
    return [
        w.x["long_pauses"].format(n=f["long_pauses"], thr=w.n(f.get("threshold_s"))),
        w.x["max_latency"].format(s=w.n(f.get("max_latency_s")), m=w.n(f.get("median_latency_s"))),
    ]


def _no_discussion(w: _Words, f: dict[str, Any]) -> list[str]:
    if f.get("count"):
        examples = f.get("examples")  # a list since reasons came in; a string in older analyses
        return [w.x["arguments"].format(n=f["count"], examples=_quoted(examples) if isinstance(examples, list)
                                        else examples or "")]
    return [w.x["arguments_none"]] if "count" in f else []


def _positive(w: _Words, f: dict[str, Any]) -> list[str]:
    return [w.x["positive_counts"].format(pos=f["positive"], neg=f["negative"])] if "positive" in f else []


def _concrete(w: _Words, f: dict[str, Any]) -> list[str]:
    return [w.x["concrete_counts"].format(c=f["concrete"], v=f["vague"])] if "concrete" in f else []


def _warm_transfer(w: _Words, f: dict[str, Any]) -> list[str]:
    if "transfer_phrases" not in f:
        return []
    return [w.x["transfer_phrases"].format(phrases=_quoted(f["transfer_phrases"]) or "–")]


def _address_behaviour(w: _Words, f: dict[str, Any]) -> list[str]:
    if "abusive_turn" not in f:
        return []
    named = f.get("named_in_turn")
    return [
        w.x["abusive_turn"].format(turn=f["abusive_turn"], abuse=", ".join(f.get("abuse", []))),
        w.x["named_in_turn"].format(turn=named) if named is not None else w.x["not_named"],
    ]


def _announce_end(w: _Words, f: dict[str, Any]) -> list[str]:
    if "warning_turn" not in f:
        return []
    warning, announcement = f.get("warning_turn"), f.get("announcement_turn")
    return [
        w.x["warning"].format(
            w=warning if warning is not None else "–",
            ignored=w.x["ignored"] if f.get("warning_ignored") else "",
            a=announcement if announcement is not None else "–",
        )
    ]


_EXPLAIN: dict[str, Callable[[_Words, dict[str, Any]], list[str]]] = {
    "slower-softer": _slower_softer,
    "stay-calm": _stay_calm,
    "breathe": _breathe,
    "no-interrupt": _no_interrupt,
    "let-vent": _let_vent,
    "greeting": _greeting,
    "silence": _silence,
    "no-discussion": _no_discussion,
    "positive": _positive,
    "concrete": _concrete,
    "warm-transfer": _warm_transfer,
    "address-behaviour": _address_behaviour,
    "announce-end": _announce_end,
}


def moment_sentence(m: dict[str, Any], language: str) -> str:
    """One moment of the call (`moments` in the analysis) in words: what the trainee said and how
    the caller's anger changed, with the reasons the event log gives."""
    t = texts(language)
    x, why = t["moments"], t["reasons"]
    quote = f"‘{str(m['quote']).strip().rstrip('.')}’" if m.get("quote") else None
    values = {"quote": quote, "t": fmt_num(m.get("t_s"), 1, language),
              "before": fmt_num(m.get("anger_before"), 1, language),
              "after": fmt_num(m.get("anger_after"), 1, language),
              "while_speaking": x["while_speaking"] if m.get("while_caller_spoke") else ""}
    kind = m.get("kind", "")
    if kind.startswith("anger-"):
        text = x[kind if quote else f"{kind}-no-quote"].format(**values)
        reasons = [why.get(r, r) for r in m.get("reasons") or [] if r]
        return f"{text} ({x['why'].format(reasons=', '.join(reasons))})." if reasons else f"{text}."
    return x[kind].format(**{**values, "quote": quote or "–"}) + "."


def explain_figures(item: str, figures: dict[str, Any], language: str) -> list[str]:
    """The figures of one advice item in plain words, in the call's language."""
    explain = _EXPLAIN.get(item)
    return explain(_Words(texts(language)["explain"], language), figures) if explain else []
