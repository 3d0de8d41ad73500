"""End to end on real espeak-ng speech through the real Whisper model: planted rates, levels,
interruptions, backchannels, latencies and phrases must be measured as planted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from roleplay.analysis.assessment import ADVICE_IDS, assess
from roleplay.analysis.pipeline import analyse_audio
from roleplay.recording.calldir import load_call
from roleplay.recording.scripted import ScriptLine, place_lines, speak_line, write_call

pytestmark = pytest.mark.model

REF_NL = "De huisartsenpost is 's avonds en in het weekend bereikbaar voor spoed die niet kan wachten."
REF_EN = "The out-of-hours practice can be reached in the evening and at the weekend for urgent care."
BASE_WPM = 170.0
SLOW_WPM = BASE_WPM * 0.8


def _nl_script() -> list[ScriptLine]:
    c, t = "nl-man-middle", "nl-trainee-man"
    return [
        ScriptLine("trainee", "Goedenavond, huisartsenpost Utrecht, u spreekt met Sanne.", t, rate_wpm=BASE_WPM),
        ScriptLine("caller", "Eindelijk! Ik wacht al een uur op de dokter. Mijn vrouw heeft hoge koorts en er komt "
                   "gewoon niemand langs.", c, anger=7, gap_s=0.4),
        ScriptLine("trainee", "ja", t, overlap_at_s=2.2, kind="backchannel"),
        ScriptLine("trainee", "Ik kan me voorstellen dat u boos bent.", t, gap_s=1.2, rate_wpm=BASE_WPM),
        ScriptLine("caller", "Ongerust? Ik ben woedend! Jullie beloofden dat de dokter zou komen en er gebeurt "
                   "helemaal niks.", c, anger=8, gap_s=0.5),
        ScriptLine("trainee", "Ja maar dat klopt niet, het is heel druk vanavond.", t, overlap_at_s=1.6,
                   kind="interruption", rate_wpm=BASE_WPM),
        ScriptLine("caller", "Laat me uitpraten! Niemand luistert hier naar mij.", c, anger=8, gap_s=0.3),
        ScriptLine("trainee", REF_NL, t, gap_s=0.9, rate_wpm=SLOW_WPM),
        ScriptLine("caller", "En wat gaat u daar nu aan doen?", c, anger=6, gap_s=0.6),
        ScriptLine("trainee", REF_NL, t, gap_s=0.5, rate_wpm=BASE_WPM, gain_db=-6.0),
        ScriptLine("caller", "Dat wil ik helemaal niet horen, ik wil gewoon dat er nu iemand komt kijken bij mijn "
                   "vrouw.", c, anger=7, gap_s=1.4),
        ScriptLine("trainee", "Wacht even, luister nou eens naar mij.", t, overlap_at_s=1.2, kind="interruption",
                   rate_wpm=BASE_WPM),
        ScriptLine("trainee", "Wat ik wel kan doen: de dokter belt u binnen twintig minuten terug.", t, gap_s=1.0,
                   rate_wpm=BASE_WPM),
        ScriptLine("caller", "Goed dan.", c, anger=4, gap_s=0.7),
    ]


def _en_script() -> list[ScriptLine]:
    c, t = "en-man", "en-trainee-woman"
    return [
        ScriptLine("trainee", "Good evening, out of hours service, you are speaking with Anna.", t),
        ScriptLine("caller", "I have been waiting for two hours and nobody has called me back, this is ridiculous.",
                   c, anger=7, gap_s=0.5),
        ScriptLine("trainee", "I understand that you are upset.", t, gap_s=1.1),
        ScriptLine("caller", "Upset does not even begin to cover it, my son is really ill.", c, anger=7, gap_s=0.5),
        ScriptLine("trainee", "What I can do is this: the doctor will call you back within twenty minutes.", t,
                   gap_s=0.8),
        ScriptLine("caller", "Fine. Twenty minutes then.", c, anger=4, gap_s=0.6),
    ]


def _neutral_script() -> list[ScriptLine]:
    c, t = "nl-man-middle", "nl-trainee-man"
    return [
        ScriptLine("trainee", "Het regent vandaag in Utrecht.", t),
        ScriptLine("caller", "Ik heb morgen een afspraak bij de tandarts.", c, gap_s=0.6),
        ScriptLine("trainee", "De trein naar Amsterdam vertrekt om half acht.", t, gap_s=0.8),
        ScriptLine("caller", "Mijn kleinzoon speelt voetbal op zaterdag.", c, gap_s=0.6),
        ScriptLine("trainee", "De bakker op de hoek verkoopt vers brood.", t, gap_s=0.7),
    ]


@pytest.fixture(scope="module")
def nl_call(tmp_path_factory, tts_cache, transcriber):
    placed = place_lines(_nl_script(), cache_dir=tts_cache)
    calibration = speak_line(ScriptLine("trainee", REF_NL, "nl-trainee-man", rate_wpm=BASE_WPM), cache_dir=tts_cache)
    d = write_call(tmp_path_factory.mktemp("nl") / "call", placed, language="nl", calibration=calibration,
                   meta={"calibration_text": REF_NL})
    rec = load_call(d)
    analysis = analyse_audio(caller=rec.caller, trainee=rec.trainee, language="nl", transcriber=transcriber,
                             calibration=rec.calibration)
    return placed, analysis, d


def _turn_at(analysis, placed_line):
    """The analysed turn of that speaker that overlaps the planted line most."""
    best = max((t for t in analysis.turns if t.speaker == placed_line.line.speaker),
               key=lambda t: min(t.end_s, placed_line.end_s) - max(t.start_s, placed_line.start_s))
    assert min(best.end_s, placed_line.end_s) > max(best.start_s, placed_line.start_s), "no turn found"
    return best


def test_every_planted_interruption_is_found_within_150_ms(nl_call):
    placed, analysis, _ = nl_call
    planted = [p.start_s for p in placed if p.line.kind == "interruption"]
    found = [i.start_s for i in analysis.interruptions if i.by == "trainee"]
    assert len(found) == len(planted), (planted, found)
    for want, got in zip(planted, sorted(found), strict=True):
        assert abs(got - want) <= 0.15
    assert all(i.overlap_s >= 0.5 for i in analysis.interruptions)


def test_backchannel_is_not_an_interruption(nl_call):
    placed, analysis, _ = nl_call
    bc = next(p for p in placed if p.line.kind == "backchannel")
    assert not any(abs(i.start_s - bc.start_s) < 0.5 for i in analysis.interruptions)
    assert not any(t.start_s - 0.2 <= bc.start_s <= t.end_s and t.speaker == "trainee" and t.duration_s < 1.0
                   for t in analysis.turns)


def test_response_latencies_within_150_ms(nl_call):
    placed, analysis, _ = nl_call
    checked = 0
    for i, p in enumerate(placed):
        prev = next((q for q in reversed(placed[:i]) if q.line.kind == "turn"), None)
        if p.line.speaker == "trainee" and p.line.kind == "turn" and prev is not None and prev.line.speaker == "caller":
            turn = _turn_at(analysis, p)
            assert turn.response_latency_s is not None, p.line.text
            assert abs(turn.response_latency_s - (p.start_s - prev.end_s)) <= 0.15, (p.line.text, turn)
            checked += 1
    assert checked >= 3


def test_twenty_percent_slower_turn_is_measured_slower(nl_call):
    placed, analysis, _ = nl_call
    slow = _turn_at(analysis, next(p for p in placed if p.line.rate_wpm == SLOW_WPM))
    normal = _turn_at(analysis, next(p for p in placed if p.line.text == REF_NL and p.line.rate_wpm == BASE_WPM))
    ratio = slow.articulation_rate_syll_s / normal.articulation_rate_syll_s
    assert 0.7 <= ratio <= 0.9, ratio
    assert slow.rate_vs_baseline_pct <= -10.0
    assert abs(normal.rate_vs_baseline_pct) < 10.0


def test_six_db_softer_turn_is_six_db_softer(nl_call):
    placed, analysis, _ = nl_call
    soft = _turn_at(analysis, next(p for p in placed if p.line.gain_db == -6.0))
    assert soft.loudness_vs_baseline_db == pytest.approx(-6.0, abs=1.0)
    same = _turn_at(analysis, next(p for p in placed if p.line.rate_wpm == SLOW_WPM))
    assert abs(same.loudness_vs_baseline_db) < 1.5


def test_dutch_phrases_are_found_where_planted(nl_call):
    placed, analysis, _ = nl_call

    def cats(text_start):
        p = next(p for p in placed if p.line.text.startswith(text_start))
        return {ph.category for ph in _turn_at(analysis, p).phrases}

    assert "greeting" in cats("Goedenavond")
    assert "acknowledgement" in cats("Ik kan me voorstellen")
    assert "argument" in cats("Ja maar")
    assert "concrete-offer" in cats("Wat ik wel")


def test_assessment_covers_every_advice_item(nl_call):
    _, analysis, _ = nl_call
    advice = {r.id: r for r in assess(analysis)}
    assert tuple(advice) == ADVICE_IDS
    assert advice["no-interrupt"].verdict == "fail" and advice["no-interrupt"].figures["count"] == 2
    assert advice["no-discussion"].verdict == "fail"
    assert advice["greeting"].verdict == "pass"
    assert advice["concrete"].verdict == "pass"
    assert advice["address-behaviour"].verdict == "not-applicable"
    assert all(r.feedback and "{" not in r.feedback for r in advice.values())


def test_english_phrases_found(tmp_path, tts_cache, transcriber):
    placed = place_lines(_en_script(), cache_dir=tts_cache)
    d = write_call(tmp_path / "call", placed, language="en")
    rec = load_call(d)
    analysis = analyse_audio(caller=rec.caller, trainee=rec.trainee, language="en", transcriber=transcriber)
    found = {ph.category for t in analysis.turns_of("trainee") for ph in t.phrases}
    assert {"greeting", "acknowledgement", "concrete-offer"} <= found


def test_no_phrases_in_a_call_without_them(tmp_path, tts_cache, transcriber):
    placed = place_lines(_neutral_script(), cache_dir=tts_cache)
    d = write_call(tmp_path / "call", placed, language="nl")
    rec = load_call(d)
    analysis = analyse_audio(caller=rec.caller, trainee=rec.trainee, language="nl", transcriber=transcriber)
    hits = [(t.text, p.category, p.heard) for t in analysis.turns for p in t.phrases]
    assert hits == []
    assert len(analysis.turns) == 5


def test_cli_writes_documented_json(nl_call, tmp_path):
    _, _, d = nl_call
    out = tmp_path / "a.json"
    html = tmp_path / "a.html"
    r = subprocess.run([sys.executable, "-m", "roleplay", "analyse", str(d), "--json", str(out), "--html", str(html)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    turn_keys = {"speaker", "start_s", "end_s", "text", "syllables", "speech_rate_syll_s",
                 "articulation_rate_syll_s", "loudness_dbfs", "pitch_median_hz", "phrases"}
    assert all(turn_keys <= set(t) for t in data["turns"])
    assert [t["start_s"] for t in data["turns"]] == sorted(t["start_s"] for t in data["turns"])
    assert all({"by", "start_s", "overlap_s"} <= set(i) for i in data["interruptions"])
    assert data["baseline"]["source"] == "calibration"
    assert [a["id"] for a in data["advice"]] == list(ADVICE_IDS)
    assert "Interruption by trainee" in r.stdout
    page = html.read_text()
    assert all(f'id="advice-{advice_id}"' in page for advice_id in ADVICE_IDS)
