"""The engines a call session uses, behind small seams: the caller's and the trainee's speech
(synthesis) and the per-turn analysis of the trainee (recognizer + measures). Both clocks use
these; tests replace them with arrays."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from roleplay.analysis.pipeline import Baseline, TimingSettings, Turn, analyse_turn
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
from roleplay.caller.questions import Reread
from roleplay.caller.scenario import CallerLine
from roleplay.speech.asr import TextScorer

# audio kept either side of the turn's speech when its words are scored against it
REREAD_MARGIN_S = 0.2


@dataclass(frozen=True)
class HeardTurn(Turn):
    """A turn as the live analysis heard it, with a way back to its audio: `reread` gives the
    recognizer's log-probability of whole texts for it, so that the caller can check a question
    it heard too garbled to read (caller.questions.find_questions)."""

    reread: Reread | None = None


class TurnAnalyser(Protocol):
    """The trainee's audio (its first sample at call time `offset_s`) -> the analysed turn, or
    None when nothing was said. `transcriber` replaces the default one for this turn."""

    def __call__(self, audio: Audio, *, offset_s: float, transcriber: Any = None) -> Turn | None: ...


@dataclass(frozen=True)
class TurnListener:
    """The live analysis path: VAD, recognizer, phrases and the measures against the baseline."""

    language: str
    transcriber: Any
    baseline: Baseline
    settings: TimingSettings = field(default_factory=TimingSettings)

    def __call__(self, audio: Audio, *, offset_s: float, transcriber: Any = None) -> Turn | None:
        turn = analyse_turn(audio=audio, speaker="trainee", language=self.language,
                            transcriber=transcriber or self.transcriber, baseline=self.baseline,
                            offset_s=offset_s, settings=self.settings)
        if turn is None or not turn.words or not isinstance(self.transcriber, TextScorer):
            return turn
        scorer, language = self.transcriber, self.language
        speech = audio.slice_s(max(0.0, turn.start_s - offset_s - REREAD_MARGIN_S),
                               turn.end_s - offset_s + REREAD_MARGIN_S)

        def reread(texts: tuple[str, ...]) -> tuple[float, ...]:
            return tuple(s.log_prob for s in scorer.score_texts(speech, texts, language=language))

        return HeardTurn(**{f.name: getattr(turn, f.name) for f in fields(turn)}, reread=reread)


def speak(text: str, *, voice: Any, prosody: Any, gain_db: float, cache_dir: Path | None) -> Audio:
    """Synthesized speech at the analysis rate, trimmed to where it speaks (the timeline places
    the words, not the engine's leading and trailing silence)."""
    from roleplay.speech.prosody import speaking_extent_s
    from roleplay.speech.voice import synthesize

    audio = synthesize(text, voice=voice, prosody=prosody, cache_dir=cache_dir)
    audio = audio.resampled(ANALYSIS_RATE_HZ)
    extent = speaking_extent_s(audio, threshold_db=-55.0)
    if extent is not None:
        audio = audio.slice_s(*extent)
    return audio.gained(gain_db)


def caller_line_audio(line: CallerLine, voice: Any, anger: float, cache_dir: Path | None) -> Audio:
    """The caller's line as the voice says it at this anger."""
    if line.audio_path is not None:
        # A trainer's own recording: trimmed, levelled, and made louder and faster as the voice
        # profile says for this anger (pitch kept); see roleplay.caller.recordlines.
        from roleplay.caller.recordlines import recorded_line_audio

        return recorded_line_audio(line.audio_path, voice, anger)
    return speak(line.text, voice=voice, prosody=voice.prosody_at(anger, text=line.text), gain_db=0.0,
                 cache_dir=cache_dir)
