"""prosody.pyin is librosa.pyin with a faster Viterbi search: the two must give the same f0 and
voicing, frame for frame, on real speech and on signals that jump further than pyin's transitions
allow (where the search falls back to all predecessors)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from conftest import speech_file

from roleplay.audio.clip import Audio, load_audio
from roleplay.speech import prosody

RATE_HZ = 16_000


def _librosa_pyin(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f0, voiced, _ = librosa.pyin(samples, fmin=prosody.PITCH_FMIN_HZ, fmax=prosody.PITCH_FMAX_HZ, sr=RATE_HZ,
                                 frame_length=1024, hop_length=640, center=True)
    return f0, voiced


def _assert_same(samples: np.ndarray) -> None:
    f0, voiced = prosody.pyin(samples, RATE_HZ)
    ref_f0, ref_voiced = _librosa_pyin(samples)
    assert voiced.any()
    np.testing.assert_array_equal(voiced, ref_voiced)
    np.testing.assert_array_equal(f0, ref_f0)  # NaN where unvoiced, in both


@pytest.mark.parametrize("relative", ["flemish_rdh_dutch_vl_tts/vl00203.wav", "en_pysptk_arctic/arctic_a0007.wav"])
def test_pyin_matches_librosa_on_human_speech(relative: str) -> None:
    audio = load_audio(speech_file(relative)).resampled(RATE_HZ)
    _assert_same(audio.samples)


def test_pyin_matches_librosa_across_jumps_and_noise() -> None:
    """Tones two octaves apart with no gap, noise, a quiet stretch: steps pyin's band does not allow."""
    t = np.arange(int(0.6 * RATE_HZ)) / RATE_HZ
    rng = np.random.default_rng(7)
    parts = [0.5 * np.sin(2 * np.pi * 90 * t), 0.5 * np.sin(2 * np.pi * 360 * t), 0.2 * rng.standard_normal(len(t)),
             0.001 * rng.standard_normal(len(t)), 0.4 * np.sin(2 * np.pi * 480 * t), 0.4 * np.sin(2 * np.pi * 65 * t)]
    _assert_same(np.concatenate(parts).astype(np.float32))


def test_pitch_of_tones_and_silence() -> None:
    t = np.arange(RATE_HZ) / RATE_HZ
    tone = prosody.pitch(Audio((0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), RATE_HZ))
    assert tone.median_hz is not None and abs(prosody.semitones(tone.median_hz, 180.0)) < 0.1
    assert tone.spread_st is not None and tone.spread_st < 0.2
    assert prosody.pitch(Audio(np.zeros(RATE_HZ, dtype=np.float32), RATE_HZ)).median_hz is None
