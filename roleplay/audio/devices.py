"""The sound-card adapter: device listing, one full-duplex stream per call, lag measurement.

The only module that imports sounddevice (PortAudio). One `DuplexStream` runs for a whole call:
its callback renders output sample k and records microphone sample k in the same block, so
both share one sample timeline and differ only by the device round trip, which `measure_lag`
measures (it varied between 130 and 260 ms from stream to stream over PulseAudio).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from roleplay.audio.clip import Audio, amplitude_to_db
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import RoleplayError

BLOCK_SAMPLES = 1024  # blocksize=0 recorded silence over PulseAudio; 1024 (64 ms) worked
RING_S = 30.0  # microphone audio kept for a reader that falls behind
START_TIMEOUT_S = 10.0  # PortAudio over PulseAudio took about 1.7 s to the first callback
SETTLE_S = 1.0
# An input latency above this is a capture backlog, not a device latency: an idle PulseAudio
# null sink built up 1.6 s while PortAudio started, and the microphone stayed that late.
MAX_INPUT_LATENCY_S = 0.5
MIN_LAG_CONFIDENCE = 0.5  # below this the microphone did not clearly hear the chirp
CLIP_LEVEL = 0.999
TEST_RECORD_S = 3.0

DeviceSpec = int | str | None  # PortAudio index, part of a name, or None for the default


def _sounddevice() -> Any:  # the sounddevice module (untyped)
    try:
        import sounddevice
    except OSError as exc:  # the Python package loads libportaudio at import
        raise RoleplayError(
            f"the PortAudio library is missing ({exc}); install it (Debian: apt-get install "
            "libportaudio2)"
        ) from None
    return sounddevice


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def rescan() -> None:
    """Re-initialise PortAudio so that it sees devices that appeared or vanished since.

    PortAudio reads the device list once at initialisation. Closes any open stream: call it
    only between calls.
    """
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_rate_hz: float
    is_default_input: bool
    is_default_output: bool


def list_devices() -> tuple[DeviceInfo, ...]:
    """All PortAudio devices; a RoleplayError if there are none."""
    sd = _sounddevice()
    raw = sd.query_devices()
    if len(raw) == 0:
        raise RoleplayError(
            f"no audio devices found (PortAudio: {_default_device_error(sd)}); connect a headset "
            "or start PulseAudio"
        )
    apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    return tuple(
        DeviceInfo(
            index=d["index"],
            name=d["name"],
            host_api=apis[d["hostapi"]]["name"],
            max_input_channels=d["max_input_channels"],
            max_output_channels=d["max_output_channels"],
            default_rate_hz=float(d["default_samplerate"]),
            is_default_input=d["index"] == default_in,
            is_default_output=d["index"] == default_out,
        )
        for d in raw
    )


def _default_device_error(sd: Any) -> str:
    try:
        sd.query_devices(kind="input")
    except Exception as exc:  # noqa: BLE001 - PortAudio says why in its own words: show them
        return _one_line(exc)
    return "empty device list"


@dataclass(frozen=True)
class StreamStatus:
    """How often PortAudio flagged a problem in the callback; non-zero means glitches."""

    input_overflows: int
    input_underflows: int
    output_underflows: int
    output_overflows: int


_UNPLACED = -1  # the start of a sound the callback places at the first block it renders
PLACE_TIMEOUT_S = 2.0  # a stream that renders no block this long is stalled: place it ourselves


class _Playing:
    """One queued sound; the callback writes `played_end`, and places an unplaced sound."""

    __slots__ = ("cancelled", "end", "played_end", "samples", "start")

    def __init__(self, start: int, samples: np.ndarray) -> None:
        self.samples = samples
        self.cancelled = False
        self.start = _UNPLACED
        self.end = self.played_end = 2**62  # live until placed
        if start != _UNPLACED:
            self.place(start)

    def place(self, start: int) -> None:
        self.end = start + len(self.samples)
        self.played_end = start
        self.start = start  # last: a waiting producer reads `end` once `start` is set


@dataclass(frozen=True)
class PlaybackHandle:
    """Where one `play` lands on the output timeline (sample indices of the stream)."""

    start_sample: int
    end_sample: int  # exclusive, as scheduled; `played_until_sample` says how far it got
    _item: _Playing

    @property
    def played_until_sample(self) -> int:
        """Exclusive end of what the callback actually rendered (less if stopped)."""
        return self._item.played_end

    @property
    def stopped(self) -> bool:
        return self._item.cancelled

    @property
    def done(self) -> bool:
        return self._item.cancelled or self._item.played_end >= self._item.end

    def wait(self, *, timeout_s: float) -> bool:
        """Block until rendered or stopped; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self.done:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


_FINISHED = -1  # queued by the finished callback so a waiting reader wakes at once
MAX_RESTARTS = 3  # of a stream that PortAudio ended by itself, per call
RESTART_TIMEOUT_S = 5.0


class DuplexStream:
    """One full-duplex 16 kHz mono stream for a whole call.

    Timeline: output sample k and microphone sample k are rendered and recorded in the same
    callback block, so on one timeline they differ only by the device round trip (see
    `measure_lag`). One thread reads the microphone; any thread may `play`.
    """

    def __init__(
        self,
        *,
        input_device: DeviceSpec = None,
        output_device: DeviceSpec = None,
        rate_hz: int = RATE_HZ,
        block_samples: int = BLOCK_SAMPLES,
        ring_s: float = RING_S,
    ) -> None:
        self.input_device = input_device
        self.output_device = output_device
        self.rate_hz = rate_hz
        self.block_samples = block_samples
        ring_blocks = math.ceil(ring_s * rate_hz / block_samples)
        self._ring = np.zeros(ring_blocks * block_samples, dtype=np.float32)
        self._schedule_lock = threading.Lock()  # between producers only, never in the callback
        self._stream: Any = None  # a sounddevice.Stream while open
        self._started = False
        self.reopened = False  # start() re-opened the stream once to shed an input backlog
        self.restarts = 0  # times PortAudio ended the stream mid-call and it was opened again
        self._reset()

    def _reset(self) -> None:
        self._blocks: queue.SimpleQueue[int] = queue.SimpleQueue()  # end index of each block
        self._status = np.zeros(4, dtype=np.int64)
        self._schedule: tuple[_Playing, ...] = ()  # replaced whole, never mutated: no lock
        self._frames = 0  # samples rendered/recorded so far by the callback
        self._read_pos = 0
        self._input_latency_s = 0.0
        self._finished = False
        self._closing = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(
        self,
        *,
        timeout_s: float = START_TIMEOUT_S,
        settle_s: float = SETTLE_S,
        max_input_latency_s: float = MAX_INPUT_LATENCY_S,
    ) -> None:
        """Open the devices and run `settle_s` of audio; RoleplayError if they do not run.

        Over PulseAudio the first 0.3 s or so had output underflows that shifted the lag;
        settling first lets `measure_lag` see the lag that then holds. If the microphone
        then runs more than `max_input_latency_s` behind (a capture backlog built up while
        the stream started: the trainee would be heard that much late all call long), the
        stream is re-opened once; `input_latency_s` tells what remained.
        """
        self._open_and_settle(timeout_s=timeout_s, settle_s=settle_s)
        if self._input_latency_s > max_input_latency_s:
            self._close_quietly()
            self._reset()
            self.reopened = True
            self._open_and_settle(timeout_s=timeout_s, settle_s=settle_s)

    def _open_and_settle(self, *, timeout_s: float, settle_s: float) -> None:
        sd = _sounddevice()
        try:
            self._stream = sd.Stream(
                samplerate=self.rate_hz,
                blocksize=self.block_samples,
                channels=1,
                dtype="float32",
                device=(self.input_device, self.output_device),
                callback=self._callback,
                finished_callback=self._on_finished,
            )
            self._stream.start()
            self._started = True
        except (sd.PortAudioError, ValueError) as exc:
            self._close_quietly()
            raise RoleplayError(
                f"cannot open the audio devices (input {self._name(self.input_device)}, "
                f"output {self._name(self.output_device)}): {_one_line(exc)}"
            ) from None
        deadline = time.monotonic() + timeout_s
        while self._frames == 0:
            if self._finished or time.monotonic() >= deadline:
                self._close_quietly()
                raise RoleplayError(
                    f"the audio devices opened but delivered no sound within {timeout_s:g} s "
                    f"(input {self._name(self.input_device)}, output "
                    f"{self._name(self.output_device)})"
                )
            time.sleep(0.005)
        settled = int(settle_s * self.rate_hz)
        deadline = time.monotonic() + settle_s + timeout_s
        while self._frames < settled and not self._finished and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._close_quietly()

    def __enter__(self) -> DuplexStream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _name(device: DeviceSpec) -> str:
        return "default" if device is None else repr(device)

    def _close_quietly(self) -> None:
        self._closing = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()  # not stop(): that waits for buffers a vanished device never drains
            stream.close()
        except Exception:  # noqa: BLE001 - a vanished device fails to close too; it is gone either way
            pass

    # -- the audio thread: copies only --------------------------------------------------------

    def _callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        start = self._frames
        end = start + frames
        ring = self._ring
        i = start % len(ring)
        first = min(frames, len(ring) - i)
        ring[i : i + first] = indata[:first, 0]
        ring[: frames - first] = indata[first:, 0]

        out = outdata[:, 0]
        out.fill(0.0)
        for item in self._schedule:
            if item.start == _UNPLACED:
                if item.cancelled:
                    continue
                item.place(start)
            a = max(start, item.start)
            b = min(end, item.end)
            if a < b:
                out[a - start : b - start] += item.samples[a - item.start : b - item.start]
                item.played_end = b

        self._input_latency_s = time_info.currentTime - time_info.inputBufferAdcTime
        if status:
            counts = self._status
            counts[0] += status.input_overflow
            counts[1] += status.input_underflow
            counts[2] += status.output_underflow
            counts[3] += status.output_overflow
        self._frames = end
        self._blocks.put_nowait(end)

    def _on_finished(self) -> None:
        self._finished = True
        self._blocks.put_nowait(_FINISHED)

    # -- playback -----------------------------------------------------------------------------

    def play(self, audio: Audio, *, at_sample: int | None = None) -> PlaybackHandle:
        """Queue audio right after what is already queued, or at `at_sample` (if still ahead).

        With nothing queued the sound starts in the first block the callback renders after this
        call (the caller's reply: one block, 64 ms, sooner than the block after the current one,
        which is the earliest start a producer can choose itself, since the block being rendered
        may already hold the old schedule). Waits for that block, at most PLACE_TIMEOUT_S.
        """
        samples = np.ascontiguousarray(audio.resampled(self.rate_hz).samples, dtype=np.float32)
        with self._schedule_lock:
            now = self._frames
            live = tuple(p for p in self._schedule if p.end > now)
            wanted = max((p.end for p in live), default=0) if at_sample is None else at_sample
            soonest = self._started and not self._finished and wanted <= now
            item = _Playing(_UNPLACED if soonest else max(wanted, now + self.block_samples), samples)
            self._schedule = (*live, item)
            if soonest:
                self._await_placement(item)
        return PlaybackHandle(start_sample=item.start, end_sample=item.end, _item=item)

    def _await_placement(self, item: _Playing) -> None:
        deadline = time.monotonic() + PLACE_TIMEOUT_S
        while item.start == _UNPLACED and time.monotonic() < deadline:
            time.sleep(0.002)
        if item.start != _UNPLACED:
            return
        item.cancelled = True  # a stalled stream: the callback must not place it too ...
        if item.start == _UNPLACED:  # ... unless it did so just now
            item.place(self._frames + self.block_samples)
        item.cancelled = False

    def stop_playback(self) -> None:
        """Silence all queued output from the next block on (barge-in: the caller stops)."""
        with self._schedule_lock:
            for item in self._schedule:
                item.cancelled = True
            self._schedule = ()

    # -- microphone ---------------------------------------------------------------------------

    def read_input(self, *, timeout_s: float) -> np.ndarray | None:
        """The next block of microphone samples in order, or None if none came in time.

        The block starts at `input_position_samples` (before the call). RoleplayError if the
        device stopped (unplugged, sound server gone) or the reader fell more than the ring
        buffer behind.
        """
        if not self._started:
            raise RuntimeError("DuplexStream.read_input before start()")
        try:
            end = self._blocks.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if end == _FINISHED:
            if self._closing:
                self._blocks.put_nowait(_FINISHED)  # every later read sees it too
                return None
            if self._restart():
                return self.read_input(timeout_s=timeout_s)
            self._blocks.put_nowait(_FINISHED)
            raise RoleplayError(
                "the audio device stopped during the call (unplugged, or the sound server "
                f"ended) after {self._frames / self.rate_hz:.1f} s"
            )
        start = self._read_pos
        if self._frames - start > len(self._ring):
            raise RoleplayError(
                f"audio input overran: the call fell more than {len(self._ring) / self.rate_hz:g}"
                " s behind the microphone"
            )
        ring = self._ring
        i = start % len(ring)
        n = end - start
        first = min(n, len(ring) - i)
        block = np.concatenate((ring[i : i + first], ring[: n - first]))
        self._read_pos = end
        return block

    def _restart(self) -> bool:
        """PortAudio ended the stream on its own mid-call (once in four test runs the ALSA pulse
        plug-in's poll failed under load while the sound server stayed up): open it again and go
        on counting from the same sample, so queued playback and both tracks continue. False when
        it cannot be opened again (the device is really gone) or it happened too often."""
        if self.restarts >= MAX_RESTARTS:
            return False
        old, self._stream = self._stream, None
        with contextlib.suppress(Exception):  # it ended badly; it is replaced either way
            old.close()
        self._finished = False
        sd = _sounddevice()
        frames = self._frames
        try:
            self._stream = sd.Stream(samplerate=self.rate_hz, blocksize=self.block_samples, channels=1,
                                     dtype="float32", device=(self.input_device, self.output_device),
                                     callback=self._callback, finished_callback=self._on_finished)
            self._stream.start()
        except (sd.PortAudioError, ValueError):
            self._stream, self._finished = None, True
            return False
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while self._frames == frames:
            if self._finished or time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        self.restarts += 1
        return True

    @property
    def output_position_samples(self) -> int:
        """Samples rendered so far (= microphone samples recorded so far)."""
        return self._frames

    @property
    def input_position_samples(self) -> int:
        """Index of the first sample the next `read_input` returns."""
        return self._read_pos

    @property
    def input_latency_s(self) -> float:
        """How long ago the latest microphone block was captured, as PortAudio reports it.

        Tens of ms on a healthy stream; seconds mean a capture backlog. It does not predict
        the output-to-input lag (`measure_lag` does), but it did reveal backlogs.
        """
        return self._input_latency_s

    @property
    def status(self) -> StreamStatus:
        c = self._status
        return StreamStatus(int(c[0]), int(c[1]), int(c[2]), int(c[3]))


# -- lag measurement ------------------------------------------------------------------------


@dataclass(frozen=True)
class LagMeasurement:
    lag_ms: float  # median over the repeats
    lag_samples: int
    confidence: float  # lowest normalised correlation at the peak: 1 = the chirp came back intact
    spread_ms: float  # max - min over the repeats: non-zero means the lag moved
    gain: float = 0.0  # echo path gain (microphone / speaker amplitude); ~0 with a headset


def chirp(
    *,
    rate_hz: int = RATE_HZ,
    duration_s: float = 0.2,
    low_hz: float = 300.0,
    high_hz: float = 4000.0,
    level_dbfs: float = -12.0,
) -> Audio:
    """A logarithmic sweep with 10 ms fades: one sharp correlation peak, no clicks."""
    t = np.arange(int(round(duration_s * rate_hz))) / rate_hz
    k = math.log(high_hz / low_hz) / duration_s
    wave = np.sin(2 * np.pi * low_hz * (np.exp(k * t) - 1) / k)
    fade = np.minimum(1.0, np.minimum(t, duration_s - t) / 0.01)
    return Audio((wave * fade * 10 ** (level_dbfs / 20)).astype(np.float32), rate_hz)


def measure_lag(
    stream: DuplexStream, *, repeats: int = 2, max_lag_ms: float = 1000.0
) -> LagMeasurement:
    """Play chirps and find them in the microphone: the output-to-input delay of this stream.

    Consumes the microphone input up to the end of the last search window (call it before
    the conversation starts). Low confidence means the microphone did not hear the speaker
    (a headset, a muted microphone); a spread means the lag changed between chirps.
    """
    from scipy.signal import correlate

    probe = chirp(rate_hz=stream.rate_hz).samples
    max_lag = int(max_lag_ms * stream.rate_hz / 1000)
    handles = [stream.play(Audio(probe, stream.rate_hz))]
    for _ in range(repeats - 1):  # each chirp after the previous one's search window
        handles.append(
            stream.play(Audio(probe, stream.rate_hz), at_sample=handles[-1].end_sample + max_lag)
        )
    first = stream.input_position_samples
    recorded = _read_until(stream, end_sample=handles[-1].end_sample + max_lag)
    probe64 = probe.astype(np.float64)
    lags: list[int] = []
    confidences: list[float] = []
    gains: list[float] = []
    for handle in handles:
        start = handle.start_sample - first
        window = recorded[start : start + len(probe) + max_lag].astype(np.float64)
        scores = correlate(window, probe64, mode="valid")
        lag = int(np.argmax(np.abs(scores)))
        aligned = window[lag : lag + len(probe)]
        denominator = float(np.linalg.norm(aligned) * np.linalg.norm(probe64))
        lags.append(lag)
        gains.append(abs(float(scores[lag])) / float(np.dot(probe64, probe64)))
        confidences.append(abs(float(scores[lag])) / denominator if denominator > 0 else 0.0)
    lag = int(np.median(lags))
    return LagMeasurement(
        lag_ms=lag * 1000 / stream.rate_hz,
        lag_samples=lag,
        confidence=min(1.0, *confidences),
        spread_ms=(max(lags) - min(lags)) * 1000 / stream.rate_hz,
        gain=float(np.median(gains)),
    )


def _read_until(stream: DuplexStream, *, end_sample: int) -> np.ndarray:
    """Microphone samples from `input_position_samples` up to at least `end_sample`."""
    timeout_s = (end_sample - stream.input_position_samples) / stream.rate_hz + 5.0
    deadline = time.monotonic() + timeout_s
    blocks: list[np.ndarray] = []
    while stream.input_position_samples < end_sample:
        block = stream.read_input(timeout_s=max(0.0, deadline - time.monotonic()))
        if block is None:
            raise RoleplayError(f"the microphone delivered no audio within {timeout_s:.1f} s")
        blocks.append(block)
    return np.concatenate(blocks)


# -- `roleplay devices [--test]` --------------------------------------------------------------


@dataclass(frozen=True)
class DeviceTest:
    """What `check_devices` measured: the microphone's level over TEST_RECORD_S while a tone
    played, and the output-to-input delay (`lag`; its confidence is low with a headset)."""

    silent: bool  # only zeros: muted, blocked or no permission
    peak_dbfs: float
    rms_dbfs: float
    clipped_samples: int  # at full scale
    lag: LagMeasurement
    glitches: StreamStatus

    @property
    def lag_found(self) -> bool:
        return self.lag.confidence >= MIN_LAG_CONFIDENCE


def check_devices(*, input_device: DeviceSpec, output_device: DeviceSpec) -> DeviceTest:
    """Play chirps (the delay) and a tone, then record TEST_RECORD_S (the trainee says something)."""
    with DuplexStream(input_device=input_device, output_device=output_device) as stream:
        lag = measure_lag(stream)
        tone_t = np.arange(int(0.5 * stream.rate_hz)) / stream.rate_hz
        stream.play(
            Audio((0.25 * np.sin(2 * np.pi * 440 * tone_t)).astype(np.float32), stream.rate_hz)
        )
        begin = stream.input_position_samples
        recorded = _read_until(stream, end_sample=begin + int(TEST_RECORD_S * stream.rate_hz))
        status = stream.status
    peak = float(np.max(np.abs(recorded))) if len(recorded) else 0.0
    rms = float(np.sqrt(np.mean(recorded.astype(np.float64) ** 2))) if len(recorded) else 0.0
    return DeviceTest(
        silent=not np.any(recorded), peak_dbfs=amplitude_to_db(peak), rms_dbfs=amplitude_to_db(rms),
        clipped_samples=int(np.count_nonzero(np.abs(recorded) >= CLIP_LEVEL)), lag=lag,
        glitches=status,
    )


def cmd_devices(
    *, test: bool, input_device: DeviceSpec, output_device: DeviceSpec, out: TextIO
) -> int:
    """List the devices; with `test`, check the microphone and the output-to-input delay.

    Returns 1 when the microphone records only zeros, else 0.
    """
    devices = list_devices()
    print("Audio devices (* = default input, > = default output):", file=out)
    for d in devices:
        mark = ("*" if d.is_default_input else " ") + (">" if d.is_default_output else " ")
        print(
            f" {mark} [{d.index}] {d.name} ({d.host_api}): {d.max_input_channels} in, "
            f"{d.max_output_channels} out, {d.default_rate_hz:g} Hz",
            file=out,
        )
    if not test:
        return 0

    print(
        f"Testing input {DuplexStream._name(input_device)}, output "
        f"{DuplexStream._name(output_device)}: a chirp and a tone, then {TEST_RECORD_S:g} s of "
        "recording (say something)",
        file=out,
    )
    result = check_devices(input_device=input_device, output_device=output_device)
    if result.silent:
        print(
            "input: the microphone records silence: muted, blocked or missing OS permission",
            file=out,
        )
        return 1
    print(
        f"input level: peak {result.peak_dbfs:.1f} dBFS, rms {result.rms_dbfs:.1f} dBFS",
        file=out,
    )
    clipped = result.clipped_samples
    clip_text = f"{clipped} samples at full scale: lower the input gain" if clipped else "none"
    print(f"clipping: {clip_text}", file=out)
    lag = result.lag
    if result.lag_found:
        print(
            f"output-to-input delay: {lag.lag_ms:.0f} ms (confidence {lag.confidence:.2f}, "
            f"spread {lag.spread_ms:.0f} ms)",
            file=out,
        )
    else:
        print(
            f"output-to-input delay: not found (confidence {lag.confidence:.2f}): the "
            "microphone did not hear the speaker (expected with a headset)",
            file=out,
        )
    if result.glitches != StreamStatus(0, 0, 0, 0):
        print(f"glitches: {result.glitches}", file=out)
    return 0
