"""The streaming Silero wrapper against the offline probabilities, and the echo gate."""

from __future__ import annotations

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.audio.echo import EchoGate
from roleplay.bench.live import RATE_HZ, espeak
from roleplay.speech.streamvad import StreamingVad
from roleplay.speech.vad import FRAME_SAMPLES, speech_probabilities


def _speech_with_pauses() -> np.ndarray:
    a = espeak("Goedenavond, huisartsenpost, u spreekt met Anna.").samples
    b = espeak("Wat kan ik voor u doen?").samples
    pad = np.zeros(int(0.7 * RATE_HZ), np.float32)
    out = np.concatenate((pad, a, pad, pad, b, pad))
    return np.pad(out, (0, (-len(out)) % FRAME_SAMPLES))


def test_streaming_matches_offline_probabilities_whatever_the_block_size() -> None:
    signal = _speech_with_pauses()
    offline = speech_probabilities(Audio(signal, RATE_HZ))
    assert offline.max() > 0.9 and offline.min() < 0.1  # speech and silence both present
    for block in (512, 1024, 300, 1777):  # device blocks need not be whole frames
        vad = StreamingVad()
        got = np.concatenate([vad.process(signal[i : i + block]) for i in range(0, len(signal), block)])
        assert len(got) == len(offline)
        assert np.max(np.abs(got - offline)) < 1e-4, block


def test_reset_starts_a_new_stream() -> None:
    signal = _speech_with_pauses()
    vad = StreamingVad()
    first = vad.process(signal)
    vad.reset()
    assert np.allclose(vad.process(signal), first, atol=1e-5)


def test_state_matters_a_per_block_reset_would_differ() -> None:
    """Why the wrapper exists: resetting per 1024-sample block changes the probabilities."""
    from faster_whisper.vad import get_vad_model

    signal = _speech_with_pauses()
    offline = speech_probabilities(Audio(signal, RATE_HZ))
    model = get_vad_model()
    per_block = np.concatenate(
        [np.asarray(model(signal[i : i + 1024])).reshape(-1) for i in range(0, len(signal), 1024)]
    )
    assert np.max(np.abs(per_block - offline)) > 0.05


def test_echo_gate_silences_pure_echo_and_passes_louder_speech() -> None:
    caller = espeak("U moet nu meteen een dokter sturen!", voice="nl+m3").samples
    trainee = espeak("Ik begrijp dat u schrikt.", voice="nl+f3").samples
    lag, gain = 3000, 0.25  # a laptop speaker, 12 dB down
    playback = np.concatenate((caller, np.zeros(RATE_HZ, np.float32)))
    mic = np.zeros(len(playback) + lag, np.float32)
    mic[lag : lag + len(caller)] += gain * caller  # the echo
    t0 = lag + len(caller) // 2  # the trainee cuts in half-way through the caller
    mic[t0 : t0 + len(trainee)] += 0.8 * trainee[: len(mic) - t0]
    gate = EchoGate(lag_samples=lag, gain=gain, rate_hz=RATE_HZ)
    vad, vad_raw = StreamingVad(), StreamingVad()
    cleaned_probs, raw_probs = [], []
    for i in range(0, len(mic) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = mic[i : i + FRAME_SAMPLES]
        cleaned_probs.append(vad.frame(gate.clean(frame, playback, i)))
        raw_probs.append(vad_raw.frame(frame))
    t = np.arange(len(cleaned_probs)) * FRAME_SAMPLES
    echo_only = (t >= lag + 0.1 * RATE_HZ) & (t < t0 - 0.1 * RATE_HZ)
    assert np.mean(np.array(raw_probs)[echo_only] > 0.5) > 0.5  # without the gate: "speech"
    assert np.max(np.array(cleaned_probs)[echo_only]) < 0.5  # with it: nothing
    talking = (t >= t0 + 0.1 * RATE_HZ) & (t < t0 + len(trainee) - 0.3 * RATE_HZ)
    assert np.mean(np.array(cleaned_probs)[talking] > 0.5) > 0.6
    first = t[np.flatnonzero(np.array(cleaned_probs) > 0.5)[0]]
    assert abs(first - t0) / RATE_HZ < 0.15  # the cut-in is seen on time


def test_echo_gate_is_off_with_a_headset() -> None:
    gate = EchoGate(lag_samples=3000, gain=0.0005, rate_hz=RATE_HZ)
    loud = np.ones(RATE_HZ, np.float32)
    assert not gate.active
    assert not gate.is_echo(np.full(512, 0.01, np.float32), loud, 5000)
