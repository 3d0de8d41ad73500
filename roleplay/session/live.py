"""`roleplay drill`'s call: a live call over a real microphone and speaker.

One `DuplexStream` runs for the whole call. At the start a chirp measures the output-to-input lag
(and the echo gain), and from then on both tracks share one call timeline:

    caller track sample j  = output sample  origin + j          (what we played)
    trainee track sample j = microphone sample origin + lag + j (what the microphone heard)

where `lag` follows the echo of each caller line: an output underflow under CPU load delays all
later output, and the trainee track is then mapped that much earlier (`echo-offset` events).

`Drill` reads microphone blocks, writes both tracks to the call directory as they come
(`CallWriter`), gates the caller's echo out of the microphone (`EchoGate`), runs the streaming
Silero VAD frame by frame (`StreamingVad`) and feeds the turn-taking state machine
(`TurnTaker`). Its events drive the same `CallerSession` as `roleplay demo`: the trainee's turn ->
`adapters.TurnListener` -> `CallerSession.on_trainee_turn` -> synthesis -> playback. Analysing the
call afterwards is the app layer's business (`roleplay.app.drill`).

For every answered trainee turn the reply delay (end of the trainee's speech to the first sample
of the caller's reply, both on the call timeline) is logged with its parts as a `reply-delay`
event: silence wait (how long the pause had to be, and why: `end_wait_s`, `end_reason`, decided by
`turntaking.end_of_turn_wait` from the words recognised in the pause and the pitch at its end),
input (device and queue delay until the loop saw that frame), recognition, decision, synthesis
and audio output. A trainee who speaks again (for PREMATURE_MIN_S at least) within
PREMATURE_WINDOW_S of the caller's reply starting, or before it starts, was not finished: a
`premature-start` event, the cost of ending turns sooner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from roleplay.analysis.pipeline import TimingSettings, Turn
from roleplay.audio.clip import Audio, amplitude_to_db, load_audio, save_wav
from roleplay.audio.devices import DeviceSpec, DuplexStream, LagMeasurement, measure_lag
from roleplay.audio.echo import EchoGate
from roleplay.caller.scenario import CallerLine
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.paths import make_private_dir, user_data_dir
from roleplay.session.adapters import TurnAnalyser, TurnListener, caller_line_audio
from roleplay.session.caller_session import CallerSession, CallEvent
from roleplay.session.turntaking import (
    PITCH_WINDOW_S,
    EndCues,
    EndWait,
    State,
    TurnEvent,
    TurnSettings,
    TurnTaker,
    end_of_turn_wait,
    final_pitch_st,
)
from roleplay.speech.streamvad import StreamingVad
from roleplay.speech.vad import VadSettings

RING_S = (0.4, 0.2, 0.4)  # tone, pause, tone: the phone rings before the call's timeline starts
TAIL_S = 0.6  # recorded after the caller's last line
CALIBRATION_MAX_S = 25.0
LAG_MIN_CONFIDENCE = 0.5
STATUS_EVERY_S = 0.25
TURN_PAD_S = 0.15  # audio kept around a trainee turn for its analysis
ECHO_CHECK_S = 0.8  # of each caller line, compared with the microphone to find its echo
ECHO_SEARCH_S = 0.3
# Trainee speech starting this soon after the caller's reply began goes on with the trainee's own
# turn: a reaction to the caller's words comes later (the guide's take-over is 0.5 s of speech,
# after hearing some of the line), so an onset within it means the caller started too soon.
PREMATURE_WINDOW_S = 0.8
PREMATURE_MIN_S = 0.2  # ... and lasts this long: a VAD blip or a click is not going on


@dataclass(frozen=True)
class LiveRecognition:
    """How a trainee's turn is recognised for the caller's reply, which waits for its words."""

    # silence before recognising the turn so far starts (two VAD frames): a pause the trainee
    # goes on after wastes the job, but a finished turn's words come this much sooner
    start_after_s: float = 0.064
    measure_pitch: bool = False  # pyin F0: the caller's reaction does not use it
    # a low-probability greedy decode redone with a beam: +0.2-0.36 s CPU on 5 of 11 bench turns
    # for WER 0.527 -> 0.512 on 37 espeak lines (same phrase categories found); 0: not redone
    retry_beam_size: int = 0


# the live recognition until 2026-11-30 (`roleplay bench latency` compares it as "before")
RECOGNITION_BEFORE = LiveRecognition(start_after_s=TURN_PAD_S, measure_pitch=True, retry_beam_size=5)


@dataclass(frozen=True)
class DrillSettings:
    turn: TurnSettings = field(default_factory=TurnSettings)
    recognition: LiveRecognition = field(default_factory=LiveRecognition)
    max_caller_lines: int | None = None  # None: the scenario's rules end the call
    answer_timeout_s: float = 8.0  # the caller starts anyway if nobody picks up
    seed: int | None = None


@dataclass(frozen=True)
class ReplyDelay:
    turn: int
    total_s: float
    silence_wait_s: float
    input_s: float
    recognition_s: float
    decision_s: float
    synthesis_s: float
    output_s: float
    # how the turn was recognised: "early" (in the pause that ended it), "early-rest" (in that pause
    # too, but it went on after an earlier one: only the speech after that was decoded), "whole"
    # (after it ended)
    recognised: str = "whole"
    end_wait_s: float | None = None  # the silence the pause needed (None: barge-in, no answer)
    end_reason: str | None = None  # why: `turntaking.end_of_turn_wait`'s reason


@dataclass(frozen=True)
class DrillResult:
    """The live call as written to `directory` (not yet analysed)."""

    directory: Path
    language: str
    outcome: str
    cut_off: bool
    lag: LagMeasurement
    reply_delays: tuple[ReplyDelay, ...]
    interruptions: tuple[float, ...]  # start_s of each interruption seen live
    premature_starts: tuple[int, ...]  # the turns the caller answered while the trainee went on
    caller_lines: int
    anger_end: float
    message: str = ""


def trainees_dir() -> Path:
    return user_data_dir() / "trainees"


def calibration_path(trainee: str) -> Path:
    if not trainee or "/" in trainee or trainee.startswith("."):
        raise InputError(f"trainee name {trainee!r}: expected a plain name without '/'")
    return trainees_dir() / trainee / "calibration.wav"


class StatusSink(Protocol):
    """Where a live call reports its progress: `show` for every microphone block (elapsed time,
    who speaks: "caller speaking", "trainee speaking" or "listening", the trainee's level, the
    caller's anger), `say` for a line of news. The terminal's is `_Status`; the web app passes its
    own to `run_drill`."""

    def show(self, *, t_s: float, who: str, level_dbfs: float, anger: float,
             force: bool = False) -> None: ...

    def say(self, text: str) -> None: ...


class _Status:
    """One terminal line: elapsed time, who speaks, the trainee's level, the caller's anger."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._last = 0.0
        self.tty = bool(out is not None and getattr(out, "isatty", lambda: False)())

    def show(self, *, t_s: float, who: str, level_dbfs: float, anger: float,
             force: bool = False) -> None:
        if self.out is None or not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < STATUS_EVERY_S:
            return
        self._last = now
        bars = int(max(0.0, min(20.0, (level_dbfs + 60.0) / 3.0)))
        line = (f"\r {int(t_s) // 60}:{int(t_s) % 60:02d}  {who:<16} mic [{'#' * bars:<20}] "
                f"{level_dbfs:6.1f} dBFS  anger {anger:4.1f} ")
        self.out.write(line)
        self.out.flush()

    def say(self, text: str) -> None:
        if self.out is None:
            return
        if self.tty:
            self.out.write("\r" + " " * 78 + "\r")
        self.out.write(text + "\n")
        self.out.flush()


def _ring(rate_hz: int) -> Audio:
    parts = []
    for i, seconds in enumerate(RING_S):
        t = np.arange(int(seconds * rate_hz)) / rate_hz
        tone = 0.2 * np.sin(2 * np.pi * 425 * t) if i % 2 == 0 else 0 * t
        parts.append(tone.astype(np.float32))
    return Audio(np.concatenate(parts), rate_hz)


class LiveTimeline:
    """Both tracks on the call timeline, appended to the call directory as the microphone runs."""

    def __init__(self, writer: Any, *, origin: int, lag: int) -> None:
        self.writer = writer
        self.origin = origin  # stream sample of call time 0
        self.lag = lag
        self.caller = np.zeros(RATE_HZ * 60, np.float32)
        self.caller_spans: list[list[int]] = []  # [start, end) of each caller line, end cut on stop
        self.trainee = np.zeros(RATE_HZ * 60, np.float32)
        self.trainee_len = 0
        self.written = 0

    def _grow(self, name: str, n: int) -> None:
        arr = getattr(self, name)
        if n > len(arr):
            bigger = np.zeros(max(n, 2 * len(arr)), np.float32)
            bigger[: len(arr)] = arr
            setattr(self, name, bigger)

    def add_mic(self, block: np.ndarray, mic_start: int) -> None:
        j = mic_start - self.origin - self.lag
        # after `shift` the track goes on where it was: the microphone samples that would land
        # on what is already there are dropped (a later lag), a gap stays silent (an earlier one)
        lo = self.trainee_len
        if j + len(block) <= lo:
            return
        if j < lo:
            block, j = block[lo - j:], lo
        self._grow("trainee", j + len(block))
        self.trainee[j : j + len(block)] = block
        self.trainee_len = max(self.trainee_len, j + len(block))

    def shift(self, samples: int) -> None:
        """The loudspeaker's sound now reaches the microphone `samples` later than measured at
        the start (an output underflow under CPU load delays all later output): map the
        microphone that much earlier from here on, so both tracks stay on the caller's timeline
        and the trainee is heard where the caller's words reached them."""
        self.lag += samples

    def add_caller(self, samples: np.ndarray, start: int) -> None:
        self._grow("caller", start + len(samples))
        self.caller[start : start + len(samples)] += samples
        self.caller_spans.append([start, start + len(samples)])

    def cut_caller(self, at: int) -> None:
        """The caller stopped at `at`: nothing after it was played."""
        for span in self.caller_spans:
            if span[1] > at:
                lo = max(span[0], at, self.written)
                self.caller[lo : span[1]] = 0.0
                span[1] = max(span[0], at)

    def caller_audible(self, start: int, end: int) -> bool:
        return any(a < end and start < b for a, b in self.caller_spans)

    def flush(self) -> None:
        upto = self.trainee_len
        if upto > self.written:
            self._grow("caller", upto)
            self.writer.append_both(self.caller[self.written : upto], self.trainee[self.written : upto])
            self.written = upto

    def trainee_audio(self, start_s: float, end_s: float) -> Audio:
        a = max(0, int(start_s * RATE_HZ))
        b = min(self.trainee_len, int(end_s * RATE_HZ))
        return Audio(self.trainee[a:max(a, b)].copy(), RATE_HZ)


class _Resumed:
    """The recognizer for a turn that went on after pauses whose early recognition is done (each a
    Turn on the call timeline and a moment in its pause): the latest one's words stand for the
    speech segments before its moment, and only the later segments are decoded. A segment across
    every such moment (the VAD joins gaps under 0.3 s) gets the whole turn decoded again."""

    def __init__(self, inner: Any, earlier: tuple[tuple[Any, float], ...], *, offset_s: float) -> None:
        self.inner = inner
        # (Turn, a call time inside its pause: the Turn holds the speech before it), newest first
        self.earlier = tuple((turn, upto_s) for turn, upto_s in earlier if turn is not None)
        self.offset_s = offset_s  # call time of the audio's first sample
        self.reused = False

    def transcribe(self, audio: Audio, segments: tuple, *, language: str) -> tuple:
        # the latest earlier pause that is a gap between the VAD's segments, if any
        cut = next(((turn, upto_s) for turn, upto_s in self.earlier if segments and not any(
            g.start_s < upto_s - self.offset_s < g.end_s for g in segments)), None)
        if cut is None:
            return self.inner.transcribe(audio, segments, language=language)
        earlier, upto_call_s = cut
        upto_s = upto_call_s - self.offset_s
        self.reused = True
        later = tuple(g for g in segments if g.start_s >= upto_s)
        # recognition starts 0.064 s into a pause, so the earlier job may have heard the start of
        # the speech after it (a pause under TURN_PAD_S): that is decoded again with the rest
        known = tuple(replace(w, start_s=w.start_s - self.offset_s, end_s=w.end_s - self.offset_s)
                      for w in earlier.words if w.start_s < upto_call_s)
        return known + (self.inner.transcribe(audio, later, language=language) if later else ())


def record_calibration(stream: DuplexStream, *, sentence: str, status: StatusSink,
                       settings: TurnSettings | None = None,
                       on_level: Callable[[float], None] | None = None) -> Audio:
    """Ask the trainee to read `sentence`; record from their first word until a pause ends it.
    `on_level` gets each microphone block's level (dBFS), for a level meter."""
    settings = settings or TurnSettings()
    status.say(f'Calibration: read this sentence at your normal voice:\n  "{sentence}"')
    vad, taker = StreamingVad(), TurnTaker(settings)
    taker.caller_end_s = None  # no no-answer events here
    samples: list[np.ndarray] = []
    pending = np.zeros(0, np.float32)
    began = time.monotonic()
    while time.monotonic() - began < CALIBRATION_MAX_S:
        block = stream.read_input(timeout_s=1.0)
        if block is None:
            continue
        samples.append(block)
        if on_level is not None:
            on_level(amplitude_to_db(float(np.sqrt(np.mean(block.astype(np.float64) ** 2)))))
        pending = np.concatenate((pending, block))
        while len(pending) >= vad.frame_samples:
            frame, pending = pending[: vad.frame_samples], pending[vad.frame_samples :]
            t = vad.frames_done * vad.frame_s
            for ev in taker.step(t, vad.frame(frame), caller_playing=False):
                if ev.kind == "end-of-turn":
                    assert ev.start_s is not None and ev.end_s is not None  # an end-of-turn has both
                    audio = np.concatenate(samples)
                    a = max(0, int((ev.start_s - 0.2) * RATE_HZ))
                    b = int((ev.end_s + 0.3) * RATE_HZ)
                    return Audio(audio[a:b].copy(), RATE_HZ)
    raise RoleplayError(f"no calibration sentence heard within {CALIBRATION_MAX_S:g} s: check the "
                        "microphone (`roleplay devices --test`)")


class _Speaker:
    """Caller lines to audio, cached: the opening is made before the phone rings."""

    def __init__(self, voice: Any, cache_dir: Path | None) -> None:
        self.voice = voice
        self.cache_dir = cache_dir
        self._made: dict[tuple[str, float], Audio] = {}
        self._lock = threading.Lock()

    def audio(self, line: CallerLine, anger: float) -> tuple[Audio, float]:
        """The line's audio and the seconds spent making it now (0 if made ahead)."""
        key = (line.text, round(anger, 1))
        with self._lock:
            if key in self._made:
                return self._made[key], 0.0
        began = time.monotonic()
        audio = caller_line_audio(line, self.voice, round(anger, 1), self.cache_dir)
        with self._lock:
            self._made[key] = audio
        return audio, time.monotonic() - began

    def prosody(self, anger: float) -> tuple[float, float]:
        """The voice's rate (words per minute) and volume at this anger, for the event."""
        p = self.voice.prosody_at(anger)
        return p.rate_wpm, p.volume


@dataclass
class _PlayingLine:
    """The caller line playing (or last played)."""

    handle: Any  # the stream's PlaybackHandle
    start: int  # call-timeline sample of its first sample
    start_s: float
    end_s: float  # cut short when the caller stops
    echo_checked: bool = False


@dataclass(frozen=True)
class _TurnTiming:
    """When the caller's reply to a trainee turn was decided: the parts of its reply delay."""

    speech_end_s: float
    decided_s: float  # the turn-taking event's time
    seen_s: float  # when the loop saw it (output position)
    recognition_s: float
    decision_s: float
    recognised: str
    end_wait: EndWait | None


@dataclass(frozen=True)
class _Reply:
    """A caller reply that has just started: watched for the trainee going on (premature)."""

    turn: int
    decided_s: float
    start_s: float


MAX_EARLIER_PAUSES = 8  # a turn's pauses whose words may be reused


class _EarlyRecognition:
    """Recognition of a turn started in a pause (`start_after_s` into the silence), in one worker
    thread; if the pause becomes the end of the turn, its result is used."""

    def __init__(self, recognise: Callable[[tuple[float, float], Any], tuple[Turn | None, str]]
                 ) -> None:
        self.recognise = recognise
        self.span: tuple[float, float] | None = None
        self.future: Future[tuple[Turn | None, str]] | None = None
        # this turn's earlier pauses' jobs, newest first: a pause too short for the recognizer's
        # VAD to keep (under 0.3 s) can't be cut at, but an older, longer one may
        self.earlier: tuple[tuple[tuple[float, float], Future[Any]], ...] = ()
        self._worker: ThreadPoolExecutor | None = None

    def start(self, span: tuple[float, float]) -> None:
        if self.span == span:
            return
        if self.future is not None and self.span is not None:
            self.future.cancel()  # an older pause's, if it has not started yet
            self.earlier = ((self.span, self.future), *self.earlier)[:MAX_EARLIER_PAUSES]
        self.earlier = tuple(e for e in self.earlier if e[0][0] == span[0] and not e[1].cancelled())
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roleplay-asr")
        self.span, self.future = span, self._worker.submit(self.recognise, span, self.earlier)

    def peek(self, span: tuple[float, float]) -> str | None:
        """The words recognised for `span` if that job is done (None: not done, or another)."""
        if self.span != span or self.future is None or not self.future.done():
            return None
        if self.future.cancelled() or self.future.exception() is not None:
            return None
        turn = self.future.result()[0]
        return turn.text if turn is not None else ""

    def take(self, span: tuple[float, float]) -> tuple[Turn | None, str] | None:
        """The early result if it was for `span`; either way the job is forgotten."""
        result = self.future.result() if self.span == span and self.future is not None else None
        self.span, self.future, self.earlier = None, None, ()
        return result

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)


class Drill:
    """The caller session driven by the live stream, from the ring to the tail after the last
    line. Device setup and analysis are outside (`run_drill`, `roleplay.app.drill`), so tests
    can drive it with a fake stream and feed it turn events (`on_turn_event`)."""

    def __init__(self, *, session: CallerSession, stream: Any, writer: Any, speaker: Any,
                 listen: TurnAnalyser, live_transcriber: Any, vad: StreamingVad,
                 settings: DrillSettings, status: StatusSink, origin: int, lag: LagMeasurement,
                 on_ready: Callable[[], None] | None = None,
                 hang_up: threading.Event | None = None) -> None:
        self.session = session
        self.stream = stream
        self.writer = writer
        self.speaker = speaker  # `_Speaker`: audio(line, anger), prosody(anger)
        self.listen = listen
        self.live_transcriber = live_transcriber  # what `listen` uses; wrapped for a resumed turn
        self.vad = vad
        self.settings = settings
        self.status = status
        self.on_ready = on_ready
        self.hang_up = hang_up
        self.timeline = LiveTimeline(writer, origin=origin, lag=lag.lag_samples)
        self.gate = EchoGate(lag_samples=0, gain=lag.gain, rate_hz=RATE_HZ)
        self.taker = TurnTaker(settings.turn)
        self.taker.caller_end_s = None  # the caller has not spoken: no no-answer until it has
        self.early = _EarlyRecognition(self._recognise_early)
        self.current: _PlayingLine | None = None
        self.ending_handle: Any = None  # the caller's last line: the call ends after it
        self.answered_at_s: float | None = None  # the trainee's first speech
        self.delays: list[ReplyDelay] = []
        self.interruptions: list[float] = []
        self.premature: list[int] = []  # turns (of `delays`) the caller answered too soon
        self._reply: _Reply | None = None
        self._pause_pitch: tuple[float, float | None] = (-1.0, None)  # (speech end, semitones)
        self.ready_sent = False
        self.restarts = stream.restarts
        self.frame_pos = 0  # trainee-track sample of the next VAD frame
        self.level_db = -120.0
        self.debug: list[tuple[float, ...]] | None = (
            [] if os.environ.get("ROLEPLAY_LIVE_DEBUG") else None)

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Read the microphone until the call is over (an error or Ctrl-C propagates)."""
        try:
            while True:
                block = self.stream.read_input(timeout_s=1.0)
                if block is None:
                    raise RoleplayError("the microphone delivered no audio for 1 s")
                t_call_s = self._on_block(block)
                if self._over(t_call_s):
                    break
        finally:
            self.early.shutdown()
        if self.debug is not None:
            np.save(Path(self.writer.directory) / "frames-debug.npy", np.array(self.debug))

    def finish(self) -> str:
        """Write the rest of the call and close it; its outcome."""
        self.timeline.flush()
        outcome = self.session.outcome
        assert outcome is not None
        self._write(self.session.call_end_event(t_s=self.timeline.trainee_len / RATE_HZ))
        self.writer.update_meta(stream_status=dict(self.stream.status.__dict__),
                                anger_peak=self.session.state.peak_anger,
                                anger_end=self.session.anger,
                                caller_lines=self.session.caller_lines,
                                reply_delays_s=[d.total_s for d in self.delays])
        self.writer.close(outcome=outcome)
        return outcome

    def _on_block(self, block: np.ndarray) -> float:
        """One microphone block: onto the timeline, through VAD and turn-taking; the call time."""
        tl, stream = self.timeline, self.stream
        mic_end = stream.input_position_samples
        if stream.restarts > self.restarts:
            self.restarts = stream.restarts
            self.writer.event("audio-restart", t_s=round(tl.trainee_len / RATE_HZ, 3),
                              restarts=self.restarts)
            self.status.say("  the audio device stopped and was opened again; the call goes on")
        tl.add_mic(block, mic_end - len(block))
        tl.flush()
        if not self.ready_sent and stream.output_position_samples >= tl.origin:
            self.ready_sent = True
            if self.on_ready is not None:
                self.on_ready()
        self.level_db = amplitude_to_db(float(np.sqrt(np.mean(block.astype(np.float64) ** 2))))
        self._run_vad()
        if self.current is not None and self.gate.active and not self.current.echo_checked:
            self._track_echo(self.current)
        t_call_s = tl.trainee_len / RATE_HZ
        who = ("caller speaking" if self.current is not None and not self.current.handle.done
               else "trainee speaking" if self.taker.trainee_speaking else "listening")
        self.status.show(t_s=t_call_s, who=who, level_dbfs=self.level_db, anger=self.session.anger)
        self._on_clock(t_call_s)
        return t_call_s

    def _run_vad(self) -> None:
        """VAD frames on the trainee track (the caller's echo gated out), into turn-taking; the
        pause decision and the start of recognition per frame, not per block (a block is two
        frames: words that came in mid-block, or a pause two frames long, count at once)."""
        tl, vad = self.timeline, self.vad
        while self.frame_pos + vad.frame_samples <= tl.trainee_len:
            self._decide_end_wait()
            a, b = self.frame_pos, self.frame_pos + vad.frame_samples
            self.frame_pos = b
            clean = self.gate.clean(tl.trainee[a:b], tl.caller, a)
            prob = vad.frame(clean)
            playing = tl.caller_audible(a, b)
            if self.debug is not None:
                self.debug.append((a / RATE_HZ, prob, float(not clean.any()), float(playing),
                                   self.gate.predicted_echo_rms(tl.caller, a, b), self._now_s()))
            for ev in self.taker.step(a / RATE_HZ, prob, caller_playing=playing):
                if self.session.outcome is None:
                    self.on_turn_event(ev)
            self._watch_reply(b / RATE_HZ)
            self._recognise_in_pause()

    def _decide_end_wait(self) -> None:
        """The silence the trainee's current pause needs to end the turn, from what is known of
        the turn so far: the pitch at once, the words when the early recognition is done."""
        taker = self.taker
        start_s, end_s = taker.turn_start_s, taker.last_speech_end_s
        if (taker.state is not State.TRAINEE or taker.trainee_speaking or start_s is None
                or end_s is None or end_s <= start_s):
            return
        if not self.settings.turn.adaptive:
            taker.end_wait = end_of_turn_wait(EndCues(None, None, self.session.language),
                                              self.settings.turn)
            return
        if self._pause_pitch[0] != end_s:
            audio = self.timeline.trainee_audio(max(start_s, end_s - PITCH_WINDOW_S), end_s)
            self._pause_pitch = (end_s, final_pitch_st(audio.samples, RATE_HZ))
        cues = EndCues(self.early.peek((start_s, end_s)), self._pause_pitch[1], self.session.language)
        taker.end_wait = end_of_turn_wait(cues, self.settings.turn)

    def _watch_reply(self, t_s: float) -> None:
        """The trainee speaking again before the caller's reply has run PREMATURE_WINDOW_S: the
        turn was not over (a `premature-start` event)."""
        reply, taker = self._reply, self.taker
        if reply is None:
            return
        onset = taker.speech_start_s
        if (taker.trainee_speaking and onset is not None
                and reply.decided_s - 1e-9 <= onset <= reply.start_s + PREMATURE_WINDOW_S):
            if t_s - onset >= PREMATURE_MIN_S - 1e-9:
                self._reply = None
                self.premature.append(reply.turn)
                self.writer.event("premature-start", t_s=round(onset, 3), turn=reply.turn,
                                  caller_start_s=round(reply.start_s, 3),
                                  after_caller_s=round(onset - reply.start_s, 3))
        elif t_s > reply.start_s + PREMATURE_WINDOW_S:
            self._reply = None

    def _on_clock(self, t_call_s: float) -> None:
        """What the call time alone decides: the caller opens unasked, Enter hangs up, time's up."""
        session = self.session
        if (not session.greeted and self.answered_at_s is None
                and t_call_s >= self.settings.answer_timeout_s):
            # nobody picked up in words: the caller starts anyway
            self._speak(session.open(), reason="no-greeting", timing=None)
        if session.outcome is None and self.hang_up is not None and self.hang_up.is_set():
            self.ending_handle = None
            if self.current is not None and not self.current.handle.done:
                self._stop_caller()
            self._write(session.on_hang_up(t_s=t_call_s))
            self.status.say(f"  trainee hangs up at {t_call_s:.1f} s")
        session.on_time(t_s=t_call_s)

    def _over(self, t_call_s: float) -> bool:
        """The call has an outcome, its last line has played, and the tail is recorded."""
        if self.session.outcome is None:
            return False
        if self.ending_handle is not None and not self.ending_handle.done:
            return False
        last_end_s = self.current.end_s if self.current is not None else 0.0
        return t_call_s >= max(last_end_s, 0.0) + TAIL_S

    # ------------------------------------------------------------------ turn events

    def on_turn_event(self, ev: TurnEvent) -> None:
        """One event of the turn-taking state machine."""
        if ev.kind == "interruption" and self.current is not None:
            self._interrupted(ev)
        elif ev.kind == "backchannel":
            self.writer.event("backchannel", t_s=round(ev.start_s or 0.0, 3),
                              end_s=round(ev.end_s or 0.0, 3))
        elif ev.kind == "trainee-start":
            if self.answered_at_s is None:
                self.answered_at_s = ev.start_s
        elif ev.kind in ("end-of-turn", "barge-in", "no-answer"):
            if ev.kind == "barge-in":
                self._write(self.session.barge_in_event(
                    t_s=ev.t_s, trainee_speaking_s=ev.t_s - (ev.start_s or 0)))
            self._answer(ev)

    def _interrupted(self, ev: TurnEvent) -> None:
        assert self.current is not None and ev.start_s is not None
        self.interruptions.append(ev.start_s)
        it = self.session.on_interruption(start_s=ev.start_s, decided_s=ev.t_s)
        self._write(it.event)
        self.status.say(f"  trainee interrupts at {ev.start_s:.1f} s: caller "
                        f"{'stops' if it.yields else 'talks on'}")
        if it.yields and not self.current.handle.done:
            self._stop_caller()

    def _stop_caller(self) -> None:
        """Stop the caller's line now; the caller track keeps only what was played."""
        assert self.current is not None
        self.stream.stop_playback()
        cut = self.current.handle.played_until_sample - self.timeline.origin
        self.timeline.cut_caller(cut)
        self.current.end_s = cut / RATE_HZ
        self._write(self.session.on_caller_cut(at_s=cut / RATE_HZ))

    def _answer(self, ev: TurnEvent) -> None:
        """The trainee's turn is over (or barged into): analyse, react, reply."""
        seen_s = self._now_s()
        began = time.monotonic()
        turn, recognised, speech_end_s = self._recognise(ev)
        recognition_s = time.monotonic() - began
        began = time.monotonic()
        heard = turn.text if turn else ""
        if not self.session.greeted:
            start_s = ev.start_s or 0.0
            decision = self.session.on_greeting(start_s=start_s, end_s=speech_end_s, heard=heard)
            self.status.say(f"  trainee  {start_s:6.1f} s  {heard}")
        else:
            start_s = ev.start_s or speech_end_s
            decision = self.session.on_trainee_turn(turn, start_s=start_s, end_s=speech_end_s,
                                                    decided_by=ev.kind)
            self.status.say(f"  trainee  {start_s:6.1f} s  {heard or '(silence)'}  -> "
                            f"{list(decision.behaviours)}")
        self._write(*decision.events)
        if decision.line is None:
            return
        timing = _TurnTiming(speech_end_s=speech_end_s, decided_s=ev.t_s, seen_s=seen_s,
                             recognition_s=recognition_s, decision_s=time.monotonic() - began,
                             recognised=recognised,
                             end_wait=self.taker.end_wait if ev.kind == "end-of-turn" else None)
        self.taker.barge_in_after_s = self.session.barge_in_after_s
        self._speak(decision.line, reason=ev.kind, timing=timing)

    def _speak(self, line: CallerLine, *, reason: str, timing: _TurnTiming | None) -> None:
        anger = self.session.anger
        synth_began = time.monotonic()
        audio, made_s = self.speaker.audio(line, anger)
        synthesis_s = time.monotonic() - synth_began
        at_play_s = self._now_s()
        handle = self.stream.play(audio)
        start = handle.start_sample - self.timeline.origin
        self.timeline.add_caller(audio.samples, start)
        self.taker.caller_took_turn()
        start_s = start / RATE_HZ
        self.current = _PlayingLine(handle, start, start_s, start_s + audio.duration_s)
        rate_wpm, volume = self.speaker.prosody(anger)
        spoken = self.session.on_line_spoken(line, start_s=start_s, end_s=self.current.end_s,
                                             rate_wpm=rate_wpm, volume=volume, reason=reason)
        self._write(spoken.event)
        self.status.say(f"  caller   {start_s:6.1f} s  [{anger:4.1f}] {line.text}")
        if timing is not None:
            self._log_delay(timing, start_s=start_s, synthesis_s=synthesis_s,
                            at_play_s=at_play_s, made_ahead=made_s == 0.0)
            self._reply = _Reply(len(self.delays), timing.decided_s, start_s)
        if spoken.outcome is not None:
            self.ending_handle = handle

    def _log_delay(self, t: _TurnTiming, *, start_s: float, synthesis_s: float, at_play_s: float,
                   made_ahead: bool) -> None:
        d = ReplyDelay(
            turn=len(self.delays) + 1,
            total_s=round(start_s - t.speech_end_s, 3),
            silence_wait_s=round(t.decided_s - t.speech_end_s, 3),
            input_s=round(t.seen_s - t.decided_s, 3),
            recognition_s=round(t.recognition_s, 3),
            decision_s=round(t.decision_s, 3),
            recognised=t.recognised,
            synthesis_s=round(synthesis_s, 3),
            output_s=round(start_s - at_play_s, 3),
            end_wait_s=t.end_wait.wait_s if t.end_wait else None,
            end_reason=t.end_wait.reason if t.end_wait else None,
        )
        self.delays.append(d)
        self.writer.event("reply-delay", t_s=round(start_s, 3), **dataclasses.asdict(d),
                          made_ahead=made_ahead)

    # ------------------------------------------------------------------ recognition

    def _recognise(self, ev: TurnEvent) -> tuple[Turn | None, str, float]:
        """The turn's analysis, how it was recognised, and the end of its speech."""
        if ev.kind == "no-answer":
            return None, "whole", ev.start_s or 0.0
        assert ev.start_s is not None
        end_s = ev.end_s if ev.end_s is not None else ev.t_s
        early = self.early.take((ev.start_s, end_s))  # started while the trainee paused
        if early is not None:
            return early[0], early[1], end_s
        return self._analyse_span(ev.start_s, end_s), "whole", end_s

    def _analyse_span(self, start_s: float, end_s: float, transcriber: Any = None) -> Turn | None:
        a = max(0.0, start_s - TURN_PAD_S)
        return self.listen(self.timeline.trainee_audio(a, end_s + TURN_PAD_S), offset_s=a,
                           transcriber=transcriber)

    def _recognise_in_pause(self) -> None:
        """Start recognising the turn so far once the trainee has paused `start_after_s`."""
        taker = self.taker
        if (self.session.outcome is None and taker.turn_start_s is not None
                and not taker.trainee_speaking and taker.last_speech_end_s is not None
                and self.frame_pos / RATE_HZ >= (taker.last_speech_end_s
                                                 + self.settings.recognition.start_after_s)
                and taker.last_speech_end_s > taker.turn_start_s):
            self.early.start((taker.turn_start_s, taker.last_speech_end_s))

    def _recognise_early(self, span: tuple[float, float],
                         earlier: tuple[tuple[tuple[float, float], Future[Any]], ...]
                         ) -> tuple[Turn | None, str]:
        """The turn so far, recognised in a pause (in the worker). If the trainee went on after
        earlier pauses whose recognition ran, the words of the latest one the recognizer's VAD
        also sees as a pause are kept and only the rest decoded: the worker runs one job at a
        time, so those have finished by now (or were cancelled before they started)."""
        # cut each pause halfway through the shortest gap the recognizer's VAD keeps between
        # segments: in a pause that long, the padded end of the speech before (which a cut
        # `start_after_s / 2` in fell inside) and the onset after it are on either side
        done = tuple((f.result()[0], s[1] + VadSettings().min_silence_s / 2)
                     for s, f in earlier if s[0] == span[0] and not f.cancelled())
        if done:
            resumed = _Resumed(self.live_transcriber, done, offset_s=max(0.0, span[0] - TURN_PAD_S))
            turn = self._analyse_span(*span, resumed)
            return turn, "early-rest" if resumed.reused else "early"
        return self._analyse_span(*span), "early"

    # ------------------------------------------------------------------ helpers

    def _now_s(self) -> float:
        return (self.stream.output_position_samples - self.timeline.origin) / RATE_HZ

    def _write(self, *events: CallEvent) -> None:
        for e in events:
            self.writer.event(e.type, **e.fields)

    def _track_echo(self, current: _PlayingLine) -> None:
        """Find where the echo of the caller line actually sits in the trainee track; if it moved
        (an output underflow shifts the output against the input mid-call, 60-140 ms seen under
        load), shift the trainee track's mapping by as much, which keeps the echo gate aligned
        too. The part of this line already mapped (its first ECHO_CHECK_S + ECHO_SEARCH_S) keeps
        the old one."""
        from scipy.signal import correlate

        tl = self.timeline
        s0, n, w = current.start, int(ECHO_CHECK_S * RATE_HZ), int(ECHO_SEARCH_S * RATE_HZ)
        if tl.trainee_len < s0 + n + w:
            return
        current.echo_checked = True
        if current.handle.played_until_sample - tl.origin < s0 + n:
            return  # cut short: not enough of the line was played
        ref = tl.caller[s0 : s0 + n].astype(np.float64)
        lo = max(0, s0 - w)
        seg = tl.trainee[lo : s0 + n + w].astype(np.float64)
        if not ref.any() or not seg.any():
            return
        scores = correlate(seg, ref, mode="valid")
        k = int(np.argmax(np.abs(scores)))
        heard = seg[k : k + n]
        norm = float(np.linalg.norm(heard) * np.linalg.norm(ref) or 1.0)
        confidence = abs(float(scores[k])) / norm
        offset = lo + k - s0
        if confidence >= 0.5 and abs(offset) > int(0.005 * RATE_HZ):
            tl.shift(offset)
            self.writer.event("echo-offset", t_s=round(s0 / RATE_HZ, 3),
                              offset_ms=round(offset / 16, 1), confidence=round(confidence, 3),
                              shifted_from_s=round(tl.trainee_len / RATE_HZ, 3))


def _drill_meta(*, scenario: Any, trainee: str, voice_id: str, anger_start: float, lag: LagMeasurement,
                settings: DrillSettings, stream: Any, devices: tuple[str, str]) -> dict[str, Any]:
    """What meta.json says of a drill from its start."""
    meta: dict[str, Any] = {
        "mode": "live", "scenario": scenario.id, "language": scenario.language,
        "trainee": trainee, "needs": list(scenario.needs), "caller_voice": voice_id,
        "expected_outcomes": list(scenario.ending.expected), "anger_start": anger_start,
        "lag_ms": round(lag.lag_ms, 2), "lag_confidence": round(lag.confidence, 3),
        "echo_gain": round(lag.gain, 4), "input_device": devices[0],
        "output_device": devices[1], "end_of_turn_s": settings.turn.end_of_turn_s,
    }
    if getattr(stream, "reported_lag_s", None) is not None:  # a browser: its own latency figure
        meta["audio"] = "browser"
        meta["reported_lag_ms"] = round(stream.reported_lag_s * 1000, 2)
    return meta


def run_drill(
    *,
    scenario_id: str,
    trainee: str,
    out_dir: Path,
    transcriber: Any,
    input_device: DeviceSpec = None,
    output_device: DeviceSpec = None,
    settings: DrillSettings = DrillSettings(),
    status_out: TextIO | None = None,
    status: StatusSink | None = None,
    cache_dir: Path | None = None,
    on_ready: Callable[[], None] | None = None,
    hang_up: threading.Event | None = None,
    stream: Any = None,
) -> DrillResult:
    """Run one live call into `out_dir`, written as it happens (analysing it: `roleplay.app.drill`).

    `on_ready` is called once the call timeline starts (right after the ring): a scripted
    trainee starts its clock there. `hang_up` set (the trainee pressed Enter) ends the call at
    once as ended by the trainee; whether that was announced is the assessment's business.
    KeyboardInterrupt and a lost device end the call cut off: the recording is kept.
    `status` receives the progress (default: the terminal line on `status_out`).
    `stream` stands in for the sound card's DuplexStream (the browser's: audio.browserstream).
    """
    from roleplay.caller.scenario import load_scenario
    from roleplay.recording.calldir import CallWriter
    from roleplay.speech.voice import load_voice

    status = status if status is not None else _Status(status_out)
    scenario = load_scenario(scenario_id)
    voice = load_voice(scenario.caller_voice)
    speaker = _Speaker(voice, cache_dir)
    session = CallerSession(scenario, max_caller_lines=settings.max_caller_lines, rng=random.Random(
        settings.seed if settings.seed is not None else scenario.seed))
    cal_path = calibration_path(trainee)
    if stream is None:
        stream = DuplexStream(input_device=input_device, output_device=output_device)
    vad, calibration, listen, lag = _prepare(stream, cal_path=cal_path, session=session,
                                             speaker=speaker, transcriber=transcriber,
                                             status=status, settings=settings)
    meta = _drill_meta(scenario=scenario, trainee=trainee, voice_id=voice.id, anger_start=session.anger,
                       lag=lag, settings=settings, stream=stream,
                       devices=(repr(input_device), repr(output_device)))
    writer = CallWriter(out_dir, rate_hz=RATE_HZ, meta=meta)
    save_wav(Path(out_dir) / "calibration.wav", calibration)
    drill: Drill | None = None
    outcome, message = "aborted", ""
    try:
        ring = stream.play(_ring(RATE_HZ))
        status.say("The phone rings: answer it (say your greeting).")
        drill = Drill(session=session, stream=stream, writer=writer, speaker=speaker,
                      listen=listen, live_transcriber=listen.transcriber, vad=vad,
                      settings=settings, status=status, origin=ring.end_sample, lag=lag,
                      on_ready=on_ready, hang_up=hang_up)
        e = session.call_start_event(trainee=trainee, lag_ms=round(lag.lag_ms, 2))
        writer.event(e.type, **e.fields)
        drill.run()
        outcome = drill.finish()
    except KeyboardInterrupt:
        message = "call cut off (Ctrl-C); the recording so far is kept"
    except RoleplayError as exc:
        message = f"call cut off: {exc}; the recording so far is kept"
    except BaseException:
        writer.close(outcome="aborted", status="aborted")
        stream.stop()
        raise
    finally:
        stream.stop()
    if message:
        _close_cut_off(writer, drill, message)
        status.say(message)
    return DrillResult(directory=Path(out_dir), language=scenario.language, outcome=outcome,
                       cut_off=bool(message), lag=lag,
                       reply_delays=tuple(drill.delays if drill else ()),
                       interruptions=tuple(drill.interruptions if drill else ()),
                       premature_starts=tuple(drill.premature if drill else ()),
                       caller_lines=session.caller_lines, anger_end=session.anger, message=message)


def _prepare(stream: Any, *, cal_path: Path, session: CallerSession, speaker: _Speaker,
             transcriber: Any, status: StatusSink, settings: DrillSettings
             ) -> tuple[StreamingVad, Audio, TurnListener, LagMeasurement]:
    """Start the stream and warm everything before the phone rings: VAD, the caller's opening,
    the recognizer (via the baseline); the calibration read (or loaded) and the lag measured."""
    from roleplay.analysis.pipeline import calibration_baseline
    from roleplay.caller.simtrainee import load_trainee_lines

    vad = StreamingVad()
    vad.process(np.zeros(vad.frame_samples, np.float32))
    vad.reset()
    language = session.language
    stored = load_audio(cal_path).resampled(RATE_HZ) if cal_path.is_file() else None
    if stored is not None:
        # warm up before the audio starts: the call then begins a fixed time after it (a browser
        # opens its microphone at start()), with no backlog of microphone audio to catch up on
        baseline = calibration_baseline(stored, language=language, transcriber=transcriber)
        # the opening's first pick uses the session's rng; make its likely audio now
        speaker.audio(session.likely_opening(), session.anger)
    stream.start()
    try:
        if stored is not None:
            calibration = stored
        else:
            sentence = load_trainee_lines(language).calibration
            calibration = record_calibration(stream, sentence=sentence, status=status,
                                             settings=settings.turn)
            make_private_dir(cal_path.parent)
            save_wav(cal_path, calibration)
            status.say(f"calibration stored: {cal_path}")
            baseline = calibration_baseline(calibration, language=language, transcriber=transcriber)
            speaker.audio(session.likely_opening(), session.anger)
        lag = _measure_lag(stream, status)
    except BaseException:
        stream.stop()
        raise
    # The caller reacts with the greedy recognizer; the analysis after the call uses `transcriber`.
    live = settings.recognition
    listen = TurnListener(language, _live_transcriber(transcriber, live.retry_beam_size), baseline,
                          TimingSettings(measure_pitch=live.measure_pitch))
    return vad, calibration, listen, lag


def _measure_lag(stream: Any, status: StatusSink) -> LagMeasurement:
    # Measured last, after the heavy warm-up: an output underflow under load shifts the
    # output against the input (60-140 ms seen), which would spoil a lag measured before.
    lag = measure_lag(stream)
    if lag.confidence < LAG_MIN_CONFIDENCE:
        # a browser reports its output + input latency (its echo canceller hides the chirp)
        reported = getattr(stream, "reported_lag_samples", None) or 0
        status.say("the microphone did not hear the speaker (a headset?): no echo to suppress; "
                   "the tracks are aligned by the device's own latency"
                   + (f" ({reported / RATE_HZ * 1000:.0f} ms as the browser reports it)"
                      if reported else ""))
        lag = LagMeasurement(lag_ms=reported * 1000 / RATE_HZ, lag_samples=reported,
                             confidence=lag.confidence, spread_ms=lag.spread_ms, gain=0.0)
    status.say(f"output-to-input delay {lag.lag_ms:.0f} ms (confidence {lag.confidence:.2f}), "
               f"echo gain {amplitude_to_db(lag.gain):.0f} dB")
    return lag


def _close_cut_off(writer: Any, drill: Drill | None, message: str) -> None:
    """A call cut off: keep what reached the timeline, and mark the call aborted."""
    if drill is not None:
        with contextlib.suppress(Exception):  # keep what is already on disk
            drill.timeline.flush()
    writer.event("call-end", t_s=round(writer.frames("caller") / RATE_HZ, 3), outcome="aborted",
                 reason=message)
    writer.close(outcome="aborted", status="aborted")


def _live_transcriber(transcriber: Any, retry_beam_size: int = LiveRecognition.retry_beam_size) -> Any:
    """The same model, greedy (beam 1), a failed decode redone with `retry_beam_size` (0: not):
    the caller's reaction needs speed more than the last word; the analysis after the call uses
    `transcriber` as given. The rest stays: the language is passed, no VAD filter (the turn is
    our own VAD segments), no timestamp tokens (faster-whisper's batched prompt)."""
    from roleplay.speech.asr import FasterWhisperTranscriber

    if isinstance(transcriber, FasterWhisperTranscriber):
        settings = dataclasses.replace(transcriber.settings, beam_size=1,
                                       retry_beam_size=retry_beam_size)
        if settings != transcriber.settings:
            return FasterWhisperTranscriber(transcriber.model_path, settings=settings)
    return transcriber


def delay_summary(delays: tuple[ReplyDelay, ...] | list[ReplyDelay]) -> dict[str, float]:
    """Median and 95th percentile of the reply delay, and the median of each part."""
    if not delays:
        return {}
    out: dict[str, float] = {}
    totals = np.array([d.total_s for d in delays])
    out["n"] = float(len(delays))
    out["p50_s"] = round(float(np.median(totals)), 3)
    out["p95_s"] = round(float(np.percentile(totals, 95)), 3)
    for part in ("silence_wait_s", "input_s", "recognition_s", "decision_s", "synthesis_s",
                 "output_s"):
        out[part.replace("_s", "") + "_p50_s"] = round(
            float(np.median([getattr(d, part) for d in delays])), 3)
    return out
