"""The call's summary on the terminal: turns, interruptions and verdicts, trainer overrides included."""

from __future__ import annotations

from typing import Any, TextIO

from roleplay.report.text import MARK, moment_sentence


def latest_reviews(reviews: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The trainer's review per advice item: the newest counts (reviews come oldest first)."""
    return {r["item"]: r for r in reviews or []}


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def _print_header(data: dict[str, Any], out: TextIO) -> None:
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


def _print_turns(data: dict[str, Any], out: TextIO) -> None:
    print(f"{'turn':>4} {'who':<8} {'start':>6} {'dur':>5} {'art.rate':>8} {'vs base':>8} {'dB':>6}  text", file=out)
    for t in data["turns"]:
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


def print_summary(data: dict[str, Any], out: TextIO, *, reviews: list[dict[str, Any]] | None = None) -> None:
    _print_header(data, out)
    language = data.get("language") or "en"
    for m in data.get("moments") or []:  # the moments that changed the call come first
        print(f" * {moment_sentence(m, language)}", file=out)
    print("", file=out)
    _print_turns(data, out)
    print("", file=out)
    latest = latest_reviews(reviews)
    for r in data["advice"]:
        print(f" {MARK.get(r['verdict'], '?')} {r['id']:<18} {r['feedback']}", file=out)
        if r["id"] in latest:
            rv = latest[r["id"]]
            print(
                f"   trainer override: {rv['verdict']}{' by ' + rv['by'] if rv.get('by') else ''}: {rv['note']}",
                file=out,
            )
    for w in data["warnings"]:
        print(f"Note: {w}", file=out)
