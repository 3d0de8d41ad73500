"""`roleplay drill`: a live call over a real microphone and speaker.

One `DuplexStream` runs for the whole call. At the start a chirp measures the output-to-input lag
(and the echo gain), and from then on both tracks share one call timeline:

    caller track sample j  = output sample  origin + j          (what we played)
    trainee track sample j = microphone sample origin + lag + j (what the microphone heard)

where `lag` follows the echo of each caller line: an output underflow under CPU load delays all
later output, and the trainee track is then mapped that much earlier (`echo-offset` events).

The main loop reads microphone blocks, writes both tracks to the call directory as they come
(`CallWriter`), gates the caller's echo out of the microphone (`EchoGate`), runs the streaming
Silero VAD frame by frame (`StreamingVad`) and feeds the turn-taking state machine
(`TurnTaker`). Its events drive the caller through the same per-turn path as `roleplay demo`:
the trainee's turn -> `analysis.analyse_turn` -> `demo.observe` -> `scenario.react` ->
`scenario.next_line` -> synthesis -> playback.

For every answered trainee turn the reply delay (end of the trainee's speech to the first sample
of the caller's reply, both on the call timeline) is logged with its parts as a `reply-delay`
event: silence wait (the end-of-turn threshold), input (device and queue delay until the loop saw
that frame), recognition, decision, synthesis and audio output.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from roleplay.audio.clip import Audio, amplitude_to_db, load_audio, save_wav
from roleplay.audio.devices import DeviceSpec, DuplexStream, LagMeasurement, measure_lag
from roleplay.audio.echo import EchoGate
from roleplay.core.constants import RATE_HZ  # noqa: E402
from roleplay.core.errors import InputError, RoleplayError
from roleplay.core.paths import make_private_dir, user_data_dir
from roleplay.session.turntaking import TurnEvent, TurnSettings, TurnTaker
from roleplay.speech.streamvad import StreamingVad

RING_S = (0.4, 0.2, 0.4)  # tone, pause, tone: the phone rings before the call's timeline starts
TAIL_S = 0.6  # recorded after the caller's last line
CALIBRATION_MAX_S = 25.0
LAG_MIN_CONFIDENCE = 0.5
STATUS_EVERY_S = 0.25
TURN_PAD_S = 0.15  # audio kept around a trainee turn for its analysis


@dataclass(frozen=True)
class DrillSettings:
    turn: TurnSettings = field(default_factory=TurnSettings)
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


@dataclass(frozen=True)
class DrillResult:
    directory: Path
    outcome: str
    cut_off: bool
    lag: LagMeasurement
    reply_delays: tuple[ReplyDelay, ...]
    interruptions: tuple[float, ...]  # start_s of each interruption seen live
    caller_lines: int
    anger_end: float
    report_path: Path | None
    message: str = ""


def trainees_dir() -> Path:
    return user_data_dir() / "trainees"


def calibration_path(trainee: str) -> Path:
    if not trainee or "/" in trainee or trainee.startswith("."):
        raise InputError(f"trainee name {trainee!r}: expected a plain name without '/'")
    return trainees_dir() / trainee / "calibration.wav"


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


class _Timeline:
    """Both tracks on the call timeline, appended to the call directory as the microphone runs."""

    def __init__(self, writer, *, origin: int, lag: int) -> None:
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
    """The recognizer for a turn that went on after a pause whose early recognition (`earlier`, a
    Turn on the call timeline) is done: its words stand for the speech segments before `upto_s`
    (a moment in that pause), and only the later segments are decoded. A segment across it (the
    VAD joins gaps under 0.3 s) gets the whole turn decoded again."""

    def __init__(self, inner: Any, earlier: Any, *, offset_s: float, upto_s: float) -> None:
        self.inner = inner
        self.earlier = earlier
        self.offset_s = offset_s  # call time of the audio's first sample
        self.upto_s = upto_s  # call time inside the pause: `earlier` holds the speech before it
        self.reused = False

    def transcribe(self, audio: Audio, segments: tuple, *, language: str) -> tuple:
        if self.earlier is None:
            return self.inner.transcribe(audio, segments, language=language)
        upto_s = self.upto_s - self.offset_s
        if not segments or any(g.start_s < upto_s < g.end_s for g in segments):
            return self.inner.transcribe(audio, segments, language=language)
        self.reused = True
        later = tuple(g for g in segments if g.start_s >= upto_s)
        known = tuple(replace(w, start_s=w.start_s - self.offset_s, end_s=w.end_s - self.offset_s)
                      for w in self.earlier.words)
        return known + (self.inner.transcribe(audio, later, language=language) if later else ())


class _Speaker:
    """Caller lines to audio, cached: the opening is made before the phone rings."""

    def __init__(self, voice: Any, cache_dir: Path | None) -> None:
        self.voice = voice
        self.cache_dir = cache_dir
        self._made: dict[tuple[str, float], Audio] = {}
        self._lock = threading.Lock()

    def audio(self, line: Any, anger: float) -> tuple[Audio, float]:
        """The line's audio and the seconds spent making it now (0 if made ahead)."""
        key = (line.text, round(anger, 1))
        with self._lock:
            if key in self._made:
                return self._made[key], 0.0
        began = time.monotonic()
        from roleplay.session.demo import _caller_speech

        audio = _caller_speech(line, self.voice, round(anger, 1), self.cache_dir)
        with self._lock:
            self._made[key] = audio
        return audio, time.monotonic() - began

    def ahead(self, line: Any, anger: float) -> None:
        threading.Thread(target=self.audio, args=(line, anger), daemon=True).start()


def record_calibration(stream: DuplexStream, *, sentence: str, status: _Status,
                       settings: TurnSettings | None = None) -> Audio:
    """Ask the trainee to read `sentence`; record from their first word until a pause ends it."""
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
        pending = np.concatenate((pending, block))
        while len(pending) >= vad.frame_samples:
            frame, pending = pending[: vad.frame_samples], pending[vad.frame_samples :]
            t = vad.frames_done * vad.frame_s
            for ev in taker.step(t, vad.frame(frame), caller_playing=False):
                if ev.kind == "end-of-turn":
                    audio = np.concatenate(samples)
                    a = max(0, int((ev.start_s - 0.2) * RATE_HZ))
                    b = int((ev.end_s + 0.3) * RATE_HZ)
                    return Audio(audio[a:b].copy(), RATE_HZ)
    raise RoleplayError(f"no calibration sentence heard within {CALIBRATION_MAX_S:g} s: check the "
                        "microphone (`roleplay devices --test`)")


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
    cache_dir: Path | None = None,
    on_ready: Callable[[], None] | None = None,
    analyse: bool = True,
    hang_up: threading.Event | None = None,
) -> DrillResult:
    """Run one live call into `out_dir`; write it as it happens; analyse it at the end.

    `on_ready` is called once the call timeline starts (right after the ring): a scripted
    trainee starts its clock there. `hang_up` set (the trainee pressed Enter) ends the call at
    once as ended by the trainee; whether that was announced is the assessment's business.
    KeyboardInterrupt and a lost device end the call cut off: the recording is kept and analysed
    as far as it got.
    """
    from roleplay.analysis.pipeline import analyse_turn, calibration_baseline
    from roleplay.caller.scenario import initial_state, load_scenario, next_line, outcome, react
    from roleplay.caller.simtrainee import load_trainee_lines
    from roleplay.recording.calldir import CallWriter
    from roleplay.session.demo import observe
    from roleplay.speech.voice import load_voice

    status = _Status(status_out)
    live_asr = _live_transcriber(transcriber)
    scenario = load_scenario(scenario_id)
    language = scenario.language
    voice = load_voice(scenario.caller_voice)
    speaker = _Speaker(voice, cache_dir)
    rng = random.Random(settings.seed if settings.seed is not None else scenario.seed)
    state = initial_state(scenario)
    cal_path = calibration_path(trainee)
    tl_settings = settings.turn

    # Warm everything before the phone rings: VAD, TTS worker, recognizer (via the baseline).
    vad = StreamingVad()
    vad.process(np.zeros(vad.frame_samples, np.float32))
    vad.reset()
    _, opening = next_line(scenario, state, rng=random.Random(0))
    stream = DuplexStream(input_device=input_device, output_device=output_device)
    stream.start()
    try:
        if cal_path.is_file():
            calibration = load_audio(cal_path).resampled(RATE_HZ)
        else:
            sentence = load_trainee_lines(language).calibration
            calibration = record_calibration(stream, sentence=sentence, status=status,
                                              settings=tl_settings)
            make_private_dir(cal_path.parent)
            save_wav(cal_path, calibration)
            status.say(f"calibration stored: {cal_path}")
        baseline = calibration_baseline(calibration, language=language, transcriber=transcriber)
        # the opening's first pick uses the real rng below; make its likely audio now
        speaker.audio(opening, state.anger)
        # Measured last, after the heavy warm-up: an output underflow under load shifts the
        # output against the input (60-140 ms seen), which would spoil a lag measured before.
        lag = measure_lag(stream)
        if lag.confidence < LAG_MIN_CONFIDENCE:
            status.say("the microphone did not hear the speaker (a headset?): no echo to suppress; "
                       "the tracks are aligned by the device's own latency")
            lag = LagMeasurement(lag_ms=0.0, lag_samples=0, confidence=lag.confidence,
                                 spread_ms=lag.spread_ms, gain=0.0)
        status.say(f"output-to-input delay {lag.lag_ms:.0f} ms (confidence {lag.confidence:.2f}), "
                   f"echo gain {amplitude_to_db(lag.gain):.0f} dB")
    except BaseException:
        stream.stop()
        raise

    meta = {
        "mode": "live", "scenario": scenario.id, "language": language, "trainee": trainee,
        "needs": list(scenario.needs), "caller_voice": voice.id,
        "expected_outcomes": list(scenario.ending.expected), "anger_start": state.anger,
        "lag_ms": round(lag.lag_ms, 2), "lag_confidence": round(lag.confidence, 3),
        "echo_gain": round(lag.gain, 4), "input_device": repr(input_device),
        "output_device": repr(output_device), "end_of_turn_s": tl_settings.end_of_turn_s,
    }
    writer = CallWriter(out_dir, rate_hz=RATE_HZ, meta=meta)
    save_wav(Path(out_dir) / "calibration.wav", calibration)
    delays: list[ReplyDelay] = []
    interruptions: list[float] = []
    caller_count = 0
    final = "aborted"
    message = ""
    cut_off = False
    try:
        ring = stream.play(_ring(RATE_HZ))
        status.say("The phone rings: answer it (say your greeting).")
        origin = ring.end_sample
        tl = _Timeline(writer, origin=origin, lag=lag.lag_samples)
        gate = EchoGate(lag_samples=0, gain=lag.gain, rate_hz=RATE_HZ)
        taker = TurnTaker(tl_settings)
        taker.caller_end_s = None  # the caller has not spoken: no no-answer until it has
        # skip microphone input from before the call
        writer.event("call-start", t_s=0.0, anger=state.anger, scenario=scenario.id,
                     trainee=trainee, lag_ms=round(lag.lag_ms, 2))
        ready_sent = False
        restarts = stream.restarts
        frame_pos = 0  # trainee-track sample of the next VAD frame
        current: dict[str, Any] | None = None  # the caller line playing (or last played)
        greeted = False
        answered_at_s: float | None = None
        # Recognition starts as soon as the trainee pauses (TURN_PAD_S into the silence), in a
        # worker thread; if the pause becomes the end of the turn, its result is used.
        from concurrent.futures import ThreadPoolExecutor

        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roleplay-asr")
        spec: dict[str, Any] = {}
        debug: list | None = [] if os.environ.get("ROLEPLAY_LIVE_DEBUG") else None

        def analyse_span(start_s: float, end_s: float, asr: Any = None):
            a = max(0.0, start_s - TURN_PAD_S)
            return analyse_turn(audio=tl.trainee_audio(a, end_s + TURN_PAD_S), speaker="trainee",
                                language=language, transcriber=asr or live_asr, baseline=baseline,
                                offset_s=a)
        def early(span: tuple[float, float], before: tuple[tuple[float, float], Any] | None
                  ) -> tuple[Any, str]:
            """The turn so far, recognised in a pause (in the worker). If the trainee went on after
            an earlier pause whose recognition ran, its words are kept and only the rest decoded:
            the worker runs one job at a time, so that one has finished by now."""
            if before is not None and before[0][0] == span[0] and not before[1].cancelled():
                earlier = before[1].result()[0]
                # cut in that pause: it was at least TURN_PAD_S long
                resumed = _Resumed(live_asr, earlier, offset_s=max(0.0, span[0] - TURN_PAD_S),
                                   upto_s=before[0][1] + TURN_PAD_S / 2)
                turn = analyse_span(*span, resumed)
                return turn, "early-rest" if resumed.reused else "early"
            return analyse_span(*span), "early"

        result: str | None = None
        ending_handle = None
        level_db = -120.0

        def now_s() -> float:
            return (stream.output_position_samples - origin) / RATE_HZ

        def speak(line, *, reason: str, turn_events: dict[str, float] | None) -> None:
            nonlocal current, caller_count
            synth_began = time.monotonic()
            audio, made_s = speaker.audio(line, state.anger)
            synthesis_s = time.monotonic() - synth_began
            at_play_s = now_s()
            handle = stream.play(audio)
            start = handle.start_sample - origin
            tl.add_caller(audio.samples, start)
            taker.caller_took_turn()
            caller_count += 1
            prosody = voice.prosody_at(state.anger)
            start_s = start / RATE_HZ
            current = {"handle": handle, "start": start, "start_s": start_s,
                       "end_s": start_s + audio.duration_s, "line": line}
            writer.event("caller-line", t_s=round(start_s, 3),
                         end_s=round(start_s + audio.duration_s, 3), text=line.text,
                         situation=line.situation, group=line.group, anger=state.anger,
                         rate_wpm=round(prosody.rate_wpm, 1), volume=round(prosody.volume, 3),
                         reason=reason)
            status.say(f"  caller   {start_s:6.1f} s  [{state.anger:4.1f}] {line.text}")
            if turn_events is not None:
                d = ReplyDelay(
                    turn=len(delays) + 1,
                    total_s=round(start_s - turn_events["speech_end_s"], 3),
                    silence_wait_s=round(turn_events["decided_s"] - turn_events["speech_end_s"], 3),
                    input_s=round(turn_events["seen_s"] - turn_events["decided_s"], 3),
                    recognition_s=round(turn_events["recognition_s"], 3),
                    decision_s=round(turn_events["decision_s"], 3),
                    recognised=turn_events["recognised"],
                    synthesis_s=round(synthesis_s, 3),
                    output_s=round(start_s - at_play_s, 3),
                )
                delays.append(d)
                writer.event("reply-delay", t_s=round(start_s, 3), **{
                    k: v for k, v in d.__dict__.items()}, made_ahead=made_s == 0.0)

        def answer(kind: str, ev: TurnEvent) -> None:
            """The trainee's turn is over (or barged into): analyse, react, reply."""
            nonlocal state, result, greeted, ending_handle
            seen_s = now_s()
            t0 = time.monotonic()
            recognised = "whole"
            if kind == "no-answer":
                turn = None
                speech_end_s = ev.start_s or 0.0
            else:
                end_s = ev.end_s if ev.end_s is not None else ev.t_s
                speech_end_s = end_s
                if spec.get("span") == (ev.start_s, end_s):
                    turn, recognised = spec["future"].result()  # started while the trainee paused
                else:
                    turn = analyse_span(ev.start_s, end_s)
                    recognised = "whole"
                spec.clear()
            recognition_s = time.monotonic() - t0
            t1 = time.monotonic()
            if not greeted:
                greeted = True
                writer.event("trainee-turn", t_s=round(ev.start_s or 0.0, 3),
                             end_s=round(speech_end_s, 3), heard=turn.text if turn else "",
                             intent="greeting")
                status.say(f"  trainee  {ev.start_s or 0.0:6.1f} s  {turn.text if turn else ''}")
                before = state
                state, line = next_line(scenario, state, rng=rng)
            else:
                cur = current or {"start_s": 0.0, "end_s": 0.0, "line": None}
                situation = cur["line"].situation if cur["line"] is not None else "opening"
                seen = observe(turn, caller_start_s=cur["start_s"], caller_end_s=cur["end_s"],
                               caller_situation=situation, ends_call=False, language=language)
                before = state
                state, changes = react(scenario, state, seen.observation, rng=rng)
                writer.event("trainee-turn", t_s=round(ev.start_s or speech_end_s, 3),
                             end_s=round(speech_end_s, 3), heard=turn.text if turn else "",
                             behaviours=sorted(state.last_behaviours), latency_s=seen.latency_s,
                             overlap_s=seen.overlap_s, decided_by=kind)
                status.say(f"  trainee  {ev.start_s or speech_end_s:6.1f} s  "
                           f"{turn.text if turn else '(silence)'}  -> {sorted(state.last_behaviours)}")
                for ch in changes:
                    writer.event("anger", t_s=round(speech_end_s, 3), anger=ch.anger_after,
                                 delta=ch.delta, reason=ch.reason)
                result = outcome(scenario, state, elapsed_s=speech_end_s)
                if result is not None:
                    return
                if settings.max_caller_lines is not None and caller_count >= settings.max_caller_lines:
                    result = "time-limit"
                    return
                state, line = next_line(scenario, state, rng=rng)
            decision_s = time.monotonic() - t1
            taker.barge_in_after_s = (scenario.rules.barge_in_after_s
                                      if state.anger >= scenario.rules.barge_in_at else None)
            del before
            speak(line, reason=kind, turn_events={
                "speech_end_s": speech_end_s, "decided_s": ev.t_s, "seen_s": seen_s,
                "recognition_s": recognition_s, "decision_s": decision_s, "recognised": recognised})
            result = outcome(scenario, state, elapsed_s=current["end_s"])
            if result is not None:
                ending_handle = current["handle"]

        while True:
            block = stream.read_input(timeout_s=1.0)
            if block is None:
                raise RoleplayError("the microphone delivered no audio for 1 s")
            mic_end = stream.input_position_samples
            if stream.restarts > restarts:
                restarts = stream.restarts
                writer.event("audio-restart", t_s=round(tl.trainee_len / RATE_HZ, 3), restarts=restarts)
                status.say("  the audio device stopped and was opened again; the call goes on")
            tl.add_mic(block, mic_end - len(block))
            tl.flush()
            if not ready_sent and stream.output_position_samples >= origin:
                ready_sent = True
                if on_ready is not None:
                    on_ready()
            rms = float(np.sqrt(np.mean(block.astype(np.float64) ** 2)))
            level_db = amplitude_to_db(rms)
            # VAD frames on the trainee track
            while frame_pos + vad.frame_samples <= tl.trainee_len:
                a, b = frame_pos, frame_pos + vad.frame_samples
                frame_pos = b
                clean = gate.clean(tl.trainee[a:b], tl.caller, a)
                prob = vad.frame(clean)
                playing = tl.caller_audible(a, b)
                if debug is not None:
                    debug.append((a / RATE_HZ, prob, float(not clean.any()), float(playing),
                                  gate.predicted_echo_rms(tl.caller, a, b), now_s()))
                for ev in taker.step(a / RATE_HZ, prob, caller_playing=playing):
                    if result is not None:
                        continue
                    if ev.kind == "interruption" and current is not None:
                        interruptions.append(ev.start_s)
                        yields = state.anger < scenario.rules.barge_in_at
                        writer.event("interruption", t_s=round(ev.start_s, 3),
                                     decided_s=round(ev.t_s, 3),
                                     caller="yields" if yields else "talks-on")
                        status.say(f"  trainee interrupts at {ev.start_s:.1f} s: caller "
                                   f"{'stops' if yields else 'talks on'}")
                        if yields and not current["handle"].done:
                            stream.stop_playback()
                            cut = current["handle"].played_until_sample - origin
                            tl.cut_caller(cut)
                            current["end_s"] = cut / RATE_HZ
                            writer.event("caller-stopped", t_s=round(cut / RATE_HZ, 3))
                    elif ev.kind == "backchannel":
                        writer.event("backchannel", t_s=round(ev.start_s, 3),
                                     end_s=round(ev.end_s, 3))
                    elif ev.kind == "trainee-start":
                        if answered_at_s is None:
                            answered_at_s = ev.start_s
                    elif ev.kind in ("end-of-turn", "barge-in", "no-answer"):
                        if ev.kind == "barge-in":
                            writer.event("barge-in", t_s=round(ev.t_s, 3), anger=state.anger,
                                         trainee_speaking_s=round(ev.t_s - (ev.start_s or 0), 3))
                        answer(ev.kind, ev)
            if (result is None and taker.turn_start_s is not None and not taker.trainee_speaking
                    and taker.last_speech_end_s is not None
                    and frame_pos / RATE_HZ >= taker.last_speech_end_s + TURN_PAD_S
                    and taker.last_speech_end_s > taker.turn_start_s):
                span = (taker.turn_start_s, taker.last_speech_end_s)
                if spec.get("span") != span:
                    before = None
                    if spec:
                        spec["future"].cancel()  # an older pause's, if it has not started yet
                        before = (spec["span"], spec["future"])
                    spec.clear()
                    spec.update(span=span, future=worker.submit(early, span, before))
            if current is not None and gate.active and not current.get("echo_checked"):
                _track_echo(current, tl, writer)
            t_call = tl.trainee_len / RATE_HZ
            who = ("caller speaking" if current is not None and not current["handle"].done
                   else "trainee speaking" if taker.trainee_speaking else "listening")
            status.show(t_s=t_call, who=who, level_dbfs=level_db, anger=state.anger)
            if not greeted and answered_at_s is None and t_call >= settings.answer_timeout_s:
                greeted = True  # nobody picked up in words: the caller starts anyway
                state, line = next_line(scenario, state, rng=rng)
                speak(line, reason="no-greeting", turn_events=None)
            if result is None and hang_up is not None and hang_up.is_set():
                result = "ended-by-trainee"
                ending_handle = None
                if current is not None and not current["handle"].done:
                    stream.stop_playback()
                    cut = current["handle"].played_until_sample - origin
                    tl.cut_caller(cut)
                    current["end_s"] = cut / RATE_HZ
                    writer.event("caller-stopped", t_s=round(cut / RATE_HZ, 3))
                writer.event("trainee-hung-up", t_s=round(t_call, 3))
                status.say(f"  trainee hangs up at {t_call:.1f} s")
            if result is None and t_call >= scenario.ending.time_limit_s:
                result = "time-limit"
            if result is not None:
                last_end = current["end_s"] if current is not None else 0.0
                if ending_handle is None or ending_handle.done:
                    if t_call >= max(last_end, 0.0) + TAIL_S:
                        break
        worker.shutdown(wait=False, cancel_futures=True)
        if debug is not None:
            np.save(Path(out_dir) / "frames-debug.npy", np.array(debug))
        final = result
        tl.flush()
        writer.event("call-end", t_s=round(tl.trainee_len / RATE_HZ, 3), outcome=final,
                     anger=state.anger)
        writer.update_meta(stream_status=dict(stream.status.__dict__),
                           anger_peak=state.peak_anger, anger_end=state.anger,
                           caller_lines=caller_count, reply_delays_s=[d.total_s for d in delays])
        writer.close(outcome=final)
    except KeyboardInterrupt:
        cut_off, message = True, "call cut off (Ctrl-C); the recording so far is kept"
    except RoleplayError as exc:
        cut_off, message = True, f"call cut off: {exc}; the recording so far is kept"
    except BaseException:
        writer.close(outcome="aborted", status="aborted")
        stream.stop()
        raise
    finally:
        stream.stop()
    if cut_off:
        try:
            tl.flush()
        except Exception:  # noqa: BLE001 - keep what is already on disk
            pass
        writer.event("call-end", t_s=round(writer.frames("caller") / RATE_HZ, 3), outcome="aborted",
                     reason=message)
        writer.close(outcome="aborted", status="aborted")
        status.say(message)
    report_path = None
    if analyse:
        from roleplay.app.analyse import analyse_call_dir

        *_, report_path = analyse_call_dir(Path(out_dir), language, transcriber)
    return DrillResult(directory=Path(out_dir), outcome=final if not cut_off else "aborted",
                       cut_off=cut_off, lag=lag, reply_delays=tuple(delays),
                       interruptions=tuple(interruptions), caller_lines=caller_count,
                       anger_end=state.anger, report_path=report_path, message=message)


ECHO_CHECK_S = 0.8  # of each caller line, compared with the microphone to find its echo
ECHO_SEARCH_S = 0.3


def _track_echo(current: dict[str, Any], tl: _Timeline, writer: Any) -> None:
    """Find where the echo of the caller line actually sits in the trainee track; if it moved (an
    output underflow shifts the output against the input mid-call, 60-140 ms seen under load),
    shift the trainee track's mapping by as much, which keeps the echo gate aligned too. The
    part of this line already mapped (its first ECHO_CHECK_S + ECHO_SEARCH_S) keeps the old one."""
    from scipy.signal import correlate

    s0, n, w = current["start"], int(ECHO_CHECK_S * RATE_HZ), int(ECHO_SEARCH_S * RATE_HZ)
    if tl.trainee_len < s0 + n + w:
        return
    current["echo_checked"] = True
    if current["handle"].played_until_sample - tl.origin < s0 + n:
        return  # cut short: not enough of the line was played
    ref = tl.caller[s0 : s0 + n].astype(np.float64)
    lo = max(0, s0 - w)
    seg = tl.trainee[lo : s0 + n + w].astype(np.float64)
    if not ref.any() or not seg.any():
        return
    scores = correlate(seg, ref, mode="valid")
    k = int(np.argmax(np.abs(scores)))
    heard = seg[k : k + n]
    confidence = abs(float(scores[k])) / float(np.linalg.norm(heard) * np.linalg.norm(ref) or 1.0)
    offset = lo + k - s0
    if confidence >= 0.5 and abs(offset) > int(0.005 * RATE_HZ):
        tl.shift(offset)
        writer.event("echo-offset", t_s=round(s0 / RATE_HZ, 3), offset_ms=round(offset / 16, 1),
                     confidence=round(confidence, 3), shifted_from_s=round(tl.trainee_len / RATE_HZ, 3))


def _live_transcriber(transcriber: Any) -> Any:
    """The same model, greedy (beam 1): the caller's reaction needs speed more than the last
    word; the analysis after the call uses `transcriber` as given."""
    import dataclasses

    from roleplay.speech.asr import FasterWhisperTranscriber

    if isinstance(transcriber, FasterWhisperTranscriber) and transcriber.settings.beam_size > 1:
        return FasterWhisperTranscriber(
            transcriber.model_path, settings=dataclasses.replace(transcriber.settings, beam_size=1))
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


def cmd_drill(args: Any, out: TextIO | None = None) -> int:
    """`roleplay drill SCENARIO [--trainee NAME] [--repeat N] [--input-device ..] ...`: one call,
    or N with a pause and a summary in between and a comparison at the end."""
    out = out if out is not None else sys.stdout
    from roleplay.app.analyse import load_transcriber
    from roleplay.caller.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    calibration_path(args.trainee)  # a bad name fails before the model loads
    repeat, pause_s = args.repeat, args.pause  # checked by the parser
    out.write(f"Drill: {scenario.id} ({scenario.title}); trainee {args.trainee}"
              f"{f'; {repeat} calls' if repeat > 1 else ''}. Use a headset if you can: a "
              "loudspeaker's sound in the microphone is only gated, not removed.\n"
              "Enter hangs up; Ctrl-C cuts the call off (both keep it and analyse it).\n")
    out.flush()
    transcriber = load_transcriber(getattr(args, "model", None))
    keys = _EnterKey(sys.stdin)
    directories: list[Path] = []
    any_cut = False
    try:
        for attempt in range(1, repeat + 1):
            if repeat > 1:
                out.write(f"\n=== Call {attempt} of {repeat} ===\n")
                out.flush()
            directory, result = _one_drill(args, transcriber, keys.next_call(), out)
            directories.append(directory)
            any_cut = any_cut or result.cut_off
            if "Ctrl-C" in result.message or attempt == repeat:
                break
            out.write(f"\nNext call in {pause_s:g} s: Enter starts it now, Ctrl-C ends the series.\n")
            out.flush()
            keys.next_call().wait(pause_s)
    except KeyboardInterrupt:
        out.write("\nseries ended (Ctrl-C)\n")
    if len(directories) > 1:
        print_series(directories, out)
        out.write(f"\nEvery attempt so far, and the original call if there was one: "
                  f"roleplay progress --scenario {scenario.id} --trainee {args.trainee}\n")
    return 1 if any_cut else 0


def _one_drill(args: Any, transcriber: Any, hang_up: threading.Event, out: TextIO
               ) -> tuple[Path, DrillResult]:
    from roleplay.core.paths import cache_dir
    from roleplay.recording.calldir import load_call
    from roleplay.report.html import print_summary
    from roleplay.session.demo import free_directory

    directory = free_directory(Path(args.out))
    # the id or the file as given: a recorded copy (`voices record`) lives outside scenarios/
    result = run_drill(scenario_id=args.scenario, trainee=args.trainee, out_dir=directory,
                       transcriber=transcriber, input_device=_device(args.input_device),
                       output_device=_device(args.output_device), status_out=sys.stderr,
                       cache_dir=cache_dir() / "tts",
                       settings=DrillSettings(turn=TurnSettings(end_of_turn_s=args.end_of_turn)),
                       hang_up=hang_up)
    if result.report_path is not None:
        data = json.loads((directory / "analysis.json").read_text(encoding="utf-8"))
        print_summary(data, out)
    summary = delay_summary(result.reply_delays)
    if summary:
        out.write(f"\nReply delay: median {summary['p50_s']:.2f} s, 95th percentile "
                  f"{summary['p95_s']:.2f} s over {int(summary['n'])} turns\n")
    cut = " (cut off)" if load_call(directory).cut_off else ""
    out.write(f"Outcome: {result.outcome}{cut}\nCall: {directory}\n")
    if result.report_path is not None:
        out.write(f"Report: {result.report_path}\n")
    out.flush()
    return directory, result


def print_series(directories: list[Path], out: TextIO) -> None:
    """The calls of one `--repeat` series side by side: outcome, anger and each advice verdict."""
    calls = []
    for d in directories:
        path = d / "analysis.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        calls.append((meta, {a["id"]: a["verdict"] for a in data.get("advice", [])}))
    ids = list(dict.fromkeys(i for _meta, verdicts in calls for i in verdicts))
    mark = {"pass": "pass", "fail": "FAIL", "not-applicable": "-"}
    out.write("\nThe series, call by call:\n")
    out.write(f"  {'':24}" + "".join(f"{f'call {k}':>9}" for k in range(1, len(calls) + 1)) + "\n")
    short = {"ended-by-trainee": "ended", "caller-hung-up": "hung-up", "time-limit": "time-up",
             "transferred": "transfer", "aborted": "cut off"}
    out.write(f"  {'outcome (ended = by you)':24}"
              + "".join(f"{short.get(str(m.get('outcome')), str(m.get('outcome')))[:8]:>9}" for m, _v in calls)
              + "\n")
    out.write(f"  {'caller anger at end':24}"
              + "".join(f"{m.get('anger_end', float('nan')):>9.1f}" for m, _v in calls) + "\n")
    for advice_id in ids:
        out.write(f"  {advice_id:24}" + "".join(f"{mark.get(v.get(advice_id, ''), '?'):>9}"
                                                  for _m, v in calls) + "\n")
    passed = [sum(v == "pass" for v in verdicts.values()) for _m, verdicts in calls]
    out.write(f"  {'advice items passed':24}" + "".join(f"{p:>9}" for p in passed) + "\n")


class _EnterKey:
    """Enter on `stream` (the terminal): one reader thread for the whole series; each call (and
    each pause) gets its own event, so an Enter ends only the call it was pressed in. End of input
    (no terminal, /dev/null) never hangs up."""

    def __init__(self, stream: TextIO | None) -> None:
        self._event = threading.Event()
        if stream is not None:
            threading.Thread(target=self._read, args=(stream,), name="roleplay-enter",
                             daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        try:
            while stream.readline():
                self._event.set()
        except (OSError, ValueError):
            pass

    def next_call(self) -> threading.Event:
        self._event = threading.Event()
        return self._event


def _device(value: str | None) -> DeviceSpec:
    if value is None or value == "":
        return None
    return int(value) if value.isdigit() else value
