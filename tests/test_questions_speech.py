"""The caller answers a question it heard misheard, and does not answer a turn that asks nothing:
the good trainee's lines in the real espeak-ng trainee voice at its slow rate, heard by the real
recognizer (Whisper base) through the live analysis path, then the caller session both clocks use.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from roleplay.analysis.phrases import normalise
from roleplay.analysis.pipeline import analyse_turn
from roleplay.caller.scenario import load_scenario
from roleplay.caller.simtrainee import GOOD_SLOW_RATE, GOOD_SOFT_DB, load_trainee_lines
from roleplay.session.adapters import speak
from roleplay.session.caller_session import CallerSession
from roleplay.speech.voice import load_voice

pytestmark = pytest.mark.model
SCENARIO = "nl-visite-eisen"
QUESTION = "Dat kan ik me goed voorstellen. Wanneer is de patiënt geboren?"
NO_QUESTION = "Ik kan me voorstellen dat u ongerust bent."


def _caller_answers(text: str, transcriber, tts_cache):
    """What the caller makes of the good trainee saying `text` to an angry caller."""
    voice = load_voice(load_trainee_lines("nl").voice)
    prosody = dataclasses.replace(voice.base, rate_wpm=voice.base.rate_wpm * GOOD_SLOW_RATE)
    audio = speak(text, voice=voice, prosody=prosody, gain_db=GOOD_SOFT_DB, cache_dir=tts_cache)
    turn = analyse_turn(audio=audio, speaker="trainee", language="nl", transcriber=transcriber,
                        offset_s=5.0)
    assert turn is not None and turn.text
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
