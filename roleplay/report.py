"""Turning an analysis and its assessment into JSON, a terminal summary and an HTML page."""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from roleplay import __version__
from roleplay.analysis import Analysis, Turn
from roleplay.assessment import AdviceResult

SCHEMA_VERSION = 1


def _r(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _turn_dict(t: Turn) -> dict[str, Any]:
    return {
        "index": t.index, "speaker": t.speaker, "start_s": t.start_s, "end_s": t.end_s, "text": t.text,
        "syllables": t.syllables, "syllables_transcript": t.syllables_transcript,
        "syllables_acoustic": t.syllables_acoustic, "syllable_source": t.syllable_source,
        "pause_total_s": t.pause_total_s,
        "speech_rate_syll_s": _r(t.speech_rate_syll_s, 2),
        "articulation_rate_syll_s": _r(t.articulation_rate_syll_s, 2),
        "loudness_dbfs": _r(t.loudness_dbfs, 2), "pitch_median_hz": _r(t.pitch_median_hz, 1),
        "pitch_spread_st": _r(t.pitch_spread_st, 2),
        "rate_vs_baseline_pct": _r(t.rate_vs_baseline_pct, 1),
        "loudness_vs_baseline_db": _r(t.loudness_vs_baseline_db, 2),
        "pitch_vs_baseline_st": _r(t.pitch_vs_baseline_st, 2),
        "response_latency_s": t.response_latency_s,
        "phrases": [{"category": p.category, "text": p.text, "start_s": p.start_s, "heard": p.heard}
                    for p in t.phrases],
        "abuse": list(t.abuse),
        "words": [{"text": w.text, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                   "probability": round(w.probability, 3)} for w in t.words],
    }


def analysis_dict(a: Analysis, advice: tuple[AdviceResult, ...], *, source: dict[str, Any]) -> dict[str, Any]:
    caller_na = "not-applicable" if not a.has_caller else None
    return {
        "schema": "roleplay-analysis", "schema_version": SCHEMA_VERSION, "roleplay_version": __version__,
        "source": source, "language": a.language, "duration_s": a.duration_s,
        "parties": {"caller": a.has_caller, "trainee": a.has_trainee},
        "call": a.call,
        "turns": [_turn_dict(t) for t in a.turns],
        "backchannels": [asdict(b) for b in a.backchannels],
        "interruptions": caller_na or [
            {"by": i.by, "start_s": i.start_s, "overlap_s": i.overlap_s, "turn": i.turn,
             "interrupted_turn": i.interrupted_turn} for i in a.interruptions],
        "response_latencies_s": caller_na or list(a.response_latencies_s),
        "baseline": {k: _r(v, 3) for k, v in asdict(a.baseline).items()},
        "anger": [{"t_s": t, "anger": v} for t, v in a.anger],
        "advice": [{"id": r.id, "verdict": r.verdict, "figures": r.figures, "turns": list(r.turns),
                    "feedback": r.feedback, "proxy": r.proxy} for r in advice],
        "quality": a.quality, "warnings": list(a.warnings),
    }


def write_atomic(path: Path, text: str) -> None:
    """A half-written report must never replace a good one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


_MARK = {"pass": "✔", "fail": "✘", "not-applicable": "–"}


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def print_summary(data: dict[str, Any], out: TextIO) -> None:
    turns = data["turns"]
    print(f"Call: {data['duration_s']:.1f} s, language {data['language']}, "
          f"{sum(t['speaker'] == 'caller' for t in turns)} caller turns, "
          f"{sum(t['speaker'] == 'trainee' for t in turns)} trainee turns", file=out)
    if data["call"].get("outcome"):
        c = data["call"]
        print(f"Outcome: {c['outcome']}  (caller anger start {c.get('anger_start')}, peak {c.get('anger_peak')}, "
              f"end {c.get('anger_end')})", file=out)
    b = data["baseline"]
    print(f"Baseline ({b['source']}): articulation {_num(b['articulation_rate_syll_s'], '.2f')} syll/s, "
          f"loudness {_num(b['loudness_dbfs'], '.1f')} dBFS, pitch {_num(b['pitch_median_hz'], '.0f')} Hz", file=out)
    print("", file=out)
    print(f"{'turn':>4} {'who':<8} {'start':>6} {'dur':>5} {'art.rate':>8} {'vs base':>8} {'dB':>6}  text", file=out)
    for t in turns:
        rel = f"{t['rate_vs_baseline_pct']:+.0f}%" if t["rate_vs_baseline_pct"] is not None else ""
        text = t["text"] if len(t["text"]) <= 60 else t["text"][:57] + "..."
        print(f"{t['index']:>4} {t['speaker']:<8} {t['start_s']:>6.1f} {t['end_s'] - t['start_s']:>5.1f} "
              f"{_num(t['articulation_rate_syll_s'], '.2f'):>8} {rel:>8} {_num(t['loudness_dbfs'], '.1f'):>6}  {text}",
              file=out)
    if isinstance(data["interruptions"], list) and data["interruptions"]:
        print("", file=out)
        for i in data["interruptions"]:
            print(f"Interruption by {i['by']} at {i['start_s']:.2f} s (overlap {i['overlap_s']:.2f} s)", file=out)
    print("", file=out)
    for r in data["advice"]:
        print(f" {_MARK[r['verdict']]} {r['id']:<18} {r['feedback']}", file=out)
    for w in data["warnings"]:
        print(f"Note: {w}", file=out)


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page (no network): verdict cards, per-turn table, transcript."""
    e = html.escape
    cards = "".join(
        f'<div class="card {r["verdict"]}"><h3>{_MARK[r["verdict"]]} {e(r["id"])}'
        f'{" (proxy)" if r["proxy"] else ""}</h3><p>{e(r["feedback"])}</p>'
        f'<p class="fig">{e(json.dumps(r["figures"], ensure_ascii=False))}</p></div>'
        for r in data["advice"])
    rows = "".join(
        f'<tr class="{t["speaker"]}"><td>{t["index"]}</td><td>{t["speaker"]}</td><td>{t["start_s"]:.1f}</td>'
        f'<td>{t["end_s"] - t["start_s"]:.1f}</td><td>{_num(t["articulation_rate_syll_s"], ".2f")}</td>'
        f'<td>{_num(t["rate_vs_baseline_pct"], "+.0f")}</td><td>{_num(t["loudness_dbfs"], ".1f")}</td>'
        f'<td>{_num(t["loudness_vs_baseline_db"], "+.1f")}</td><td>{_num(t["pitch_median_hz"], ".0f")}</td>'
        f'<td>{e(t["text"])}<br><small>{e(", ".join(p["category"] + ": " + p["text"] for p in t["phrases"]))}'
        f'</small></td></tr>' for t in data["turns"])
    lang = data["language"]
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>roleplay analysis</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.6em}}
.card{{border-radius:6px;padding:.4em .8em;border:1px solid #ccc}}
.pass{{background:#e9f7ec}}.fail{{background:#fdecea}}.not-applicable{{background:#f3f3f3}}
.fig{{font-size:.75em;color:#555;word-break:break-all}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.2em .4em;font-size:.9em;vertical-align:top}}
tr.caller{{background:#fff7e6}}</style></head><body>
<h1>roleplay: analysis</h1><p>{data['duration_s']:.1f} s, language {e(lang)}, baseline
{e(data['baseline']['source'])}.</p>
<h2>Advice</h2><div class="cards">{cards}</div>
<h2>Turns</h2><table><tr><th>#</th><th>who</th><th>start s</th><th>dur s</th><th>syll/s</th>
<th>vs base %</th><th>dBFS</th><th>vs base dB</th><th>F0 Hz</th><th>text and phrases</th></tr>{rows}</table>
</body></html>
"""
