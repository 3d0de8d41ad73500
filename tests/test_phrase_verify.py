"""Phrases checked against the audio (issue 11, "Dutch phrases"): candidates come only from the
phrase lists and only where the heard text is close; a candidate counts only when the recognizer
scores the phrase on the turn's audio nearly as well as what it heard."""

from __future__ import annotations

import numpy as np
import pytest

from roleplay.analysis.phrases import (
    MIN_LOG_RATIO_PER_TOKEN,
    PHRASES_DIR,
    check_candidates,
    find_phrases,
    load_phrasebook,
    phrase_candidates,
    read_phrasebook,
    sound_key,
    spoken_form,
    verify_phrases,
)
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
from roleplay.core.errors import InputError
from roleplay.speech.asr import TextScore

SILENCE = Audio(np.zeros(ANALYSIS_RATE_HZ * 3, dtype=np.float32), ANALYSIS_RATE_HZ)


def words_of(text: str, step_s: float = 0.3) -> list[tuple[str, float, float]]:
    return [(w, k * step_s, (k + 1) * step_s) for k, w in enumerate(text.split())]


class FakeScorer:
    """Scores a text by whether it holds `supported` (as if the audio said it): only logic runs."""

    def __init__(self, supported: str) -> None:
        self.supported = supported.lower()
        self.texts: list[tuple[str, ...]] = []

    def score_texts(self, audio, texts, *, language):
        self.texts.append(tuple(texts))
        # the heard text gets -10; a text holding the supported phrase gets more, any other less
        return tuple(TextScore(-10.0 if k == 0 else (-9.0 if self.supported in t.lower() else -40.0), 10)
                     for k, t in enumerate(texts))


def test_sound_key_merges_the_letters_whisper_confuses_on_synthetic_dutch():
    assert sound_key("wat ik wel") == sound_key("maat ik meel")  # w and m are both labials
    assert sound_key("goedenavond") != sound_key("huisartsenpost")


def test_a_misheard_phrase_becomes_a_candidate_and_a_far_one_does_not():
    cands = phrase_candidates("Ik wil niet naar het schelp.", language="nl")
    assert ("boundary", "ik wil niet dat u scheldt") in {(c.category, c.pattern.text) for c in cands}
    assert not phrase_candidates("De bakker verkoopt brood.", language="nl")


def test_text_matches_are_not_candidates_again():
    text = "Ik wil niet dat u scheldt."
    assert "boundary" in {h.category for h in find_phrases(text, language="nl")}
    cands = phrase_candidates(text, language="nl")
    assert all(c.pattern.text != "ik wil niet dat u scheldt" for c in cands)


def test_the_audio_decides_and_only_listed_phrases_close_to_the_text_are_scored():
    heard = "Ik wil niet naar het schelp."
    supported = verify_phrases(words_of(heard), SILENCE, audio_start_s=0.0, language="nl",
                               scorer=FakeScorer("ik wil niet dat u scheldt"))
    text_hits = {h.category for h in find_phrases(heard, language="nl")}
    assert "boundary" not in text_hits
    boundary = [h for h in supported if h.category == "boundary"]
    assert len(boundary) == 1 and boundary[0].matched.startswith("Ik wil")
    refused = verify_phrases(words_of(heard), SILENCE, audio_start_s=0.0, language="nl",
                             scorer=FakeScorer("something else entirely"))
    assert {h.category for h in refused} == text_hits  # the text matches stay; no candidate passes


def test_no_invented_phrase_even_when_the_scorer_supports_anything():
    class Yes(FakeScorer):
        def score_texts(self, audio, texts, *, language):
            return tuple(TextScore(0.0, 1) for _ in texts)

    assert verify_phrases(words_of("De bakker op de hoek verkoopt vers brood."), SILENCE, audio_start_s=0.0,
                          language="nl", scorer=Yes("")) == ()


def test_a_window_close_only_in_sound_is_no_candidate():
    """Recorded on 2026-11-30: Whisper base heard espeak's "De bakker op de hoek verkoopt elke
    ochtend vers brood." so, and "u bent bezorgd" came up on "en tmees groot" (0.73 in sound, 0.42
    in spelling) and passed the audio check: a phrase the trainee never said."""
    heard = "Je maakt het op je hoek met kopt en je hoek en tmees groot."
    assert not {c.pattern.text for c in phrase_candidates(heard, language="nl")} & {"u bent bezorgd", "je spreekt met"}
    loose = phrase_candidates(heard, language="nl", min_spelling=0.0)  # the rule is what drops it
    assert "u bent bezorgd" in {c.pattern.text for c in loose}
    assert sound_key("ubentbezorgd") != sound_key("entmeesgroot")
    supported = verify_phrases(words_of(heard), SILENCE, audio_start_s=0.0, language="nl",
                               scorer=FakeScorer("u bent bezorgd"))
    assert "acknowledgement" not in {h.category for h in supported}
    # a garbled but recognisable phrase is still a candidate (spelling 0.80: "ik dacht over")
    assert "ik draag u over" in {c.pattern.text for c in phrase_candidates("Ik dacht over.", language="nl")}


def test_the_substitution_keeps_the_heard_words_around_the_phrase_and_their_capital():
    scorer = FakeScorer("ik wil niet dat u scheldt")
    check_candidates(words_of("Meneer, ik wil niet naar het schelp. Dank u."), SILENCE, audio_start_s=0.0,
                     language="nl", scorer=scorer)
    heard, *subs = scorer.texts[0]
    assert heard == "Meneer, ik wil niet naar het schelp. Dank u."
    assert "Meneer, ik wil niet dat u scheldt. Dank u." in subs


def test_a_long_turn_is_scored_around_each_candidate():
    filler = " ".join(["brood"] * 60)
    scorer = FakeScorer("ik wil niet dat u scheldt")
    words = words_of(f"{filler} ik wil niet naar het schelp {filler}", step_s=0.3)  # 38 s
    long_audio = Audio(np.zeros(ANALYSIS_RATE_HZ * 40, dtype=np.float32), ANALYSIS_RATE_HZ)
    checked = check_candidates(words, long_audio, audio_start_s=0.0, language="nl", scorer=scorer)
    assert any(c.accepted and c.candidate.category == "boundary" for c in checked)
    assert all(len(texts[0].split()) < 40 for texts in scorer.texts)  # a window, not the whole turn


def test_the_threshold_is_a_log_ratio_per_phrase_word():
    scorer = FakeScorer("ik wil niet dat u scheldt")
    checked = check_candidates(words_of("Ik wil niet naar het schelp."), SILENCE, audio_start_s=0.0,
                               language="nl", scorer=scorer)
    boundary = next(c for c in checked if c.candidate.pattern.text == "ik wil niet dat u scheldt")
    assert boundary.log_ratio_per_token == pytest.approx(1.0 / 6, abs=1e-3)
    assert boundary.accepted  # the shipped threshold is below 1/6
    assert MIN_LOG_RATIO_PER_TOKEN < 1.0 / 6
    stricter = check_candidates(words_of("Ik wil niet naar het schelp."), SILENCE, audio_start_s=0.0,
                                language="nl", scorer=FakeScorer("ik wil niet dat u scheldt"), min_log_ratio=0.2)
    assert not any(c.accepted for c in stricter)


def test_english_phrases_are_scored_as_a_transcript_writes_them():
    book = load_phrasebook("en")
    pattern = next(p for p in book.categories["end-announcement"] if p.text == "im going to end this call")
    assert spoken_form(pattern, book) == "I'm going to end this call"


def test_a_bad_spoken_table_names_the_file(tmp_path):
    text = (PHRASES_DIR / "en.yaml").read_text(encoding="utf-8").replace("spoken: {i: I,", "spoken: {i: [I],", 1)
    bad = tmp_path / "en.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="en.yaml: spoken"):
        read_phrasebook(bad)


PLANTED = {  # lines of the accuracy set's training split that Whisper base garbles (runs of 2026-11-30)
    "Goed, ik wil dat u stopt met schelden.": "boundary",
    "Mevrouw, ik ga nu ophangen.": "end-announcement",
    "De arts komt langs.": "concrete-offer",
    "Ik draag u over.": "transfer",
    "Dat is vervelend, mevrouw.": "acknowledgement",
}
NEUTRAL = ("Hoe oud is uw zoontje?", "Is hij vandaag nog gevallen?",
           "De bakker op de hoek verkoopt elke ochtend vers brood.")


def _phrases_through_the_pipeline(chosen, transcriber, tts_cache) -> tuple[dict, dict]:
    """The phrase-set lines `chosen` spoken as one Dutch trainee track and analysed whole: per
    line's text, the categories found (with the audio check) and those the text alone gives."""
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.bench.accuracy import _turn_at
    from roleplay.recording.scripted import ScriptLine, place_lines, tracks

    placed = place_lines([ScriptLine("trainee", x.text, x.voice, rate_wpm=x.rate_wpm, gap_s=1.9) for x in chosen],
                         cache_dir=tts_cache)
    track = Audio(tracks(placed)["trainee"], ANALYSIS_RATE_HZ)
    analysis = analyse_audio(caller=None, trainee=track, language="nl", transcriber=transcriber)
    found, text_only = {}, {}
    for x, p in zip(chosen, placed, strict=True):
        turn = _turn_at(analysis, p)
        assert turn is not None, x.text
        found[x.text] = {ph.category for ph in turn.phrases}
        text_only[x.text] = {h.category for h in find_phrases(turn.text, language="nl")}
    return found, text_only


def test_real_espeak_dutch_phrases_are_found_by_the_audio_check_and_none_invented(transcriber, tts_cache):
    """Real espeak-ng Dutch and the real model, through the whole-call analysis."""
    from roleplay.bench.accuracy import phrase_lines

    by_text = {x.text: x for x in phrase_lines()}
    chosen = [by_text[t] for t in (*PLANTED, *NEUTRAL)]
    found, text_only = _phrases_through_the_pipeline(chosen, transcriber, tts_cache)
    hits = [t for t, cat in PLANTED.items() if cat in found[t]]
    by_text_alone = [t for t, cat in PLANTED.items() if cat in text_only[t]]
    assert len(by_text_alone) <= 1, text_only  # the transcripts really are garbled
    assert len(hits) >= 3, found  # 3 of 5 on 2026-11-30; the text matcher alone finds at most 1
    assert all(not found[t] for t in NEUTRAL), found


def test_the_phrase_check_reuses_the_encoder_output_of_the_transcribed_clips(transcriber, tts_cache, monkeypatch):
    """Scoring a turn's audio after the whole-call transcription needs no second encoder pass (it
    was about half of the check's CPU), and gives the scores a new pass gives."""
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.recording.scripted import ScriptLine, place_lines, tracks
    from roleplay.speech.asr import AsrSettings, FasterWhisperTranscriber

    lines = ("Ik begrijp dat u ongerust bent.", "De dokter belt u binnen twintig minuten terug.")
    placed = place_lines([ScriptLine("trainee", t, "nl-trainee-woman", gap_s=1.9) for t in lines], cache_dir=tts_cache)
    track = Audio(tracks(placed)["trainee"], ANALYSIS_RATE_HZ)
    analysis = analyse_audio(caller=None, trainee=track, language="nl", transcriber=transcriber)
    turns = [t for t in analysis.turns if t.words]
    assert len(turns) == 2
    encodes = []
    real_encode = transcriber._model.encode
    monkeypatch.setattr(transcriber._model, "encode", lambda *a, **k: encodes.append(1) or real_encode(*a, **k))
    texts = tuple((t.text, "Ik blijf even met u aan de lijn.") for t in turns)
    kept = [transcriber.score_texts(track.slice_s(t.start_s, t.end_s), x, language="nl")
            for t, x in zip(turns, texts, strict=True)]
    assert encodes == []  # what the pipeline's phrase check asks for was encoded once, when transcribed
    fresh = FasterWhisperTranscriber(transcriber.model_path, settings=AsrSettings(kept_encodings=0))
    again = [fresh.score_texts(track.slice_s(t.start_s, t.end_s), x, language="nl")
             for t, x in zip(turns, texts, strict=True)]
    assert len(encodes) == 2  # without kept outputs each turn is encoded again
    for a, b in zip(kept, again, strict=True):
        assert [s.log_prob for s in a] == pytest.approx([s.log_prob for s in b], abs=0.5)
        assert a[0].log_prob > a[1].log_prob  # the heard text fits better than another line



NEURAL_PLANTED = {  # lines of the set in Kokoro voices whose transcripts the text matcher misses (2026-12-01)
    "Goed, de dokter belt u.": "concrete-offer",  # heard "Goed de doctor Belty."
    "Meneer, de dokter belt u terug.": "concrete-offer",  # "Meneer de Dr. Belty Teraag."
    "Mevrouw, ik ga dit gesprek beëindigen.": "end-announcement",  # "... ik goudit gesprek Balendigan."
    "Ik hang op, meneer.": "end-announcement",  # "Elik hang op de manier."
    "Meneer, ik verbind u door.": "transfer",  # "Meneer ik verbente door."
    "Luistert u even: dat mag niet.": "negative",  # "leuistert je even dat mach niet."
}


@pytest.mark.slow
def test_neural_dutch_phrases_are_found_by_the_audio_check_and_none_invented(transcriber, tts_cache):
    """The same check on Dutch that Whisper base hears about as well as a person (Kokoro voices:
    word error rate 26-27 % against 56-67 % for espeak-ng), through the whole-call analysis."""
    from roleplay.bench.accuracy import phrase_lines
    from roleplay.speech import kokoro

    if kokoro.unavailable("im_nicola") or kokoro.unavailable("if_sara"):
        pytest.skip("Kokoro not installed (bash scripts/setup.sh)")
    by_text = {x.text: x for x in phrase_lines(voice_key="neural_voices")}
    chosen = [by_text[t] for t in (*NEURAL_PLANTED, *NEUTRAL[:2])]
    assert {x.voice for x in chosen} == {"nl-kokoro-woman", "nl-kokoro-man"}
    found, text_only = _phrases_through_the_pipeline(chosen, transcriber, tts_cache)
    hits = [t for t, cat in NEURAL_PLANTED.items() if cat in found[t]]
    assert sum(cat in text_only[t] for t, cat in NEURAL_PLANTED.items()) <= 1, text_only
    assert len(hits) >= 5, found  # 6 of 6 in the bench run of 2026-12-01
    assert all(not found[t] for t in NEUTRAL[:2]), found
