"""Syllable counts from text (hand-counted words and sentences) and from audio (syllable nuclei)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roleplay.audio.clip import Audio, load_audio
from roleplay.core.errors import InputError
from roleplay.speech.syllables import count_syllables, count_word_syllables, syllable_nuclei_s

REPO = Path(__file__).resolve().parent.parent
SPEECH = Path(os.environ.get("ROLEPLAY_SHARED_DIR", REPO.parent / "shared")) / "speech"
FLEMISH = SPEECH / "flemish_rdh_dutch_vl_tts"  # human read speech, CC0 (see its SOURCE.txt)


# --- text: Dutch ---

@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("ruïne", 3), ("geïnteresseerd", 5), ("beëindigen", 4), ("patiënt", 3), ("België", 3),
        ("coördinator", 5), ("reünie", 3), ("zeeën", 2), ("tweeëntwintig", 4),
        ("huisartsenpost", 4), ("goedenavond", 4), ("schreeuwen", 2), ("eeuwig", 2),
        ("nieuwe", 2), ("haaien", 2), ("mooie", 2), ("groeien", 2), ("aardappel", 3),
        ("Middellandse", 4), ("dialoog", 3), ("werkterreinen", 4), ("uiteinde", 3),
        ("zee-engte", 3), ("baby", 2), ("yoghurt", 2), ("oké", 2), ("bureau", 2),
        ("m'n", 1), ("zo'n", 1), ("'t", 0), ("auto's", 2), ("hm", 1), ("GGD", 3),
        ("10", 1), ("112", 3), ("0", 1), ("100", 2), ("21", 4), ("40.000", 4), ("1,5", 4),
        ("0302345678", 11), ("Goedenavond,", 4), ("(ja)", 1), ("", 0),
    ],
)
def test_dutch_words(word, expected):
    assert count_word_syllables(word, language="nl") == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("De plant van de aardappel is giftig", 10),
        ("De Straat van Gibraltar is een zee-engte aan het uiteinde van de Middellandse Zee.", 23),
        ("Dat kan met betrekkelijk weinig geld.", 10),
        ("Ik geloof in deze dialoog en we zullen deze dialoog voeren.", 20),
        ("We zullen de uitkomsten op deze werkterreinen afwachten.", 17),
        ("Ik begrijp dat u boos bent maar ik kan u niet helpen als u tegen mij blijft "
         "schreeuwen.", 22),
        ("Goedenavond, huisartsenpost Utrecht, u spreekt met Sanne.", 15),
        ("Bel 112 als het écht niet gaat!", 9),
    ],
)
def test_dutch_sentences(sentence, expected):
    assert count_syllables(sentence, language="nl") == expected


def test_decomposed_diaeresis_counts_like_composed():
    assert count_syllables("rui\u0308ne", language="nl") == 3


# --- text: English ---

@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("table", 2), ("little", 2), ("make", 1), ("one", 1), ("twelve", 1), ("eleven", 3),
        ("seventeen", 3), ("wanted", 2), ("called", 1), ("places", 2), ("times", 1),
        ("goes", 1), ("didn't", 2), ("don't", 1), ("can't", 1), ("haven't", 2), ("radio", 3),
        ("media", 3), ("video", 3), ("people", 2), ("always", 2), ("they", 1), ("yes", 1),
        ("beyond", 2), ("happy", 2), ("seeing", 2), ("statement", 2), ("careful", 2),
        ("useless", 2), ("112", 4), ("1.5", 3), ("40,000", 4),
    ],
)
def test_english_words(word, expected):
    assert count_word_syllables(word, language="en") == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("I understand that you are angry, but I cannot help you if you keep shouting at me.",
         22),
        ("The doctor will call you back within an hour.", 11),
        ("My wife has been vomiting since this afternoon and nobody answers the phone.", 20),
        ("These couples may choose to make an adoption plan for their baby.", 16),
        ("Television reports show white smoke coming from the plant.", 14),
        ("And you always want to see it in the superlative degree.", 16),
        ("Mister Quilter is the apostle of the middle classes and we are glad to welcome his "
         "gospel.", 25),
        ("And so my fellow Americans, ask not what your country can do for you, ask what you "
         "can do for your country.", 28),
    ],
)
def test_english_sentences_within_ten_percent(sentence, expected):
    assert abs(count_syllables(sentence, language="en") - expected) <= 0.1 * expected


@pytest.mark.parametrize("language", ["de", "", "NL", None])
def test_unknown_language_is_an_input_error(language):
    with pytest.raises(InputError, match="unknown language"):
        count_syllables("hallo", language=language)


def test_text_must_be_a_string():
    with pytest.raises(InputError, match="string"):
        count_syllables(["ja"], language="nl")


@settings(max_examples=300, deadline=None)
@given(text=st.text(), language=st.sampled_from(["nl", "en"]))
def test_any_text_gives_a_count(text, language):
    count = count_syllables(text, language=language)
    assert isinstance(count, int) and count >= 0


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.text(max_size=20), max_size=6),
    language=st.sampled_from(["nl", "en"]),
)
def test_count_of_words_joined_by_spaces_is_the_sum(parts, language):
    total = sum(count_syllables(p, language=language) for p in parts)
    assert count_syllables(" ".join(parts), language=language) == total


# --- audio: synthetic ---

RATE_HZ = 16_000


def _voiced_bursts(n: int, *, f0_hz: float = 120.0, rate_hz: int = RATE_HZ) -> Audio:
    """n harmonic 'vowels' of 180 ms, joined by 70 ms dips to -14 dB (no silence between)."""
    syllable_s, dip_s = 0.18, 0.07
    t = np.arange(int(rate_hz * (n * (syllable_s + dip_s) + 0.3))) / rate_hz
    tone = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, 8))
    envelope = np.full_like(t, 0.2)
    for i in range(n):
        start = 0.15 + i * (syllable_s + dip_s)
        inside = (t >= start) & (t < start + syllable_s)
        envelope[inside] = 0.2 + 0.8 * np.sin(np.pi * (t[inside] - start) / syllable_s)
    samples = 0.3 * envelope * tone / np.abs(tone).max()
    samples[t < 0.1] = 0.0  # silence at both ends, as in a recording
    samples[t > t[-1] - 0.1] = 0.0
    return Audio(samples.astype(np.float32), rate_hz)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_voiced_bursts_give_one_nucleus_each(n):
    nuclei = syllable_nuclei_s(_voiced_bursts(n))
    assert len(nuclei) == n
    assert list(nuclei) == sorted(nuclei)


def test_nuclei_fall_inside_the_bursts():
    for i, time_s in enumerate(syllable_nuclei_s(_voiced_bursts(4))):
        start = 0.15 + i * 0.25
        assert start < time_s < start + 0.18


def test_silence_and_noise_give_no_nuclei():
    assert syllable_nuclei_s(Audio(np.zeros(RATE_HZ * 2, dtype=np.float32), RATE_HZ)) == ()
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.1, RATE_HZ * 2)
    bursts = noise * (np.sin(np.linspace(0, 10 * np.pi, noise.size)) > 0)  # 5 unvoiced bursts
    assert syllable_nuclei_s(Audio(bursts.astype(np.float32), RATE_HZ)) == ()


@pytest.mark.parametrize("length", [0, 1, 100, 400])
def test_empty_or_too_short_audio_gives_no_nuclei(length):
    assert syllable_nuclei_s(Audio(np.ones(length, dtype=np.float32) * 0.1, RATE_HZ)) == ()


def test_bad_audio_or_settings_are_input_errors():
    bad = np.full(RATE_HZ, np.nan, dtype=np.float32)
    with pytest.raises(InputError, match="NaN"):
        syllable_nuclei_s(Audio(bad, RATE_HZ))
    with pytest.raises(InputError, match="Audio"):
        syllable_nuclei_s(np.zeros(RATE_HZ))
    with pytest.raises(InputError, match="min_dip_db"):
        syllable_nuclei_s(_voiced_bursts(2), min_dip_db=0.0)


def test_nuclei_are_cheap():
    audio = _voiced_bursts(40)  # 10.3 s
    syllable_nuclei_s(audio)
    best_s = min(_timed(lambda: syllable_nuclei_s(audio)) for _ in range(3))
    assert best_s < 0.05 * audio.duration_s / 10


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# --- audio: real speech ---

def test_nuclei_match_transcripts_of_human_flemish_speech():
    wavs = sorted(FLEMISH.glob("*.wav"))
    if not wavs:
        pytest.skip(f"shared test speech {FLEMISH} is not present")
    errors = []
    for wav in wavs:
        expected = count_syllables(wav.with_suffix(".txt").read_text(), language="nl")
        found = len(syllable_nuclei_s(load_audio(wav)))
        errors.append((found - expected) / expected)
        print(f"{wav.name}: transcript {expected} syllables, nuclei {found}")
        assert abs(found - expected) <= 0.25 * expected, wav.name
    median = statistics.median(abs(e) for e in errors)
    print(f"median absolute error {median:.1%}")
    assert median <= 0.15


ESPEAK_TEXT = (
    "Goedenavond, huisartsenpost Utrecht, u spreekt met Sanne. Ik begrijp dat u boos bent, "
    "maar ik kan u niet helpen als u tegen mij blijft schreeuwen. De dokter belt u binnen een "
    "uur terug."
)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("words_per_minute", [120, 180])
def test_nuclei_of_espeak_speech_at_two_rates(tmp_path, words_per_minute):
    wav = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "nl", "-s", str(words_per_minute), "-w", str(wav), ESPEAK_TEXT],
        check=True, timeout=60,
    )
    expected = count_syllables(ESPEAK_TEXT, language="nl")
    found = len(syllable_nuclei_s(load_audio(wav)))
    assert abs(found - expected) <= 0.2 * expected, (found, expected)
