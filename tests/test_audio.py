"""Loading audio: common formats, sample rates, sample formats and channels."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile
from conftest import speech_file

from roleplay.audio.clip import Audio, load_audio
from roleplay.core.errors import InputError


def _tone(rate: int, seconds: float = 1.0, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(a: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(a.samples))
    return float(np.fft.rfftfreq(len(a.samples), 1 / a.rate_hz)[np.argmax(spectrum)])


@pytest.mark.parametrize("fmt, subtype, rate", [
    ("WAV", "PCM_16", 16000), ("WAV", "PCM_U8", 8000), ("WAV", "PCM_24", 44100), ("WAV", "FLOAT", 96000),
    ("FLAC", "PCM_16", 22050), ("OGG", "VORBIS", 48000),
])
def test_formats_and_rates_load_as_float_mono(tmp_path, fmt, subtype, rate):
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, _tone(rate), rate, format=fmt, subtype=subtype)
    a = load_audio(path)
    assert a.rate_hz == rate and a.samples.dtype == np.float32
    assert a.duration_s == pytest.approx(1.0, abs=0.01)
    assert _peak_hz(a) == pytest.approx(440.0, abs=2.0)
    b = a.resampled(16000)
    assert b.rate_hz == 16000 and _peak_hz(b) == pytest.approx(440.0, abs=2.0)


def test_mp3_through_ffmpeg(tmp_path):
    wav, mp3 = tmp_path / "t.wav", tmp_path / "t.mp3"
    soundfile.write(wav, _tone(44100), 44100)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(mp3)], check=True)
    a = load_audio(mp3)
    assert _peak_hz(a) == pytest.approx(440.0, abs=2.0)


def test_real_stereo_flac_and_mp3_from_shared_speech():
    jfk = load_audio(speech_file("en_faster_whisper_tests/jfk.flac"), channel=1)
    assert jfk.rate_hz == 44100 and jfk.duration_s == pytest.approx(11.0, abs=0.1)
    intro = load_audio(speech_file("tts_nl_parkiet_dialogues/intro.mp3"))
    assert intro.duration_s == pytest.approx(7.57, abs=0.1)


def test_channels_are_selected_not_mixed(tmp_path):
    path = tmp_path / "st.wav"
    soundfile.write(path, np.stack([_tone(16000, hz=200), _tone(16000, hz=1000)], 1), 16000)
    assert _peak_hz(load_audio(path, channel=0)) == pytest.approx(200, abs=2)
    assert _peak_hz(load_audio(path, channel=1)) == pytest.approx(1000, abs=2)
    with pytest.raises(InputError, match="has no channel 2; it has 2"):
        load_audio(path, channel=2)


def test_infinite_samples_are_refused(tmp_path):
    path = tmp_path / "inf.wav"
    x = _tone(16000)
    x[100] = np.inf
    soundfile.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_audio(path)
