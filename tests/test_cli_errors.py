"""Bad input through the command line: one line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import assert_one_line


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roleplay", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode != 0
    assert_one_line(r.stderr, *fragments)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rate = 16000
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    (d / "text.mp3").write_text("this is not audio at all\n" * 50)
    soundfile.write(d / "silence.wav", np.zeros(rate * 3, dtype=np.float32), rate)
    t = np.arange(rate * 2) / rate
    soundfile.write(d / "stereo.wav", np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 300 * t)], 1) * 0.1,
                    rate)
    soundfile.write(d / "nan.wav", np.full(rate, np.nan, dtype=np.float32), rate, subtype="FLOAT")
    return d


@pytest.mark.parametrize("args, fragments", [
    (["analyse", "--trainee", "{d}/missing.wav"], ["missing.wav", "no such file"]),
    (["analyse", "--trainee", "{d}/empty.wav"], ["empty.wav", "empty file"]),
    (["analyse", "--trainee", "{d}/corrupt.wav"], ["corrupt.wav", "not a readable audio file"]),
    (["analyse", "--trainee", "{d}/text.mp3"], ["text.mp3", "not a readable audio file"]),
    (["analyse", "--trainee", "{d}/nan.wav"], ["nan.wav", "NaN"]),
    (["analyse", "{d}/stereo.wav", "--caller-channel", "0", "--trainee-channel", "5"],
     ["stereo.wav", "has no channel 5", "0 to 1"]),
    (["analyse", "{d}/stereo.wav"], ["--caller-channel", "2 channels"]),
    (["analyse", "{d}/stereo.wav", "--caller-channel", "1", "--trainee-channel", "1"], ["both 1"]),
    (["analyse", "--trainee", "{d}/stereo.wav", "--language", "fr"], ["unknown language 'fr'"]),
    (["analyse", "{d}"], ["not a call directory"]),
    (["analyse"], ["nothing to analyse"]),
    (["analyse", "--caller", "{d}/stereo.wav"], ["--caller needs --trainee"]),
    (["scenarios", "show", "no-such-scenario"], ["unknown scenario"]),
    (["voices", "preview", "no-such-voice"], ["no-such-voice"]),
])
def test_bad_input_is_one_line(files, args, fragments):
    r = run(*[a.format(d=files) for a in args])
    assert_one_line_error(r, *fragments)


@pytest.mark.model
def test_silence_only_is_one_line(files, tmp_path):
    r = run("analyse", "--trainee", str(files / "silence.wav"), cwd=tmp_path)
    assert_one_line_error(r, "no speech found")
    assert not list(tmp_path.glob("*.json"))  # no half result written


def test_bad_cli_value_is_usage_error():
    r = run("analyse", "--caller-channel", "x")
    assert r.returncode == 2 and "invalid int value" in r.stderr and "Traceback" not in r.stderr
