"""Streaming voice activity: the same Silero ONNX model as `roleplay.speech.vad`, fed 512 samples at a time.

faster-whisper's wrapper resets the model's recurrent state (h, c) and its 64-sample context on
every call, which is right for a whole file and wrong for a microphone: called block by block
it would forget everything at each block edge. `StreamingVad` keeps h, c and the context across
calls, so feeding a signal in arbitrary pieces gives the same per-frame probabilities as
`roleplay.speech.vad.speech_probabilities` on the whole signal (up to float rounding).
"""

from __future__ import annotations

import numpy as np

from roleplay.core.errors import RoleplayError
from roleplay.speech.vad import FRAME_S, FRAME_SAMPLES

CONTEXT_SAMPLES = 64  # Silero v5/v6 prepend the previous frame's last 64 samples
STATE_SHAPE = (1, 1, 128)


class StreamingVad:
    """Speech probability per 32 ms frame of a 16 kHz stream, state kept between calls."""

    frame_samples = FRAME_SAMPLES
    frame_s = FRAME_S

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session  # shared, loaded once per process
        self._pending = np.zeros(0, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget everything heard so far (a new stream)."""
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_done = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the whole frames completed by `samples` (the rest waits for more)."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise RoleplayError(f"StreamingVad expects mono samples, got shape {samples.shape}")
        buf = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        n = len(buf) // FRAME_SAMPLES
        self._pending = buf[n * FRAME_SAMPLES :].copy()
        out = np.empty(n, dtype=np.float32)
        for i in range(n):
            out[i] = self.frame(buf[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        return out

    def frame(self, frame: np.ndarray) -> float:
        """The probability of exactly one 512-sample frame."""
        x = np.concatenate((self._context, frame)).reshape(1, -1).astype(np.float32, copy=False)
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = np.array(frame[-CONTEXT_SAMPLES:], dtype=np.float32)
        self.frames_done += 1
        return float(np.asarray(out).reshape(-1)[0])
