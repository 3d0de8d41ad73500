"""The report's plots as inline SVG: the call's timeline, and the small trend plots of the progress
and readiness pages. Drawn here as text, so a page needs no script library and no network."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from roleplay.report.text import fmt_num, texts

COLOURS = {
    "caller": "#e67e22",
    "trainee": "#2c7fb8",
    "anger": "#c0392b",
    "interrupt": "#d62728",
    "silence": "#2ca02c",
    "grid": "#ddd",
    "base": "#555",
}
GRID_H = 460  # the timeline's plotting height; the time axis labels sit below it
# Each lane's top edge: the two parties' speech side by side, caller above.
LANES_Y = {"caller": 30.0, "trainee": 62.0}
# Silences before a trainee turn drawn on the timeline: from this long on.
SILENCE_MIN_S = 0.8


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


@dataclass(frozen=True)
class _TimeAxis:
    """Seconds of the call to x positions on the timeline."""

    duration_s: float
    left: float = 90.0
    width: float = 1000.0

    def x(self, sec: float) -> float:
        return self.left + min(max(sec, 0.0), self.duration_s) / self.duration_s * self.width


@dataclass(frozen=True)
class _Panel:
    """One trainee measure against baseline: its key in a turn, its label, the band that counts
    as unchanged, the plotted range and the unit."""

    key: str
    label: str
    band: float
    lo: float
    hi: float
    unit: str


def _series_panel(
    parts: list[str], *, y0: float, h: float, axis: _TimeAxis, values: list[tuple[float, float, float]],
    panel: _Panel, language: str,
) -> None:
    """A panel with one horizontal segment per trainee turn at its value against baseline (0)."""
    x, width, lo, hi, band = axis.x, axis.width, panel.lo, panel.hi, panel.band

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return y0 + h - (v - lo) / (hi - lo) * h

    parts.append(
        f'<rect x="{x(0):.1f}" y="{y(band):.1f}" width="{width:.1f}" height="{y(-band) - y(band):.1f}" fill="#eef5ee"/>'
    )
    parts.append(
        f'<line x1="{x(0):.1f}" x2="{x(0) + width:.1f}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        f'stroke="{COLOURS["base"]}" stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="4" y="{y0 + h / 2 + 4:.1f}" class="ax">{esc(panel.label)}</text>')
    for v in (lo, hi):
        parts.append(
            f'<text x="{x(0) - 4:.1f}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">'
            f"{fmt_num(v, 0, language, sign=True)}</text>"
        )
    for start, end, v in values:
        parts.append(
            f'<line x1="{x(start):.1f}" x2="{x(end):.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="{COLOURS["trainee"]}" stroke-width="4" stroke-linecap="round">'
            f"<title>{fmt_num(v, 1, language, sign=True)} {panel.unit}</title></line>"
        )


# --------------------------------------------------------------------------- the timeline, part by part


def _time_grid(axis: _TimeAxis, lab: dict[str, str]) -> list[str]:
    parts = []
    duration = axis.duration_s
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if duration / s <= 12)
    k = 0
    while k * step <= duration:
        gx = axis.x(k * step)
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="20" y2="{GRID_H}" stroke="{COLOURS["grid"]}"/>'
            f'<text x="{gx:.1f}" y="{GRID_H + 14}" class="tick" text-anchor="middle">{k * step}</text>'
        )
        k += 1
    parts.append(
        f'<text x="{axis.left + axis.width / 2:.1f}" y="{GRID_H + 30}" class="tick" text-anchor="middle">'
        f"{esc(lab['seconds'])}</text>"
    )
    return parts


def _speech_lanes(data: dict[str, Any], axis: _TimeAxis, lab: dict[str, str]) -> list[str]:
    """Each party's turns (clickable) and backchannels in its own lane."""
    x, parts = axis.x, []
    for who, ly in LANES_Y.items():
        name = lab["caller"] if who == "caller" else lab["you"]
        parts.append(f'<text x="4" y="{ly + 15:.1f}" class="ax">{esc(name)}</text>')
    for turn in data["turns"]:
        ly = LANES_Y.get(turn["speaker"], 30.0)
        tx, tw = x(turn["start_s"]), max(x(turn["end_s"]) - x(turn["start_s"]), 1.5)
        parts.append(
            f'<rect class="seg" data-t="{turn["start_s"]:.3f}" data-end="{turn["end_s"]:.3f}" '
            f'x="{tx:.1f}" y="{ly:.1f}" width="{tw:.1f}" height="22" rx="3" fill="{COLOURS[turn["speaker"]]}" '
            f'opacity="0.85"><title>#{turn["index"]} {esc(turn["text"][:120])}</title></rect>'
        )
    for b in data.get("backchannels") or []:
        ly = LANES_Y.get(b.get("speaker"), 62.0)
        parts.append(
            f'<rect x="{x(b["start_s"]):.1f}" y="{ly + 6:.1f}" width="{max(x(b["end_s"]) - x(b["start_s"]), 1.5):.1f}" '
            f'height="10" fill="#999"><title>{esc(lab["backchannel"])}: {esc(b.get("text", ""))}</title></rect>'
        )
    return parts


def _interruptions_and_silences(data: dict[str, Any], axis: _TimeAxis, lab: dict[str, str], language: str) -> list[str]:
    x, parts = axis.x, []
    interruptions = data["interruptions"] if isinstance(data.get("interruptions"), list) else []
    for i in interruptions:
        ix = x(i["start_s"])
        parts.append(
            f'<g class="interruption"><line x1="{ix:.1f}" x2="{ix:.1f}" y1="26" y2="88" '
            f'stroke="{COLOURS["interrupt"]}" stroke-width="2"/><path d="M{ix - 6:.1f},90 L{ix + 6:.1f},90 '
            f'L{ix:.1f},98 Z" fill="{COLOURS["interrupt"]}"/><title>{esc(lab["interruption"])} '
            f"({esc(i['by'])}, {fmt_num(i['start_s'], 1, language)} s)</title></g>"
        )
    for turn in data["turns"]:
        lat = turn.get("response_latency_s")
        if turn["speaker"] == "trainee" and isinstance(lat, int | float) and lat >= SILENCE_MIN_S:
            s0, s1 = x(turn["start_s"] - lat), x(turn["start_s"])
            parts.append(
                f'<g class="silence"><rect x="{s0:.1f}" y="88" width="{s1 - s0:.1f}" height="6" '
                f'fill="{COLOURS["silence"]}"/><title>{esc(lab["silence"])}: {fmt_num(lat, 1, language)} s'
                f"</title></g>"
            )
    return parts


_ANGER_Y0, _ANGER_H = 120.0, 110.0


def _anger_y(v: float) -> float:
    return _ANGER_Y0 + _ANGER_H - min(max(v, 0.0), 10.0) / 10.0 * _ANGER_H


def _anger_curve(data: dict[str, Any], axis: _TimeAxis, lab: dict[str, str]) -> list[str]:
    """The caller's anger (0..10) as a step line over the call."""
    x, ay, left, width = axis.x, _anger_y, axis.left, axis.width
    parts = [f'<text x="4" y="{_ANGER_Y0 + _ANGER_H / 2:.1f}" class="ax">{esc(lab["anger_axis"])}</text>']
    for level in (0, 5, 10):
        parts.append(
            f'<line x1="{left}" x2="{left + width}" y1="{ay(level):.1f}" y2="{ay(level):.1f}" '
            f'stroke="{COLOURS["grid"]}"/>'
            f'<text x="{left - 4}" y="{ay(level) + 4:.1f}" class="tick" text-anchor="end">{level}</text>'
        )
    anger = [(float(p["t_s"]), float(p["anger"])) for p in data.get("anger") or []]
    if anger:
        pts = []
        for n_, (ts, v) in enumerate(anger):
            if n_:
                pts.append(f"{x(ts):.1f},{ay(anger[n_ - 1][1]):.1f}")
            pts.append(f"{x(ts):.1f},{ay(v):.1f}")
        pts.append(f"{x(axis.duration_s):.1f},{ay(anger[-1][1]):.1f}")
        parts.append(
            f'<polyline class="anger" points="{" ".join(pts)}" fill="none" stroke="{COLOURS["anger"]}" '
            f'stroke-width="2.5"/>'
        )
    return parts


def _anger_reasons(
    events: Sequence[Mapping[str, Any]], axis: _TimeAxis, reasons: dict[str, str], language: str
) -> list[str]:
    """A dot per change of the caller's anger with its reasons (changes at one moment together);
    labels in three rows so neighbours do not overlap."""
    changes = [e for e in events if e.get("type") == "anger" and isinstance(e.get("anger"), int | float)]
    grouped: dict[float, list[Mapping[str, Any]]] = {}
    for e in changes:
        grouped.setdefault(round(float(e["t_s"]), 2), []).append(e)
    parts = []
    for row, (ts, group) in enumerate(sorted(grouped.items())):
        delta = sum(float(e.get("delta") or 0.0) for e in group)
        label = ", ".join(reasons.get(str(e.get("reason")), str(e.get("reason"))) for e in group)
        cx, cy = axis.x(ts), _anger_y(float(group[-1]["anger"]))
        colour = COLOURS["anger"] if delta > 0 else COLOURS["silence"]
        on_left = cx < axis.left + axis.width * 0.6
        parts.append(
            f'<g class="anger-change"><circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{colour}"/>'
            f'<text x="{cx + 6 if on_left else cx - 6:.1f}" y="{_ANGER_Y0 + 12 + (row % 3) * 12:.1f}" '
            f'class="why" fill="{colour}" text-anchor="{"start" if on_left else "end"}">'
            f"{'▲' if delta > 0 else '▼'} {esc(label)}</text>"
            f"<title>{fmt_num(ts, 1, language)} s: {fmt_num(delta, 1, language, sign=True)} → "
            f"{fmt_num(group[-1]['anger'], 1, language)} ({esc(label)})</title></g>"
        )
    return parts


def _baseline_panels(data: dict[str, Any], axis: _TimeAxis, lab: dict[str, str], language: str) -> list[str]:
    """The trainee's rate, loudness and pitch per turn against their own baseline."""
    trainee_turns = [tu for tu in data["turns"] if tu["speaker"] == "trainee"]
    panels = (
        _Panel("rate_vs_baseline_pct", lab["rate_axis"], 10.0, -40.0, 40.0, "%"),
        _Panel("loudness_vs_baseline_db", lab["loud_axis"], 2.0, -10.0, 10.0, "dB"),
        _Panel("pitch_vs_baseline_st", lab["pitch_axis"], 1.5, -6.0, 6.0, "st"),
    )
    parts: list[str] = []
    py = 252.0
    for panel in panels:
        values = [
            (tu["start_s"], tu["end_s"], float(tu[panel.key]))
            for tu in trainee_turns
            if isinstance(tu.get(panel.key), int | float)
        ]
        _series_panel(parts, y0=py, h=52.0, axis=axis, values=values, panel=panel, language=language)
        py += 70.0
    return parts


def _legend(axis: _TimeAxis, lab: dict[str, str]) -> str:
    legend = (
        f'<tspan fill="{COLOURS["caller"]}">■</tspan> {esc(lab["caller"])}  '
        f'<tspan fill="{COLOURS["trainee"]}">■</tspan> {esc(lab["you"])}  '
        f'<tspan fill="{COLOURS["interrupt"]}">▼</tspan> {esc(lab["interruption"])}  '
        f'<tspan fill="{COLOURS["silence"]}">▬</tspan> {esc(lab["silence"])}  '
        f'<tspan fill="#999">■</tspan> {esc(lab["backchannel"])}  '
        f'<tspan fill="{COLOURS["anger"]}">━</tspan> {esc(lab["anger_axis"])}  '
        f'<tspan fill="#7a7">▭</tspan> {esc(lab["baseline_line"])}'
    )
    return f'<text x="{axis.left}" y="12" class="tick">{legend}</text>'


def timeline_svg(data: dict[str, Any], events: Sequence[Mapping[str, Any]], language: str) -> str:
    """The whole call on one time axis: speech of both parties, interruptions and silences,
    the caller's anger with the reason for each change, and the trainee's rate, loudness and
    pitch per turn against their own baseline."""
    t = texts(language)
    lab = t["labels"]
    axis = _TimeAxis(duration_s=max(float(data.get("duration_s") or 0.0), 1.0))
    left, width = axis.left, axis.width
    parts: list[str] = [
        *_time_grid(axis, lab),
        *_speech_lanes(data, axis, lab),
        *_interruptions_and_silences(data, axis, lab, language),
        *_anger_curve(data, axis, lab),
        *_anger_reasons(events, axis, t["reasons"], language),
        *_baseline_panels(data, axis, lab, language),
        # moved along the axis by the page's script while the audio plays
        f'<line id="playhead" x1="{left}" x2="{left}" y1="20" y2="{GRID_H}" stroke="#000" '
        f'stroke-width="1.5" visibility="hidden"/>',
        _legend(axis, lab),
    ]
    return (
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 10:.0f} {GRID_H + 36}" '
        f'width="100%" role="img" aria-label="{esc(t["sections"]["timeline"])}" '
        f'data-duration="{axis.duration_s:.3f}" data-left="{left}" data-width="{width}">'
        + "".join(parts)
        + "</svg>"
    )


# --------------------------------------------------------------------------- trends over attempts


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
        f'role="img" aria-label="{esc(label)}">' + "".join(parts) + "</svg>"
    )


def verdict_strip_svg(verdicts: list[str | None], *, size: int = 14) -> str:
    """One coloured square per attempt (oldest left): green pass, red fail, grey not applicable."""
    colour = {"pass": "#3a9d5d", "fail": "#d9534f", "no-evidence": "#9aa9bf", "not-applicable": "#ccc", None: "#fff"}
    parts = [
        f'<rect x="{i * (size + 2)}" y="0" width="{size}" height="{size}" rx="2" fill="{colour.get(v, "#fff")}" '
        f'stroke="#bbb"><title>{i + 1}: {v or "-"}</title></rect>'
        for i, v in enumerate(verdicts)
    ]
    return (
        f'<svg class="strip" xmlns="http://www.w3.org/2000/svg" width="{max(len(verdicts), 1) * (size + 2)}" '
        f'height="{size}">' + "".join(parts) + "</svg>"
    )
