"""The bad-input catalogue through the command line, beyond tests/test_cli_errors.py: odd rates and
sample formats (analysed), damaged and disguised files, too many channels, hours-long files (refused
from the header), noise, another language, broken scenarios of every kind, bad names and values.

Each error is one line on stderr that names the input and what was expected, exit code 2, no
traceback, and nothing already recorded changes. Speech is real espeak-ng; the command runs in this
process (`roleplay.cli.main.main`) with the session's Whisper model instead of loading its own."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
from helpers import assert_one_line

import roleplay.app.demo  # noqa: F401 - now: cmd_demo binds sys.stdout at import; a test's is closed after it
from roleplay.audio.clip import Audio
from roleplay.cli.main import main as cli_main
from roleplay.recording.calldir import CallWriter

RATE_HZ = 16_000
SENTENCE = "Goedenavond, huisartsenpost, u spreekt met Anna. Wat kan ik voor u doen?"
REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "scenarios" / "nl-visite-derde-keer.yaml"


def espeak(text: str, voice: str = "nl") -> Audio:
    from roleplay.bench.live import espeak as speak

    return speak(text, voice=voice, speed_wpm=150)


def wav_header(*, rate_hz: int, channels: int, bits: int, data_bytes: int) -> bytes:
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate_hz, rate_hz * block, block, bits)
            + b"data" + struct.pack("<I", data_bytes))


def sparse_wav(path: Path, *, hours: float, rate_hz: int) -> Path:
    """A long silent 16-bit WAV that takes no disk space (a hole), so reading it would be slow."""
    data_bytes = int(hours * 3600 * rate_hz) * 2
    with open(path, "wb") as f:
        f.write(wav_header(rate_hz=rate_hz, channels=1, bits=16, data_bytes=data_bytes))
        f.truncate(44 + data_bytes)
    return path


@pytest.fixture(scope="module")
def speech():
    return espeak(SENTENCE)


@pytest.fixture(scope="module")
def files(tmp_path_factory, speech):
    d = tmp_path_factory.mktemp("bad-inputs")
    s = speech.samples
    for rate in (8000, 44100, 96000):
        soundfile.write(d / f"rate-{rate}.wav", speech.resampled(rate).samples, rate, subtype="PCM_16")
    for subtype in ("PCM_U8", "PCM_24", "FLOAT", "DOUBLE"):
        soundfile.write(d / f"{subtype.lower()}.wav", s, RATE_HZ, subtype=subtype)
    soundfile.write(d / "clipped.wav", np.clip(s * 20, -1, 1), RATE_HZ)
    inf = s.copy()
    inf[len(inf) // 2] = np.inf
    soundfile.write(d / "inf.wav", inf, RATE_HZ, subtype="FLOAT")
    # six channels: the caller on 0, the trainee on 1 (later), silence elsewhere
    caller = espeak("Ik wacht al drie uur op de dokter!")
    six = np.zeros((len(caller.samples) + len(s) + RATE_HZ, 6), np.float32)
    six[: len(caller.samples), 0] = caller.samples
    six[len(caller.samples) + RATE_HZ // 2:][: len(s), 1] = s
    soundfile.write(d / "six-channels.wav", six, RATE_HZ)
    soundfile.write(d / "noise.wav", (np.random.default_rng(7).standard_normal(RATE_HZ * 3) * 0.1), RATE_HZ)
    soundfile.write(d / "english.wav", espeak("Good evening, this is the out of hours doctor, how can I help you?",
                                               voice="en").samples, RATE_HZ)
    raw = (d / "rate-44100.wav").read_bytes()
    (d / "truncated.wav").write_bytes(raw[: len(raw) * 2 // 3])  # header still claims the whole length
    (d / "truncated-header.wav").write_bytes(raw[:30])
    soundfile.write(d / "speech.flac", s, RATE_HZ)
    raw = (d / "speech.flac").read_bytes()
    (d / "truncated.flac").write_bytes(raw[: len(raw) * 2 // 3])
    # files that only look like audio
    (d / "picture.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (d / "page.ogg").write_text("<html><body>call recording</body></html>\n" * 20)
    with zipfile.ZipFile(d / "archive.flac", "w") as z:
        z.writestr("notes.txt", "not audio " * 100)
    (d / "random.mp3").write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    _video_only(d / "video.mp4")
    (d / "rate-zero.wav").write_bytes(wav_header(rate_hz=0, channels=1, bits=16, data_bytes=3200) + bytes(3200))
    (d / "no-channels.wav").write_bytes(wav_header(rate_hz=RATE_HZ, channels=0, bits=16, data_bytes=3200)
                                        + bytes(3200))
    (d / "1000-channels.wav").write_bytes(wav_header(rate_hz=RATE_HZ, channels=1000, bits=16, data_bytes=32000)
                                          + bytes(32000))
    sparse_wav(d / "two-hours-one-minute.wav", hours=2 + 1 / 60, rate_hz=8000)
    sparse_wav(d / "five-hours.wav", hours=5, rate_hz=48000)  # 1.7 GB if it were read (3.5 GB as float)
    return d


def _video_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        stream = c.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)


@pytest.fixture()
def run(capfd, monkeypatch, tmp_path):
    """`roleplay ARGS` in this process, in an empty directory; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)

    def go(*argv: str, transcriber=None) -> tuple[int, str, str]:
        if transcriber is not None:
            import roleplay.app.analyse

            monkeypatch.setattr(roleplay.app.analyse, "load_transcriber", lambda model, **_: transcriber)
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capfd.readouterr()
        return code, out, err

    return go


def assert_one_line_error(code: int, err: str, *fragments: str, exit_code: int = 2) -> str:
    assert code == exit_code, err
    return assert_one_line(err, *fragments)


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- audio that is analysed

ANALYSED = [
    # (file, extra args, what the analysis must say)
    ("rate-8000.wav", [], "sampled at 8000 Hz"),  # telephone band: analysed, with a warning
    ("rate-44100.wav", [], None),
    ("rate-96000.wav", [], None),
    ("pcm_u8.wav", [], None),
    ("pcm_24.wav", [], None),
    ("float.wav", [], None),
    ("double.wav", [], None),
    ("clipped.wav", [], "clips"),
    ("truncated.wav", [], None),  # the header promises more than is there: read what is there
    ("truncated.flac", [], None),  # decoded up to the damage, with a note on stderr
    ("english.wav", ["--language", "nl"], None),  # another language than asked: still analysed
]


@pytest.mark.model
@pytest.mark.parametrize("name, extra, warning", ANALYSED, ids=[a[0] for a in ANALYSED])
def test_odd_but_valid_audio_is_analysed(files, run, transcriber, speech, name, extra, warning):
    code, out, err = run("analyse", "--trainee", files / name, "--json", "result.json", "--quiet", *extra,
                         transcriber=transcriber)
    assert code == 0, err
    assert "Traceback" not in err
    data = json.loads(Path("result.json").read_text())
    trainee = [t for t in data["turns"] if t["speaker"] == "trainee"]
    assert trainee and sum(t["syllables"] for t in trainee) >= 8
    if name.startswith("truncated"):
        assert data["duration_s"] < speech.duration_s * 0.8
    else:
        assert abs(data["duration_s"] - speech.duration_s) < 0.5 or name == "english.wav"
    if warning:
        assert any(warning in w for w in data["warnings"]), data["warnings"]
    if name == "truncated.flac":
        assert "damaged or cut off after" in err
    if name != "rate-8000.wav":  # espeak-ng through a telephone band is too much for Whisper base
        assert " ".join(t["text"] for t in trainee).strip()


@pytest.mark.model
def test_many_channels_analyse_when_the_channels_are_chosen(files, run, transcriber):
    code, out, err = run("analyse", files / "six-channels.wav", "--caller-channel", 0, "--trainee-channel", 1,
                         "--json", "six.json", "--quiet", transcriber=transcriber)
    assert code == 0, err
    speakers = [t["speaker"] for t in json.loads(Path("six.json").read_text())["turns"]]
    assert speakers[0] == "caller" and "trainee" in speakers


@pytest.mark.model
def test_noise_only_names_the_file_and_writes_nothing(files, run, transcriber, tmp_path):
    code, out, err = run("analyse", "--trainee", files / "noise.wav", transcriber=transcriber)
    assert_one_line_error(code, err, "noise.wav", "no speech found")
    assert not list(tmp_path.glob("*.json"))


# --------------------------------------------------------------------------- audio that is refused

REFUSED = [
    # (args, fragments of the one error line)
    (["--trainee", "inf.wav"], ["inf.wav", "NaN or infinite samples", "expected finite audio"]),
    (["--trainee", "six-channels.wav"], ["six-channels.wav", "has 6 channels", "expected mono or stereo",
                                         "--caller-channel"]),
    (["--caller", "six-channels.wav", "--trainee", "float.wav"], ["six-channels.wav", "has 6 channels"]),
    (["--trainee", "float.wav", "--calibration", "six-channels.wav"], ["six-channels.wav", "has 6 channels"]),
    (["--trainee", "1000-channels.wav"], ["1000-channels.wav", "1000 channels", "expected at most 32"]),
    (["--trainee", "two-hours-one-minute.wav"], ["two-hours-one-minute.wav", "121 minutes long",
                                                 "expected at most 120 minutes"]),
    (["--trainee", "five-hours.wav"], ["five-hours.wav", "300 minutes long"]),
    (["--trainee", "truncated-header.wav"], ["truncated-header.wav", "not a readable audio file", "expected wav"]),
    (["--trainee", "picture.wav"], ["picture.wav", "has no audio stream", "expected wav"]),
    (["--trainee", "page.ogg"], ["page.ogg", "not a readable audio file"]),
    (["--trainee", "archive.flac"], ["archive.flac", "not a readable audio file"]),
    (["--trainee", "random.mp3"], ["random.mp3", "expected wav"]),
    (["--trainee", "video.mp4"], ["video.mp4", "has no audio stream"]),
    (["--trainee", "rate-zero.wav"], ["rate-zero.wav", "expected wav"]),
    (["--trainee", "no-channels.wav"], ["no-channels.wav", "expected wav"]),
    (["six-channels.wav", "--caller-channel", "0", "--trainee-channel", "6"], ["has no channel 6", "0 to 5"]),
    (["six-channels.wav", "--caller-channel", "-1", "--trainee-channel", "0"], ["has no channel -1"]),
    (["--trainee", "float.wav", "--language", "de"], ["unknown language 'de'", "nl, en"]),
]


@pytest.mark.parametrize("args, fragments", REFUSED, ids=[" ".join(a[0]) for a in REFUSED])
def test_bad_audio_is_one_line_and_writes_nothing(files, run, tmp_path, args, fragments):
    started = time.monotonic()
    argv = [str(files / a) if (files / a).exists() else a for a in args]
    code, out, err = run("analyse", *argv, "--model", tmp_path / "model-never-needed")
    assert_one_line_error(code, err, *fragments)
    assert time.monotonic() - started < 10  # refused from the header: the hours are never read
    assert not list(tmp_path.glob("*.json"))


def test_an_hours_long_call_track_is_refused_before_it_is_read(tmp_path, run):
    call = tmp_path / "long-call"
    with CallWriter(call, rate_hz=RATE_HZ, meta={"trainee": "anna"}):
        pass
    sparse_wav(call / "caller.wav", hours=2.5, rate_hz=RATE_HZ)
    before = snapshot(call)
    code, out, err = run("analyse", call)
    assert_one_line_error(code, err, "caller.wav", "150 minutes long", "expected at most 120 minutes")
    assert snapshot(call) == before


@pytest.mark.parametrize("extra, fragments", [
    (["--calibration", "six-channels.wav"], ["six-channels.wav", "has 6 channels"]),
    (["--calibration", "picture.wav"], ["picture.wav", "no audio stream"]),
    (["--language", "fr"], ["unknown language 'fr'"]),
    (["--caller", "float.wav"], ["either PATH or --caller/--trainee"]),
])
def test_errors_leave_an_analysed_call_as_it_was(files, run, tmp_path, extra, fragments):
    call = tmp_path / "call"
    t = np.arange(RATE_HZ) / RATE_HZ
    with CallWriter(call, rate_hz=RATE_HZ, meta={"trainee": "anna", "language": "nl"}) as w:
        w.append_both(0.1 * np.sin(2 * np.pi * 200 * t), 0.1 * np.sin(2 * np.pi * 150 * t))
    (call / "analysis.json").write_text('{"schema": "roleplay-analysis"}')
    (call / "report.html").write_text("<p>the earlier report</p>")
    before = snapshot(call)
    argv = [str(files / a) if (files / a).exists() else a for a in extra]
    code, out, err = run("analyse", call, *argv)
    assert_one_line_error(code, err, *fragments)
    assert snapshot(call) == before


# --------------------------------------------------------------------------- scenarios


def _base() -> dict:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data["id"] = "t-broken"
    return data


def _broken(mutate) -> str:
    data = _base()
    mutate(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _set(*path_and_value):
    *path, value = path_and_value

    def mutate(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return mutate


def _trigger(spec: dict, swearing: bool = False):
    def mutate(data):
        data["lines"]["retelling"] = ["Ik zei het toch al!"]
        data["triggers"] = {"retelling": spec}
        if swearing:
            data["swearing"] = True
            data["lines"]["abusive"] = ["Idioot!"]

    return mutate


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))

SCENARIOS = [
    # (case, file text or bytes, fragments of the error line)
    ("missing field", _broken(lambda d: d.pop("who")), ["who: missing field"]),
    ("wrong type", _broken(_set("anger", "start", "very")), ["anger.start: expected a number"]),
    ("wrong type list", _broken(_set("needs", "greeting")), ["needs: expected"]),
    ("unknown advice id", _broken(lambda d: d["needs"].append("be-nice")), ["needs[", "expected one of"]),
    ("unknown voice", _broken(_set("caller_voice", "nl-robot")), ["caller_voice: expected one of"]),
    ("missing audio", _broken(_set("lines", "opening", 0, {"text": "Hallo.", "audio": "opnames/hallo.wav"})),
     ["lines.opening[0].audio", "does not exist"]),
    ("group never used", _broken(_set("lines", "retelling", ["Nog een keer!"])),
     ["lines.retelling", "needs an entry triggers.retelling"]),
    ("trigger above hang-up", _broken(_trigger({"when": "escalating", "min_anger": 9.5})),
     ["triggers.retelling.min_anger", "never 'escalating' at anger 9.5"]),
    ("trigger when satisfied too angry", _broken(_trigger({"when": "satisfied", "min_anger": 5})),
     ["triggers.retelling.min_anger", "expected below"]),
    ("abusive trigger without swearing", _broken(_trigger({"when": "abusive"})),
     ["triggers.retelling.when", "never abusive when swearing is false"]),
    ("trigger on the opening", _broken(_trigger({"when": "opening"})), ["triggers.retelling.when"]),
    ("abusive lines without swearing", _broken(_set("lines", "abusive", ["Idioot!"])),
     ["lines.abusive", "only spoken when swearing is true"]),
    ("billion laughs", LAUGHS, ["refused"]),
    ("huge file", "debrief: '" + "x" * 1_100_000 + "'\n", ["more than the 1 MB"]),
    ("deep nesting", "a: " + "[" * 200 + "]" * 200 + "\n", ["refused: nested deeper"]),
    ("python tag", "id: !!python/object/apply:os.system ['true']\n", ["invalid YAML"]),
    ("not UTF-8", "title: caf\xe9\n".encode("latin-1"), ["not UTF-8"]),
    ("binary junk", np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes(), ["t-broken.yaml"]),
    ("empty", "", ["empty file"]),
    ("a list", "- id\n- title\n", ["expected a mapping"]),
]


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenarios")
    out = {}
    for i, (case, text, _fragments) in enumerate(SCENARIOS):
        d = root / f"{i:02d}"
        d.mkdir()
        path = d / "t-broken.yaml"
        (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
        out[case] = path
    return out


def test_scenarios_validate_reports_every_broken_file_in_one_line(scenario_files, run, tmp_path):
    good = tmp_path / "t-good.yaml"
    good.write_text(_broken(_set("id", "t-good")), encoding="utf-8")
    started = time.monotonic()
    code, out, err = run("scenarios", "validate", good, *scenario_files.values(), tmp_path / "absent.yaml", tmp_path)
    assert code == 1 and err == "" and time.monotonic() - started < 20
    lines = out.splitlines()
    assert len(lines) == len(SCENARIOS) + 3
    assert lines[0] == f"OK {good}"
    for line, (case, _text, fragments) in zip(lines[1:], SCENARIOS, strict=False):
        assert line.startswith(str(scenario_files[case])), (case, line)
        for fragment in fragments:
            assert fragment in line, (case, line)
    assert lines[-2].endswith("absent.yaml: no such file, expected a scenario (.yaml)")
    assert lines[-1] == f"{tmp_path}: is a directory, expected a scenario file (.yaml)"


@pytest.mark.parametrize("case", ["missing field", "billion laughs", "unknown voice", "group never used"])
@pytest.mark.parametrize("command", ["demo", "drill"])
def test_demo_and_drill_refuse_a_broken_scenario_before_anything_is_recorded(scenario_files, run, tmp_path,
                                                                             command, case):
    path = scenario_files[case]
    argv = ["demo", "--scenario", path] if command == "demo" else ["drill", path]
    code, out, err = run(*argv, "--out", tmp_path / "call", "--model", tmp_path / "no-model")
    assert_one_line_error(code, err, str(path))
    assert not (tmp_path / "call").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["demo", "--scenario", "nl-no-such-scenario"], ["unknown scenario 'nl-no-such-scenario'",
                                                      "expected a file path or one of", "nl-visite-derde-keer"]),
    (["drill", "en-nobody"], ["unknown scenario 'en-nobody'"]),
    (["scenarios", "show", "nobody.yaml"], ["nobody.yaml: no such file"]),
    (["voices", "record", "nl-no-such"], ["unknown scenario 'nl-no-such'"]),
])
def test_unknown_scenario_names_are_one_line(run, argv, fragments, tmp_path):
    code, out, err = run(*argv, "--out", tmp_path / "call") if argv[0] != "scenarios" else run(*argv)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "call").exists()


# --------------------------------------------------------------------------- names and values


@pytest.mark.parametrize("argv, fragments", [
    (["demo", "--trainee", "average"], ["--trainee", "invalid choice: 'average'", "'good', 'poor'"]),
    (["demo", "--seed", "x"], ["--seed", "invalid int value"]),
    (["drill", "nl-visite-derde-keer", "--end-of-turn", "-1"], ["--end-of-turn", "expected a number above 0"]),
    (["drill", "nl-visite-derde-keer", "--end-of-turn", "nan"], ["--end-of-turn", "expected a number above 0"]),
    (["bench", "analysis", "--minutes", "-1"], ["--minutes", "expected a number above 0"]),  # used to loop
    (["bench", "speed"], ["invalid choice: 'speed'"]),
    (["voices", "preview", "nl-man-middle", "--anger", "50"], ["--anger", "expected 0 (calm) to 10"]),
    (["voices", "record", "nl-visite-derde-keer", "--max-line-s", "0"], ["--max-line-s", "above 0"]),
    (["analyse", "--caller-channel", "x"], ["invalid int value: 'x'"]),
    (["analyse", "--trainee"], ["expected one argument"]),
    (["forget", "--older-than", "-3"], ["--older-than", "expected 0 or more days"]),
    (["no-such-command"], ["invalid choice: 'no-such-command'"]),
])
def test_bad_command_line_values_are_one_line(run, argv, fragments):
    code, out, err = run(*argv)
    line = assert_one_line_error(code, err, *fragments)
    assert "--help" in line  # where to look for what is expected


def test_unknown_trainee_names(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLEPLAY_DB", str(tmp_path / "h.sqlite3"))
    code, out, err = run("forget", "--trainee", "nobody", "--yes")
    assert_one_line_error(code, err, "nothing recorded for trainee 'nobody'", "expected one of")
    code, out, err = run("progress", "--trainee", "nobody")  # nothing to show is said, not an error
    assert code == 0 and "No calls recorded for nobody" in out and err == ""
    code, out, err = run("readiness", "--group", "nobody")
    assert_one_line_error(code, err, "group 'nobody' has no members")


@pytest.mark.model
@pytest.mark.parametrize("name", ["../elsewhere", ".hidden", ""])
def test_drill_refuses_a_trainee_name_that_is_no_plain_name(name, tmp_path):
    r = subprocess.run([sys.executable, "-m", "roleplay", "drill", "nl-visite-derde-keer", "--trainee", name,
                        "--out", str(tmp_path / "call")], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert_one_line_error(r.returncode, r.stderr, f"trainee name {name!r}", "expected a plain name")
    assert not (tmp_path / "call").exists()
