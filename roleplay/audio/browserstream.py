"""The browser's microphone and speaker as a call's audio: a stand-in for `DuplexStream` fed by
numbered frames from a WebSocket (the web app's `roleplay.web.browser_call`).

The browser's AudioWorklet (web/static/browser_call_worklet.js) counts 16 kHz samples on the audio
context's clock: in one `process()` call it records microphone sample k and plays output sample k,
so, as with the sound card's `DuplexStream`, the two differ on one timeline only by the round trip
through the browser's output and input (measured by `measure_lag`'s chirp, or reported by the
audio context). Microphone frames carry their sequence number and are placed by it, not by when
they arrive: frames arriving late or in bursts land where they were recorded, frames that never came
are silence. Each microphone frame that arrives "renders" the output up to `lead_s` past it, sent to
the browser as (start sample, samples), which the worklet plays when its clock reaches that sample.

Wire format (little-endian), microphone frame: uint32 sequence number + FRAME_SAMPLES int16;
output chunk: uint32 start sample + int16 samples. Anything else is refused (`FrameError`).
"""

from __future__ import annotations

import queue
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.audio.devices import PlaybackHandle, StreamStatus, _Playing
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import RoleplayError

FRAME_SAMPLES = 320  # 20 ms at 16 kHz: one numbered microphone frame
FRAME_BYTES = 4 + 2 * FRAME_SAMPLES
# Output is sent this far ahead of the latest microphone frame: it must reach the browser before
# its clock gets there (uplink + downlink + the worklet's batching; tens of ms on a LAN).
LEAD_S = 0.15
# On barge-in the browser drops what it has not played from this far past the latest frame on
# (the frame's uplink delay plus the stop message's way down).
STOP_MARGIN_S = 0.08
MAX_GAP_S = 5.0  # a frame further ahead than this is not a gap but a broken client
START_TIMEOUT_S = 20.0  # the page asks for the microphone first; the first frame follows at once
_END = -1  # put in the block queue when the connection ends, so a waiting reader wakes at once


class FrameError(ValueError):
    """A microphone frame that is not one (wrong size, or a sequence number out of range)."""


@dataclass(frozen=True)
class OutputChunk:
    """Output for the browser: `samples` (float32) to play from stream sample `start`."""

    start: int
    samples: np.ndarray

    def to_bytes(self) -> bytes:
        pcm = np.clip(np.round(self.samples * 32767.0), -32768, 32767).astype("<i2")
        return struct.pack("<I", self.start) + pcm.tobytes()


@dataclass(frozen=True)
class BrowserTransportStatus:
    """What happened on the way: frames missing (silence put in), duplicate or too late to place,
    output the browser reported it got too late to play."""

    frames: int
    missing_samples: int
    dropped_frames: int
    late_output_samples: int


def parse_frame(data: bytes) -> tuple[int, np.ndarray]:
    """(sequence number, float32 samples) of a microphone frame; FrameError if it is not one."""
    if len(data) != FRAME_BYTES:
        raise FrameError(f"a microphone frame is {FRAME_BYTES} bytes, got {len(data)}")
    (seq,) = struct.unpack_from("<I", data)
    pcm = np.frombuffer(data, dtype="<i2", offset=4)
    return seq, pcm.astype(np.float32) / 32768.0


class BrowserStream:
    """The `DuplexStream` interface over a browser's numbered frames. `feed` (the connection's
    task) places a frame and returns the output to send; the drill's thread reads blocks, plays
    and stops as on the sound card. `end` (the connection is gone) makes the reader fail."""

    def __init__(self, *, rate_hz: int = RATE_HZ, lead_s: float = LEAD_S,
                 start_timeout_s: float = START_TIMEOUT_S,
                 reported_lag_s: float | None = None) -> None:
        self.rate_hz = rate_hz
        self.block_samples = FRAME_SAMPLES
        self.lead = int(lead_s * rate_hz)
        self.start_timeout_s = start_timeout_s
        # the browser's own figure (output + input latency), used when the chirp is not heard
        self.reported_lag_s = reported_lag_s
        self.restarts = 0  # the DuplexStream interface: a browser stream is never reopened
        self._lock = threading.Lock()
        self._blocks: queue.SimpleQueue[tuple[int, np.ndarray] | int] = queue.SimpleQueue()
        self._schedule: tuple[_Playing, ...] = ()
        self._frames = 0  # end of the microphone samples placed so far
        self._rendered = 0  # end of the output sent so far
        self._read_pos = 0
        self._started = False
        self._ended = ""
        self._controls: queue.SimpleQueue[dict[str, object]] = queue.SimpleQueue()
        self._counts = [0, 0, 0, 0]  # frames, missing samples, dropped frames, late output

    # -- the connection's side ---------------------------------------------------------------

    def feed(self, seq: int, samples: np.ndarray) -> OutputChunk | None:
        """Place microphone frame `seq`; the output rendered up to `lead` past it (None if none).
        FrameError for a sequence number that cannot be right."""
        start = seq * FRAME_SAMPLES
        with self._lock:
            if start < self._frames:  # a duplicate, or a frame whose place is already silence
                self._counts[2] += 1
                return None
            if start - self._frames > MAX_GAP_S * self.rate_hz:
                raise FrameError(f"frame {seq} is {(start - self._frames) / self.rate_hz:.1f} s ahead")
            if start > self._frames:  # frames that never came: silence in their place
                self._counts[1] += start - self._frames
                self._blocks.put((self._frames, np.zeros(start - self._frames, np.float32)))
            self._blocks.put((start, samples))
            self._frames = start + len(samples)
            self._counts[0] += 1
            return self._render(self._frames + self.lead)

    def _render(self, upto: int) -> OutputChunk | None:
        a = self._rendered
        if upto <= a:
            return None
        out = np.zeros(upto - a, np.float32)
        for item in self._schedule:
            lo, hi = max(a, item.start), min(upto, item.end)
            if lo < hi:
                out[lo - a : hi - a] += item.samples[lo - item.start : hi - item.start]
                item.played_end = hi
        self._rendered = upto
        return OutputChunk(a, out)

    def late_output(self, samples: int) -> None:
        """The browser got `samples` of output after their time had passed (not played)."""
        with self._lock:
            self._counts[3] += max(0, int(samples))

    def controls(self) -> list[dict[str, object]]:
        """Messages for the browser other than audio (a stop on barge-in), oldest first."""
        out = []
        while not self._controls.empty():
            out.append(self._controls.get_nowait())
        return out

    def end(self, reason: str) -> None:
        """The connection is gone: a waiting or later read fails with `reason`."""
        with self._lock:
            self._ended = reason or "the connection ended"
        self._blocks.put(_END)

    # -- the DuplexStream interface (the drill's thread) ------------------------------------

    def start(self) -> None:
        """Ask the browser for its microphone, and wait for the first frame (RoleplayError if none
        comes). The browser opens it only now, so the audio starts when the engine is ready."""
        self._controls.put({"type": "microphone"})
        deadline = time.monotonic() + self.start_timeout_s
        while self._frames == 0:
            if self._ended or time.monotonic() >= deadline:
                raise RoleplayError(self._ended or "the browser sent no microphone audio within "
                                    f"{self.start_timeout_s:g} s")
            time.sleep(0.01)
        self._started = True

    def stop(self) -> None:
        """Nothing to close: the connection belongs to the web app."""

    def __enter__(self) -> BrowserStream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def play(self, audio: Audio, *, at_sample: int | None = None) -> PlaybackHandle:
        """Queue audio right after what is queued, or at `at_sample`; never before what was sent."""
        samples = np.ascontiguousarray(audio.resampled(self.rate_hz).samples, dtype=np.float32)
        with self._lock:
            live = tuple(p for p in self._schedule if p.end > self._rendered)
            wanted = max((p.end for p in live), default=0) if at_sample is None else at_sample
            item = _Playing(max(wanted, self._rendered), samples)
            self._schedule = (*live, item)
        return PlaybackHandle(start_sample=item.start, end_sample=item.end, _item=item)

    def stop_playback(self) -> None:
        """The caller stops: the browser drops its output from STOP_MARGIN_S past the latest frame
        (what it has not played yet), and nothing more is sent."""
        with self._lock:
            cut = min(self._rendered, self._frames + int(STOP_MARGIN_S * self.rate_hz))
            for item in self._schedule:
                item.cancelled = True
                item.played_end = max(item.start, min(item.played_end, cut))
            self._schedule = ()
        self._controls.put({"type": "stop", "from": cut})

    def read_input(self, *, timeout_s: float) -> np.ndarray | None:
        """The next microphone samples in timeline order (None if none came in time);
        RoleplayError once the connection is gone and everything before it is read."""
        if not self._started:
            raise RuntimeError("BrowserStream.read_input before start()")
        try:
            got = self._blocks.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if got == _END:
            self._blocks.put(_END)  # every later read sees it too
            raise RoleplayError(f"{self._ended} after {self._read_pos / self.rate_hz:.1f} s")
        assert not isinstance(got, int)
        start, block = got
        self._read_pos = start + len(block)
        return block

    @property
    def output_position_samples(self) -> int:
        """Samples of the browser's clock known here (its latest microphone frame's end)."""
        return self._frames

    @property
    def input_position_samples(self) -> int:
        return self._read_pos

    @property
    def input_latency_s(self) -> float:
        return 0.0

    @property
    def reported_lag_samples(self) -> int | None:
        return None if self.reported_lag_s is None else int(round(self.reported_lag_s * self.rate_hz))

    @property
    def status(self) -> StreamStatus:
        """Glitches in the sound card's terms: missing input as overflows (lost), dropped frames
        as underflows, output that came too late to play as output underflows."""
        c = self._counts
        return StreamStatus(input_overflows=c[1] // FRAME_SAMPLES, input_underflows=c[2],
                            output_underflows=c[3] // FRAME_SAMPLES, output_overflows=0)

    @property
    def transport(self) -> BrowserTransportStatus:
        c = self._counts
        return BrowserTransportStatus(frames=c[0], missing_samples=c[1], dropped_frames=c[2],
                                      late_output_samples=c[3])
