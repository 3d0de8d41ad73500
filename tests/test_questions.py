"""The receptionist's questions: recognised in what the recognizer heard, answered from the
scenario's facts in the tone of the caller's anger, through the caller session both clocks use."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from roleplay.analysis.pipeline import Phrase, Turn
from roleplay.caller.questions import (
    CHECK_MIN_LOG_RATIO,
    TONES,
    briefed,
    compose,
    find_questions,
    load_questions,
    placement,
    read_questions,
)
from roleplay.caller.questions import answer as answer_question
from roleplay.caller.scenario import FACT_IDS, list_scenarios, load_scenario
from roleplay.caller.simtrainee import load_trainee_lines
from roleplay.core.errors import InputError
from roleplay.recording.events import make_event
from roleplay.session.caller_session import CallerSession, observe

# What Whisper base heard of the espeak trainee asking (tests/../bench: recorded on this machine).
HEARD_GARBLED = [
    ("nl", "Maak ik uw dame.", "caller_name"),
    ("nl", "Sinds manier heeft u dit.", "since"),
    ("nl", "gebouw te datum.", "date_of_birth"),
    ("nl", "Meelke medicijnen draag toe.", "medication"),
    ("nl", "maar die ze aan de hand.", "complaint"),
    ("nl", "Wie is uw huisarts?", "gp"),
    ("en", "May I have your name, please?", "caller_name"),
    ("en", "When was the patience born?", "date_of_birth"),
    # from the demos' events (tests/data/questions_heard.json): the shipped trainee lines, misheard
    ("nl", "Ik kan me voorstellen dat u om je rust bent. Maar het is de d 'arm van de patient.",
     "patient_name"),
    ("nl", "Ja maar u moet matten, lettals iedereen, wat is de amban de patiënt?", "patient_name"),
    ("nl", "Dat klopt niet, we moeten niet zoverdraven, maar het is de amban de paschen.",
     "patient_name"),
    ("nl", "Maat ik meel kan doen, de arts komt in een uur mee langs. Manier is de patiënt "
     "gebogen.", "date_of_birth"),
    ("nl", "Maat ik meel kan doen. De dokter meel te benen en houd u erer. Meneer is de patiënt "
     "erbogen.", "date_of_birth"),
    # a question word with a word glued on, and the topic word in it: shape and topic carry it
    ("nl", "Maat ik meel kan doen. De arts komt binnen een uur mee langs. Sindsman is het zo.",
     "since"),
    ("nl", "Maat ik meel kan doen. De arts komt weer een uur mee langs. Sinds m 'n eet te dit.",
     "since"),
    # from `roleplay bench scenarios` (2026-11-30): missed there before "is de patient geboren"
    # was a phrasing; the poor trainee's, recognised, were left unanswered as the caller hung up
    ("nl", "Ik hoog dat u dit morgen maakt. Maar dit is de patiënt jabogen.", "date_of_birth"),
    ("nl", "Ja maar u moet matten, let als iedereen, wat is de ram van de patiënt?", "patient_name"),
    ("en", "You have to wait like every nobody else. What is the patient's name?", "patient_name"),
    # several words glued into one (the poor trainee's fast "wat is de naam van de patiënt")
    ("nl", "Ja maar u moet machten, let als iedereen, maar is de aanvanderpatiënt", "patient_name"),
]
HEARD = json.loads((Path(__file__).parent / "data" / "questions_heard.json").read_text(
    encoding="utf-8"))["turns"]


@pytest.mark.parametrize(("language", "heard", "question"), HEARD_GARBLED)
def test_questions_are_recognised_in_garbled_transcripts(language, heard, question):
    assert [q.question for q in find_questions(heard, language=language)] == [question]


def test_recorded_demo_turns_questions_found_and_no_question_in_the_others():
    """All 224 recorded trainee turns: the matcher before this one (spelling and sound only, one
    cutoff) found 62 of the 76 questions and 1 in the 148 turns that asked none; this one 65 and
    the same 1 ("wat u vertelt om" for "wat werd u beloofd"), 66 since glued windows count ("maar
    het is de vol te datum"). The misses left are mostly earlier wordings the trainee no longer
    uses ("Maak ik goed aan" for "Mag ik uw naam")."""
    found = [(t, [a.question for a in find_questions(t["heard"], language=t["language"])])
             for t in HEARD]
    asked = [(t, got) for t, got in found if t["asks"]]
    right = sum(set(t["asks"]) <= set(got) for t, got in asked)
    false = [t["heard"] for t, got in found if got and not t["asks"]]
    assert (len(asked), len(found) - len(asked)) == (76, 148)
    assert right >= 66, right
    assert false == ["Dat is deel met meelend, wat u vertelt om haar te maken."]


@pytest.mark.parametrize(("language", "heard", "cue"), [
    # the good trainee's warm transfer as Whisper base heard it in the demos
    ("nl", "Ik ben toegmet mijn korega. Mijn korega is of de hoote.", "mijn collega is op de hoogte"),
    ("nl", "Ik verbinde dog met mijn korega. Mijn korega is of de hote.",
     "mijn collega is op de hoogte"),
    ("nl", "Ik raak het over aan mijn korega. Ik heb mijn korega ou in gelicht.", "al ingelicht"),
    ("en", "I will put you through to my calling, the tree of nurse. I have already briefed my "
     "calling.", "briefed"),
    # the poor trainee's cold transfer, and a transfer that says nothing of a briefing
    ("nl", "Ik verbind u door.", None),
    ("nl", "Ik verbinde dog met mijn korega.", None),
    ("en", "I will put you through.", None),
])
def test_a_warm_transfer_is_heard_in_the_misheard_briefing(language, heard, cue):
    assert briefed(heard, language=language) == cue


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_phrasing_and_trainee_question_is_recognised_as_its_question(language):
    questions = load_questions(language)
    for q in questions.questions.values():
        for phrasing in q.phrasings:
            found = [a.question for a in find_questions(" ".join(phrasing), language=language)]
            assert q.id in found, (q.id, phrasing, found)
    lines = load_trainee_lines(language)
    for style in ("good", "poor"):
        for qid, line in lines.questions[style]:
            assert [a.question for a in find_questions(line, language=language)] == [qid], line


@pytest.mark.parametrize("language", ["nl", "en"])
def test_no_question_is_heard_in_lines_that_ask_nothing(language):
    """The trainee's other lines and every scenario caller line: a question found there would
    make the caller answer what nobody asked."""
    lines = load_trainee_lines(language)
    texts = [t for style in lines.styles.values() for group in style.values() for t in group]
    texts += [line.text for s in list_scenarios() if s.language == language
              for group in s.lines.values() for line in group]
    found = {t: [a.question for a in find_questions(t, language=language)] for t in texts}
    # callers who really ask it: "Hoe heet jij eigenlijk?", "What's your name?", "weet die ander
    # dan wel wat er aan de hand is?"
    genuine = ("Hoe heet jij", "What's your name?", "wat er aan de hand is")
    wrong = {t: q for t, q in found.items() if q and not any(g in t for g in genuine)}
    assert not wrong, wrong


def test_question_lists_name_known_facts_and_every_tone():
    for language in ("nl", "en"):
        questions = load_questions(language)
        assert set(questions.tones) == set(TONES)
        for q in questions.questions.values():
            assert set(q.facts) <= set(FACT_IDS)


def test_a_broken_question_list_is_refused_with_its_file(tmp_path: Path):
    bad = tmp_path / "nl.yaml"
    bad.write_text("language: nl\nquestion_words: [wat]\nquestions: {x: {facts: [shoe_size], "
                   "phrasings: [a], keywords: [], say: '{fact}'}}\ntones: {}\n", encoding="utf-8")
    with pytest.raises(InputError, match="nl.yaml: questions.x.facts"):
        read_questions(bad)


def test_every_shipped_scenario_has_the_facts_the_good_trainee_asks_for():
    for s in list_scenarios():
        questions = load_questions(s.language).questions
        for qid, _line in load_trainee_lines(s.language).questions["good"]:
            assert any(f in s.facts for f in questions[qid].facts), (s.id, qid)


def _answer(situation: str, anger: float, question: str = "date_of_birth", given=frozenset(),
            scenario_id: str = "nl-scheldende-beller"):
    s = load_scenario(scenario_id)
    return answer_question(s, load_questions(s.language), question, situation=situation,
                           anger=anger, given=given, rng=random.Random(1))


def test_the_answer_gives_the_fact_in_the_tone_of_the_anger():
    s = load_scenario("nl-scheldende-beller")
    dob = s.facts["date_of_birth"]
    curt = _answer("abusive", 8.0)
    assert (curt.tone, curt.fact) == ("curt", "date_of_birth") and dob in curt.text
    assert "Geboren op" not in curt.text  # curt: the bare fact
    plain = _answer("venting", 7.0)
    assert plain.tone == "plain" and dob in plain.text
    calm = _answer("calming", 4.5)
    assert calm.tone == "cooperative" and dob in calm.text
    again = _answer("calming", 4.5, given=frozenset({"date_of_birth"}))
    assert again.tone == "repeated" and again.text.startswith(("Dat heb ik net al gezegd!",
                                                               "Dat zei ik toch al?"))
    assert dob in again.text
    for a in (curt, plain, calm, again):
        assert a.reason


def test_a_question_without_a_fact_gets_a_plausible_i_do_not_know():
    a = _answer("venting", 7.0, question="allergies")
    assert a.fact is None and a.tone == "unknown"
    assert a.text in load_questions("nl").tones["unknown"]
    # someone calling for himself is asked the patient's name: his own
    name = _answer("venting", 7.0, question="patient_name")
    assert name.fact == "caller_name"


def test_a_caller_who_hangs_up_snaps_the_answer_first():
    a = _answer("hanging_up", 10.0)
    dob = load_scenario("nl-scheldende-beller").facts["date_of_birth"].rstrip(" .!?")
    assert a.fact == "date_of_birth" and a.tone == "curt" and a.text == f"{dob}!"
    assert "hanging up" in a.reason
    assert compose("Ik hang op.", (a,), situation="hanging_up") == f"{dob}! Ik hang op."
    assert placement("hanging_up") == "before-line"
    # asked again while hanging up: irritated, not a bare fact
    again = _answer("hanging_up", 10.0, given=frozenset({"date_of_birth"}))
    assert again.tone == "repeated" and dob in again.text
    # no fact for it: a "weet ik niet", never silence
    unknown = _answer("hanging_up", 10.0, question="allergies")
    assert unknown.tone == "unknown" and unknown.text


def test_where_the_answer_goes_in_the_line():
    a = _answer("venting", 7.0)
    assert compose("Ik heb pijn.", (a,), situation="venting") == f"Ik heb pijn. {a.text}"
    assert compose("Sukkel.", (a,), situation="abusive") == f"{a.text} Sukkel."
    assert compose("Nou, goed dan.", (a,), situation="calming") == a.text


def _turn(text: str, start_s: float, end_s: float) -> Turn:
    return Turn(index=1, speaker="trainee", start_s=start_s, end_s=end_s, text=text, words=(),
                syllables=6, syllables_transcript=6, syllables_acoustic=6,
                syllable_source="transcript", pause_total_s=0.0, speech_rate_syll_s=4.0,
                articulation_rate_syll_s=4.0, loudness_dbfs=-30.0, pitch_median_hz=120.0,
                pitch_spread_st=2.0, phrases=(), abuse=(), rate_vs_baseline_pct=None,
                loudness_vs_baseline_db=None)


def test_the_caller_session_answers_and_logs_each_answer():
    """Both clocks go through CallerSession.on_trainee_turn: the answer is in the next line and in
    an `answer` event that CallWriter accepts; asking again gets "Dat heb ik net al gezegd!"."""
    s = load_scenario("nl-visite-derde-keer")
    session = CallerSession(s, rng=random.Random(4))
    line = session.open()
    session.on_line_spoken(line, start_s=1.0, end_s=4.0, rate_wpm=180, volume=0.8)
    d = session.on_trainee_turn(_turn("Mag ik uw naam? En de geboortedatum?", 5.0, 7.0),
                                start_s=5.0, end_s=7.0, decided_by="end-of-turn")
    answers = [e for e in d.events if e.type == "answer"]
    assert [a.fields["question"] for a in answers] == ["caller_name", "date_of_birth"]
    for e in answers:
        make_event(e.type, **e.fields)  # a field CallWriter would refuse raises here
        assert e.fields["value"] == s.facts[e.fields["fact"]]
        assert e.fields["value"].rstrip(".") in d.line.text
    assert d.line is not None
    session.on_line_spoken(d.line, start_s=8.0, end_s=12.0, rate_wpm=180, volume=0.8)
    d2 = session.on_trainee_turn(_turn("Wat is uw naam?", 13.0, 14.0), start_s=13.0, end_s=14.0,
                                 decided_by="end-of-turn")
    again = [e for e in d2.events if e.type == "answer"]
    assert again and again[0].fields["tone"] == "repeated"
    assert d2.line is not None and s.facts["caller_name"] in d2.line.text


def test_a_caller_who_hangs_up_on_a_question_answers_it_first():
    """The poor trainee argues and asks at once: the caller goes past its hang-up anger, snaps the
    fact and hangs up, in one line; the anger events keep why it hung up."""
    s = load_scenario("nl-visite-derde-keer")
    session = CallerSession(s, rng=random.Random(4))
    line = session.open()
    session.on_line_spoken(line, start_s=1.0, end_s=4.0, rate_wpm=180, volume=0.8)
    session.state = replace(session.state, anger=s.anger.hang_up_at - 0.1)
    heard = "Ja maar u moet gewoon wachten. Wat is de naam van de patiënt?"
    turn = replace(_turn(heard, 5.0, 8.0),
                   phrases=(Phrase("argument", "ja maar", 5.0, "Ja maar"),))
    d = session.on_trainee_turn(turn, start_s=5.0, end_s=8.0, decided_by="end-of-turn")
    assert d.line is not None and d.line.situation == "hanging_up"
    (a,) = [e.fields for e in d.events if e.type == "answer"]
    name = s.facts["patient_name"].rstrip(" .!?")
    assert (a["question"], a["fact"], a["tone"], a["placement"]) == (
        "patient_name", "patient_name", "curt", "before-line")
    assert d.line.text.startswith(f"{name}!") and len(d.line.text) > len(name) + 2
    assert any(e.type == "anger" and e.fields["reason"] == "argument" for e in d.events)
    spoken = session.on_line_spoken(d.line, start_s=8.5, end_s=11.0, rate_wpm=180, volume=0.8)
    assert spoken.outcome == "caller-hung-up"


def test_a_turn_without_a_question_is_not_answered():
    s = load_scenario("nl-visite-derde-keer")
    session = CallerSession(s, rng=random.Random(4))
    line = session.open()
    session.on_line_spoken(line, start_s=1.0, end_s=4.0, rate_wpm=180, volume=0.8)
    d = session.on_trainee_turn(_turn("Ik kan me voorstellen dat u boos bent.", 5.0, 7.0),
                                start_s=5.0, end_s=7.0, decided_by="end-of-turn")
    assert not [e for e in d.events if e.type == "answer"]
    assert d.line is not None and not any(v in d.line.text for v in s.facts.values())


@pytest.mark.parametrize(("heard", "behaviour"), [
    ("Ik verbinde dog met mijn korega. Mijn korega is of de hote.", "transfer"),  # warm, misheard
    ("Ik verbind u door.", "cold-transfer"),  # the poor trainee's
])
def test_the_caller_takes_a_misheard_warm_transfer_as_warm_and_a_cold_one_as_cold(heard,
                                                                                  behaviour):
    """One transfer phrase found (as the phrase matcher reports "ik verbind u door"): the briefing
    decides, heard with the questions' closeness."""
    turn = replace(_turn(heard, 5.0, 8.0),
                   phrases=(Phrase("transfer", "ik verbind u door", 5.0, heard),))
    seen = observe(turn, caller_start_s=1.0, caller_end_s=4.5, caller_situation="calming",
                   ends_call=False, language="nl")
    assert {"transfer", "cold-transfer"} & seen.observation.behaviours == {behaviour}


# --------------------------------------------------------------------------- the audio check


class Reread:
    """The recognizer's scoring, replaced: log-probabilities by the text's content."""

    def __init__(self, supports: dict[str, float], heard: float = -10.0) -> None:
        self.supports, self.heard, self.calls = supports, heard, []

    def __call__(self, texts: tuple[str, ...]) -> tuple[float, ...]:
        self.calls.append(texts)
        return (self.heard, *(next((v for k, v in self.supports.items() if k in t), -99.0)
                              for t in texts[1:]))


GARBLED = "Dat kan ik me goed voorstellen. Mani is de paschent jubogen."  # a demo, nl-doorverbinden


def test_a_question_too_garbled_for_the_words_counts_when_the_audio_supports_it():
    """The heard text with the phrasing in place of the closest words is scored against the
    heard text: within CHECK_MIN_LOG_RATIO nats per phrasing word it counts, beyond it not."""
    assert find_questions(GARBLED, language="nl") == ()
    n = len("is de patiënt geboren".split())
    near = Reread({"patiënt geboren": -10.0 + n * CHECK_MIN_LOG_RATIO + 0.1})
    (q,) = find_questions(GARBLED, language="nl", reread=near)
    assert (q.question, q.heard, q.position) == ("date_of_birth", "is de paschent jubogen", 7)
    assert q.audio_support is not None and q.audio_support >= CHECK_MIN_LOG_RATIO
    # only the closest words are replaced; the rest, its capitals and punctuation stay as heard
    assert near.calls[0][0] == GARBLED
    assert "Dat kan ik me goed voorstellen. Mani is de patiënt geboren." in near.calls[0][1:]
    far = Reread({"patiënt geboren": -10.0 + n * CHECK_MIN_LOG_RATIO - 0.1})
    assert find_questions(GARBLED, language="nl", reread=far) == ()


def test_the_audio_check_leaves_clear_questions_and_far_words_alone():
    """A question the words carry is not scored again, and words no phrasing is SUPPORTED_MIN_SCORE
    close to cost no decoder pass at all."""
    clear = Reread({})
    assert [q.question for q in find_questions("Wat is uw naam?", language="nl", reread=clear)] == [
        "caller_name"]
    assert all("wat is uw naam" not in t.lower() for texts in clear.calls for t in texts[1:])
    nothing = Reread({})
    assert find_questions("Ik kan me voorstellen dat u boos bent.", language="nl", reread=nothing) == ()
    assert nothing.calls == []
