"""The live call's timeline (roleplay.session.live.LiveTimeline) without devices: the microphone mapped onto
the caller's timeline, and kept there when the output shifts mid-call."""

from __future__ import annotations

import numpy as np

from roleplay.session.live import LiveTimeline


class _Writer:
    def __init__(self) -> None:
        self.caller: list[np.ndarray] = []
        self.trainee: list[np.ndarray] = []

    def append_both(self, caller: np.ndarray, trainee: np.ndarray) -> None:
        self.caller.append(caller.copy())
        self.trainee.append(trainee.copy())


def _feed(tl: LiveTimeline, mic: np.ndarray, start: int, stop: int, block: int = 256) -> None:
    for a in range(start, stop, block):
        tl.add_mic(mic[a : a + block], a)
        tl.flush()


def test_microphone_is_mapped_by_the_lag_and_written_once() -> None:
    mic = np.arange(10_000, dtype=np.float32)
    writer = _Writer()
    tl = LiveTimeline(writer, origin=1000, lag=300)
    _feed(tl, mic, 0, 6144)
    track = np.concatenate(writer.trainee)
    # trainee sample j = microphone sample origin + lag + j
    assert track[0] == 1300 and np.array_equal(track, mic[1300:6144])
    assert sum(len(c) for c in writer.caller) == len(track)


def test_a_later_output_drops_that_much_microphone_and_keeps_the_track_continuous() -> None:
    mic = np.arange(20_000, dtype=np.float32)
    writer = _Writer()
    tl = LiveTimeline(writer, origin=0, lag=100)
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
    tl = LiveTimeline(writer, origin=0, lag=100)
    _feed(tl, mic, 0, 4096)
    before = tl.trainee_len
    tl.shift(-64)
    _feed(tl, mic, 4096, 8192)
    track = np.concatenate(writer.trainee)
    assert not track[before : before + 64].any()
    assert np.array_equal(track[before + 64 :], mic[4096:8192])


class _CountingAsr:
    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def transcribe(self, audio, segments, *, language):
        from roleplay.speech.asr import Word

        self.asked.append(tuple(segments))
        return tuple(Word("later", g.start_s, g.end_s, 0.9) for g in segments)


def test_a_turn_resumed_after_a_pause_decodes_only_what_came_after_it() -> None:
    from types import SimpleNamespace

    from roleplay.audio.clip import Audio
    from roleplay.session.live import _Resumed
    from roleplay.speech.asr import Word
    from roleplay.speech.vad import SpeechSegment

    # the early recognition: words on the call timeline, speech up to 12.0 s
    earlier = SimpleNamespace(end_s=12.0, words=(Word("ik", 10.2, 10.5, 0.9), Word("stuur", 10.6, 11.9, 0.8)))
    inner = _CountingAsr()
    asr = _Resumed(inner, ((earlier, 12.1),), offset_s=10.0)  # the turn's audio starts at 10.0 s
    audio = Audio(np.zeros(16000 * 5, np.float32), 16000)
    first, second = SpeechSegment(0.2, 2.0), SpeechSegment(2.5, 4.0)
    words = asr.transcribe(audio, (first, second), language="nl")
    assert inner.asked == [(second,)]  # only the speech after the pause went to the recognizer
    assert asr.reused
    assert [(w.text, round(w.start_s, 6)) for w in words] == [("ik", 0.2), ("stuur", 0.6), ("later", 2.5)]
    # a segment across the old pause (the VAD joined it): the whole turn is decoded again
    inner.asked.clear()
    joined = SpeechSegment(0.2, 4.0)
    assert [w.text for w in asr.transcribe(audio, (joined,), language="nl")] == ["later"]
    assert inner.asked == [(joined,)]


def test_a_resumed_turn_drops_what_the_earlier_job_heard_after_its_pause() -> None:
    """Recognition starts 0.064 s into a pause, so its job may hear the first syllable of the
    speech after a short pause ('de' at 12.12 s): those words are decoded again with the rest,
    not kept twice."""
    from types import SimpleNamespace

    from roleplay.audio.clip import Audio
    from roleplay.session.live import _Resumed
    from roleplay.speech.asr import Word
    from roleplay.speech.vad import SpeechSegment

    earlier = SimpleNamespace(end_s=12.0, words=(Word("ik", 10.2, 10.5, 0.9), Word("stuur", 10.6, 11.9, 0.8),
                                                 Word("de", 12.12, 12.15, 0.3)))
    asr = _Resumed(_CountingAsr(), ((earlier, 12.032),), offset_s=10.0)
    audio = Audio(np.zeros(16000 * 5, np.float32), 16000)
    words = asr.transcribe(audio, (SpeechSegment(0.2, 2.0), SpeechSegment(2.1, 4.0)), language="nl")
    assert [w.text for w in words] == ["ik", "stuur", "later"]


def test_a_resumed_turn_is_cut_at_the_latest_pause_the_recognizers_vad_also_sees() -> None:
    """With recognition starting 0.064 s into any pause, a short gap between words (too short for
    the recognizer's VAD, which joins gaps under 0.3 s) often came after the long pause: the turn
    was then decoded whole. The older, long pause's words are used instead."""
    from types import SimpleNamespace

    from roleplay.audio.clip import Audio
    from roleplay.session.live import _Resumed
    from roleplay.speech.asr import Word
    from roleplay.speech.vad import SpeechSegment

    long_pause = SimpleNamespace(end_s=12.0, words=(Word("ik", 10.2, 10.5, 0.9), Word("stuur", 10.6, 11.9, 0.8)))
    short_gap = SimpleNamespace(end_s=13.4, words=(Word("ik", 10.2, 10.5, 0.9), Word("stuur", 10.6, 11.9, 0.8),
                                                   Word("een", 12.6, 13.3, 0.6)))
    inner = _CountingAsr()
    asr = _Resumed(inner, ((short_gap, 13.432), (long_pause, 12.032)), offset_s=10.0)  # newest first
    audio = Audio(np.zeros(16000 * 5, np.float32), 16000)
    first, second = SpeechSegment(0.2, 1.93), SpeechSegment(2.57, 4.0)  # the 13.4 s gap is inside the second
    words = asr.transcribe(audio, (first, second), language="nl")
    assert asr.reused and inner.asked == [(second,)]
    assert [w.text for w in words] == ["ik", "stuur", "later"]
