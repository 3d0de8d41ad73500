"""Issue 11, section 2: the syllable source follows coverage, so words the recognizer dropped do not
make a rate (and a slower-softer verdict) false."""

from __future__ import annotations

from pathlib import Path

import pytest

from roleplay.analysis.pipeline import TimingSettings, _choose_syllables, _word_coverage, analyse_turn
from roleplay.audio.clip import load_audio
from roleplay.speech.asr import Word
from roleplay.speech.prosody import speaking_extent_s

DATA = Path(__file__).parent / "data"
GREETING = "Good evening, out of hours GP service, my name is Anna. How can I help you?"
S = TimingSettings()


def _w(text: str, start_s: float, end_s: float, p: float = 0.95) -> Word:
    return Word(text, start_s, end_s, p)


def test_a_word_stretched_over_dropped_speech_covers_little():
    # as Whisper timed "How can I help you?" over the whole 5.2 s greeting: "I" lasted 2.9 s
    words = (_w("How", 0.83, 1.79), _w("can", 1.79, 2.35), _w("I", 2.35, 5.29), _w("help", 5.29, 5.57),
             _w("you?", 5.57, 5.9))
    coverage = _word_coverage(words, 0.83, 6.01, 4.77, "en", S)
    assert coverage is not None and coverage < S.min_coverage
    choice = _choose_syllables(words, 5, 21, coverage, 4.77, S, language="en")
    assert (choice.source, choice.count, choice.excluded) == ("acoustic", 21, None)


def test_confident_words_that_cover_the_speech_keep_the_transcript():
    words = tuple(_w(t, 0.3 * i, 0.3 * i + 0.28) for i, t in enumerate("I understand that you are angry".split()))
    coverage = _word_coverage(words, 0.0, 1.8, 1.8, "en", S)
    assert coverage is not None and coverage >= S.min_coverage
    # the acoustic count misses syllables in fast speech: a confident, covering transcript wins
    assert _choose_syllables(words, 9, 6, coverage, 1.8, S, language="en").source == "transcript"


def test_low_coverage_without_more_acoustic_syllables_keeps_the_transcript():
    # slow, drawn-out speech covers little time per syllable, but nothing says words are missing
    words = (_w("Yes.", 0.0, 0.3),)
    assert _choose_syllables(words, 1, 1, 0.3, 1.0, S, language="en").source == "transcript"


def test_neither_count_trusted_leaves_the_turn_out_and_says_why():
    words = (_w("Okay", 0.0, 0.4),)
    # 30 acoustic "syllables" in 1.5 s of speech (20 syll/s) is noise, not speech
    choice = _choose_syllables(words, 2, 30, 0.25, 1.5, S, language="en")
    assert choice.excluded is not None and "cover 25 %" in choice.excluded


def test_empty_turn_has_no_coverage():
    assert _word_coverage((), 0.0, 1.0, 0.0, "en", S) is None


@pytest.mark.slow
def test_greeting_with_dropped_words_gets_its_rate_from_the_acoustic_count(transcriber):
    """The demo greeting of issue 11 (real espeak-ng audio from `roleplay demo --scenario
    en-tourist-waiting --trainee good --seed 1`), which Whisper base hears as 'How can I help you?'."""
    from roleplay.bench.accuracy import rate_truth

    audio = load_audio(DATA / "en-greeting-words-dropped.flac")
    turn = analyse_turn(audio=audio, speaker="trainee", language="en", transcriber=transcriber)
    assert turn is not None
    truth = rate_truth(GREETING, audio.slice_s(*speaking_extent_s(audio)), language="en")
    assert turn.syllables_transcript < 0.5 * truth.syllables  # the recognizer still drops words
    assert turn.coverage is not None and turn.coverage < S.min_coverage
    assert turn.syllable_source == "acoustic" and turn.rate_excluded is None
    assert turn.articulation_rate_syll_s is not None
    # 1.03 syll/s (-75 %) before; within the 20 % now
    assert abs(turn.articulation_rate_syll_s / truth.articulation_rate_syll_s - 1) < 0.20


@pytest.mark.model
def test_words_kept_over_the_no_speech_guard_are_heard_but_not_counted(transcriber):
    """A drill's greeting that Whisper's no-speech guard would drop (greedy and beam alike at
    no-speech 0.604): our VAD is sure of seconds of speech, so its words are in the turn's text
    (the greeting is found), but marked `unsure`, and the rate rests on the acoustic count as it
    did when the guard dropped them."""
    from roleplay.analysis.phrases import find_phrases

    audio = load_audio(DATA / "greeting-beam-silent-nl.flac")
    turn = analyse_turn(audio=audio, speaker="trainee", language="nl", transcriber=transcriber)
    assert turn is not None and turn.words and all(w.unsure for w in turn.words)
    assert "greeting" in {h.category for h in find_phrases(turn.text, language="nl")}, turn.text
    assert turn.syllables_transcript == 0 and turn.syllable_source == "acoustic"
    # "Huisartsenpost, goedenavond, u spreekt met Anna." is 14 syllables
    assert turn.syllables == pytest.approx(14, abs=3)
