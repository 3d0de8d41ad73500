"""Drills after a real incident: personal details out of caller lines (`roleplay.caller.pii`), the anger
estimate, the scenario drafts of `roleplay scenarios from-recording` and `scenarios new`, and the
comparison with the original call in `roleplay progress --scenario`.

The end-to-end tests synthesise two-party calls whose caller says a name, a phone number, a date of
birth and an address, import them through the command line with the real recogniser, replay the
draft as a demo call, and compare in `progress`. Whisper `base` turns espeak's Dutch digits into
nonsense ("06 12 34 56 78" -> "nul nest, mauve m 'n bevendert ..."), so the call with all four
details is English (Piper voice, recognised word for word); the Dutch call plants the name it does
hear ("met Jansen" -> "met Jonsen", "Ik ben Karin Jansen" -> "ik ben Karin Jonsen")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile
import yaml

from roleplay.caller.incident import (
    CALM_ANGER,
    CallerMeasure,
    choose_voice,
    estimate_anger,
    parse_notes,
    situate,
    split_line,
)
from roleplay.caller.pii import find_pii, redact, redact_all
from roleplay.caller.scenario import REQUIRED_SITUATIONS, load_scenario, scenarios_dir
from roleplay.cli.main import main as cli_main
from roleplay.core.errors import InputError
from roleplay.history.store import History, record_call

SCHEMA = json.loads((scenarios_dir() / "scenario.schema.json").read_text(encoding="utf-8"))
DIGIT_RUN = re.compile(r"\d(?:[\s./]{0,2}\d){5,}")  # six or more digits: a number that could be a person's


def schema_valid(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), SCHEMA,
                        cls=jsonschema.Draft202012Validator)


# --------------------------------------------------------------------------- pii: formats


@pytest.mark.parametrize("text, secrets, placeholders", [
    ("Goedenavond, met Jansen. Mijn naam is Pieter Jansen.", ["Jansen", "Pieter"], ["{NAAM}"]),
    ("Met mevrouw De Vries, mijn buurman is meneer van der Berg.", ["Vries", "Berg"], ["{NAAM}"]),
    ("Ik ben Karin de Boer en ik bel voor mijn vader, Henk.", ["Karin", "Boer", "Henk"], ["{NAAM}"]),
    ("Dokter Bakker zei dat hij zou komen.", ["Bakker"], ["{NAAM}"]),
    ("Ik bel namens mevrouw jansen.", ["jansen"], ["{NAAM}"]),
    ("Mijn nummer is 06-12345678.", ["12345678"], ["{TELEFOON}"]),
    ("Bel me op 06 12 34 56 78 of 020 1234567.", ["34 56 78", "1234567"], ["{TELEFOON}"]),
    ("Mijn mobiel: +31 6 1234 5678, thuis (020) 123 45 67.", ["1234 5678", "123 45 67"], ["{TELEFOON}"]),
    ("Mijn nummer is nul zes een twee drie vier vijf zes zeven acht.", ["drie vier vijf"], ["{TELEFOON}"]),
    ("Ze is geboren op 12-03-1954.", ["12-03-1954"], ["{GEBOORTEDATUM}"]),
    ("Hij is geboren op 3 mei, in 1941.", ["3 mei", "1941"], ["{GEBOORTEDATUM}"]),
    ("Geboortedatum 12 maart 1954.", ["maart 1954"], ["{GEBOORTEDATUM}"]),
    ("Wij wonen op de Dorpsstraat 12 in Utrecht.", ["Dorpsstraat"], ["{ADRES}"]),
    ("Prins Hendrikkade 104a, 1011 AK Amsterdam.", ["Hendrikkade", "1011 AK"], ["{ADRES}", "{POSTCODE}"]),
    ("Postcode 3512AB, huisnummer 4.", ["3512AB"], ["{POSTCODE}"]),
    ("Mijn BSN is 123456782.", ["123456782"], ["{BSN}"]),
    ("Mail naar p.jansen@example.nl of naar NL91 ABNA 0417 1643 00.", ["example.nl", "0417"],
     ["{EMAIL}", "{REKENINGNUMMER}"]),
])
def test_dutch_personal_details_are_replaced(text, secrets, placeholders):
    r = redact(text, language="nl")
    for secret in secrets:
        assert secret not in r.text, (text, r.text)
        assert any(secret in f.original or f.original in secret for f in r.findings), (secret, r.findings)
    for placeholder in placeholders:
        assert placeholder in r.text, (text, r.text)


@pytest.mark.parametrize("text, secrets, placeholders", [
    ("Good evening, this is John Smith.", ["John", "Smith"], ["{NAME}"]),
    ("My name is Sarah O'Brien and my husband Peter is ill.", ["Sarah", "O'Brien", "Peter"], ["{NAME}"]),
    ("Hi, it's Jane. I spoke to Dr. Patel yesterday.", ["Jane", "Patel"], ["{NAME}"]),
    ("My phone number is 07700 900123.", ["900123"], ["{PHONE}"]),
    ("Call me on +44 7700 900123.", ["7700 900123"], ["{PHONE}"]),
    ("My mother was born on 12 March 1954.", ["March 1954"], ["{DATE_OF_BIRTH}"]),
    ("Date of birth: March 12, 1954.", ["March 12"], ["{DATE_OF_BIRTH}"]),
    ("She was born on the 3rd of May.", ["3rd of May"], ["{DATE_OF_BIRTH}"]),
    ("We live at 12 Church Street, London SW1A 1AA.", ["Church", "SW1A"], ["{ADDRESS}", "{POSTCODE}"]),
    ("His NHS number is 485 777 3456.", ["777 3456"], ["{ID_NUMBER}", ]),
])
def test_english_personal_details_are_replaced(text, secrets, placeholders):
    r = redact(text, language="en")
    for secret in secrets:
        assert secret not in r.text, (text, r.text)
    for placeholder in placeholders:
        assert placeholder in r.text, (text, r.text)


@pytest.mark.parametrize("text", [
    # the shipped scenarios' kind of lines: times, ages, counts, emergency number, places, doctors
    "Ik bel nu voor de derde keer, en er is nog steeds niemand geweest.",
    "Om acht uur zei uw collega dat er binnen een uur iemand zou komen. Het is nu bijna elf uur.",
    "Mijn vader is eenentachtig. Hij heeft 39,5 graden koorts sinds 3 dagen.",
    "Onderweg! Onderweg! Vanaf waar dan? Moet ik soms 112 bellen?",
    "Met de dokter wil ik spreken. Ik ben boos. Meer kan ik niet zeggen.",
    "Ben je gek geworden? Ik spreek geen Frans.",
    "Mevrouw, luister nou eens. Meneer, ik wil gewoon een dokter.",
    "Om 20:30 heb ik gebeld, en om 21.15 weer. Dat kost me 1.250 euro.",
    "Ik woon in Amsterdam, vlakbij het Vondelpark. Ik zit op de snelweg.",
    "Met Pasen was hij ook al ziek. Ja, met de huisartsenpost.",
    "In 2023 was hij ook al ziek, en op 12 maart moet hij naar het ziekenhuis.",
    "Ik zet dit op Facebook, jullie zijn een stelletje idioten.",
    "I am calling for the third time! This is ridiculous. I'm furious.",
    "It's about my father, he is 81 years old and has had a fever since Monday.",
    "No, that is no use to me. Your colleague said the same thing an hour ago.",
    "I will wait for the doctor. Thank you, that is clear.",
])
def test_ordinary_lines_are_left_alone(text):
    r = redact(text, language="nl")
    assert r.text == text and r.findings == (), r.findings


def test_in_the_shipped_scenarios_only_the_callers_names_are_personal_details():
    from roleplay.caller.scenario import list_scenarios

    found = []
    for s in list_scenarios():
        texts = [line.text for lines in s.lines.values() for line in lines] + [s.who, s.reason, s.debrief]
        found += [(f.kind, f.original) for t in texts for f in redact(t, language=s.language).findings]
    assert len(found) >= 10 and {kind for kind, _ in found} == {"name"}, found
    assert {"De Vries", "Van Dijk", "Sanne Bakker", "Kees"} <= {name for _, name in found}


def test_a_name_heard_once_is_replaced_everywhere_in_the_call():
    rs = redact_all(["Goedenavond, met Jonsen.", "Ja, hier is Gita Jonsen hoor.", "Jonsen, zoals ik zei."],
                    language="nl")
    assert [r.text for r in rs] == ["Goedenavond, met {NAAM}.", "Ja, hier is {NAAM} hoor.", "{NAAM}, zoals ik zei."]
    assert rs[2].findings[0].rule == "name heard elsewhere in the call"
    # each text alone would not know the last one
    assert redact("Jonsen, zoals ik zei.").text == "Jonsen, zoals ik zei."


def test_nine_digits_are_a_bsn_only_when_the_eleven_test_or_a_bsn_word_says_so():
    assert [f.kind for f in find_pii("nummer 123456782")] == ["bsn"]  # passes the eleven test
    assert [f.kind for f in find_pii("nummer 123456789")] == ["phone"]
    assert [f.kind for f in find_pii("BSN: 123456789")] == ["bsn"]
    # seven digits are only a phone number after a phone word
    assert find_pii("Het kost 1234567 euro") == ()
    assert [f.kind for f in find_pii("bel 1234567")] == ["phone"]


def test_dates_without_a_year_count_only_after_a_birth_word():
    assert [f.kind for f in find_pii("geboren 12 maart")] == ["birth_date"]
    assert find_pii("op 12 maart") == ()
    assert [f.kind for f in find_pii("sinds 3 januari 2024")] in (["date"], ["birth_date"])  # this year or older
    assert [f.kind for f in find_pii("op 3 januari 1950")] == ["birth_date"]  # that far back: a birth date


# --------------------------------------------------------------------------- the anger estimate


def _m(index, loud, rate, pitch, speech_s=2.0):
    return CallerMeasure(index=index, start_s=index * 5.0, end_s=index * 5.0 + speech_s, speech_s=speech_s,
                         loudness_dbfs=loud, rate_syll_s=rate, pitch_hz=pitch)


def test_anger_follows_the_formula_against_the_calmest_turns():
    ref = (-30.0, 4.0, 100.0)
    two_st = 100.0 * 2 ** (2 / 12)
    curve = estimate_anger([
        _m(0, -29.45, 4.22, 100.0 * 2 ** (0.5 / 12)),  # one step up on each measure: anger 4
        _m(1, -27.8, 4.88, two_st),  # four steps: +2.2 dB, +22 %, +2 st -> 3 + 4 = 7
        _m(2, *ref),  # the calmest third (two of five turns): the reference
        _m(3, -24.5, 6.2, two_st * 2 ** (3 / 12)),  # ten steps: clamped at 10
        _m(4, *ref),
    ])
    assert curve.reference_turns == (2, 4)
    assert (curve.reference_loudness_dbfs, curve.reference_rate_syll_s, curve.reference_pitch_hz) == (-30.0, 4.0, 100)
    assert [t.anger for t in curve.turns] == [4.0, 7.0, CALM_ANGER, 10.0, CALM_ANGER]
    assert (curve.start, curve.peak, curve.end) == (4.0, 10.0, CALM_ANGER)
    assert curve.turns[1].loudness_db == 2.2 and curve.turns[1].rate_pct == 22 and curve.turns[1].pitch_st == 2.0


def test_anger_uses_the_measures_a_turn_has_and_never_a_short_turn_as_reference():
    curve = estimate_anger([
        _m(0, -40.0, 2.0, 80.0, speech_s=0.4),  # quietest, slowest, lowest, but too short to be the reference
        _m(1, -30.0, 4.0, 100.0),
        _m(2, -28.9, None, None),  # only loudness: 1.1 dB = 2 steps
        _m(3, -25.0, 5.0, 110.0),
    ])
    assert curve.reference_turns == (1,)
    assert curve.turns[0].anger < CALM_ANGER  # calmer than the reference
    assert curve.turns[2].anger == CALM_ANGER + 2 and curve.turns[2].rate_pct is None
    assert curve.turns[3].anger > curve.turns[2].anger
    # a turn with nothing measured counts as the reference
    assert estimate_anger([_m(0, None, None, None), _m(1, -30.0, 4.0, 100.0)]).turns[0].anger == CALM_ANGER
    with pytest.raises(InputError):
        estimate_anger([])


def test_voice_fits_the_callers_pitch_and_rate():
    assert choose_voice(language="nl", pitch_hz=115.0, rate_syll_s=3.6).voice_id == "nl-man-old"
    assert choose_voice(language="nl", pitch_hz=115.0, rate_syll_s=5.5).voice_id == "nl-man-middle"
    young = choose_voice(language="nl", pitch_hz=230.0, rate_syll_s=5.2)
    assert young.voice_id == "nl-woman-young" and young.sex == "woman" and "230 Hz" in young.reason
    assert choose_voice(language="nl", pitch_hz=230.0, rate_syll_s=4.2).voice_id == "nl-woman-old"
    assert choose_voice(language="en", pitch_hz=230.0, rate_syll_s=4.2).voice_id == "en-woman"
    assert choose_voice(language="en", pitch_hz=110.0, rate_syll_s=4.2).voice_id == "en-man"


def test_lines_are_grouped_into_situations_by_anger_and_cue_words():
    texts = ["Met X, ik bel voor mijn vader.", "Er is nog niemand geweest.", "Waar blijft die dokter nou!",
             "Laat me nou even uitpraten!", "Jullie zijn idioten.", "Oké, dat is duidelijk.", "Ja, dat snap ik.",
             "Goed, dank u wel. Dan wacht ik."]
    angers = [6.0, 6.2, 8.0, 8.3, 8.5, 5.0, 4.8, 3.2]
    abusive = [False, False, False, False, True, False, False, False]
    assert situate(texts, angers, language="nl", abusive=abusive) == [
        "opening", "venting", "escalating", "interrupted", "abusive", "calming", "calming", "satisfied"]
    # the last line hangs up when the caller ended angrier than they began, or says so
    assert situate(texts[:3], [5.0, 6.0, 7.5], language="nl", abusive=[False] * 3)[-1] == "hanging_up"
    assert situate(["a", "b", "Ik hang op."], [5.0, 5.0, 3.0], language="nl", abusive=[False] * 3)[-1] == "hanging_up"
    # without angers (notes): exclamations and threats escalate
    assert situate(["Hallo.", "Ik dien een klacht in.", "Er komt niemand."], [None] * 3, language="nl",
                   abusive=[False] * 3, ending="satisfied") == ["opening", "escalating", "satisfied"]


def test_long_turns_are_split_at_sentence_ends():
    text = " ".join(f"Dit is zin nummer {i} van een lange klacht." for i in range(20))
    parts = split_line(text, max_chars=120)
    assert len(parts) > 1 and all(len(p) <= 120 for p in parts)
    assert " ".join(parts) == text
    assert split_line("x" * 50 + " " + "y" * 50, max_chars=60) == ["x" * 50, "y" * 50]


# --------------------------------------------------------------------------- `scenarios new`


def test_new_from_the_template_validates_in_both_languages(tmp_path, capsys):
    for language in ("nl", "en"):
        path = tmp_path / f"{language}-na-incident.yaml"
        assert cli_main(["scenarios", "new", "--language", language, "--out", str(path)]) == 0
        s = load_scenario(path)
        assert s.id == path.stem and s.language == language and set(REQUIRED_SITUATIONS) <= set(s.lines)
        assert s.caller_voice.startswith(language)
        schema_valid(path)
    assert cli_main(["scenarios", "validate", *map(str, tmp_path.glob("*.yaml"))]) == 0
    assert capsys.readouterr().out.count("OK ") == 2


NOTES = """\
Wie belde: meneer Pietersen (06-12345678), zoon van mevrouw Pietersen, geboren 12-03-1938,
Dorpsstraat 4 in Houten.
Waarom: zijn moeder was gevallen en hij wachtte al twee uur op de visite.
Wat er gezegd werd:
Beller: "Met Pietersen. Ik bel nu voor de derde keer!"
Assistente: "Ik begrijp dat u boos bent, meneer Pietersen."
Beller: “Mijn moeder ligt op de grond, Dorpsstraat 4, en er komt niemand. Ze is geboren op 12 maart 1938!”
Ik zei: "Ik ga nu de arts bellen."
Hij: "Laat me nou even uitpraten!"
Hij: "Ik zet dit op Facebook, jullie zijn een stelletje idioten."
Hoe het afliep: hij hing op.
"""


def test_notes_become_a_draft_with_the_callers_quotes_and_no_personal_details(tmp_path, capsys):
    notes = tmp_path / "incident-notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    path = tmp_path / "nl-incident-notities.yaml"
    assert cli_main(["scenarios", "new", "--from-notes", str(notes), "--out", str(path)]) == 0
    out = capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    for secret in ("Pietersen", "12345678", "1938", "Dorpsstraat", "12-03"):
        assert secret not in text, secret
        assert secret in out, secret  # listed on the terminal for the trainer to check
    s = load_scenario(path)
    schema_valid(path)
    assert s.language == "nl" and s.swearing and s.social_media
    said = [line.text for lines in s.lines.values() for line in lines]
    assert [line.text for line in s.lines["opening"]] == ["Met {NAAM}. Ik bel nu voor de derde keer!"]
    assert any("{ADRES}" in t and "{GEBOORTEDATUM}" in t for t in said)
    assert [line.text for line in s.lines["interrupted"]] == ["Laat me nou even uitpraten!"]
    assert "idioten" in s.lines["abusive"][0].text
    assert not any("arts bellen" in t or "begrijp dat u boos" in t for t in said)  # the receptionist's words
    assert "{TELEFOON}" in s.who and "{NAAM}" in s.who
    assert {"address-behaviour", "announce-end"} <= set(s.needs) and "ended-by-trainee" in s.ending.expected
    assert "vertrouwenspersoon" in s.debrief  # a social-media threat: manager, adviser, employer, police
    # the review list in the draft names where and which placeholder, never the value
    review = [line for line in text.splitlines() if line.startswith("#   ")]
    assert any("who: {TELEFOON}" in line for line in review)
    assert any(line.startswith("#   lines.opening[0]: {NAAM}") for line in review)
    assert "2 quote(s) of the receptionist were left out" in text


def test_parse_notes_without_labels_and_in_english():
    notes = parse_notes('A man phoned about his wife. She had chest pain.\nHe said: "Why is nobody coming?"\n'
                        'I said: "I will send an ambulance."\n"Thank you," he said at the end.')
    assert notes.who == "A man phoned about his wife." and notes.reason.startswith("She had chest pain")
    assert [q for _, q in notes.caller_quotes] == ["Why is nobody coming?", "Thank you,"]
    assert notes.trainee_quotes == 1


def test_english_notes_with_a_transfer_give_a_transfer_scenario(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text('Who called: Mrs Kelly, about her husband.\nWhy: he had been waiting for a call back.\n'
                     'She said: "I have been waiting for three hours!"\n"My number is 07700 900123, call me."\n'
                     '"Thank you, that helps."\nHow it ended: I transferred her to the doctor, she calmed down.\n',
                     encoding="utf-8")
    path = tmp_path / "en-transfer.yaml"
    assert cli_main(["scenarios", "new", "--from-notes", str(notes), "--out", str(path)]) == 0
    s = load_scenario(path)
    assert s.language == "en" and "transferred" in s.ending.expected and "warm-transfer" in s.needs
    assert "Kelly" not in path.read_text(encoding="utf-8") and "{NAME}" in s.who
    assert [line.text for line in s.lines["satisfied"]] == ["Thank you, that helps."]
    assert any("{PHONE}" in line.text for line in s.lines["venting"] + s.lines.get("escalating", ()))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roleplay", *args], capture_output=True, text=True, timeout=120)


def test_bad_input_is_one_line_without_a_traceback(tmp_path):
    r = run_cli("scenarios", "from-recording", str(tmp_path / "missing.wav"), "--caller-channel", "0",
                "--trainee-channel", "1", "--out", str(tmp_path / "nl-x.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "missing.wav" in r.stderr and "no such file" in r.stderr


@pytest.mark.parametrize("args, fragments", [
    (["from-recording", "{d}/stereo.wav", "--out", "{d}/Bad Name.yaml"], ["Bad Name.yaml", "scenario id"]),
    (["from-recording", "{d}/stereo.wav", "--out", "{d}/nl-x.txt"], ["nl-x.txt", ".yaml"]),
    (["from-recording", "{d}/stereo.wav", "--out", "{d}/exists.yaml"], ["exists.yaml", "already exists", "--force"]),
    (["from-recording", "{d}/stereo.wav", "--out", "{d}/nowhere/nl-x.yaml"], ["nowhere", "no such directory"]),
    (["from-recording", "{d}/stereo.wav", "--out", "{d}/nl-x.yaml"], ["stereo.wav", "--caller-channel", "2 channels"]),
    (["from-recording", "{d}/stereo.wav", "--caller-channel", "0", "--trainee-channel", "7", "--out",
      "{d}/nl-x.yaml"], ["stereo.wav", "no channel 7"]),
    (["from-recording", "--caller", "{d}/mono.wav", "--out", "{d}/nl-x.yaml"], ["--caller needs --trainee"]),
    (["from-recording", "{d}/stereo.wav", "--caller-channel", "0", "--trainee-channel", "1", "--language", "fr",
      "--out", "{d}/nl-x.yaml"], ["unknown language 'fr'"]),
    (["new", "--from-notes", "{d}/missing.txt", "--out", "{d}/nl-x.yaml"], ["missing.txt", "no such file"]),
    (["new", "--from-notes", "{d}/no-quotes.txt", "--out", "{d}/nl-x.yaml"], ["no-quotes.txt", "no quoted"]),
    (["new", "--from-notes", "{d}/binary.txt", "--out", "{d}/nl-x.yaml"], ["binary.txt", "not UTF-8"]),
    (["new", "--language", "de", "--out", "{d}/nl-x.yaml"], ["unknown language 'de'"]),
])
def test_bad_input_errors_name_the_file_or_value(tmp_path, capsys, args, fragments):
    rate = 16000
    t = np.arange(rate) / rate
    soundfile.write(tmp_path / "stereo.wav", np.stack([np.sin(2 * np.pi * 200 * t)] * 2, 1) * 0.1, rate)
    soundfile.write(tmp_path / "mono.wav", np.sin(2 * np.pi * 200 * t) * 0.1, rate)
    (tmp_path / "exists.yaml").write_text("keep me\n")
    (tmp_path / "no-quotes.txt").write_text("Een boze beller. Hij hing op.\n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    capsys.readouterr()
    assert cli_main(["scenarios", *[a.format(d=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert (tmp_path / "exists.yaml").read_text() == "keep me\n"
    assert not (tmp_path / "nl-x.yaml").exists()


# --------------------------------------------------------------------------- from a recording (real model)

# The caller's lines (anger 3, 5, 9, 8, 2) carry a name, a phone number, a date of birth and an address.
EN_CALL = [
    ("trainee", "Good evening, out of hours GP service, you are speaking with the triage assistant.", 0, 0.5),
    ("caller", "Good evening, this is John Smith. I am calling about my mother, she is very ill.", 3, 0.5),
    ("trainee", "I am sorry to hear that. Tell me what is going on.", 0, 1.0),
    ("caller", "My phone number is 0 6 1 2 3 4 5 6 7 8, you can call me back on that number.", 5, 0.5),
    ("trainee", "Thank you. What is her date of birth?", 0, 1.0),
    ("caller", "She was born on 12 March 1954 and she has had a fever for three days! Why is nobody coming?", 9, 0.4),
    ("trainee", "I understand you are worried. Where do you live?", 0, 1.0),
    ("caller", "We live at 12 Church Street. I have given you the address twice already!", 8, 0.4),
    ("trainee", "What I can do is send a doctor to you within the hour.", 0, 1.0),
    ("caller", "Okay. Thank you, that is clear. I will wait for the doctor.", 2, 0.6),
]
EN_SECRETS = ("John", "Smith", "Church", "1954", "0612345678", "612345678", "12 March")


def _call_dir(directory: Path, script, *, language: str, caller: str, trainee: str, tts_cache: Path) -> Path:
    from roleplay.recording.scripted import ScriptLine, place_lines, write_call

    lines = [ScriptLine(who, text, caller if who == "caller" else trainee, anger=anger, gap_s=gap)
             for who, text, anger, gap in script]
    return write_call(directory, place_lines(lines, cache_dir=tts_cache), language=language,
                      meta={"trainee": "marieke", "scenario": "en-tourist-waiting"})


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tts_cache):
    """The English call imported through the command line, as a trainer would."""
    root = tmp_path_factory.mktemp("incident")
    call = _call_dir(root / "call", EN_CALL, language="en", caller="en-man", trainee="en-trainee-woman",
                     tts_cache=tts_cache)
    drafts = root / "drafts"
    drafts.mkdir()
    draft, db = drafts / "en-incident-test.yaml", root / "history.sqlite3"
    out = subprocess.run(
        [sys.executable, "-m", "roleplay", "scenarios", "from-recording", str(call), "--out", str(draft),
         "--db", str(db), "--taken-by", "marieke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {"call": call, "draft": draft, "db": db, "stdout": out.stdout, "root": root}


@pytest.mark.model
def test_the_draft_validates_and_carries_the_callers_lines(imported, capsys):
    draft = imported["draft"]
    assert cli_main(["scenarios", "validate", str(draft)]) == 0
    assert capsys.readouterr().out.strip() == f"OK {draft}"
    schema_valid(draft)
    s = load_scenario(draft)
    assert s.id == "en-incident-test" and s.language == "en" and s.caller_voice == "en-man"
    text = draft.read_text(encoding="utf-8")
    real = [line for line in text.splitlines() if re.search(r"# turn \d+", line)]
    assert len(real) == 5  # every caller turn, each once
    groups: dict[str, list[float]] = {}  # start times per situation: in the order of the call
    for line in text.split("\nlines:\n", 1)[1].splitlines():
        if m := re.match(r"  (\w+):$", line):
            group = groups.setdefault(m.group(1), [])
        elif m := re.search(r"# turn \d+, ([\d.]+) s", line):
            group.append(float(m.group(1)))
    assert sum(map(len, groups.values())) == 5 and all(sorted(g) == g for g in groups.values()), groups
    assert "{NAME}" in s.lines["opening"][0].text and "calling about my mother" in s.lines["opening"][0].text
    assert "wait for the doctor" in s.lines["satisfied"][0].text.lower()
    # the anger estimate separates the angry turns (planted 9 and 8) from the calm ones (3 and 2).
    # Single turns are noisy: with freshly synthesised audio the last turn came out 4.5 once (2.9
    # another time), since the rate rests on the recognised syllables.
    by_time = sorted((float(re.search(r"# turn \d+, ([\d.]+) s", line).group(1)),
                      float(re.search(r"anger ([\d.]+)$", line).group(1))) for line in real)
    opening, _second, outburst, after, last = (a for _t, a in by_time)  # planted 3, 5, 9, 8, 2
    assert (outburst + after) / 2 > (opening + last) / 2 + 1.5, by_time
    assert min(outburst, after) > opening, by_time
    assert s.anger.start == pytest.approx(max(3.5, round(opening * 2) / 2))
    assert "anger = 3 + mean(loud_db / 0.55, rate_pct / 5.5, pitch_st / 0.5)" in text
    assert "caller_voice: en-man, from median pitch" in text and "a man" in text


@pytest.mark.model
def test_planted_personal_details_do_not_survive_and_are_listed(imported):
    text = imported["draft"].read_text(encoding="utf-8")
    for secret in EN_SECRETS:
        assert secret not in text, secret
    assert not DIGIT_RUN.search(text), DIGIT_RUN.search(text)
    s = load_scenario(imported["draft"])
    lines = " ".join(line.text for group in s.lines.values() for line in group)
    for placeholder in ("{NAME}", "{PHONE}", "{DATE_OF_BIRTH}", "{ADDRESS}"):
        assert placeholder in lines, placeholder
        assert re.search(rf"^#   lines\.\w+\[\d\]: {re.escape(placeholder)} \(", text, re.M), placeholder
    # the terminal shows what was replaced, for the trainer to check
    stdout = imported["stdout"]
    assert "'John Smith' -> {NAME}" in stdout and "'12 March 1954' -> {DATE_OF_BIRTH}" in stdout
    assert "'12 Church Street' -> {ADDRESS}" in stdout and "-> {PHONE}" in stdout


@pytest.mark.model
def test_the_original_call_is_reported_without_personal_details_and_recorded(imported):
    drafts = imported["draft"].parent
    data = json.loads((drafts / "en-incident-test.original.json").read_text(encoding="utf-8"))
    page = (drafts / "en-incident-test.original.html").read_text(encoding="utf-8")
    assert data["call"]["mode"] == "original" and data["call"]["scenario"] == "en-incident-test"
    assert [t["speaker"] for t in data["turns"]].count("trainee") == 5
    assert data["anger"] and data["call"]["anger_estimated"] is True
    texts = " ".join(t["text"] + " " + " ".join(w["text"] for w in t["words"]) for t in data["turns"])
    for secret in EN_SECRETS:
        assert secret not in texts and secret not in page, secret
    assert not DIGIT_RUN.search(texts)
    assert "<audio" not in page and 'id="advice"' in page  # a full report, but no recording of the caller
    with History(imported["db"]) as h:
        rows = h.calls(scenario="en-incident-test")
    assert [(r.mode, r.trainee) for r in rows] == [("original", "marieke")]
    assert rows[0].verdicts.get("greeting") in ("pass", "fail")


@pytest.mark.model
def test_the_draft_replays_and_progress_compares_with_the_original(imported, transcriber, tts_cache, capsys):
    from roleplay.app.demo import run_demo

    draft, db = imported["draft"], imported["db"]
    s = load_scenario(draft)
    result = run_demo(scenario_id=str(draft), style="good", seed=1, out_dir=imported["root"] / "replay",
                      transcriber=transcriber, cache_dir=tts_cache, max_caller_lines=3)
    said = [json.loads(line)["text"] for line in (result.directory / "events.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "caller-line"]
    assert said and set(said) <= {line.text for group in s.lines.values() for line in group}
    assert said[0] == s.lines["opening"][0].text
    data = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert data["call"]["scenario"] == "en-incident-test"
    record_call({**data, "call": {**data["call"], "trainee": "sam"}}, result.directory, db)

    page = imported["root"] / "progress.html"
    capsys.readouterr()
    assert cli_main(["progress", "--scenario", "en-incident-test", "--trainee", "sam", "--db", str(db),
                     "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "Original call: " in out and "taken by marieke" in out
    assert "Progress of sam: 1 call(s)" in out and "last vs original" in out
    row = next(line for line in out.splitlines() if line.startswith("greeting "))
    assert len(row.split()) >= 4  # item, the original's mark, the attempt's mark, last 4
    html = page.read_text(encoding="utf-8")
    assert "original call" in html and html.count("class='original'") >= 3 and "<tr class=original>" in html
    # a trainee without attempts still sees the original call
    assert cli_main(["progress", "--scenario", "en-incident-test", "--trainee", "nobody", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Original call: " in out and "No calls recorded for nobody in en-incident-test" in out


# A Dutch caller (a woman's voice) who says her name; angry in the middle, calm at the end.
NL_CALL = [
    ("trainee", "Goedenavond, huisartsenpost, u spreekt met de assistent.", 0, 0.5),
    ("caller", "Goedenavond, met Jansen. Ik ben Karin Jansen, ik bel voor mijn vader.", 3, 0.5),
    ("trainee", "Vertelt u het maar.", 0, 1.0),
    ("caller", "Hij is gevallen en er is nog steeds niemand geweest! Waar blijft de dokter nou?", 9, 0.4),
    ("trainee", "Ik begrijp dat u ongerust bent. Ik stuur nu een dokter naar u toe.", 0, 1.0),
    ("caller", "Goed, dank u wel. Dan wacht ik.", 2, 0.6),
]


@pytest.mark.model
def test_a_dutch_stereo_recording_becomes_a_draft(tmp_path, tts_cache, capsys):
    from roleplay.recording.scripted import ScriptLine, place_lines, tracks

    lines = [ScriptLine(who, text, "nl-woman-young" if who == "caller" else "nl-trainee-man", anger=anger, gap_s=gap)
             for who, text, anger, gap in NL_CALL]
    audio = tracks(place_lines(lines, cache_dir=tts_cache))
    stereo = tmp_path / "gesprek.wav"
    soundfile.write(stereo, np.stack([audio["trainee"], audio["caller"]], 1), 16000, subtype="PCM_16")
    draft, db = tmp_path / "nl-incident-test.yaml", tmp_path / "history.sqlite3"
    capsys.readouterr()
    assert cli_main(["scenarios", "from-recording", str(stereo), "--caller-channel", "1", "--trainee-channel", "0",
                     "--out", str(draft), "--db", str(db), "--no-history"]) == 0
    out = capsys.readouterr().out
    text = draft.read_text(encoding="utf-8")
    s = load_scenario(draft)
    schema_valid(draft)
    assert s.language == "nl" and s.caller_voice in ("nl-woman-young", "nl-woman-old")  # a woman's pitch
    assert "Een vrouw" in s.who
    for secret in ("jansen", "jonsen", "karin"):  # what was said, and what Whisper made of it
        assert secret not in text.lower(), secret
    assert "{NAAM}" in s.lines["opening"][0].text and "{NAAM}" in out
    angers = [float(a) for a in re.findall(r"# turn \d+, [\d.]+ s, anger ([\d.]+)$", text, re.M)]
    print("estimated anger per caller turn (planted 3, 9, 2):", angers)
    assert len(angers) == 3 and angers[1] == max(angers) and angers[1] > angers[2] + 2, angers
    assert "template: not from the incident" in text  # venting, calming, hanging_up were not in the call
    assert (tmp_path / "nl-incident-test.original.html").is_file()
    assert not db.exists() or not History(db).calls()  # --no-history


def test_a_misheard_name_after_an_introduction_is_found_but_not_an_ordinary_word():
    """Whisper heard 'met Jansen, ik ben Karin Jansen' from an espeak-ng voice as 'met jonsen, ik
    ben karin jonsen': lower case and one letter off; the draft kept 'jonsen'."""
    found = [f.original for f in find_pii("Goedenavont met jonsen, ik ben karin jonsen, ik bel voor mijn vader.")]
    assert "karin" in found and "jonsen" in found
    ordinary = ("Ik ben boos en ik ben bang.", "Ik ben moeder van twee kinderen.",
                "Dit is belachelijk, ik ben woedend.")
    for line in ordinary:
        assert not find_pii(line), line
