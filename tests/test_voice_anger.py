"""Anger you can hear: rate, pitch, pitch range and level measured on real espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

from roleplay.audio.clip import Audio
from roleplay.bench.voices import level_db, measure_voice, semitones_apart
from roleplay.speech.voice import LIMIT_PEAK, is_shouted, load_voice, louder, synthesize

SAID = {"nl": "Ik bel nu al voor de derde keer, en mijn dochter heeft nog steeds hoge koorts.",
        "en": "This is the third time I am calling, and my daughter still has a high fever."}
ANGERS = (0.0, 5.0, 10.0)
ESPEAK_CALLERS = ("nl-man-middle", "nl-woman-young", "en-woman")
SHOUT_MIN_DB = 4.0  # a shouted line is at least this much louder than the same line said
VOICES_APART_ST = 4.0  # two caller voices of a language: medians at least this far apart


@pytest.fixture(scope="module")
def by_anger():
    out = {}
    for vid in ESPEAK_CALLERS:
        profile = load_voice(vid)
        out[vid] = [measure_voice(synthesize(SAID[profile.language], voice=profile, anger=a))
                    for a in ANGERS]
    return out


@pytest.mark.parametrize("voice_id", ESPEAK_CALLERS)
def test_anger_is_faster_higher_wider_and_louder(by_anger, voice_id):
    calm, mid, furious = by_anger[voice_id]
    assert calm.duration_s > mid.duration_s > furious.duration_s
    assert calm.f0_median_hz < mid.f0_median_hz < furious.f0_median_hz
    assert calm.f0_spread_st < mid.f0_spread_st < furious.f0_spread_st
    assert furious.f0_spread_st - calm.f0_spread_st >= 2.0  # a range you can hear, not noise
    assert calm.level_db < mid.level_db < furious.level_db


@pytest.mark.parametrize("voice_id", ("nl-man-middle", "en-woman"))
def test_shouted_line_is_clearly_louder(voice_id):
    profile = load_voice(voice_id)
    text = SAID[profile.language]
    said = synthesize(text, voice=profile, anger=9)
    shouted = synthesize(text.replace(",", "!"), voice=profile, anger=9)
    assert level_db(shouted) - level_db(said) >= SHOUT_MIN_DB
    assert np.abs(shouted.samples).max() <= LIMIT_PEAK + 1e-6  # limited, not clipped


@pytest.mark.parametrize(("a", "b"), [("nl-man-middle", "nl-woman-young"), ("nl-man-old", "nl-woman-old"),
                                      ("en-man", "en-woman")])
def test_two_caller_voices_per_language_differ(a, b):
    pa, pb = load_voice(a), load_voice(b)
    ma = measure_voice(synthesize(SAID[pa.language], voice=pa, anger=3))
    mb = measure_voice(synthesize(SAID[pb.language], voice=pb, anger=3))
    assert semitones_apart(ma.f0_median_hz, mb.f0_median_hz) >= VOICES_APART_ST


def test_shouting_needs_anger_and_an_exclamation():
    assert is_shouted("Nu!", 8) and not is_shouted("Nu.", 10) and not is_shouted("Goedemiddag!", 2)
    p = load_voice("nl-man-middle")
    assert p.prosody_at(9, text="Nu!").gain_db == p.anger_effect.shout_gain_db > 0
    assert p.prosody_at(9, text="Nu.").gain_db == 0 == p.prosody_at(9).gain_db


def test_louder_bends_peaks_under_the_ceiling():
    t = np.arange(16_000) / 16_000
    audio = Audio((0.6 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16_000)
    up = louder(audio, gain_db=12)
    assert np.abs(up.samples).max() <= LIMIT_PEAK
    assert level_db(up) - level_db(audio) > 3.0
    assert louder(audio, gain_db=0) is audio


def test_piper_voice_rises_with_anger_by_a_shift():
    profile = load_voice("en-man")
    calm = measure_voice(synthesize(SAID["en"], voice=profile, anger=0))
    furious = measure_voice(synthesize(SAID["en"], voice=profile, anger=10))
    # Piper has no pitch control: the shift after synthesis must show (espeak-ng if no Piper)
    assert semitones_apart(calm.f0_median_hz, furious.f0_median_hz) >= 3.0
    assert furious.f0_median_hz > calm.f0_median_hz
    assert furious.duration_s < 0.85 * calm.duration_s  # the shift did not undo the rate
