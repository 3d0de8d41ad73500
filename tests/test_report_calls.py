"""Reports and history built from real simulated calls (`roleplay demo` machinery: synthesized
voices through the real recognizer), checked in a real headless Chromium.

Three calls are made once for the module: a poor and a good Dutch trainee and a poor English one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from roleplay.app.analyse import load_or_analyse
from roleplay.app.demo import run_demo
from roleplay.app.report import build_report
from roleplay.cli.main import main as cli_main
from roleplay.core.files import write_atomic
from roleplay.history.store import History
from roleplay.report.terminal import print_summary
from roleplay.report.text import explain_figures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTIONS = ("moments", "summary", "audio", "advice", "timeline-section", "turns", "transcript", "debrief")


@pytest.fixture(scope="module")
def calls(tmp_path_factory, transcriber, tts_cache) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calls")
    specs = {
        "nl-poor": ("nl-scheldende-beller", "poor", 6),
        "nl-good": ("nl-visite-derde-keer", "good", 3),
        "en-poor": ("en-abusive-caller", "poor", 6),
    }
    out = {}
    for name, (scenario, style, lines) in specs.items():
        run_demo(
            scenario_id=scenario,
            style=style,
            seed=1,
            out_dir=root / name,
            transcriber=transcriber,
            cache_dir=tts_cache,
            max_caller_lines=lines,
        )
        out[name] = root / name
    return out


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


def _chromium(url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _console_problems(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines() if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())
    ]


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (setup.sh --test)")


@needs_chromium
def test_console_error_detection_works(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>nosuchfunction();</script></body></html>")
    result = _chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert _console_problems(result.stderr), "the check for console errors must see a real one"


@needs_chromium
@pytest.mark.parametrize("name", ["nl-poor", "nl-good", "en-poor"])
def test_report_renders_in_a_real_browser(calls, name, db, tmp_path):
    call_dir = calls[name]
    page = tmp_path / f"{name}.html"
    data, html_path = build_report(call_dir, html_path=page, json_path=tmp_path / f"{name}.json", db=db)
    assert html_path == page and page.stat().st_size < 2_000_000
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text

    shot = tmp_path / f"{name}.png"
    result = _chromium(page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"\nscreenshot of the {name} report: {shot}")
    assert not _console_problems(result.stderr), _console_problems(result.stderr)

    dom = _chromium(page.as_uri(), tmp_path, "--virtual-time-budget=5000", "--dump-dom")
    assert not _console_problems(dom.stderr)
    html = dom.stdout
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert html.count('class="card ') == 14
    assert re.search(r'<svg id="timeline"[^>]*>.*<rect class="seg"', html, re.S)
    assert html.count('class="seg"') == len(data["turns"])
    assert "<polyline" in html  # the anger line
    # the embedded audio decodes in the browser and lasts as long as the call
    loaded = re.search(r'data-loaded-duration="([0-9.]+)"', html)
    assert loaded, "the audio element did not load its data"
    assert abs(float(loaded.group(1)) - data["duration_s"]) < 0.5
    assert len(re.findall(r'<tr id="turn-\d+"', html)) == len(data["turns"])
    # the report opens with the moments that changed the call, each with a button that plays it
    moments = re.search(r'<section id="moments">(.*?)</section>', html, re.S).group(1)
    assert moments.count('class="play" data-t=') == len(data["moments"])
    assert html.index('id="moments"') < html.index('id="summary"')
    if name.startswith("nl"):
        assert "Nabespreking" in html and "Het advies, punt voor punt" in html and 'lang="nl"' in html
    else:
        assert "Debrief" in html and "The advice, item by item" in html and 'lang="en"' in html
    saved = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
    assert saved["schema"] == "roleplay-analysis" and saved["reviews"] == [] and saved["advice"] == data["advice"]


def test_poor_call_report_explains_anger_interruptions_and_the_debrief(calls, db, tmp_path):
    data, page = build_report(calls["nl-poor"], html_path=tmp_path / "r.html", db=db)
    html = page.read_text(encoding="utf-8")
    events = [json.loads(x) for x in (calls["nl-poor"] / "events.jsonl").read_text().splitlines() if x.strip()]
    reasons = {e["reason"] for e in events if e["type"] == "anger"}
    assert reasons, "a poor trainee provokes the caller"
    assert 'class="anger-change"' in html
    assert "u onderbrak" in html or "u ging in discussie" in html  # why the anger rose, in Dutch
    if isinstance(data["interruptions"], list) and data["interruptions"]:
        assert 'class="interruption"' in html
    # the moments that made the caller angrier, quoting the trainee; say-instead beside the turn
    rose = [m for m in data["moments"] if m["kind"] == "anger-rose" and m["quote"]]
    assert rose and "werd de beller bozer" in html
    for x in data["say_instead"]:
        assert re.search(rf'<tr id="turn-{x["turn"]}".*?class="instead"', html, re.S)
    # debrief: the scenario's own text, one thing to try, the prompt to talk it over
    from roleplay.caller.scenario import load_scenario

    debrief = load_scenario("nl-scheldende-beller").debrief
    assert debrief[:40] in html.replace("&#x27;", "'")
    assert "Probeer de volgende keer" in html and "Praat erover" in html
    # figures in plain words
    assert "dan uw normale tempo" in html or "uw volume bleef gelijk" in html or "harder dan normaal" in html


def test_good_call_highlights_phrases_and_passes_items(calls, db, tmp_path):
    data, page = build_report(calls["nl-good"], html_path=tmp_path / "g.html", db=db)
    html = page.read_text(encoding="utf-8")
    found = [p for t in data["turns"] for p in t["phrases"]]
    assert found, "a good trainee uses phrases from the phrase list"
    assert re.search(r'<mark class="(greeting|acknowledgement|concrete-offer)"', html)
    assert 'class="card pass"' in html and "Wat ging goed" in html


def test_explanations_are_plain_words_in_the_calls_language():
    nl = explain_figures("slower-softer", {"rate_change_pct": -12.0, "loudness_change_db": -3.4}, "nl")
    assert nl[0] == "u sprak 12 % langzamer dan uw normale tempo"
    assert nl[1] == "u sprak 3,4 dB zachter dan normaal"
    assert "zonder te schreeuwen" in nl[-1]
    en = explain_figures("slower-softer", {"rate_change_pct": 15.0, "loudness_change_db": 0.5}, "en")
    assert en[0] == "you spoke 15 % faster than your normal pace"
    assert en[1].startswith("your loudness stayed the same")
    assert explain_figures("no-interrupt", {"count": 2, "onsets_s": [5.1, 12.25], "backchannels": 0}, "nl") == [
        "u viel de beller 2 keer in de rede (op 5,1, 12,2 s)"
    ]


def test_a_pace_that_was_not_judged_is_said_in_words_not_as_a_blank_figure():
    figures = {"loudness_change_db": -1.24, "rate_change_pct": None, "pitch_change_st": 0.3, "climbed_turns": []}
    nl = explain_figures("stay-calm", figures, "nl")
    assert nl == ["na de basislijn, t.o.v. normaal: volume -1,2 dB, tempo niet beoordeeld (te weinig betrouwbaar "
                  "getelde lettergrepen), toonhoogte +0,3 halve toon"]
    en = explain_figures("stay-calm", {**figures, "rate_change_pct": 4.0}, "en")
    assert en == ["after the baseline, against normal: loudness -1.2 dB, pace +4 %, pitch +0.3 semitones"]


def test_report_reuses_the_analysis_unless_the_audio_is_newer(calls, tmp_path, transcriber, monkeypatch):
    call_dir = tmp_path / "copy"
    shutil.copytree(calls["en-poor"], call_dir)
    (call_dir / "analysis.json").touch()
    first, redone = load_or_analyse(call_dir)
    assert not redone
    import roleplay.app.analyse as commands

    monkeypatch.setattr(commands, "load_transcriber", lambda model: transcriber)
    later = (call_dir / "analysis.json").stat().st_mtime + 5
    os.utime(call_dir / "trainee.wav", (later, later))
    again, redone = load_or_analyse(call_dir)
    assert redone and again["advice"] == first["advice"]
    assert (call_dir / "analysis.json").stat().st_mtime >= later - 5


def test_review_command_overrides_and_shows_in_report_and_history(calls, db, tmp_path, capsys):
    call_dir = tmp_path / "reviewed"
    shutil.copytree(calls["nl-poor"], call_dir)
    assert cli_main(["report", str(call_dir), "--db", str(db), "--quiet"]) == 0
    assert (
        cli_main(
            [
                "review",
                str(call_dir),
                "--item",
                "slower-softer",
                "--verdict",
                "pass",
                "--note",
                "Trainer heard her slow down; the TTS voice hides it",
                "--by",
                "Marieke",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    html = (call_dir / "report.html").read_text(encoding="utf-8")
    assert "Oordeel trainer" in html and "Marieke" in html and "the TTS voice hides it" in html
    with History(db) as h:
        (row,) = h.calls()
        assert row.verdicts["slower-softer"] == "fail" and row.verdict("slower-softer") == "pass"
    capsys.readouterr()
    assert cli_main(["history", "--db", str(db), "--csv", str(tmp_path / "h.csv")]) == 0
    out = capsys.readouterr().out
    assert "nl-scheldende-beller" in out and "✔*" in out
    csv_text = (tmp_path / "h.csv").read_text(encoding="utf-8")
    assert "slower-softer_automatic" in csv_text and ",pass,fail," in csv_text
    data = json.loads((call_dir / "analysis.json").read_text(encoding="utf-8"))
    import io

    buf = io.StringIO()
    print_summary(data, buf, reviews=[{"item": "slower-softer", "verdict": "pass", "note": "n", "by": "M"}])
    assert "trainer override: pass by M" in buf.getvalue()


def test_history_over_several_days_and_progress(calls, db, tmp_path, capsys):
    """Real call analyses, recorded as one trainee's drills on five days, with a trainer override."""
    with History(db) as h:
        for day, name in enumerate(["nl-poor", "nl-poor", "nl-good", "nl-poor", "nl-good"], start=1):
            data = json.loads((calls[name] / "analysis.json").read_text(encoding="utf-8"))
            data = {**data, "call": {**data["call"], "call_id": f"drill-{day}", "trainee": "sanne"}}
            h.record(data, calls[name], started_utc=f"2026-11-{day:02d}T10:00:00+00:00")
        assert [r.started_utc[:10] for r in h.calls(trainee="sanne")] == [f"2026-11-0{d}" for d in range(1, 6)]
        h.add_review(
            h.call_id_for(call_key="id:drill-4"),
            item="no-interrupt",
            verdict="pass",
            note="the overlap was a backchannel",
            by="trainer",
        )
    capsys.readouterr()
    page = tmp_path / "progress.html"
    assert cli_main(["progress", "--trainee", "sanne", "--db", str(db), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "5 call(s), 2026-11-01 .. 2026-11-05" in out and "no-interrupt" in out
    html = page.read_text(encoding="utf-8")
    assert html.count('class="spark"') >= 3 and 'data-item="no-interrupt"' in html
    assert cli_main(["history", "--trainee", "sanne", "--scenario", "nl-visite-derde-keer", "--db", str(db)]) == 0
    assert capsys.readouterr().out.count("nl-visite-derde-keer") == 2


def test_write_atomic_leaves_no_half_file(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    write_atomic(target, "good")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "half")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path / "missing"), "--db", str(tmp_path / "h.db")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a call directory" in err
