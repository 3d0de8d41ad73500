"""The live call's timeline (roleplay.live._Timeline) without devices: the microphone mapped onto
the caller's timeline, and kept there when the output shifts mid-call."""

from __future__ import annotations

import numpy as np

from roleplay.live import _Timeline


class _Writer:
    def __init__(self) -> None:
        self.caller: list[np.ndarray] = []
        self.trainee: list[np.ndarray] = []

    def append_both(self, caller: np.ndarray, trainee: np.ndarray) -> None:
        self.caller.append(caller.copy())
        self.trainee.append(trainee.copy())


def _feed(tl: _Timeline, mic: np.ndarray, start: int, stop: int, block: int = 256) -> None:
    for a in range(start, stop, block):
        tl.add_mic(mic[a : a + block], a)
        tl.flush()


def test_microphone_is_mapped_by_the_lag_and_written_once() -> None:
    mic = np.arange(10_000, dtype=np.float32)
    writer = _Writer()
    tl = _Timeline(writer, origin=1000, lag=300)
    _feed(tl, mic, 0, 6144)
    track = np.concatenate(writer.trainee)
    # trainee sample j = microphone sample origin + lag + j
    assert track[0] == 1300 and np.array_equal(track, mic[1300:6144])
    assert sum(len(c) for c in writer.caller) == len(track)


def test_a_later_output_drops_that_much_microphone_and_keeps_the_track_continuous() -> None:
    mic = np.arange(20_000, dtype=np.float32)
    writer = _Writer()
    tl = _Timeline(writer, origin=0, lag=100)
    _feed(tl, mic, 0, 4096)
    before = tl.trainee_len
    tl.shift(80)  # the loudspeaker now sounds 80 samples later
    _feed(tl, mic, 4096, 8192)
    track = np.concatenate(writer.trainee)
    assert len(track) == tl.trainee_len
    assert np.array_equal(track[:before], mic[100 : 100 + before])
    # from the shift on, trainee sample j = microphone sample lag + 80 + j: 80 samples dropped
    assert np.array_equal(track[before:], mic[before + 180 : 8192])
    # what the VAD and the recognizer read in memory is what was written
    assert np.array_equal(tl.trainee[: tl.trainee_len], track)


def test_an_earlier_output_leaves_a_silent_gap() -> None:
    mic = np.arange(1, 20_001, dtype=np.float32)
    writer = _Writer()
    tl = _Timeline(writer, origin=0, lag=100)
    _feed(tl, mic, 0, 4096)
    before = tl.trainee_len
    tl.shift(-64)
    _feed(tl, mic, 4096, 8192)
    track = np.concatenate(writer.trainee)
    assert not track[before : before + 64].any()
    assert np.array_equal(track[before + 64 :], mic[4096:8192])
