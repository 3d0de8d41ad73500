"""The bucketed decode in FasterWhisperTranscriber: clips padded to a length bucket instead of
Whisper's 30 s window, batched by bucket, words mapped back to the original timeline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import speech_file

from roleplay.analysis.phrases import normalise
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio, load_audio
from roleplay.speech.asr import (
    AsrSettings,
    FasterWhisperTranscriber,
    _bucket_batches,
    _bucket_frames,
    _pad_frames,
    is_hallucination,
)
from roleplay.speech.vad import SpeechSegment, speech_segments

FPS = 100


def test_bucket_is_clip_plus_margin_rounded_up_to_the_step():
    assert _bucket_frames(2.8, 280, 3.0, 10.0, FPS) == 1000
    assert _bucket_frames(7.0, 700, 3.0, 10.0, FPS) == 1000
    assert _bucket_frames(7.01, 701, 3.0, 10.0, FPS) == 2000
    assert _bucket_frames(4.2, 420, 1.0, 5.0, FPS) == 1000


def test_bucket_covers_the_whole_seconds_words_are_aligned_over_and_never_exceeds_the_window():
    # faster-whisper aligns words over ceil(duration) seconds of encoder output
    assert _bucket_frames(4.2, 420, 0.0, 1.0, FPS) == 500
    assert _bucket_frames(28.0, 2800, 3.0, 10.0, FPS) == 3000
    assert _bucket_frames(29.9, 2990, 0.0, 0.5, FPS) == 3000
    for d in np.arange(0.1, 28.0, 0.37):
        f = _bucket_frames(float(d), int(d * FPS), 3.0, 10.0, FPS)
        assert np.ceil(d) * FPS <= f <= 3000 and f % 1000 == 0


def test_batches_group_one_bucket_in_time_order_and_respect_the_batch_size():
    frames = [1000, 2000, 1000, 1000, 3000, 1000, 2000]
    batches = _bucket_batches(frames, 3)
    assert batches == [[0, 2, 3], [5], [1, 6], [4]]
    assert sorted(i for b in batches for i in b) == list(range(len(frames)))
    assert all(len({frames[i] for i in b}) == 1 for b in batches)


def test_padding_is_zero_features_to_the_bucket_and_cuts_longer_ones():
    feats = np.ones((80, 250), dtype=np.float32)
    padded = _pad_frames(feats, 1000)
    assert padded.shape == (80, 1000)
    assert np.all(padded[:, :250] == 1) and np.all(padded[:, 250:] == 0)
    assert _pad_frames(np.ones((80, 3100), dtype=np.float32), 3000).shape == (80, 3000)


def _two_utterances() -> tuple[Audio, str]:
    """Two human read Dutch sentences 6 s apart after 1.5 s of silence: two clips on one track."""
    texts, parts = [], [np.zeros(int(1.5 * ANALYSIS_RATE_HZ), dtype=np.float32)]
    for stem in ("vl04108", "vl12745"):
        wav = speech_file(f"flemish_rdh_dutch_vl_tts/{stem}.wav")
        texts.append(" ".join(ln for ln in wav.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
                              if not ln.startswith("#")))
        parts += [load_audio(wav).resampled(ANALYSIS_RATE_HZ).samples,
                  np.zeros(6 * ANALYSIS_RATE_HZ, dtype=np.float32)]
    return Audio(np.concatenate(parts), ANALYSIS_RATE_HZ), " ".join(texts)


@pytest.mark.model
def test_full_window_buckets_reproduce_faster_whispers_batched_pipeline(transcriber):
    # With every clip padded to 30 s the own decode must equal the reference word for word:
    # prompt, beam search, suppressed tokens, guards, word timing and time mapping are the same.
    audio, _ = _two_utterances()
    segments = speech_segments(audio)
    model_path = transcriber.model_path
    full = FasterWhisperTranscriber(model_path, settings=AsrSettings(bucket_margin_s=30.0, pad_with_floor=False))
    reference = FasterWhisperTranscriber(model_path, settings=AsrSettings(bucket_step_s=0))
    got = full.transcribe(audio, segments, language="nl")
    want = reference.transcribe(audio, segments, language="nl")
    assert got and [w.text for w in got] == [w.text for w in want]
    for g, w in zip(got, want, strict=True):
        assert g.start_s == pytest.approx(w.start_s, abs=1e-6) and g.end_s == pytest.approx(w.end_s, abs=1e-6)
        assert g.probability == pytest.approx(w.probability, abs=1e-4)


@pytest.mark.model
def test_bucketed_decode_agrees_with_the_reference(transcriber):
    audio, truth = _two_utterances()
    segments = speech_segments(audio)
    assert len(segments) >= 2
    fast = transcriber.transcribe(audio, segments, language="nl")
    reference = FasterWhisperTranscriber(
        transcriber.model_path, settings=dataclasses.replace(transcriber.settings, bucket_step_s=0)
    ).transcribe(audio, segments, language="nl")

    def recall(words) -> float:
        heard = set(normalise(" ".join(w.text for w in words)).split())
        ref = normalise(truth.replace("-", " ")).split()
        return sum(t in heard for t in ref) / len(ref)

    assert recall(fast) >= recall(reference) - 0.1
    # words on the original timeline, inside the speech they were heard in
    for w in fast:
        assert any(s.start_s - 0.5 <= w.start_s <= w.end_s <= s.end_s + 0.5 for s in segments)
    # the same words at (nearly) the same times
    ref_by_text = {}
    for w in reference:
        ref_by_text.setdefault(w.text, w)
    shared = [(w, ref_by_text[w.text]) for w in fast if w.text in ref_by_text]
    assert len(shared) >= 0.8 * len(reference)
    assert float(np.median([abs(a.start_s - b.start_s) for a, b in shared])) < 0.1
    assert float(np.median([abs(a.end_s - b.end_s) for a, b in shared])) < 0.1


@pytest.mark.model
def test_temperature_fallback_keeps_the_guards(transcriber):
    # Off by default (faster-whisper's batched pipeline has none); when on, a retried decode of
    # noise must still not come back as a stock phrase.
    rng = np.random.default_rng(3)
    noise = Audio((rng.standard_normal(8 * ANALYSIS_RATE_HZ) * 0.05).astype(np.float32), ANALYSIS_RATE_HZ)
    settings = dataclasses.replace(transcriber.settings, fallback_temperatures=(0.2, 0.4, 0.6, 0.8, 1.0))
    words = FasterWhisperTranscriber(transcriber.model_path, settings=settings).transcribe(
        noise, (SpeechSegment(0.0, 8.0),), language="nl")
    assert not any(is_hallucination(w.text) for w in words)
