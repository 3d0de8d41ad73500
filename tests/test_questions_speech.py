"""The caller answers a question it heard misheard, and does not answer a turn that asks nothing;
it takes the good trainee's warm transfer as warm and the poor one's as cold: the trainees' lines in
the real espeak-ng trainee voice at their rates, heard by the real recognizer (Whisper base) through
the live analysis path, then the caller session both clocks use."""

from __future__ import annotations

import dataclasses
import random

import pytest

from roleplay.analysis.phrases import normalise
from roleplay.analysis.pipeline import analyse_turn
from roleplay.caller.scenario import load_scenario
from roleplay.caller.simtrainee import (
    GOOD_SLOW_RATE,
    GOOD_SOFT_DB,
    POOR_LOUD_DB,
    POOR_RATE,
    load_trainee_lines,
)
from roleplay.session.adapters import speak
from roleplay.session.caller_session import CallerSession, observe
from roleplay.speech.voice import load_voice

pytestmark = pytest.mark.model
SCENARIO = "nl-visite-eisen"
QUESTION = "Dat kan ik me goed voorstellen. Wanneer is de patiënt geboren?"
NO_QUESTION = "Ik kan me voorstellen dat u ongerust bent."


def _heard(text: str, transcriber, tts_cache, *, rate: float = GOOD_SLOW_RATE,
           gain_db: float = GOOD_SOFT_DB):
    """The trainee's line as the caller hears it: the analysed turn."""
    voice = load_voice(load_trainee_lines("nl").voice)
    prosody = dataclasses.replace(voice.base, rate_wpm=voice.base.rate_wpm * rate)
    audio = speak(text, voice=voice, prosody=prosody, gain_db=gain_db, cache_dir=tts_cache)
    turn = analyse_turn(audio=audio, speaker="trainee", language="nl", transcriber=transcriber,
                        offset_s=5.0)
    assert turn is not None and turn.text
    return turn


def _caller_answers(text: str, transcriber, tts_cache):
    """What the caller makes of the good trainee saying `text` to an angry caller."""
    turn = _heard(text, transcriber, tts_cache)
    session = CallerSession(load_scenario(SCENARIO), rng=random.Random(1))
    line = session.open()
    session.on_line_spoken(line, start_s=0.5, end_s=4.5, rate_wpm=180, volume=0.8)
    d = session.on_trainee_turn(turn, start_s=turn.start_s, end_s=turn.end_s,
                                decided_by="end-of-turn")
    return turn.text, [e.fields for e in d.events if e.type == "answer"], d.line


def test_a_misheard_question_is_answered_with_its_fact(transcriber, tts_cache):
    heard, answers, line = _caller_answers(QUESTION, transcriber, tts_cache)
    # the recognizer mishears it: the fuzzy path is what is tested
    assert normalise(heard) != normalise(QUESTION), heard
    assert [(a["question"], a.get("fact")) for a in answers] == [("date_of_birth",
                                                                   "date_of_birth")], heard
    assert line is not None and "1941" in line.text


def test_a_turn_that_asks_nothing_is_not_answered(transcriber, tts_cache):
    heard, answers, _line = _caller_answers(NO_QUESTION, transcriber, tts_cache)
    assert answers == [], heard


def test_the_good_trainees_warm_transfer_is_warm_and_the_poor_ones_cold(transcriber, tts_cache):
    """The poor trainee's "Ik verbind u door." must never be taken as warm. The recognizer hears
    no transfer in it at all, at the good trainee's rate ("Ik ben tudog.") or at the poor one's
    ("Ik maak binnen te dogen."), so the caller takes it as neither; with a transfer phrase
    found it is cold (tests/test_questions.py)."""
    lines = load_trainee_lines("nl")
    cold_line = lines.styles["poor"]["cold_transfer"][0]
    turns = {"warm": _heard(lines.styles["good"]["transfer"][0], transcriber, tts_cache),
             "cold": _heard(cold_line, transcriber, tts_cache),
             "cold, poor delivery": _heard(cold_line, transcriber, tts_cache, rate=POOR_RATE,
                                           gain_db=POOR_LOUD_DB)}
    took = {}
    for name, turn in turns.items():
        seen = observe(turn, caller_start_s=0.5, caller_end_s=4.5, caller_situation="venting",
                       ends_call=False, language="nl")
        took[name] = {"transfer", "cold-transfer"} & seen.observation.behaviours
    heard = {name: turn.text for name, turn in turns.items()}
    assert took["warm"] == {"transfer"}, heard
    assert "transfer" not in took["cold"] | took["cold, poor delivery"], heard


class _Counted:
    """The listener's reread, with the texts it was asked to score kept."""

    def __init__(self, reread) -> None:
        self.reread, self.texts = reread, []

    def __call__(self, texts):
        self.texts += texts[1:]
        return self.reread(texts)


@pytest.mark.parametrize(("clip", "asked", "checked"), [
    # nl-doorverbinden, good trainee, seed 1 (demo): "Dat kan ik me goed voorstellen. Wanneer is de
    # patiënt geboren?", heard as "... Mani is de paschent jubogen.": no question in the words
    ("question-garbled-nl.flac", ["date_of_birth"], "patiënt geboren"),
    # nl-dreigt-langs-te-komen, good, seed 1: "Wat ik wel kan doen: de dokter belt u binnen een
    # half uur terug. Wanneer is de patiënt geboren?", heard with "meel te benen en" 0.74 close to
    # "welke medicijnen": the audio does not support that question
    ("question-offer-nl.flac", ["date_of_birth"], "welke medicijnen"),
])
def test_a_question_too_garbled_for_the_words_is_checked_against_the_turns_audio(
        clip, asked, checked, transcriber):
    """Two demo turns, as recorded, through the live listener: the caller hears the question the
    audio supports and not the one it does not (caller.questions.CHECK_MIN_LOG_RATIO)."""
    from pathlib import Path

    from roleplay.analysis.pipeline import Baseline
    from roleplay.audio.clip import load_audio
    from roleplay.caller.questions import find_questions
    from roleplay.session.adapters import HeardTurn, TurnListener

    listen = TurnListener("nl", transcriber, Baseline("none", (), 0.0, 0, None, None, None, None, None, ""))
    turn = listen(load_audio(Path(__file__).parent / "data" / clip), offset_s=0.0)
    assert isinstance(turn, HeardTurn) and turn.reread is not None
    counted = _Counted(turn.reread)
    found = find_questions(turn.text, language="nl", reread=counted)
    assert [q.question for q in found] == asked, turn.text
    assert any(checked in t for t in counted.texts), (turn.text, counted.texts)
    if clip == "question-garbled-nl.flac":  # the words alone do not carry it
        assert find_questions(turn.text, language="nl") == (), turn.text
        assert found[0].audio_support is not None
