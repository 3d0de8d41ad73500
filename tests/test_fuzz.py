"""Fuzzing the entry points with hypothesis: the scenario loader on mutated real scenario files, the
audio loader on random bytes and mutated real files, the call-directory reader on damaged calls, and
the analysis on random short signals. Nothing may escape but the project's own error type, always
one line. (Random YAML-ish text and random mappings are fuzzed in tests/test_scenario.py.)

Deterministic for CI: `derandomize=True`, no example database."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from roleplay.analysis.pipeline import analyse_audio, analyse_turn
from roleplay.audio.clip import Audio, load_audio
from roleplay.caller.scenario import load_scenario, scenario_from_text
from roleplay.core.errors import RoleplayError
from roleplay.recording.calldir import CallWriter, load_call
from roleplay.speech.asr import Word

REPO = Path(__file__).resolve().parent.parent
SCENARIO_FILES = sorted((REPO / "scenarios").glob("*.yaml"))
RATE_HZ = 16_000

_FUZZ = settings(derandomize=True, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(max_examples: int) -> settings:
    return settings(_FUZZ, max_examples=max_examples)  # modest counts: the whole file runs in CI


def one_line(exc: BaseException) -> None:
    assert isinstance(exc, RoleplayError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc) and str(exc).strip()
    # what was refused, for --hypothesis-show-statistics (the path and numbers cut off)
    event("refused: " + " ".join(w for w in str(exc).split(": ")[-1].split()[:4] if not any(c.isdigit() for c in w)))


@pytest.fixture(scope="module")
def scratch():
    d = Path(tempfile.mkdtemp(prefix="roleplay-fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- scenario files


def _mutate(data: bytes, draw) -> bytes:
    """One to four byte-level edits: flip, insert, delete, duplicate a line, cut the file."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "dup-line", "cut", "swap-lines"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif kind == "insert":
            junk = draw(st.sampled_from([b":", b"-", b"  ", b"\t", b"&a ", b"*a", b"[", b"{", b"'", b"\x00",
                                         b"\n", b"\xff", b"!!python/name:os.system ", b"~", b"1e999", b"#"]))
            data = data[:at] + junk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)):]
        elif kind == "cut":
            data = data[:at]
        else:
            lines = data.split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "dup-line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


@fuzz(150)
@given(data=st.data())
def test_mutated_real_scenario_files_load_or_give_one_line(scratch, data):
    source = data.draw(st.sampled_from(SCENARIO_FILES))
    mutated = _mutate(source.read_bytes(), data.draw)
    path = scratch / source.name  # same name: the id must still match the file
    path.write_bytes(mutated)
    try:
        scenario = load_scenario(path)
    except Exception as exc:  # noqa: BLE001 - the point is which exceptions escape
        one_line(exc)
        assert str(exc).startswith(str(path)), exc
    else:
        assert scenario.id == source.stem and scenario.lines["opening"]


@fuzz(100)
@given(data=st.data())
def test_mutated_scenario_text_through_the_text_entry_point(data):
    source = data.draw(st.sampled_from(SCENARIO_FILES))
    text = _mutate(source.read_bytes(), data.draw).decode("utf-8", errors="surrogateescape")
    try:
        scenario_from_text(text, path=Path(source.name))
    except Exception as exc:  # noqa: BLE001
        one_line(exc)


# --------------------------------------------------------------------------- audio files


def _real_files() -> dict[str, bytes]:
    """Small real files of the formats and sample types the loader meets."""
    t = np.arange(RATE_HZ // 5) / RATE_HZ
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    out = {}
    for name, fmt, subtype, data, rate in [
        ("pcm16.wav", "WAV", "PCM_16", tone, RATE_HZ),
        ("pcm24-stereo.wav", "WAV", "PCM_24", np.stack([tone, -tone], 1), 44100),
        ("u8.wav", "WAV", "PCM_U8", tone, 8000),
        ("float.wav", "WAV", "FLOAT", tone, 22050),
        ("speech.flac", "FLAC", "PCM_16", tone, RATE_HZ),
        ("speech.ogg", "OGG", "VORBIS", tone, RATE_HZ),
    ]:
        buf = io.BytesIO()
        soundfile.write(buf, data, rate, format=fmt, subtype=subtype)
        out[name] = buf.getvalue()
    return out


REAL_AUDIO = _real_files()


def _load(path: Path) -> None:
    try:
        audio = load_audio(path)
    except Exception as exc:  # noqa: BLE001
        one_line(exc)
        assert str(path) in str(exc)
    else:
        assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1 and audio.rate_hz > 0
        assert np.all(np.isfinite(audio.samples))


@fuzz(120)
@given(raw=st.binary(max_size=3000), suffix=st.sampled_from([".wav", ".flac", ".mp3", ".ogg", ".m4a", ""]))
def test_random_bytes_are_refused_in_one_line(scratch, raw, suffix):
    path = scratch / f"random{suffix}"
    path.write_bytes(raw)
    _load(path)


@fuzz(200)
@given(data=st.data())
def test_mutated_real_audio_files_load_or_give_one_line(scratch, data):
    name = data.draw(st.sampled_from(sorted(REAL_AUDIO)))
    raw = bytearray(REAL_AUDIO[name])
    for _ in range(data.draw(st.integers(1, 6))):
        # mostly the header, where the sizes, rate, channels and format live
        at = data.draw(st.integers(0, min(len(raw) - 1, data.draw(st.sampled_from([64, 64, 256, len(raw)])))))
        kind = data.draw(st.sampled_from(["byte", "u32", "cut", "insert"]))
        if kind == "byte":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "u32":  # a size, rate or count field set to something extreme
            value = data.draw(st.sampled_from([0, 1, 2, 255, 65535, 2**31 - 1, 2**32 - 1, 7, 96000, 48]))
            raw[at:at + 4] = value.to_bytes(4, "little")
        elif kind == "cut":
            del raw[at:]
            if not raw:
                raw += b"R"
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    path = scratch / name
    path.write_bytes(bytes(raw))
    _load(path)


# --------------------------------------------------------------------------- call directories


@pytest.fixture(scope="module")
def a_call(scratch):
    call = scratch / "call-template"
    t = np.arange(RATE_HZ // 2) / RATE_HZ
    with CallWriter(call, rate_hz=RATE_HZ, meta={"trainee": "anna", "language": "nl"}) as w:
        w.append_both(0.1 * np.sin(2 * np.pi * 200 * t), 0.1 * np.sin(2 * np.pi * 150 * t))
        w.event("call-start", t_s=0.0, anger=6.0)
        w.event("caller-line", t_s=0.1, text="Waar blijft de dokter?", end_s=0.4, anger=6.0)
    return call


@fuzz(120)
@given(data=st.data())
def test_damaged_call_directories_load_or_give_one_line(scratch, a_call, data):
    call = scratch / "call"
    shutil.rmtree(call, ignore_errors=True)
    shutil.copytree(a_call, call)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(["meta.json", "events.jsonl", "caller.wav", "trainee.wav"]))
        if not (call / name).is_file():
            continue
        raw = bytearray((call / name).read_bytes())
        at = data.draw(st.integers(0, min(max(len(raw) - 1, 0), 80)))
        kind = data.draw(st.sampled_from(["byte", "cut", "insert", "remove"]))
        if kind == "remove":
            (call / name).unlink()
            continue
        if kind == "byte" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.sampled_from([b"{", b"\"", b"\xff\xfe", b"\n", b"null", b"[1]", b"1e999"]))
        (call / name).write_bytes(bytes(raw))
    try:
        rec = load_call(call)
    except Exception as exc:  # noqa: BLE001
        one_line(exc)
    else:
        assert rec.caller is not None or rec.trainee is not None


# --------------------------------------------------------------------------- the analysis


class TinyTranscriber:
    """One word per speech segment: the logic runs for real, the recognizer is skipped (speed)."""

    WORDS = ("ja", "ik begrijp dat u boos bent", "ja maar dat klopt niet", "wat ik wel kan doen", "", "hm")

    def transcribe(self, audio, segments, *, language):
        return tuple(Word(self.WORDS[i % len(self.WORDS)], s.start_s, s.end_s, 0.9)
                     for i, s in enumerate(segments))


@pytest.fixture(scope="module")
def speech_samples():
    from roleplay.bench.live import espeak

    return espeak("Goedenavond, huisartsenpost. Wat kan ik voor u doen?").samples


ALL_KINDS = ("speech", "zeros", "speech", "noise", "tone", "speech", "impulses", "dc")


@st.composite
def signals(draw, speech: np.ndarray, kinds: tuple[str, ...] = ALL_KINDS, min_s: float = 0.0):
    """A short signal: silence, noise, tones, or speech, at an odd rate, gain, clipping, length, NaN."""
    rate = draw(st.sampled_from([16000, 8000, 11025, 22050, 44100, 48000]))
    # a few typical lengths first (derandomized draws favour them), then anything up to 2.5 s
    n = int(rate * draw(st.one_of(st.sampled_from([2.0, 1.0, 2.5]), st.floats(min_s, 2.5))))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "zeros":
        x = np.zeros(n)
    elif kind == "noise":
        x = rng.standard_normal(n) * 0.1
    elif kind == "tone":
        x = 0.3 * np.sin(2 * np.pi * draw(st.floats(20, 3000)) * np.arange(n) / rate)
    elif kind == "speech":
        x = Audio(speech, RATE_HZ).resampled(rate).samples.astype(np.float64)
        start = draw(st.one_of(st.sampled_from([0, len(x) // 3]), st.integers(0, len(x))))
        lead = draw(st.one_of(st.sampled_from([0, rate // 4]), st.integers(0, rate)))
        x = np.concatenate([np.zeros(lead), x[start:]])
        if draw(st.booleans()):  # cut off mid-word, or keep the whole rest
            x = x[:n]
    elif kind == "impulses":
        x = np.zeros(n)
        x[rng.integers(0, max(n, 1), size=min(n, 20))] = 1.0
    else:
        x = np.full(n, draw(st.floats(-1, 1)))
    x = x * 10 ** (draw(st.one_of(st.sampled_from([0.0, -12.0, 12.0]), st.floats(-60, 30))) / 20)
    if draw(st.booleans()):
        x = np.clip(x, -1, 1)
    if len(x) and draw(st.integers(0, 9)) == 0:
        x[rng.integers(0, len(x))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return Audio(np.ascontiguousarray(x, dtype=np.float32), rate)


def _analyse(caller, trainee, language, calibration, transcriber) -> None:
    try:
        analysis = analyse_audio(caller=caller, trainee=trainee, language=language, transcriber=transcriber,
                                 calibration=calibration)
    except Exception as exc:  # noqa: BLE001
        one_line(exc)
    else:
        event("analysed")
        assert analysis.turns
        for turn in analysis.turns:
            assert 0 <= turn.start_s <= turn.end_s <= analysis.duration_s + 0.05
            for value in (turn.speech_rate_syll_s, turn.loudness_dbfs, turn.pitch_median_hz):
                assert value is None or np.isfinite(value)


@pytest.fixture(scope="module")
def signal_strategy(speech_samples):
    return signals(speech_samples)


@pytest.mark.slow
@fuzz(100)
@given(data=st.data())
def test_analysis_of_random_short_signals(signal_strategy, data):
    def maybe(strategy, none_in: int):  # mostly there, sometimes missing
        return strategy if data.draw(st.integers(1, none_in)) > 1 else st.none()

    trainee = data.draw(maybe(signal_strategy, 6))
    caller = data.draw(maybe(signal_strategy, 3))
    calibration = data.draw(maybe(signal_strategy, 2))
    language = data.draw(st.sampled_from(["nl", "en", "nl", "en", "nl", "en", "nl", "de"]))
    _analyse(caller, trainee, language, calibration, TinyTranscriber())


@fuzz(60)
@given(data=st.data())
def test_one_turn_analysis_of_random_short_signals(signal_strategy, data):
    audio = data.draw(signal_strategy)
    try:
        turn = analyse_turn(audio=audio, speaker=data.draw(st.sampled_from(["trainee", "caller", "nobody"])),
                            language="nl", transcriber=TinyTranscriber(),
                            offset_s=data.draw(st.floats(0, 100)))
    except Exception as exc:  # noqa: BLE001
        one_line(exc)
    else:
        assert turn is None or turn.start_s <= turn.end_s


@pytest.mark.model
@fuzz(6)
@given(data=st.data())
def test_analysis_with_the_real_model_on_random_signals(speech_samples, transcriber, data):
    speechy = signals(speech_samples, kinds=("speech",), min_s=1.0)
    _analyse(data.draw(st.one_of(st.none(), signals(speech_samples))), data.draw(speechy), "nl", None, transcriber)
