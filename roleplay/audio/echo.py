"""Echo gate: keep the caller's own voice, leaking from the loudspeaker into the microphone, from
counting as trainee speech.

The program knows exactly what it played and, from the chirp at the start of the call, how late
and how loud it comes back (`LagMeasurement.lag_samples` and `.gain`). For each microphone frame
the gate predicts the echo level from the lag-aligned playback (the loudest stretch within
`tolerance_s` either side, so a lag that drifts a few ms or a short room tail still counts) and
passes the frame on to voice activity detection only if the microphone is clearly louder than
that prediction (`margin_db`); otherwise the VAD gets silence. Trainee speech over the caller gets
through when it is louder than the echo by the margin, which a headset (gain ~ 0) always is.
A gate, not a canceller: robust to the drift of a loudspeaker path, at the price of missing a
trainee who speaks much more softly than the echo; the report recommends a headset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import amplitude_to_db

MIN_GAIN = 0.003  # below this (-50 dB) the microphone did not hear the speaker: no gate
HOLD_FLOOR_DBFS = -50.0  # only a frame this far above the floor (plus the margin) holds it open


@dataclass(frozen=True)
class EchoSettings:
    margin_db: float = 9.0
    tolerance_s: float = 0.05
    tail_s: float = 0.08  # the echo lingers this long after the playback stops (room, buffers)
    hold_s: float = 0.3  # once the trainee is clearly heard, keep the gate open this long, so
    # the quieter parts of their words (consonants, short gaps) reach the VAD as well


class EchoGate:
    """Decide per microphone frame whether it is explained by the caller's echo."""

    def __init__(self, *, lag_samples: int, gain: float, rate_hz: int,
                 settings: EchoSettings = EchoSettings()) -> None:
        self.lag_samples = lag_samples
        self.gain = gain if gain >= MIN_GAIN else 0.0
        self.rate_hz = rate_hz
        self.settings = settings
        self.gated_frames = 0
        self.passed_frames = 0
        self._open_until = -1  # microphone sample up to which the gate is held open

    @property
    def active(self) -> bool:
        return self.gain > 0.0

    def predicted_echo_rms(self, playback: np.ndarray, start: int, end: int) -> float:
        """RMS of the loudest reference stretch that could reach mic samples [start, end).

        `playback` is the output timeline (sample k = output sample k, zeros where silent).
        """
        if not self.active:
            return 0.0
        s = self.settings
        tol = int(s.tolerance_s * self.rate_hz)
        tail = int(s.tail_s * self.rate_hz)
        a = max(0, start - self.lag_samples - tol - tail)
        b = min(len(playback), end - self.lag_samples + tol)
        if b <= a:
            return 0.0
        ref = playback[a:b].astype(np.float64)
        width = end - start
        if len(ref) <= width:
            return self.gain * float(np.sqrt(np.mean(ref**2)))
        # loudest frame-long window: cumulative sums keep it cheap
        c = np.concatenate(([0.0], np.cumsum(ref**2)))
        window = (c[width:] - c[:-width]) / width
        return self.gain * float(np.sqrt(window.max()))

    def is_echo(self, mic: np.ndarray, playback: np.ndarray, start: int) -> bool:
        """True if mic samples [start, start + len(mic)) are explained by the echo alone."""
        echo = self.predicted_echo_rms(playback, start, start + len(mic))
        if echo <= 0.0:
            self.passed_frames += 1
            return False
        rms = float(np.sqrt(np.mean(mic.astype(np.float64) ** 2)))
        explained = amplitude_to_db(rms) <= amplitude_to_db(echo) + self.settings.margin_db
        if not explained and amplitude_to_db(rms) > HOLD_FLOOR_DBFS + self.settings.margin_db:
            # clearly a voice, not a faint sound beside a faint echo: keep the gate open
            self._open_until = start + len(mic) + int(self.settings.hold_s * self.rate_hz)
        elif start < self._open_until:
            explained = False
        if explained:
            self.gated_frames += 1
        else:
            self.passed_frames += 1
        return explained

    def clean(self, mic: np.ndarray, playback: np.ndarray, start: int) -> np.ndarray:
        """The frame for the VAD: silence where it is only echo, else the microphone as is."""
        return np.zeros_like(mic) if self.is_echo(mic, playback, start) else mic
