"""The caller's lines in a trainer's own voice: recording them, and playing them at an anger.

Recording (`roleplay voices record SCENARIO`): the command goes through the scenario's caller
lines one by one, prints the situation and the text, and records the trainer saying it. Each
recording starts when speech is heard (Silero voice activity, `roleplay.speech.streamvad`, plus a level
floor) and ends after `END_SILENCE_S` of silence following the speech, or at `--max-line-s`: it
never relies on fixed timing, so a microphone that delivers sound late (a capture backlog, a slow
sound server) still gives whole lines. The WAV files (16 kHz mono, 16-bit) go into the output
directory together with a copy of the scenario, `<id>-recorded.yaml`, whose lines point to them
(`{text, audio: venting-02.wav}`); the copy is rewritten after every line, so Ctrl-C keeps what
was recorded, and a later run keeps the earlier recordings whose text has not changed.

Playing (`recorded_line_audio`, used by `roleplay demo`): the recording is resampled to 16 kHz,
its leading and trailing silence is cut, and its speech level is brought to
`REFERENCE_LEVEL_DBFS` (about what the synthesized voices have at anger 0), so recordings made on
different days sit at one level. A recording is taken as the line spoken at anger 0; for the
caller's current anger it is then adjusted the way the caller's voice profile changes a
synthesized line, as far as that is possible on a recording:

- loudness: gain = 20 log10(volume(anger) / volume(0)) dB from the profile, limited so that the
  peak stays below `PEAK_LIMIT` (no clipping);
- tempo: a pitch-preserving time stretch (librosa's phase vocoder) by rate_wpm(anger) /
  rate_wpm(0), clamped to `TEMPO_RANGE` (beyond it the stretch sounds artificial); the
  stretch shortens the pauses in proportion;
- pitch is not changed: shifting a real voice sounds wrong sooner than an angrier tempo and
  loudness do, and the trainer's own acting carries it.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from roleplay.audio.clip import Audio, amplitude_to_db, db_to_amplitude
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.files import replace_with, write_atomic

REFERENCE_ANGER = 0.0  # a recording counts as the line spoken at this anger
REFERENCE_LEVEL_DBFS = -26.0  # speech level of a recording at the reference anger
TEMPO_RANGE = (0.8, 1.35)
GAIN_RANGE_DB = (-12.0, 12.0)
PEAK_LIMIT = 0.97
TRIM_BELOW_PEAK_DB = 40.0  # frames this far below the loudest are silence (edge trimming)
TRIM_PAD_S = 0.05

# Recording
END_SILENCE_S = 1.0  # the line has ended after this much silence following speech
MIN_SPEECH_S = 0.25  # less than this (a cough, a click) does not start a line
PRE_ROLL_S = 0.3  # kept before the first speech frame
POST_ROLL_S = 0.4  # kept after the last speech frame
WAIT_FOR_SPEECH_S = 30.0  # nothing heard this long: the line is skipped
SPEECH_PROBABILITY = 0.5
MIN_SPEECH_LEVEL_DBFS = -60.0  # a frame quieter than this is silence whatever the VAD says
MAX_LINE_S_RANGE = (2.0, 120.0)
QUIET_PEAK = 0.03  # a recording whose peak is below this is probably too far from the mic
CLIPPED_FRACTION = 0.001
COPY_SUFFIX = "-recorded"


# ------------------------------------------------------------------------------ playing


@dataclass(frozen=True)
class Adjustment:
    gain_db: float  # from the profile's volume change (before the peak limit)
    tempo: float  # > 1 faster


def anger_adjustment(profile: Any, anger: float) -> Adjustment:
    """How a recording is changed at this anger, from the voice profile (see the module doc)."""
    ref, now = profile.prosody_at(REFERENCE_ANGER), profile.prosody_at(anger)
    gain_db = 20.0 * math.log10(max(now.volume, 1e-3) / max(ref.volume, 1e-3))
    tempo = now.rate_wpm / ref.rate_wpm
    return Adjustment(gain_db=_clamp(gain_db, GAIN_RANGE_DB), tempo=_clamp(tempo, TEMPO_RANGE))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def trim_silence(audio: Audio) -> Audio:
    """Cut the silence before and after the speech (keeping TRIM_PAD_S), relative to its peak."""
    from roleplay.speech.prosody import frame_levels

    levels = frame_levels(audio)
    if len(levels.db) == 0:
        return audio
    threshold = max(float(np.percentile(levels.db, 99)) - TRIM_BELOW_PEAK_DB, MIN_SPEECH_LEVEL_DBFS)
    loud = np.flatnonzero(levels.db > threshold)
    if len(loud) == 0:
        return audio
    return audio.slice_s(levels.times_s[loud[0]] - TRIM_PAD_S, levels.times_s[loud[-1]] + TRIM_PAD_S)


def adjust_recording(audio: Audio, profile: Any, anger: float, *, adjust: bool = True) -> Audio:
    """A recorded line ready for the call at `anger`: 16 kHz, trimmed, levelled, adjusted.

    adjust=False leaves out the anger adjustment (the line as recorded, levelled).
    """
    from roleplay.speech.prosody import loudness_dbfs

    a = trim_silence(audio.resampled(RATE_HZ))
    if len(a.samples) == 0:
        return a
    x = a.samples
    change = anger_adjustment(profile, anger) if adjust else Adjustment(0.0, 1.0)
    if abs(change.tempo - 1.0) > 0.005:
        import librosa

        # 32 ms frames suit speech; librosa's default 128 ms (at 16 kHz) smears the consonants.
        x = librosa.effects.time_stretch(x, rate=change.tempo, n_fft=512, hop_length=128)
    # Levelled after the stretch: the phase vocoder's smeared phases lower the level by a few dB.
    level = loudness_dbfs(Audio(x, RATE_HZ))
    gain_db = change.gain_db + (REFERENCE_LEVEL_DBFS - level if level is not None else 0.0)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0:
        gain_db = min(gain_db, amplitude_to_db(PEAK_LIMIT / peak))
    out = (x * db_to_amplitude(gain_db)).astype(np.float32)
    return Audio(np.ascontiguousarray(out), RATE_HZ)


def recorded_line_audio(path: Path, profile: Any, anger: float, *, adjust: bool = True) -> Audio:
    """A trainer's recording of a caller line, as the caller says it at `anger`."""
    from roleplay.audio.clip import load_audio

    return adjust_recording(load_audio(path), profile, anger, adjust=adjust)


# ------------------------------------------------------------------------------ end-pointing


@dataclass(frozen=True)
class Take:
    audio: Audio | None  # None: no speech was heard
    reason: str  # "ended" (silence after speech), "max-length", "no-speech"
    speech_s: float = 0.0


class LineEndpointer:
    """Feed microphone blocks; it says when one spoken line is complete.

    A line starts with the first frame of at least MIN_SPEECH_S of speech and ends after
    `end_silence_s` without speech, or `max_line_s` after it started. Nothing heard within
    `wait_s`: no line. Works on whatever block sizes arrive, whenever they arrive.
    """

    def __init__(self, *, max_line_s: float, end_silence_s: float = END_SILENCE_S,
                 wait_s: float = WAIT_FOR_SPEECH_S, vad: Any = None) -> None:
        from roleplay.speech.streamvad import StreamingVad

        self.vad = vad if vad is not None else StreamingVad()
        self.vad.reset()
        self.frame = self.vad.frame_samples
        self.frame_s = self.frame / RATE_HZ
        self.max_frames = int(math.ceil(max_line_s / self.frame_s))
        self.end_frames = int(math.ceil(end_silence_s / self.frame_s))
        self.wait_frames = int(math.ceil(wait_s / self.frame_s))
        self.min_frames = int(math.ceil(MIN_SPEECH_S / self.frame_s))
        self._buf = np.zeros(RATE_HZ * 4, dtype=np.float32)  # grows by doubling
        self._len = 0
        self._n = 0  # frames judged
        self._onset: int | None = None
        self._last: int | None = None
        self._speech = 0
        self.take: Take | None = None

    def feed(self, samples: np.ndarray) -> bool:
        """True once the line is complete (then `take` holds it)."""
        if self.take is not None:
            return True
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._len + len(samples) > len(self._buf):
            grown = np.zeros(max(2 * len(self._buf), self._len + len(samples)), dtype=np.float32)
            grown[:self._len] = self._buf[:self._len]
            self._buf = grown
        self._buf[self._len:self._len + len(samples)] = samples
        self._len += len(samples)
        whole = self._buf[:self._len]
        for p in self.vad.process(samples):
            i = self._n
            self._n += 1
            chunk = whole[i * self.frame:(i + 1) * self.frame]
            level = amplitude_to_db(float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))))
            if p >= SPEECH_PROBABILITY and level >= MIN_SPEECH_LEVEL_DBFS:
                if self._onset is None:
                    self._onset = i
                self._last = i
                self._speech += 1
            elif self._onset is not None and i - self._heard()[1] >= self.end_frames:
                if self._speech >= self.min_frames:
                    return self._finish(whole, "ended")
                self._onset, self._last, self._speech = None, None, 0  # a click: keep waiting
            if self._onset is not None and i - self._onset + 1 >= self.max_frames:
                return self._finish(whole, "max-length")
            if self._onset is None and self._n >= self.wait_frames:
                self.take = Take(None, "no-speech")
                return True
        return False

    def finish_early(self) -> Take:
        """The stream ended: the line so far if it had enough speech, else no line."""
        if self.take is None:
            if self._onset is not None and self._speech >= self.min_frames:
                self._finish(self._buf[:self._len], "ended")
            else:
                self.take = Take(None, "no-speech")
        if self.take is None:
            raise RuntimeError("the line endpointer finished without a take")
        return self.take

    def _heard(self) -> tuple[int, int]:
        """The first and last speech frame of the line being heard (set together, at its first speech)."""
        if self._onset is None or self._last is None:
            raise RuntimeError("the line endpointer has heard no speech yet")
        return self._onset, self._last

    def _finish(self, whole: np.ndarray, reason: str) -> bool:
        onset, last = self._heard()
        start = max(0, onset * self.frame - int(PRE_ROLL_S * RATE_HZ))
        end = min(len(whole), (last + 1) * self.frame + int(POST_ROLL_S * RATE_HZ))
        audio = Audio(whole[start:end].copy(), RATE_HZ)
        self.take = Take(audio, reason, round(self._speech * self.frame_s, 2))
        return True


def record_take(blocks: Iterable[np.ndarray], **endpointer_args: Any) -> Take:
    """One spoken line from a stream of 16 kHz blocks (stops reading when it is complete)."""
    ep = LineEndpointer(**endpointer_args)
    for block in blocks:
        if ep.feed(block):
            return ep.finish_early()  # the line is complete: this returns its take as it is
    return ep.finish_early()


# ------------------------------------------------------------------------------ the microphone


class _Microphone:
    """One DuplexStream for the whole session; a thread keeps reading it, so waiting at a prompt
    never lets the ring buffer overrun. Blocks are handed over only while listening."""

    def __init__(self, input_device: int | str | None) -> None:
        from roleplay.audio.devices import DuplexStream

        self.stream = DuplexStream(input_device=input_device)
        self._queue: queue.Queue[tuple[int, np.ndarray | None]] = queue.Queue()
        self._generation = 0
        self._listening = False
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="roleplay-record", daemon=True)

    def start(self) -> None:
        self.stream.start()
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                block = self.stream.read_input(timeout_s=0.5)
                if block is not None and self._listening:
                    self._queue.put((self._generation, block))
        except BaseException as exc:  # noqa: BLE001 - a lost device: the reader reports it
            self._error = exc
            self._queue.put((-1, None))

    def blocks(self, *, timeout_s: float = 5.0) -> Generator[np.ndarray, None, None]:
        """Microphone blocks from now on, until the caller stops iterating."""
        self._generation += 1
        generation = self._generation
        self._listening = True
        try:
            while True:
                try:
                    gen, block = self._queue.get(timeout=timeout_s)
                except queue.Empty:
                    raise RoleplayError(f"the microphone delivered no sound for {timeout_s:g} s"
                                        ) from None
                if block is None:
                    err = self._error
                    raise err if isinstance(err, RoleplayError) else RoleplayError(
                        f"the microphone stopped: {err}")
                if gen == generation:
                    yield block
        finally:
            self._listening = False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.stream.stop()


# ------------------------------------------------------------------------------ the scenario copy


def copy_id(scenario_id: str) -> str:
    if scenario_id.endswith(COPY_SUFFIX):
        return scenario_id
    return f"{scenario_id[:64 - len(COPY_SUFFIX)].rstrip('-')}{COPY_SUFFIX}"


def copy_path(scenario: Any, out_dir: Path) -> Path:
    return Path(out_dir) / f"{copy_id(scenario.id)}.yaml"


def wav_name(group: str, index: int) -> str:
    return f"{group}-{index + 1:02d}.wav"


def _raw_scenario(path: Path) -> dict:
    from roleplay.caller.scenario import _parse_yaml  # YAML 1.2 booleans: a caller's "No" stays text

    data, _ = _parse_yaml(path.read_bytes().decode("utf-8-sig"), path)
    return data


def existing_recordings(scenario: Any, out_dir: Path) -> dict[tuple[str, int], str]:
    """Recordings an earlier run left in out_dir whose line text is unchanged."""
    path = copy_path(scenario, out_dir)
    if not path.is_file():
        return {}
    try:
        data = _raw_scenario(path)
    except (InputError, OSError, UnicodeDecodeError):
        return {}
    found = {}
    raw_lines = data.get("lines") if isinstance(data, dict) else None
    for group, lines in scenario.lines.items():
        items = raw_lines.get(group) if isinstance(raw_lines, dict) else None
        for i, line in enumerate(lines):
            item = items[i] if isinstance(items, list) and i < len(items) else None
            if (isinstance(item, dict) and isinstance(item.get("audio"), str)
                    and str(item.get("text", "")).strip() == line.text
                    and (Path(out_dir) / item["audio"]).is_file()):
                found[(group, i)] = item["audio"]
    return found


def write_recorded_copy(scenario: Any, out_dir: Path, recordings: dict[tuple[str, int], str]) -> Path:
    """Write `<id>-recorded.yaml` into out_dir: the scenario with the recorded lines pointing to
    their files (paths relative to out_dir); written atomically."""
    import yaml

    out_dir = Path(out_dir)
    data = _raw_scenario(Path(scenario.path))
    data["id"] = copy_id(scenario.id)
    lines = {}
    for group, group_lines in scenario.lines.items():
        items = []
        for i, line in enumerate(group_lines):
            audio = recordings.get((group, i))
            if audio is None and line.audio_path is not None:  # the original's own recording
                audio = Path(os.path.relpath(line.audio_path, out_dir.resolve())).as_posix()
            items.append({"text": line.text, "audio": audio} if audio else line.text)
        lines[group] = items
    data["lines"] = lines
    header = (f"# {scenario.id} with the caller's lines in a trainer's own voice; written by\n"
              f"# `roleplay voices record` from {scenario.path}. Play it with\n"
              f"# `roleplay demo --scenario {copy_path(scenario, out_dir)}`.\n")
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path = copy_path(scenario, out_dir)
    write_atomic(path, text)
    return path


def _save_take(path: Path, audio: Audio) -> None:
    import soundfile

    replace_with(path, lambda tmp: soundfile.write(str(tmp), audio.samples, RATE_HZ, subtype="PCM_16",
                                                   format="WAV"), suffix=".wav")


# ------------------------------------------------------------------------------ the command


@dataclass(frozen=True)
class RecordResult:
    copy_path: Path
    recorded: tuple[str, ...]  # WAV names written in this run
    skipped: tuple[str, ...]


def _device(value: str | None) -> int | str | None:
    if value is None or value == "":
        return None
    return int(value) if value.isdigit() else value


def _selected(scenario: Any, situations: Sequence[str] | None) -> list[tuple[str, int, str]]:
    groups = list(scenario.lines)
    if situations:
        unknown = [s for s in situations if s not in scenario.lines]
        if unknown:
            raise InputError(f"scenario {scenario.id} has no situation {unknown[0]!r}; "
                             f"it has: {', '.join(groups)}")
        groups = [g for g in groups if g in situations]
    return [(g, i, line.text) for g in groups for i, line in enumerate(scenario.lines[g])]


def _out_dir_for(scenario: Any, out_dir: Path | None) -> Path:
    """Where the takes go: --out, else recordings/<scenario id> (a recorded copy records into its
    original's folder)."""
    base_id = scenario.id[:-len(COPY_SUFFIX)] if scenario.id.endswith(COPY_SUFFIX) else scenario.id
    out_dir = Path(out_dir) if out_dir is not None else Path("recordings") / base_id
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory; choose another --out")
    return out_dir


def _ask(out: TextIO, stdin: TextIO) -> str:
    """The trainer's choice for the next line: "record", "skip" or "stop" (also at end of input)."""
    out.write("  Enter to record, s to skip, q to stop: ")
    out.flush()
    answer = stdin.readline()
    if answer == "" or answer.strip().lower() == "q":
        return "stop"
    return "skip" if answer.strip().lower() == "s" else "record"


def _take_note(audio: Audio, *, cut: bool, overflowed: bool) -> str:
    """What the trainer should check about a saved take: cut short, dropped sound, too quiet, clipped."""
    note = " (cut at --max-line-s)" if cut else ""
    if overflowed:
        note += " - the microphone dropped sound during it (a busy computer?): check it"
    peak = float(np.max(np.abs(audio.samples)))
    if peak < QUIET_PEAK:
        note += " - very quiet: speak closer to the microphone"
    elif np.mean(np.abs(audio.samples) >= 0.999) > CLIPPED_FRACTION:
        note += " - clipped: speak further from the microphone"
    return note


def _listen(mic: _Microphone, vad: Any, *, max_line_s: float, wait_s: float) -> tuple[Take, bool]:
    """One take from the microphone, and whether the input overflowed during it."""
    overflows = mic.stream.status.input_overflows
    blocks = mic.blocks()
    try:
        take = record_take(blocks, max_line_s=max_line_s, wait_s=wait_s, vad=vad)
    finally:
        blocks.close()  # stop listening at once
    return take, mic.stream.status.input_overflows > overflows


def record_scenario(scenario_ref: str | Path, *, out_dir: Path | None = None,
                    input_device: int | str | None = None,
                    situations: Sequence[str] | None = None, max_line_s: float = 15.0,
                    out: TextIO | None = None, stdin: TextIO | None = None,
                    wait_s: float = WAIT_FOR_SPEECH_S) -> RecordResult:
    """Record the scenario's caller lines one by one through the microphone (see module doc).

    With an interactive `stdin` each line waits for Enter (s skips it, q stops); otherwise
    recording starts at once and the line ends after the speech.
    """
    out = out if out is not None else sys.stdout
    from roleplay.caller.scenario import load_scenario
    from roleplay.speech.models import prepare_environment

    prepare_environment()
    scenario = load_scenario(scenario_ref)
    lo, hi = MAX_LINE_S_RANGE
    if not lo <= max_line_s <= hi:
        raise InputError(f"--max-line-s: expected {lo:g} to {hi:g} seconds, got {max_line_s:g}")
    todo = _selected(scenario, situations)
    out_dir = _out_dir_for(scenario, out_dir)
    stdin = sys.stdin if stdin is None else stdin
    interactive = stdin.isatty()

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    mic = _Microphone(input_device)
    mic.start()  # a missing device fails here, before anything is written
    from roleplay.speech.streamvad import StreamingVad

    vad = StreamingVad()
    out_dir.mkdir(parents=True, exist_ok=True)
    recordings = existing_recordings(scenario, out_dir)
    copy = write_recorded_copy(scenario, out_dir, recordings)
    recorded: list[str] = []
    skipped: list[str] = []
    say(f"Recording {len(todo)} caller lines of {scenario.id} ({scenario.title}) into {out_dir}")
    say("Each line ends after about a second of silence." +
        (" Enter starts a line, s skips it, q stops." if interactive else ""))
    try:
        for n, (group, i, text) in enumerate(todo, 1):
            name = wav_name(group, i)
            say(f"\n[{n}/{len(todo)}] {group} {i + 1}" +
                (" (already recorded)" if (group, i) in recordings else ""))
            say(f"  \"{text}\"")
            choice = _ask(out, stdin) if interactive else "record"
            if choice == "stop":
                break
            if choice == "skip":
                skipped.append(name)
                continue
            say("  listening ... speak the line now")
            take, overflowed = _listen(mic, vad, max_line_s=max_line_s, wait_s=wait_s)
            if take.audio is None:
                say(f"  no speech heard in {wait_s:g} s; line skipped")
                skipped.append(name)
                continue
            _save_take(out_dir / name, take.audio)
            recordings[(group, i)] = name
            recorded.append(name)
            copy = write_recorded_copy(scenario, out_dir, recordings)
            note = _take_note(take.audio, cut=take.reason == "max-length", overflowed=overflowed)
            say(f"  saved {name} ({take.audio.duration_s:.1f} s){note}")
    finally:
        mic.close()
    say(f"\n{len(recorded)} lines recorded, {len(recordings)} of "
        f"{sum(len(v) for v in scenario.lines.values())} lines have a recording.")
    say(f"Scenario copy: {copy}")
    say(f"Play it: roleplay demo --scenario {copy}")
    return RecordResult(copy_path=copy, recorded=tuple(recorded), skipped=tuple(skipped))


def cmd_voices_record(args: Any) -> int:
    situations = [s.strip() for s in args.situations.split(",") if s.strip()] if args.situations else None
    record_scenario(args.scenario, out_dir=Path(args.out) if args.out else None,
                    input_device=_device(args.input_device), situations=situations,
                    max_line_s=args.max_line_s)
    return 0
