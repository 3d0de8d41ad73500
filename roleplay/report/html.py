"""Turning an analysis and its assessment into JSON, a terminal summary and an HTML page.

The HTML report is one self-contained file (no network, no server, no external script): inline CSS,
a few lines of inline JavaScript for the audio, inline SVG plots drawn here, and the call's audio
embedded as a data URI. The audio is the two tracks mixed to one mono Ogg/Opus stream (about
3 kB per second: a 5-minute call adds about 1 MB), so the report still plays after it is mailed to
a trainer or moved out of the call directory; one shared timeline makes every turn clickable. A
call longer than `EMBED_MAX_S` gets the Opus file written beside the report instead and referenced
relatively (`<name>.audio.ogg`), to keep the page loadable.

Texts are data, in the call's language: `report_text/<language>.yaml`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

import yaml

from roleplay import __version__
from roleplay.analysis.assessment import AdviceResult
from roleplay.analysis.pipeline import Analysis, Turn
from roleplay.core.files import write_atomic
from roleplay.core.advice import ADVICE_IDS

SCHEMA_VERSION = 1
EMBED_MAX_S = 15 * 60

# Which failed item to suggest first in the debrief: the ones that calm or provoke most.
TRY_NEXT_ORDER = (
    "no-interrupt",
    "slower-softer",
    "let-vent",
    "no-discussion",
    "stay-calm",
    "silence",
    "address-behaviour",
    "announce-end",
    "concrete",
    "positive",
    "warm-transfer",
    "greeting",
    "breathe",
)


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
            }
            for w in t.words
        ],
    }


def analysis_dict(a: Analysis, advice: tuple[AdviceResult, ...], *, source: dict[str, Any]) -> dict[str, Any]:
    caller_na = "not-applicable" if not a.has_caller else None
    return {
        "schema": "roleplay-analysis",
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
            }
            for r in advice
        ],
        "quality": a.quality,
        "warnings": list(a.warnings),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- texts and numbers


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


_MARK = {"pass": "✔", "fail": "✘", "not-applicable": "–"}


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


# --------------------------------------------------------------------------- plain-word figures


def explain_figures(item: str, figures: dict[str, Any], language: str) -> list[str]:
    """The figures of one advice item in plain words, in the call's language."""
    x = texts(language)["explain"]

    def n(v: Any, d: int = 1) -> str:
        return fmt_num(v, d, language)

    def absn(v: Any, d: int = 1) -> str:
        return n(abs(v), d) if isinstance(v, int | float) else "–"

    out: list[str] = []
    rate, loud = figures.get("rate_change_pct"), figures.get("loudness_change_db")
    pitch = figures.get("pitch_change_st")
    if item == "slower-softer":
        if isinstance(rate, int | float):
            key = "rate_slower" if rate <= -10 else "rate_faster" if rate >= 10 else "rate_same"
            out.append(x[key].format(pct=absn(rate, 0) if key != "rate_same" else n(rate, 0)))
        if isinstance(loud, int | float):
            key = "loud_softer" if loud <= -2 else "loud_louder" if loud >= 2 else "loud_same"
            out.append(x[key].format(db=absn(loud) if key != "loud_same" else n(loud)))
        if isinstance(figures.get("caller_rate_syll_s"), int | float):
            out.append(
                x["rate_vs_caller"].format(
                    caller=n(figures["caller_rate_syll_s"]), you=n(figures.get("trainee_rate_syll_s"))
                )
            )
        if (isinstance(rate, int | float) and rate <= -10) or (isinstance(loud, int | float) and loud <= -2):
            out.append(x["rate_hint_ok"])
        if figures.get("baseline_source") == "first-turns":
            out.append(x["baseline_first_turns"])
    elif item == "stay-calm":
        if figures:
            out.append(
                x["stay_calm"].format(
                    db=fmt_num(loud, 1, language, sign=True),
                    pct=fmt_num(rate, 0, language, sign=True),
                    st=fmt_num(pitch, 1, language, sign=True),
                )
            )
        if figures.get("climbed") and any(isinstance(v, int | float) and v > 0 for v in (loud, rate, pitch)):
            out.append(x["climbed"].format(what=figures["climbed"]))
    elif item == "breathe":
        if isinstance(pitch, int | float):
            key = "pitch_higher" if pitch >= 0.5 else "pitch_lower" if pitch <= -0.5 else "pitch_same"
            out.append(x[key].format(st=absn(pitch) if key != "pitch_same" else n(pitch)))
        if isinstance(figures.get("pitch_spread_st"), int | float):
            out.append(x["pitch_spread"].format(st=n(figures["pitch_spread_st"])))
    elif item == "no-interrupt":
        count = figures.get("count")
        if count == 0:
            out.append(x["interruptions_none"])
        elif isinstance(count, int):
            out.append(x["interruptions"].format(n=count, times=", ".join(n(t) for t in figures.get("onsets_s", []))))
        if figures.get("backchannels"):
            out.append(x["backchannels"].format(n=figures["backchannels"]))
    elif item == "let-vent":
        if "caller_share_pct" in figures:
            out.append(x["caller_share"].format(pct=figures["caller_share_pct"]))
        if figures.get("trainee_interruptions_while_venting"):
            out.append(x["vent_interrupt"].format(n=figures["trainee_interruptions_while_venting"]))
    elif item == "greeting":
        if "time_to_answer_s" in figures:
            out.append(x["time_to_answer"].format(s=n(figures["time_to_answer_s"])))
        phrases = figures.get("greeting_phrases")
        if phrases:
            out.append(x["greeting_phrases"].format(phrases=", ".join(f"‘{p}’" for p in phrases)))
        elif phrases is not None:
            out.append(x["no_greeting"])
    elif item == "silence":
        if "long_pauses" in figures:
            out.append(x["long_pauses"].format(n=figures["long_pauses"], thr=n(figures.get("threshold_s"))))
            out.append(x["max_latency"].format(s=n(figures.get("max_latency_s")), m=n(figures.get("median_latency_s"))))
    elif item == "no-discussion":
        if figures.get("count"):
            out.append(x["arguments"].format(n=figures["count"], examples=figures.get("examples", "")))
        elif "count" in figures:
            out.append(x["arguments_none"])
    elif item == "positive":
        if "positive" in figures:
            out.append(x["positive_counts"].format(pos=figures["positive"], neg=figures["negative"]))
    elif item == "concrete":
        if "concrete" in figures:
            out.append(x["concrete_counts"].format(c=figures["concrete"], v=figures["vague"]))
    elif item == "warm-transfer":
        if "transfer_phrases" in figures:
            out.append(
                x["transfer_phrases"].format(phrases=", ".join(f"‘{p}’" for p in figures["transfer_phrases"]) or "–")
            )
    elif item == "address-behaviour":
        if "abusive_turn" in figures:
            out.append(
                x["abusive_turn"].format(turn=figures["abusive_turn"], abuse=", ".join(figures.get("abuse", [])))
            )
            out.append(
                x["named_in_turn"].format(turn=figures["named_in_turn"])
                if figures.get("named_in_turn") is not None
                else x["not_named"]
            )
    elif item == "announce-end":
        if "warning_turn" in figures:
            out.append(
                x["warning"].format(
                    w=figures.get("warning_turn") if figures.get("warning_turn") is not None else "–",
                    ignored=x["ignored"] if figures.get("warning_ignored") else "",
                    a=figures.get("announcement_turn") if figures.get("announcement_turn") is not None else "–",
                )
            )
    return out


# --------------------------------------------------------------------------- terminal


def print_summary(data: dict[str, Any], out: TextIO, *, reviews: list[dict[str, Any]] | None = None) -> None:
    turns = data["turns"]
    print(
        f"Call: {data['duration_s']:.1f} s, language {data['language']}, "
        f"{sum(t['speaker'] == 'caller' for t in turns)} caller turns, "
        f"{sum(t['speaker'] == 'trainee' for t in turns)} trainee turns",
        file=out,
    )
    if data["call"].get("outcome"):
        c = data["call"]
        print(
            f"Outcome: {c['outcome']}  (caller anger start {c.get('anger_start')}, peak {c.get('anger_peak')}, "
            f"end {c.get('anger_end')})",
            file=out,
        )
    b = data["baseline"]
    print(
        f"Baseline ({b['source']}): articulation {_num(b['articulation_rate_syll_s'], '.2f')} syll/s, "
        f"loudness {_num(b['loudness_dbfs'], '.1f')} dBFS, pitch {_num(b['pitch_median_hz'], '.0f')} Hz",
        file=out,
    )
    print("", file=out)
    print(f"{'turn':>4} {'who':<8} {'start':>6} {'dur':>5} {'art.rate':>8} {'vs base':>8} {'dB':>6}  text", file=out)
    for t in turns:
        rel = f"{t['rate_vs_baseline_pct']:+.0f}%" if t["rate_vs_baseline_pct"] is not None else ""
        text = t["text"] if len(t["text"]) <= 60 else t["text"][:57] + "..."
        print(
            f"{t['index']:>4} {t['speaker']:<8} {t['start_s']:>6.1f} {t['end_s'] - t['start_s']:>5.1f} "
            f"{_num(t['articulation_rate_syll_s'], '.2f'):>8} {rel:>8} {_num(t['loudness_dbfs'], '.1f'):>6}  {text}",
            file=out,
        )
    if isinstance(data["interruptions"], list) and data["interruptions"]:
        print("", file=out)
        for i in data["interruptions"]:
            print(f"Interruption by {i['by']} at {i['start_s']:.2f} s (overlap {i['overlap_s']:.2f} s)", file=out)
    print("", file=out)
    latest = _latest_reviews(reviews)
    for r in data["advice"]:
        print(f" {_MARK[r['verdict']]} {r['id']:<18} {r['feedback']}", file=out)
        if r["id"] in latest:
            rv = latest[r["id"]]
            print(
                f"   trainer override: {rv['verdict']}{' by ' + rv['by'] if rv.get('by') else ''}: {rv['note']}",
                file=out,
            )
    for w in data["warnings"]:
        print(f"Note: {w}", file=out)


def _latest_reviews(reviews: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {r["item"]: r for r in reviews or []}


# --------------------------------------------------------------------------- SVG plots

_COL = {
    "caller": "#e67e22",
    "trainee": "#2c7fb8",
    "anger": "#c0392b",
    "interrupt": "#d62728",
    "silence": "#2ca02c",
    "grid": "#ddd",
    "base": "#555",
}


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _series_panel(
    parts: list[str],
    *,
    y0: float,
    h: float,
    x,
    values: list[tuple[float, float, float]],
    label: str,
    band: float,
    lo: float,
    hi: float,
    unit: str,
    language: str,
    width: float,
) -> None:
    """A panel with one horizontal segment per trainee turn at its value against baseline (0)."""

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return y0 + h - (v - lo) / (hi - lo) * h

    parts.append(
        f'<rect x="{x(0):.1f}" y="{y(band):.1f}" width="{width:.1f}" height="{y(-band) - y(band):.1f}" fill="#eef5ee"/>'
    )
    parts.append(
        f'<line x1="{x(0):.1f}" x2="{x(0) + width:.1f}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        f'stroke="{_COL["base"]}" stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="4" y="{y0 + h / 2 + 4:.1f}" class="ax">{_esc(label)}</text>')
    for v in (lo, hi):
        parts.append(
            f'<text x="{x(0) - 4:.1f}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">'
            f"{fmt_num(v, 0, language, sign=True)}</text>"
        )
    for start, end, v in values:
        parts.append(
            f'<line x1="{x(start):.1f}" x2="{x(end):.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="{_COL["trainee"]}" stroke-width="4" stroke-linecap="round">'
            f"<title>{fmt_num(v, 1, language, sign=True)} {unit}</title></line>"
        )


def timeline_svg(data: dict[str, Any], events: list[dict[str, Any]], language: str) -> str:
    """The whole call on one time axis: speech of both parties, interruptions and silences,
    the caller's anger with the reason for each change, and the trainee's rate, loudness and
    pitch per turn against their own baseline."""
    t = texts(language)
    lab = t["labels"]
    duration = max(float(data.get("duration_s") or 0.0), 1.0)
    left, width = 90.0, 1000.0
    total_w = left + width + 10

    def x(sec: float) -> float:
        return left + min(max(sec, 0.0), duration) / duration * width

    parts: list[str] = []
    # time grid
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if duration / s <= 12)
    grid_h = 460
    k = 0
    while k * step <= duration:
        gx = x(k * step)
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="20" y2="{grid_h}" stroke="{_COL["grid"]}"/>'
            f'<text x="{gx:.1f}" y="{grid_h + 14}" class="tick" text-anchor="middle">{k * step}</text>'
        )
        k += 1
    parts.append(
        f'<text x="{left + width / 2:.1f}" y="{grid_h + 30}" class="tick" text-anchor="middle">'
        f"{_esc(lab['seconds'])}</text>"
    )
    # speech lanes
    lanes = {"caller": 30.0, "trainee": 62.0}
    for who, ly in lanes.items():
        name = lab["caller"] if who == "caller" else lab["you"]
        parts.append(f'<text x="4" y="{ly + 15:.1f}" class="ax">{_esc(name)}</text>')
    for turn in data["turns"]:
        ly = lanes.get(turn["speaker"], 30.0)
        tx, tw = x(turn["start_s"]), max(x(turn["end_s"]) - x(turn["start_s"]), 1.5)
        parts.append(
            f'<rect class="seg" data-t="{turn["start_s"]:.3f}" data-end="{turn["end_s"]:.3f}" '
            f'x="{tx:.1f}" y="{ly:.1f}" width="{tw:.1f}" height="22" rx="3" fill="{_COL[turn["speaker"]]}" '
            f'opacity="0.85"><title>#{turn["index"]} {_esc(turn["text"][:120])}</title></rect>'
        )
    for b in data.get("backchannels") or []:
        ly = lanes.get(b.get("speaker"), 62.0)
        parts.append(
            f'<rect x="{x(b["start_s"]):.1f}" y="{ly + 6:.1f}" width="{max(x(b["end_s"]) - x(b["start_s"]), 1.5):.1f}" '
            f'height="10" fill="#999"><title>{_esc(lab["backchannel"])}: {_esc(b.get("text", ""))}</title></rect>'
        )
    interruptions = data["interruptions"] if isinstance(data.get("interruptions"), list) else []
    for i in interruptions:
        ix = x(i["start_s"])
        parts.append(
            f'<g class="interruption"><line x1="{ix:.1f}" x2="{ix:.1f}" y1="26" y2="88" '
            f'stroke="{_COL["interrupt"]}" stroke-width="2"/><path d="M{ix - 6:.1f},90 L{ix + 6:.1f},90 '
            f'L{ix:.1f},98 Z" fill="{_COL["interrupt"]}"/><title>{_esc(lab["interruption"])} '
            f"({_esc(i['by'])}, {fmt_num(i['start_s'], 1, language)} s)</title></g>"
        )
    turns_by_index = {tu["index"]: tu for tu in data["turns"]}
    for turn in data["turns"]:
        lat = turn.get("response_latency_s")
        if turn["speaker"] == "trainee" and isinstance(lat, int | float) and lat >= 0.8:
            s0, s1 = x(turn["start_s"] - lat), x(turn["start_s"])
            parts.append(
                f'<g class="silence"><rect x="{s0:.1f}" y="88" width="{s1 - s0:.1f}" height="6" '
                f'fill="{_COL["silence"]}"/><title>{_esc(lab["silence"])}: {fmt_num(lat, 1, language)} s'
                f"</title></g>"
            )
    del turns_by_index
    # anger
    ay0, ah = 120.0, 110.0

    def ay(v: float) -> float:
        return ay0 + ah - min(max(v, 0.0), 10.0) / 10.0 * ah

    parts.append(f'<text x="4" y="{ay0 + ah / 2:.1f}" class="ax">{_esc(lab["anger_axis"])}</text>')
    for v in (0, 5, 10):
        parts.append(
            f'<line x1="{left}" x2="{left + width}" y1="{ay(v):.1f}" y2="{ay(v):.1f}" stroke="{_COL["grid"]}"/>'
            f'<text x="{left - 4}" y="{ay(v) + 4:.1f}" class="tick" text-anchor="end">{v}</text>'
        )
    anger = [(float(p["t_s"]), float(p["anger"])) for p in data.get("anger") or []]
    if anger:
        pts = []
        for n_, (ts, v) in enumerate(anger):
            if n_:
                pts.append(f"{x(ts):.1f},{ay(anger[n_ - 1][1]):.1f}")
            pts.append(f"{x(ts):.1f},{ay(v):.1f}")
        pts.append(f"{x(duration):.1f},{ay(anger[-1][1]):.1f}")
        parts.append(
            f'<polyline class="anger" points="{" ".join(pts)}" fill="none" stroke="{_COL["anger"]}" '
            f'stroke-width="2.5"/>'
        )
    reasons = t["reasons"]
    changes = [e for e in events if e.get("type") == "anger" and isinstance(e.get("anger"), int | float)]
    grouped: dict[float, list[dict[str, Any]]] = {}
    for e in changes:
        grouped.setdefault(round(float(e["t_s"]), 2), []).append(e)
    for row, (ts, group) in enumerate(sorted(grouped.items())):
        delta = sum(float(e.get("delta") or 0.0) for e in group)
        label = ", ".join(reasons.get(str(e.get("reason")), str(e.get("reason"))) for e in group)
        cx, cy = x(ts), ay(float(group[-1]["anger"]))
        colour = _COL["anger"] if delta > 0 else _COL["silence"]
        parts.append(
            f'<g class="anger-change"><circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{colour}"/>'
            f'<text x="{cx + 6 if cx < left + width * 0.6 else cx - 6:.1f}" y="{ay0 + 12 + (row % 3) * 12:.1f}" '
            f'class="why" fill="{colour}" text-anchor="{"start" if cx < left + width * 0.6 else "end"}">'
            f"{'▲' if delta > 0 else '▼'} {_esc(label)}</text>"
            f"<title>{fmt_num(ts, 1, language)} s: {fmt_num(delta, 1, language, sign=True)} → "
            f"{fmt_num(group[-1]['anger'], 1, language)} ({_esc(label)})</title></g>"
        )
    # trainee against baseline
    trainee_turns = [tu for tu in data["turns"] if tu["speaker"] == "trainee"]
    panels = (
        ("rate_vs_baseline_pct", lab["rate_axis"], 10.0, -40.0, 40.0, "%"),
        ("loudness_vs_baseline_db", lab["loud_axis"], 2.0, -10.0, 10.0, "dB"),
        ("pitch_vs_baseline_st", lab["pitch_axis"], 1.5, -6.0, 6.0, "st"),
    )
    py = 252.0
    for key, label, band, lo, hi, unit in panels:
        values = [
            (tu["start_s"], tu["end_s"], float(tu[key])) for tu in trainee_turns if isinstance(tu.get(key), int | float)
        ]
        _series_panel(
            parts,
            y0=py,
            h=52.0,
            x=x,
            values=values,
            label=label,
            band=band,
            lo=lo,
            hi=hi,
            unit=unit,
            language=language,
            width=width,
        )
        py += 70.0
    parts.append(
        f'<line id="playhead" x1="{left}" x2="{left}" y1="20" y2="{grid_h}" stroke="#000" '
        f'stroke-width="1.5" visibility="hidden"/>'
    )
    legend = (
        f'<tspan fill="{_COL["caller"]}">■</tspan> {_esc(lab["caller"])}  '
        f'<tspan fill="{_COL["trainee"]}">■</tspan> {_esc(lab["you"])}  '
        f'<tspan fill="{_COL["interrupt"]}">▼</tspan> {_esc(lab["interruption"])}  '
        f'<tspan fill="{_COL["silence"]}">▬</tspan> {_esc(lab["silence"])}  '
        f'<tspan fill="#999">■</tspan> {_esc(lab["backchannel"])}  '
        f'<tspan fill="{_COL["anger"]}">━</tspan> {_esc(lab["anger_axis"])}  '
        f'<tspan fill="#7a7">▭</tspan> {_esc(lab["baseline_line"])}'
    )
    parts.append(f'<text x="{left}" y="12" class="tick">{legend}</text>')
    return (
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total_w:.0f} {grid_h + 36}" '
        f'width="100%" role="img" data-duration="{duration:.3f}" data-left="{left}" data-width="{width}">'
        + "".join(parts)
        + "</svg>"
    )


def sparkline_svg(
    values: list[float | None],
    *,
    width: int = 160,
    height: int = 36,
    band: tuple[float, float] | None = None,
    label: str = "",
) -> str:
    """A small trend plot (oldest left); None values leave a gap."""
    nums = [v for v in values if isinstance(v, int | float)]
    if not nums:
        return f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    lo, hi = min(nums), max(nums)
    if band:
        lo, hi = min(lo, band[0]), max(hi, band[1])
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    n = len(values)

    def px(i: int) -> float:
        return 4 + (i / (n - 1) * (width - 8) if n > 1 else (width - 8) / 2)

    def py(v: float) -> float:
        return height - 4 - (v - lo) / (hi - lo) * (height - 8)

    parts = []
    if band:
        parts.append(
            f'<rect x="0" y="{py(band[1]):.1f}" width="{width}" height="{py(band[0]) - py(band[1]):.1f}" '
            f'fill="#e9f7ec"/>'
        )
    pts = [f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(values) if isinstance(v, int | float)]
    parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#2c7fb8" stroke-width="1.8"/>')
    for i, v in enumerate(values):
        if isinstance(v, int | float):
            parts.append(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.2" fill="#2c7fb8"><title>{v:g}</title></circle>'
            )
    return (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{_esc(label)}">' + "".join(parts) + "</svg>"
    )


def verdict_strip_svg(verdicts: list[str | None], *, size: int = 14) -> str:
    """One coloured square per attempt (oldest left): green pass, red fail, grey not applicable."""
    colour = {"pass": "#3a9d5d", "fail": "#d9534f", "not-applicable": "#ccc", None: "#fff"}
    parts = [
        f'<rect x="{i * (size + 2)}" y="0" width="{size}" height="{size}" rx="2" fill="{colour.get(v, "#fff")}" '
        f'stroke="#bbb"><title>{i + 1}: {v or "-"}</title></rect>'
        for i, v in enumerate(verdicts)
    ]
    return (
        f'<svg class="strip" xmlns="http://www.w3.org/2000/svg" width="{max(len(verdicts), 1) * (size + 2)}" '
        f'height="{size}">' + "".join(parts) + "</svg>"
    )


# --------------------------------------------------------------------------- audio


def encode_call_audio(call_dir: Path) -> bytes | None:
    """Both tracks mixed to one mono Ogg/Opus stream; None when the call has no audio."""
    import numpy as np
    import soundfile as sf

    from roleplay.recording.calldir import load_call

    rec = load_call(call_dir)
    tracks = [a for a in (rec.caller, rec.trainee) if a is not None]
    if not tracks:
        return None
    rate = tracks[0].rate_hz
    n = max(len(a.samples) for a in tracks)
    mix = np.zeros(n, dtype=np.float32)
    for a in tracks:
        mix[: len(a.samples)] += a.samples
    peak = float(np.max(np.abs(mix))) if n else 0.0
    if peak > 0.99:
        mix *= 0.99 / peak
    if rate not in (8000, 12000, 16000, 24000, 48000):
        from roleplay.audio.clip import Audio

        mix, rate = Audio(mix, rate).resampled(16000).samples, 16000
    buf = io.BytesIO()
    try:
        sf.write(buf, mix, rate, format="OGG", subtype="OPUS")
    except (sf.LibsndfileError, TypeError, ValueError):
        buf = io.BytesIO()
        sf.write(buf, mix, rate, format="OGG", subtype="VORBIS")
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1120px;margin:auto;padding:1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:1.6em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.3em .8em}
.facts div{background:#f7f7f7;padding:.3em .6em;border-radius:4px} .facts b{display:block;font-size:.8em;color:#666}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.7em}
.card{border-radius:8px;padding:.5em .9em;border:1px solid #ccc}
.card h3{margin:.2em 0;font-size:1.05em} .card ul{margin:.3em 0;padding-left:1.2em;font-size:.92em}
.card.pass{background:#eef8f0;border-color:#9fd3ae}.card.fail{background:#fdeeed;border-color:#f0aaa5}
.card.not-applicable{background:#f5f5f5;color:#555}
.badge{display:inline-block;font-size:.75em;padding:.05em .5em;border-radius:9px;background:#fff;border:1px solid #aaa;
margin-left:.3em;vertical-align:middle} .badge.pass{border-color:#3a9d5d;color:#2a7d45}
.badge.fail{border-color:#d9534f;color:#b52b27}
.tip{font-size:.9em;background:#fff;border-left:3px solid #2c7fb8;padding:.2em .5em;margin:.4em 0}
.override{font-size:.9em;background:#fff8e1;border-left:3px solid #e6a700;padding:.2em .5em;margin:.4em 0}
a.turn{cursor:pointer;color:#2c7fb8;text-decoration:underline;margin-right:.3em}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:.2em .4em;font-size:.88em;
vertical-align:top;text-align:left}
tr.caller td{background:#fff7ec} tr.playing td{outline:2px solid #2c7fb8}
.num{text-align:right;white-space:nowrap}
button.play{cursor:pointer;border:1px solid #aaa;background:#fff;border-radius:4px}
.transcript p{margin:.35em 0;padding:.25em .5em;border-radius:4px;cursor:pointer}
.transcript p.caller{background:#fff7ec}
.transcript p.trainee{background:#eef4fa} .transcript .who{font-weight:bold;margin-right:.4em}
mark{border-radius:3px;padding:0 .15em} mark.greeting{background:#d5f0dc} mark.acknowledgement{background:#c8ecd2}
mark.concrete-offer{background:#b9e4f5} mark.vague{background:#f4e5b5} mark.argument{background:#f7c3c0}
mark.negative{background:#f9d7c4} mark.boundary{background:#dcd0f2} mark.end-announcement{background:#e3c6ef}
mark.transfer{background:#cde3f9} mark.abuse{background:#f2a5a5}
.legend mark{margin-right:.4em;font-size:.85em} svg .ax{font-size:12px;fill:#333} svg .tick{font-size:11px;fill:#666}
svg .why{font-size:10.5px} svg .seg{cursor:pointer} .audio audio{width:100%}
.debrief section{background:#f7f9fc;border-radius:6px;padding:.3em .9em;margin:.5em 0}
.warn{color:#8a5a00}
"""

_JS = """
(function(){
 var audio=document.getElementById('call-audio'); var stopAt=null;
 function play(t,end){ if(!audio){return;} audio.currentTime=Math.max(0,t); stopAt=(end===undefined)?null:end;
   var p=audio.play(); if(p&&p.catch){p.catch(function(){});} }
 document.querySelectorAll('[data-t]').forEach(function(el){ el.addEventListener('click',function(){
   var end=el.getAttribute('data-end');
   play(parseFloat(el.getAttribute('data-t')), end===null?undefined:parseFloat(end)); }); });
 if(!audio){return;}
 audio.addEventListener('loadedmetadata',function(){
   audio.setAttribute('data-loaded-duration', audio.duration.toFixed(2)); });
 var svg=document.getElementById('timeline'); var head=document.getElementById('playhead');
 var dur=parseFloat(svg.getAttribute('data-duration')), left=parseFloat(svg.getAttribute('data-left')),
     width=parseFloat(svg.getAttribute('data-width'));
 audio.addEventListener('timeupdate',function(){
   if(stopAt!==null && audio.currentTime>=stopAt){ audio.pause(); stopAt=null; }
   var px=left+Math.min(audio.currentTime,dur)/dur*width; head.setAttribute('x1',px); head.setAttribute('x2',px);
   head.setAttribute('visibility','visible');
   document.querySelectorAll('tr[data-t]').forEach(function(r){ var a=parseFloat(r.getAttribute('data-t')),
     b=parseFloat(r.getAttribute('data-end'));
     r.classList.toggle('playing', audio.currentTime>=a && audio.currentTime<b); });
 });
})();
"""


def _highlight(text: str, turn: dict[str, Any]) -> str:
    """The turn's text with each detected phrase (and insult) wrapped in <mark class=category>."""
    spans: list[tuple[int, int, str, str]] = []
    items = [(p["category"], p.get("heard") or p["text"], p["text"]) for p in turn.get("phrases", [])]
    items += [("abuse", a, a) for a in turn.get("abuse", [])]
    for category, heard, canonical in items:
        words = re.findall(r"\w+", heard)
        if not words:
            continue
        m = re.search(r"(?<!\w)" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?!\w)", text, re.IGNORECASE)
        if m and not any(s < m.end() and m.start() < e for s, e, _, _ in spans):
            spans.append((m.start(), m.end(), category, canonical))
    out, pos = [], 0
    for s, e, category, canonical in sorted(spans):
        out.append(html.escape(text[pos:s]))
        out.append(
            f'<mark class="{_esc(category)}" title="{_esc(category)}: {_esc(canonical)}">'
            f"{html.escape(text[s:e])}</mark>"
        )
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _read_events(call_dir: Path | None) -> list[dict[str, Any]]:
    if call_dir is None:
        return []
    from roleplay.recording.calldir import _read_events

    try:
        return list(_read_events(Path(call_dir) / "events.jsonl"))
    except Exception:  # noqa: BLE001 - a broken log only loses the reasons in the plot
        return []


def _call_dir_of(data: dict[str, Any]) -> Path | None:
    src = data.get("source") or {}
    d = src.get("call_dir") if isinstance(src, dict) else None
    return Path(d) if d and (Path(d) / "meta.json").is_file() else None


def _meta(call_dir: Path | None) -> dict[str, Any]:
    if call_dir is None:
        return {}
    try:
        return json.loads((call_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _turn_links(indices: list[int], turns: dict[int, dict[str, Any]]) -> str:
    return " ".join(
        f'<a class="turn" data-t="{turns[i]["start_s"]:.3f}" data-end="{turns[i]["end_s"]:.3f}" '
        f'href="#turn-{i}">#{i}</a>'
        for i in indices
        if i in turns
    )


def render_html(
    data: dict[str, Any],
    *,
    call_dir: Path | None = None,
    reviews: list[dict[str, Any]] | None = None,
    audio: str | None | bool = True,
    scenario: dict[str, Any] | None = None,
) -> str:
    """The self-contained report page.

    `call_dir` (default: the analysis' source directory, when it exists) supplies the event log
    (why the anger changed), the date and the audio. `audio`: True embeds the mixed call audio as
    a data URI, a string is a relative URL to use instead, False/None leaves the player out.
    `reviews`: trainer overrides (`{item, verdict, note, by, created_utc}`), the newest per item counts.
    """
    from roleplay.history.store import scenario_info

    call_dir = Path(call_dir) if call_dir is not None else _call_dir_of(data)
    language = data.get("language") or "nl"
    t = texts(language)
    lab, items, verdicts = t["labels"], t["items"], t["verdicts"]
    e = _esc
    call = data.get("call") or {}
    meta = _meta(call_dir)
    info = scenario if scenario is not None else scenario_info(call.get("scenario"))
    events = _read_events(call_dir)
    latest = _latest_reviews(reviews)
    turns = {tu["index"]: tu for tu in data["turns"]}

    # summary facts
    b = data.get("baseline") or {}
    facts = [
        (lab["scenario"], (info or {}).get("title") or call.get("scenario") or "–"),
        (lab["trainee"], call.get("trainee") or meta.get("trainee") or "–"),
        (lab["date"], (meta.get("created_utc") or "–")[:16].replace("T", " ")),
        (lab["duration"], f"{fmt_num(data.get('duration_s'), 0, language)} s"),
        (lab["outcome"], t["outcomes"].get(call.get("outcome"), call.get("outcome") or "–")),
        (
            lab["anger"],
            " → ".join(fmt_num(call.get(k), 1, language) for k in ("anger_start", "anger_peak", "anger_end")),
        ),
        (lab["baseline"], lab.get(b.get("source") or "none", b.get("source") or "–")),
    ]
    facts_html = "".join(f"<div><b>{e(k)}</b>{e(v)}</div>" for k, v in facts)
    warn_html = "".join(f'<p class="warn">{e(lab["warnings"])}: {e(w)}</p>' for w in data.get("warnings") or [])

    # verdict cards
    cards = []
    for r in sorted(data["advice"], key=lambda r: ADVICE_IDS.index(r["id"]) if r["id"] in ADVICE_IDS else 99):
        rid, verdict = r["id"], r["verdict"]
        expl = explain_figures(rid, r.get("figures") or {}, language)
        effective = latest[rid]["verdict"] if rid in latest else verdict
        override = ""
        if rid in latest:
            rv = latest[rid]
            override = (
                f'<div class="override"><b>{e(lab["override"])}: {e(verdicts.get(rv["verdict"], rv["verdict"]))}'
                f"</b>{' ' + e(lab['override_by']) + ' ' + e(rv['by']) if rv.get('by') else ''}"
                f" ({e((rv.get('created_utc') or '')[:10])}): {e(rv['note'])}</div>"
            )
        links = _turn_links(list(r.get("turns") or []), turns)
        cards.append(
            f'<div class="card {e(effective)}" id="advice-{e(rid)}" data-item="{e(rid)}">'
            f"<h3>{_MARK.get(effective, '')} {e(items.get(rid, rid))}"
            f'<span class="badge {e(verdict)}">{e(verdicts.get(verdict, verdict))} · {e(lab["automatic"])}</span>'
            f"{'<span class=badge>' + e(lab['proxy']) + '</span>' if r.get('proxy') else ''}</h3>"
            f"<p>{e(r.get('feedback', ''))}</p>"
            + (f"<ul>{''.join(f'<li>{e(s)}</li>' for s in expl)}</ul>" if expl else "")
            + (f"<p>{e(lab['turns_link'])}: {links}</p>" if links else "")
            + override
            + (
                f'<div class="tip"><b>{e(lab["tip"])}:</b> {e(t["tips"].get(rid, ""))}</div>'
                if effective != "not-applicable"
                else ""
            )
            + "</div>"
        )

    # per-turn table
    rows = []
    for tu in data["turns"]:
        trainee = tu["speaker"] == "trainee"

        def rel(key: str, digits: int, unit: str, tu: dict[str, Any] = tu, trainee: bool = trainee) -> str:
            value = tu.get(key)
            return f"{fmt_num(value, digits, language, sign=True)} {unit}" if trainee and value is not None else "–"

        phrases = ", ".join(f"{t['categories'].get(p['category'], p['category'])}: {p['text']}" for p in tu["phrases"])
        if tu.get("abuse"):
            phrases = ", ".join(filter(None, [phrases, f"{t['categories']['abuse']}: {', '.join(tu['abuse'])}"]))
        rows.append(
            f'<tr id="turn-{tu["index"]}" class="{e(tu["speaker"])}" '
            f'data-t="{tu["start_s"]:.3f}" data-end="{tu["end_s"]:.3f}">'
            f'<td><button class="play" title="{e(lab["play_title"])}">{lab["play"]}</button> {tu["index"]}</td>'
            f"<td>{e(lab['you'] if trainee else lab['caller'])}</td>"
            f'<td class="num">{fmt_num(tu["start_s"], 1, language)}</td>'
            f'<td class="num">{fmt_num(tu["end_s"] - tu["start_s"], 1, language)}</td>'
            f'<td class="num">{fmt_num(tu.get("articulation_rate_syll_s"), 1, language)}</td>'
            f'<td class="num">{rel("rate_vs_baseline_pct", 0, "%")}</td>'
            f'<td class="num">{rel("loudness_vs_baseline_db", 1, "dB")}</td>'
            f'<td class="num">{rel("pitch_vs_baseline_st", 1, "st")}</td>'
            f'<td class="num">{fmt_num(tu.get("response_latency_s"), 1, language)}</td>'
            f"<td>{e(tu['text'])}</td><td>{e(phrases)}</td></tr>"
        )
    table = (
        f'<table id="turn-table"><tr><th>{e(lab["turn"])}</th><th></th><th>{e(lab["start"])}</th>'
        f"<th>{e(lab['dur'])}</th>"
        f"<th>{e(lab['rate'])}</th><th>{e(lab['rate_rel'])}</th><th>{e(lab['loud_rel'])}</th>"
        f"<th>{e(lab['pitch_rel'])}</th><th>{e(lab['latency'])}</th><th>{e(lab['text'])}</th>"
        f"<th>{e(lab['phrases'])}</th></tr>{''.join(rows)}</table>"
    )

    # transcript
    legend = "".join(f'<mark class="{e(k)}">{e(v)}</mark>' for k, v in t["categories"].items())
    transcript = "".join(
        f'<p class="{e(tu["speaker"])}" data-t="{tu["start_s"]:.3f}" data-end="{tu["end_s"]:.3f}">'
        f'<span class="who">{e(lab["you"] if tu["speaker"] == "trainee" else lab["caller"])} '
        f"<small>{fmt_num(tu['start_s'], 1, language)} s</small></span>{_highlight(tu['text'], tu) or '…'}</p>"
        for tu in data["turns"]
    )

    # audio
    audio_html = f"<p>{e(lab['no_audio'])}</p>"
    if audio is True and call_dir is not None:
        try:
            blob = encode_call_audio(call_dir)
        except Exception:  # noqa: BLE001 - a report without sound is better than none
            blob = None
        if blob:
            audio = "data:audio/ogg;base64," + base64.b64encode(blob).decode("ascii")
    if isinstance(audio, str) and audio:
        audio_html = (
            f'<audio id="call-audio" controls preload="metadata" src="{e(audio)}"></audio>'
            f"<p><small>{e(lab['audio_help'])}</small></p>"
        )

    # debrief
    effective = {r["id"]: latest[r["id"]]["verdict"] if r["id"] in latest else r["verdict"] for r in data["advice"]}
    feedback = {r["id"]: r.get("feedback", "") for r in data["advice"]}
    d = t["debrief"]
    well = [i for i in ADVICE_IDS if effective.get(i) == "pass"][:3]
    well_html = (
        ("<ul>" + "".join(f"<li><b>{e(items[i])}</b>: {e(feedback[i])}</li>" for i in well) + "</ul>")
        if well
        else f"<p>{e(d['nothing_well'])}</p>"
    )
    nxt = next((i for i in TRY_NEXT_ORDER if effective.get(i) == "fail"), None)
    next_html = f"<p><b>{e(items[nxt])}</b>: {e(t['tips'][nxt])}</p>" if nxt else f"<p>{e(d['nothing_next'])}</p>"
    scen_html = (
        f"<section><h3>{e(d['scenario'])}</h3><p>{e(info['debrief'])}</p></section>"
        if info and info.get("debrief")
        else ""
    )
    debrief_html = (
        f"<section><h3>{e(d['went_well'])}</h3>{well_html}</section>"
        f"<section><h3>{e(d['try_next'])}</h3>{next_html}</section>{scen_html}"
        f"<section><h3>{e(d['talk'])}</h3><p>{e(d['talk_prompt'])}</p>"
        f"<p>{e(feedback.get('debrief', ''))}</p></section>"
    )
    s = t["sections"]
    return f"""<!doctype html>
<html lang="{e(language)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{e(t["title"])}: {e(call.get("scenario") or "")}</title><style>{_CSS}</style></head><body>
<h1>{e(t["title"])}</h1>
<section id="summary"><h2>{e(s["summary"])}</h2><div class="facts">{facts_html}</div>{warn_html}</section>
<section id="audio" class="audio"><h2>{e(s["audio"])}</h2>{audio_html}</section>
<section id="timeline-section"><h2>{e(s["timeline"])}</h2>{timeline_svg(data, events, language)}</section>
<section id="advice"><h2>{e(s["advice"])}</h2><div class="cards">{"".join(cards)}</div></section>
<section id="turns"><h2>{e(s["turns"])}</h2>{table}</section>
<section id="transcript" class="transcript"><h2>{e(s["transcript"])}</h2>
<p class="legend">{e(lab["legend"])}: {legend}</p>
{transcript}</section>
<section id="debrief" class="debrief"><h2>{e(s["debrief"])}</h2>{debrief_html}</section>
<footer><small>roleplay {e(data.get("roleplay_version", __version__))}</small></footer>
<script>{_JS}</script>
</body></html>
"""


# --------------------------------------------------------------------------- `roleplay report`


def _newest_audio_mtime(call_dir: Path) -> float:
    return max(
        (
            p.stat().st_mtime
            for p in (call_dir / n for n in ("caller.wav", "trainee.wav", "calibration.wav"))
            if p.is_file()
        ),
        default=0.0,
    )


def load_or_analyse(
    call_dir: Path, *, model: str | None = None, out: TextIO | None = None
) -> tuple[dict[str, Any], bool]:
    """The call's analysis.json; re-analysed (and rewritten) when it is missing, unreadable or
    older than the audio. Returns (data, re_analysed)."""
    from roleplay.core.errors import InputError

    call_dir = Path(call_dir)
    if not (call_dir / "meta.json").is_file():
        raise InputError(f"{call_dir}: not a call directory (no meta.json)")
    path = call_dir / "analysis.json"
    if path.is_file() and path.stat().st_mtime >= _newest_audio_mtime(call_dir):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("schema") == "roleplay-analysis":
                return data, False
        except (ValueError, UnicodeDecodeError):
            pass
    if out is not None:
        print(f"(re-analysing {call_dir}: analysis.json is missing or older than the audio)", file=out)
    import argparse

    from roleplay.app.analyse import check_language, load_transcriber, read_input, run_analysis

    inp = read_input(
        argparse.Namespace(
            path=str(call_dir), caller_channel=None, trainee_channel=None, caller=None, trainee=None, calibration=None
        )
    )
    language = check_language(None, inp.language)
    analysis, advice = run_analysis(inp, language=language, transcriber=load_transcriber(model))
    data = analysis_dict(analysis, advice, source=inp.source)
    write_json(path, data)
    return data, True


def build_report(
    call_dir: Path,
    *,
    html_path: Path | None = None,
    json_path: Path | None = None,
    db: Any = None,
    record: bool = True,
    model: str | None = None,
    out: TextIO | None = None,
) -> tuple[dict[str, Any], Path]:
    """Rebuild a call's report: analysis (reused or redone), history row, reviews, HTML, JSON."""
    from roleplay.history.store import open_history

    call_dir = Path(call_dir)
    data, _ = load_or_analyse(call_dir, model=model, out=out)
    reviews: list[dict[str, Any]] = []
    if record:
        history = open_history(db)
        try:
            call_id = history.record(data, call_dir)
            reviews = history.reviews(call_id)
        finally:
            if history is not db:
                history.close()
    html_path = Path(html_path) if html_path else call_dir / "report.html"
    audio: str | bool = True
    if (data.get("duration_s") or 0) > EMBED_MAX_S:
        blob = encode_call_audio(call_dir)
        if blob:
            side = html_path.with_name(html_path.stem + ".audio.ogg")
            write_atomic(side, blob)
            audio = side.name
    write_atomic(html_path, render_html(data, call_dir=call_dir, reviews=reviews, audio=audio))
    if json_path:
        write_json(Path(json_path), {**data, "reviews": reviews})
    return {**data, "reviews": reviews}, html_path


def cmd_report(args: Any, out: TextIO) -> int:
    data, html_path = build_report(
        Path(args.call_dir),
        html_path=args.html,
        json_path=args.json,
        db=args.db,
        record=not args.no_history,
        model=getattr(args, "model", None),
        out=out,
    )
    if not args.quiet:
        print_summary(data, out, reviews=data.get("reviews"))
    print(f"\nPage: {html_path}" + (f"; JSON: {args.json}" if args.json else ""), file=out)
    return 0


def write_call_outputs(
    call_dir: Path, data: dict[str, Any], *, db: Any = None, record: bool = True, html_path: Path | None = None
) -> tuple[Path, Path]:
    """What `analyse`, `example` and `demo` write for a call directory: analysis.json, the call's
    row in the history (with its reviews) and report.html. A history that cannot be written is a
    warning on stderr, never a lost analysis. Returns (json_path, html_path)."""
    from roleplay.history.store import open_history, record_quietly

    call_dir = Path(call_dir)
    json_path = call_dir / "analysis.json"
    write_json(json_path, data)
    reviews: list[dict[str, Any]] = []
    call_id = record_quietly(data, call_dir, db) if record else None
    if call_id is not None:
        history = open_history(db)
        try:
            reviews = history.reviews(call_id)
        finally:
            if history is not db:
                history.close()
    html_path = Path(html_path) if html_path else call_dir / "report.html"
    write_atomic(html_path, render_html(data, call_dir=call_dir, reviews=reviews))
    return json_path, html_path
