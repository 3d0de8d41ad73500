"""Progress of one trainee over repeated attempts: per advice item and per figure, oldest first."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from roleplay.core.advice import ADVICE_IDS
from roleplay.history.store import KEY_FIGURES, CallRow
from roleplay.report.html import CSS
from roleplay.report.svg import sparkline_svg, verdict_strip_svg
from roleplay.report.text import texts

ITEMS = ("outcome", *(a for a in ADVICE_IDS if a != "debrief"))
# Figures worth a trend line, with the band that counts as good (None: no band).
TREND_FIGURES: dict[str, tuple[float, float] | None] = {
    "rate_change_pct": (-40.0, -10.0),
    "loudness_change_db": (-10.0, -2.0),
    "pitch_change_st": (-3.0, 1.5),
    "interruptions": (0.0, 0.0),
    "caller_share_pct": (60.0, 100.0),
    "long_pauses": None,
    "max_latency_s": (0.8, 3.0),
    "arguments": (0.0, 0.0),
    "anger_end": (0.0, 4.0),
    "time_to_calm_s": None,
    "time_to_answer_s": None,
    "duration_s": None,
}
assert set(TREND_FIGURES) <= set(KEY_FIGURES)
_MARK = {"pass": "✔", "fail": "✘", "no-evidence": "?", "not-applicable": "–", None: "·"}
# History `mode` of a real call that a drill scenario was made from (roleplay.caller.incident), and its label.
ORIGINAL_MODE = "original"
ORIGINAL_LABEL = {"nl": "oorspronkelijk gesprek", "en": "original call"}


def language_of(rows: Sequence[CallRow]) -> str:
    langs = Counter(r.language for r in rows if r.language)
    return langs.most_common(1)[0][0] if langs else "nl"


def _trend(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    half = max(1, len(values) // 2)
    early, late = sum(values[:half]) / half, sum(values[-half:]) / half
    if abs(late - early) < 1e-9:
        return "→"
    return "↑" if late > early else "↓"


def print_progress(
    trainee: str,
    rows: Sequence[CallRow],
    out: TextIO,
    *,
    scenario: str | None = None,
    original: CallRow | None = None,
) -> None:
    """`original`: the real call a drill scenario was made from (`roleplay scenarios from-recording`),
    shown in its own column before the attempts."""
    if original is not None:
        print(
            f"Original call: {original.started_utc[:10]}, taken by {original.trainee}, outcome "
            f"{original.outcome or '-'} (column 'orig')",
            file=out,
        )
    if not rows:
        print(f"No calls recorded for {trainee}" + (f" in {scenario}" if scenario else "") + ".", file=out)
        return
    print(
        f"Progress of {trainee}: {len(rows)} call(s), {rows[0].started_utc[:10]} .. {rows[-1].started_utc[:10]}"
        + (f", scenario {scenario}" if scenario else ", all scenarios"),
        file=out,
    )
    orig = "orig  " if original is not None else ""
    print(f"\n{'advice item':<18} {orig}{'attempts, oldest first':<{max(24, 2 * len(rows))}} last 4", file=out)
    for item in ITEMS:
        vs = [r.verdict(item) for r in rows]
        ov = original.verdict(item) if original is not None else None
        if all(v in (None, "not-applicable") for v in [*vs, ov]):
            continue
        last = [v for v in vs if v in ("pass", "fail")][-4:]
        marks = " ".join(_MARK.get(v, "?") for v in vs)
        print(
            f"{item:<18} {f'{_MARK.get(ov, chr(63)):<5} ' if orig else ''}"
            f"{marks:<{max(24, 2 * len(rows))}} {sum(v == 'pass' for v in last)}/{len(last)} passed",
            file=out,
        )
    if original is None:
        print(f"\n{'figure':<20} {'first':>8} {'last':>8}  trend", file=out)
    else:
        print(f"\n{'figure':<20} {'original':>8} {'first':>8} {'last':>8}  trend  last vs original", file=out)
    for name in TREND_FIGURES:
        nums = [v for v in (r.figures.get(name) for r in rows) if isinstance(v, int | float)]
        if not nums:
            continue
        if original is None:
            print(f"{name:<20} {nums[0]:>8.1f} {nums[-1]:>8.1f}  {_trend(nums)}", file=out)
            continue
        orig_value = original.figures.get(name)
        has = isinstance(orig_value, int | float)
        print(
            f"{name:<20} {f'{orig_value:.1f}' if has else '-':>8} {nums[0]:>8.1f} {nums[-1]:>8.1f}  "
            f"{_trend(nums):<5}  "
            + (f"{nums[-1] - orig_value:+.1f}" if isinstance(orig_value, int | float) else "-"),
            file=out,
        )


def render_progress_html(
    trainee: str, rows: Sequence[CallRow], *, scenario: str | None = None, original: CallRow | None = None
) -> str:
    """`original`: the real call the scenario was made from, in its own column (see print_progress)."""
    language = language_of([*rows, *([original] if original is not None else [])])
    p = texts(language)["progress"]
    e = html.escape
    body = progress_body_html(rows, scenario=scenario, original=original, language=language)
    return f"""<!doctype html>
<html lang="{e(language)}"><head><meta charset="utf-8"><title>{e(p["title"])}: {e(trainee)}</title>
<style>{CSS}</style></head><body><h1>{e(p["title"])}: {e(trainee)}</h1>{body}</body></html>
"""


def progress_body_html(
    rows: Sequence[CallRow], *, scenario: str | None = None, original: CallRow | None = None, language: str = "nl"
) -> str:
    """The progress page's content (items, figures, calls) without page or style, for the browser
    app to place in its own page."""
    t = texts(language)
    p, items_t, fig_t = t["progress"], t["items"], t["figures"]
    e = html.escape
    label = ORIGINAL_LABEL.get(language, ORIGINAL_LABEL["en"])
    # one cell (or header) more in each row when there is an original call to compare with
    orig_th = f"<th class='original'>{e(label)}</th>" if original is not None else ""
    if not rows and original is None:
        body = f"<p>{e(p['none'])}</p>"
    else:
        dates = f"{rows[0].started_utc[:10]} – {rows[-1].started_utc[:10]}" if rows else "–"
        item_rows = [f"<tr><th></th>{orig_th}<th></th><th></th></tr>"] if original is not None else []
        for item in ITEMS:
            vs = [r.verdict(item) for r in rows]
            ov = original.verdict(item) if original is not None else None
            if all(v in (None, "not-applicable") for v in [*vs, ov]):
                continue
            last = [v for v in vs if v in ("pass", "fail")][-4:]
            orig_td = f"<td class='original'>{verdict_strip_svg([ov])}</td>" if original is not None else ""
            item_rows.append(
                f'<tr data-item="{e(item)}"><th>{e(items_t.get(item, item))}</th>{orig_td}'
                f"<td>{verdict_strip_svg(vs)}</td><td>{sum(v == 'pass' for v in last)}/{len(last)}</td></tr>"
            )
        fig_rows = [f"<tr><th></th>{orig_th}<th></th><th></th></tr>"] if original is not None else []
        for name, band in TREND_FIGURES.items():
            values = [r.figures.get(name) for r in rows]
            nums = [v for v in values if isinstance(v, int | float)]
            orig_value = original.figures.get(name) if original is not None else None
            if not nums and not isinstance(orig_value, int | float):
                continue
            orig_td = (
                f"<td class='original'>{f'{orig_value:g}' if isinstance(orig_value, int | float) else '–'}</td>"
                if original is not None
                else ""
            )
            fig_rows.append(
                f'<tr data-figure="{e(name)}"><th>{e(fig_t.get(name, name))}</th>{orig_td}'
                f"<td>{sparkline_svg(values, width=320, height=60, band=band, label=name) if nums else ''}</td>"
                f"<td>{f'{nums[0]:g} → {nums[-1]:g}' if nums else ''}</td></tr>"
            )
        # with an original call, a first column says which row it is
        tagged = ([(original, label)] if original is not None else []) + [(r, "") for r in rows]
        calls = "".join(
            f"<tr{' class=original' if tag else ''}>{f'<td>{e(tag)}</td>' if original is not None else ''}"
            f"<td>{e(r.started_utc[:16].replace('T', ' '))}</td><td>{e(r.scenario)}</td>"
            f"<td>{e(r.intensity or '–')}</td>"
            f"<td>{e(t['outcomes'].get(r.outcome or '', r.outcome or '–'))}</td>"
            f"<td>{(r.duration_s or 0):.0f} s</td></tr>"
            for r, tag in tagged
        )
        body = (
            f"<p>{len(rows)} {e(p['attempts'])}, {e(dates)}{' · ' + e(scenario) if scenario else ''}</p>"
            f"<h2>{e(p['items'])}</h2><table id='items'>{''.join(item_rows)}</table>"
            f"<h2>{e(p['figures'])}</h2><table id='figures'>{''.join(fig_rows)}</table>"
            f"<h2>{e(t['labels']['date'])}</h2><table id='calls'>{calls}</table>"
        )
    return body
