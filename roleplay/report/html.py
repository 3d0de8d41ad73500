"""The report page: one self-contained HTML file per call (no network, no server, no external script).

Inline CSS, a few lines of inline JavaScript for the audio, inline SVG plots (`roleplay.report.svg`),
and the call's audio embedded as a data URI (`roleplay.report.audio`), so the page still plays after
it is mailed to a trainer or moved out of the call directory; one shared timeline makes every turn
clickable. Texts are data, in the call's language (`roleplay.report.text`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roleplay import __version__
from roleplay.core.advice import ADVICE_IDS
from roleplay.history.store import scenario_info
from roleplay.recording.calldir import read_events
from roleplay.report.audio import audio_data_uri
from roleplay.report.svg import esc as _esc
from roleplay.report.svg import timeline_svg
from roleplay.report.terminal import latest_reviews
from roleplay.report.text import MARK, explain_figures, fmt_num, moment_sentence, texts

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


CSS = """
body{font-family:system-ui,sans-serif;max-width:1120px;margin:auto;padding:1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:1.6em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.3em .8em}
.facts div{background:#f7f7f7;padding:.3em .6em;border-radius:4px} .facts b{display:block;font-size:.8em;color:#666}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.7em}
.card{border-radius:8px;padding:.5em .9em;border:1px solid #ccc}
.card h3{margin:.2em 0;font-size:1.05em} .card ul{margin:.3em 0;padding-left:1.2em;font-size:.92em}
.card.pass{background:#eef8f0;border-color:#9fd3ae}.card.fail{background:#fdeeed;border-color:#f0aaa5}
.card.not-applicable{background:#f5f5f5;color:#555}
.card.no-evidence{background:#f4f6fa;border-color:#aab6c8;border-style:dashed} .badge.no-evidence{border-color:#6b7b93}
.moments{padding-left:1.2em} .moments li{margin:.4em 0} .instead{display:block;font-size:.9em;background:#eef8f0;
border-left:3px solid #3a9d5d;padding:.15em .5em;margin:.25em 0}
.badge{display:inline-block;font-size:.75em;padding:.05em .5em;border-radius:9px;background:#fff;border:1px solid #aaa;
margin-left:.3em;vertical-align:middle} .badge.pass{border-color:#3a9d5d;color:#2a7d45}
.badge.fail{border-color:#d9534f;color:#b52b27}
.tip{font-size:.9em;background:#fff;border-left:3px solid #2c7fb8;padding:.2em .5em;margin:.4em 0}
.override{font-size:.9em;background:#fff8e1;border-left:3px solid #e6a700;padding:.2em .5em;margin:.4em 0}
a.turn{cursor:pointer;color:#1d5f8c;text-decoration:underline;margin-right:.3em}
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


def _read_events(call_dir: Path | None) -> list[Mapping[str, Any]]:
    if call_dir is None:
        return []
    try:
        return list(read_events(Path(call_dir) / "events.jsonl"))
    except Exception:  # noqa: BLE001 - a broken log only loses the reasons in the plot
        return []


def _call_dir_of(data: dict[str, Any]) -> Path | None:
    src = data.get("source") or {}
    d = src.get("call_dir") if isinstance(src, dict) else None
    return Path(d) if d and (Path(d) / "meta.json").is_file() else None


def _meta(call_dir: Path | None) -> dict[str, Any]:
    if call_dir is None:
        return {}
    from roleplay.core.errors import InputError
    from roleplay.recording.calldir import read_meta

    try:
        return read_meta(call_dir).to_dict()
    except InputError:  # gone or damaged: the page shows what the analysis holds
        return {}


def _turn_links(indices: list[int], turns: dict[int, dict[str, Any]]) -> str:
    return " ".join(
        f'<a class="turn" data-t="{turns[i]["start_s"]:.3f}" data-end="{turns[i]["end_s"]:.3f}" '
        f'href="#turn-{i}">#{i}</a>'
        for i in indices
        if i in turns
    )


@dataclass(frozen=True)
class _Page:
    """What every part of one page needs: its strings, the trainer's reviews, the turns by index."""

    language: str
    t: dict[str, Any]
    latest: dict[str, dict[str, Any]]
    turns: dict[int, dict[str, Any]]

    @property
    def lab(self) -> dict[str, str]:
        return self.t["labels"]

    def effective(self, r: dict[str, Any]) -> str:
        """An advice item's verdict after the trainer's review, if any."""
        return self.latest[r["id"]]["verdict"] if r["id"] in self.latest else r["verdict"]


def _trainee_name(name: str | None, meta: dict[str, Any], lab: dict[str, str]) -> str:
    """A demo's trainee is the simulated one, named by its style ("good", "poor") in the files."""
    if meta.get("mode") == "demo" and f"demo_{name}" in lab:
        return lab[f"demo_{name}"]
    return name or "–"


def _facts_html(data: dict[str, Any], p: _Page, meta: dict[str, Any], info: dict[str, Any] | None) -> str:
    """The summary: scenario, trainee, date, duration, outcome, anger, baseline; then any warnings."""
    e, lab, language = _esc, p.lab, p.language
    call = data.get("call") or {}
    b = data.get("baseline") or {}
    facts = [
        (lab["scenario"], (info or {}).get("title") or call.get("scenario") or "–"),
        (lab["trainee"], _trainee_name(call.get("trainee") or meta.get("trainee"), meta, lab)),
        (lab["date"], (meta.get("created_utc") or "–")[:16].replace("T", " ")),
        (lab["duration"], f"{fmt_num(data.get('duration_s'), 0, language)} s"),
        (lab["outcome"], p.t["outcomes"].get(call.get("outcome"), call.get("outcome") or "–")),
        (
            lab["anger"],
            " → ".join(fmt_num(call.get(k), 1, language) for k in ("anger_start", "anger_peak", "anger_end")),
        ),
        (lab["baseline"], lab.get(b.get("source") or "none", b.get("source") or "–")),
    ]
    facts_html = "".join(f"<div><b>{e(k)}</b>{e(v)}</div>" for k, v in facts)
    warn_html = "".join(f'<p class="warn">{e(lab["warnings"])}: {e(w)}</p>' for w in data.get("warnings") or [])
    return f'<div class="facts">{facts_html}</div>{warn_html}'


def _override_html(rv: dict[str, Any], p: _Page) -> str:
    e, lab = _esc, p.lab
    return (
        f'<div class="override"><b>{e(lab["override"])}: {e(p.t["verdicts"].get(rv["verdict"], rv["verdict"]))}'
        f"</b>{' ' + e(lab['override_by']) + ' ' + e(rv['by']) if rv.get('by') else ''}"
        f" ({e((rv.get('created_utc') or '')[:10])}): {e(rv['note'])}</div>"
    )


def _advice_card(r: dict[str, Any], p: _Page) -> str:
    """One advice item: the verdict (and the trainer's, if any), feedback, figures in words, turns, tip."""
    e, lab, items, verdicts = _esc, p.lab, p.t["items"], p.t["verdicts"]
    rid, verdict = r["id"], r["verdict"]
    expl = explain_figures(rid, r.get("figures") or {}, p.language)
    effective = p.effective(r)
    override = _override_html(p.latest[rid], p) if rid in p.latest else ""
    links = _turn_links(list(r.get("turns") or []), p.turns)
    return (
        f'<div class="card {e(effective)}" id="advice-{e(rid)}" data-item="{e(rid)}">'
        f"<h3>{MARK.get(effective, '')} {e(items.get(rid, rid))}"
        f'<span class="badge {e(verdict)}">{e(verdicts.get(verdict, verdict))} · {e(lab["automatic"])}</span>'
        f"{'<span class=badge>' + e(lab['proxy']) + '</span>' if r.get('proxy') else ''}</h3>"
        f"<p>{e(r.get('feedback', ''))}</p>"
        + (f"<ul>{''.join(f'<li>{e(s)}</li>' for s in expl)}</ul>" if expl else "")
        + (f"<p>{e(lab['turns_link'])}: {links}</p>" if links else "")
        + override
        + (
            f'<div class="tip"><b>{e(lab["tip"])}:</b> {e(p.t["tips"].get(rid, ""))}</div>'
            if effective != "not-applicable"
            else ""
        )
        + "</div>"
    )


def _moments_html(data: dict[str, Any], p: _Page) -> str:
    """The two or three moments that changed the call, each with a button that plays it from the
    trainee's turn through the caller's reaction."""
    e, x = _esc, p.t["moments"]
    items = [
        f'<li data-moment="{e(m.get("kind", ""))}"><button class="play" data-t="{max(0.0, m["start_s"] - 0.3):.3f}" '
        f'data-end="{m["end_s"] + 3.0:.3f}" title="{e(x["play"])}">{p.lab["play"]} {e(x["play"])}</button> '
        f"{e(moment_sentence(m, p.language))}</li>"
        for m in data.get("moments") or []
    ]
    return f'<ol class="moments">{"".join(items)}</ol>' if items else f"<p>{e(x['none'])}</p>"


def _instead_html(index: int, data: dict[str, Any], p: _Page) -> str:
    """What to say instead of the provoking or vague phrases of one trainee turn."""
    e, seen, out = _esc, set(), []
    for x in data.get("say_instead") or []:
        if x.get("turn") == index and x.get("instead") not in seen:
            seen.add(x.get("instead"))
            out.append(f'<span class="instead"><b>{e(p.t["moments"]["instead"])}</b> '
                       f"(‘{e(x.get('said') or x.get('phrase') or '')}’): {e(x['instead'])}</span>")
    return "".join(out)


def _advice_cards(data: dict[str, Any], p: _Page) -> str:
    in_order = sorted(data["advice"], key=lambda r: ADVICE_IDS.index(r["id"]) if r["id"] in ADVICE_IDS else 99)
    return "".join(_advice_card(r, p) for r in in_order)


def _rate_note(tu: dict[str, Any], lab: dict[str, str]) -> str:
    """A title on a rate cell that rests on the acoustic count or was left out of the rate verdicts."""
    if tu.get("rate_excluded"):
        return f' title="{_esc(lab["rate_excluded"])}"'
    if tu.get("syllable_source") == "acoustic" and tu.get("articulation_rate_syll_s") is not None:
        return f' title="{_esc(lab["rate_acoustic"])}"'
    return ""


def _turn_row(tu: dict[str, Any], p: _Page, data: dict[str, Any]) -> str:
    e, lab, language, categories = _esc, p.lab, p.language, p.t["categories"]
    trainee = tu["speaker"] == "trainee"

    def rel(key: str, digits: int, unit: str) -> str:
        value = tu.get(key)
        return f"{fmt_num(value, digits, language, sign=True)} {unit}" if trainee and value is not None else "–"

    phrases = ", ".join(f"{categories.get(ph['category'], ph['category'])}: {ph['text']}" for ph in tu["phrases"])
    if tu.get("abuse"):
        phrases = ", ".join(filter(None, [phrases, f"{categories['abuse']}: {', '.join(tu['abuse'])}"]))
    return (
        f'<tr id="turn-{tu["index"]}" class="{e(tu["speaker"])}" '
        f'data-t="{tu["start_s"]:.3f}" data-end="{tu["end_s"]:.3f}">'
        f'<td><button class="play" title="{e(lab["play_title"])}">{lab["play"]}</button> {tu["index"]}</td>'
        f"<td>{e(lab['you'] if trainee else lab['caller'])}</td>"
        f'<td class="num">{fmt_num(tu["start_s"], 1, language)}</td>'
        f'<td class="num">{fmt_num(tu["end_s"] - tu["start_s"], 1, language)}</td>'
        f'<td class="num"{_rate_note(tu, lab)}>{fmt_num(tu.get("articulation_rate_syll_s"), 1, language)}'
        f"{'*' if _rate_note(tu, lab) else ''}</td>"
        f'<td class="num">{rel("rate_vs_baseline_pct", 0, "%")}</td>'
        f'<td class="num">{rel("loudness_vs_baseline_db", 1, "dB")}</td>'
        f'<td class="num">{rel("pitch_vs_baseline_st", 1, "st")}</td>'
        f'<td class="num">{fmt_num(tu.get("response_latency_s"), 1, language)}</td>'
        f"<td>{e(tu['text'])}{_instead_html(tu['index'], data, p) if trainee else ''}</td><td>{e(phrases)}</td></tr>"
    )


def _turn_table(data: dict[str, Any], p: _Page) -> str:
    e, lab = _esc, p.lab
    rows = "".join(_turn_row(tu, p, data) for tu in data["turns"])
    return (
        f'<table id="turn-table"><tr><th>{e(lab["turn"])}</th><th></th><th>{e(lab["start"])}</th>'
        f"<th>{e(lab['dur'])}</th>"
        f"<th>{e(lab['rate'])}</th><th>{e(lab['rate_rel'])}</th><th>{e(lab['loud_rel'])}</th>"
        f"<th>{e(lab['pitch_rel'])}</th><th>{e(lab['latency'])}</th><th>{e(lab['text'])}</th>"
        f"<th>{e(lab['phrases'])}</th></tr>{rows}</table>"
    )


def _transcript_html(data: dict[str, Any], p: _Page) -> str:
    e, lab = _esc, p.lab
    legend = "".join(f'<mark class="{e(k)}">{e(v)}</mark>' for k, v in p.t["categories"].items())
    transcript = "".join(
        f'<p class="{e(tu["speaker"])}" data-t="{tu["start_s"]:.3f}" data-end="{tu["end_s"]:.3f}">'
        f'<span class="who">{e(lab["you"] if tu["speaker"] == "trainee" else lab["caller"])} '
        f"<small>{fmt_num(tu['start_s'], 1, p.language)} s</small></span>{_highlight(tu['text'], tu) or '…'}"
        f"{_instead_html(tu['index'], data, p) if tu['speaker'] == 'trainee' else ''}</p>"
        for tu in data["turns"]
    )
    return f'<p class="legend">{e(lab["legend"])}: {legend}</p>\n{transcript}'


def _audio_html(audio: str | bool | None, call_dir: Path | None, p: _Page) -> str:
    e, lab = _esc, p.lab
    if audio is True and call_dir is not None:
        audio = audio_data_uri(call_dir)
    if isinstance(audio, str) and audio:
        return (
            f'<audio id="call-audio" controls preload="metadata" src="{e(audio)}"></audio>'
            f"<p><small>{e(lab['audio_help'])}</small></p>"
        )
    return f"<p>{e(lab['no_audio'])}</p>"


def _debrief_html(data: dict[str, Any], p: _Page, info: dict[str, Any] | None) -> str:
    """What went well (up to three), the one thing to try next, the scenario's own debrief, a talk prompt."""
    e, t, items = _esc, p.t, p.t["items"]
    effective = {r["id"]: p.effective(r) for r in data["advice"]}
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
    return (
        f"<section><h3>{e(d['went_well'])}</h3>{well_html}</section>"
        f"<section><h3>{e(d['try_next'])}</h3>{next_html}</section>{scen_html}"
        f"<section><h3>{e(d['talk'])}</h3><p>{e(d['talk_prompt'])}</p>"
        f"<p>{e(feedback.get('debrief', ''))}</p></section>"
    )


def debrief_html(data: dict[str, Any], *, reviews: list[dict[str, Any]] | None = None) -> str:
    """The debrief section's content on its own (what went well, what to try next, the scenario's
    debrief, a talk prompt), for pages that show a call in their own layout (the web app)."""
    language = data.get("language") or "nl"
    p = _Page(language, texts(language), latest_reviews(reviews), {tu["index"]: tu for tu in data["turns"]})
    return _debrief_html(data, p, scenario_info((data.get("call") or {}).get("scenario")))


def render_html(
    data: dict[str, Any],
    *,
    call_dir: Path | None = None,
    reviews: list[dict[str, Any]] | None = None,
    audio: str | bool | None = True,
    scenario: dict[str, Any] | None = None,
) -> str:
    """The self-contained report page.

    `call_dir` (default: the analysis' source directory, when it exists) supplies the event log
    (why the anger changed), the date and the audio. `audio`: True embeds the mixed call audio as
    a data URI, a string is a relative URL to use instead, False/None leaves the player out.
    `reviews`: trainer overrides (`{item, verdict, note, by, created_utc}`), the newest per item counts.
    `scenario`: the scenario's title and debrief (default: looked up by the call's scenario id).
    """
    call_dir = Path(call_dir) if call_dir is not None else _call_dir_of(data)
    language = data.get("language") or "nl"
    t = texts(language)
    p = _Page(language, t, latest_reviews(reviews), {tu["index"]: tu for tu in data["turns"]})
    e, s = _esc, t["sections"]
    events = _read_events(call_dir)
    call = data.get("call") or {}
    info = scenario if scenario is not None else scenario_info(call.get("scenario"))
    return f"""<!doctype html>
<html lang="{e(language)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{e(t["title"])}: {e(call.get("scenario") or "")}</title><style>{CSS}</style></head><body>
<h1>{e(t["title"])}</h1>
<section id="moments"><h2>{e(s["moments"])}</h2>{_moments_html(data, p)}</section>
<section id="summary"><h2>{e(s["summary"])}</h2>{_facts_html(data, p, _meta(call_dir), info)}</section>
<section id="audio" class="audio"><h2>{e(s["audio"])}</h2>{_audio_html(audio, call_dir, p)}</section>
<section id="timeline-section"><h2>{e(s["timeline"])}</h2>{timeline_svg(data, events, language)}</section>
<section id="advice"><h2>{e(s["advice"])}</h2><div class="cards">{_advice_cards(data, p)}</div></section>
<section id="turns"><h2>{e(s["turns"])}</h2>{_turn_table(data, p)}</section>
<section id="transcript" class="transcript"><h2>{e(s["transcript"])}</h2>
{_transcript_html(data, p)}</section>
<section id="debrief" class="debrief"><h2>{e(s["debrief"])}</h2>{_debrief_html(data, p, info)}</section>
<footer><small>roleplay {e(data.get("roleplay_version", __version__))}</small></footer>
<script>{_JS}</script>
</body></html>
"""
