"""Two-party calls made from a script with synthetic voices, with the ground truth of what was
planted (turn times, overlaps, rates, levels). Used by the example call, the tests and the
accuracy benchmark; the demo call builds on the same placement."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
from roleplay.recording.calldir import CallWriter
from roleplay.speech.prosody import speaking_extent_s

_BLOCK_S = 0.5  # written in blocks, as a live call is


@dataclass(frozen=True)
class ScriptLine:
    speaker: str  # "caller" or "trainee"
    text: str
    voice: str  # voice profile id
    rate_wpm: float | None = None  # None: the voice's rate at this anger
    gain_db: float = 0.0
    anger: float = 0.0
    # Placement: `gap_s` after the previous line ended; or, with `overlap_at_s`, that many seconds
    # after the previous line started (to plant interruptions and backchannels).
    gap_s: float = 0.6
    overlap_at_s: float | None = None
    kind: str = "turn"  # "turn", "interruption" or "backchannel": the ground truth label


@dataclass(frozen=True)
class PlacedLine:
    line: ScriptLine
    start_s: float
    end_s: float  # of the speech itself: leading and trailing silence are trimmed
    audio: Audio


def speak_line(line: ScriptLine, *, cache_dir: Path | None = None) -> Audio:
    """The line's speech at 16 kHz, trimmed to where the voice is audible, at its gain."""
    from roleplay.speech.voice import load_voice, synthesize

    profile = load_voice(line.voice)
    prosody = profile.prosody_at(line.anger)
    if line.rate_wpm is not None:
        prosody = dataclasses.replace(prosody, rate_wpm=line.rate_wpm)
    audio = synthesize(line.text, voice=profile, prosody=prosody, cache_dir=cache_dir).resampled(ANALYSIS_RATE_HZ)
    extent = speaking_extent_s(audio, threshold_db=-55.0)
    if extent is not None:
        audio = audio.slice_s(*extent)
    return audio.gained(line.gain_db)


def place_lines(script: list[ScriptLine], *, cache_dir: Path | None = None, lead_in_s: float = 0.8
                ) -> tuple[PlacedLine, ...]:
    placed: list[PlacedLine] = []
    for line in script:
        audio = speak_line(line, cache_dir=cache_dir)
        if not placed:
            start = lead_in_s
        elif line.overlap_at_s is not None:
            start = placed[-1].start_s + line.overlap_at_s
        else:
            start = max(p.end_s for p in placed) + line.gap_s
        placed.append(PlacedLine(line, round(start, 4), round(start + audio.duration_s, 4), audio))
    return tuple(placed)


def tracks(placed: tuple[PlacedLine, ...], *, tail_s: float = 1.0) -> dict[str, np.ndarray]:
    total = int((max(p.end_s for p in placed) + tail_s) * ANALYSIS_RATE_HZ)
    out = {"caller": np.zeros(total, dtype=np.float32), "trainee": np.zeros(total, dtype=np.float32)}
    for p in placed:
        a = int(round(p.start_s * ANALYSIS_RATE_HZ))
        seg = p.audio.samples[: total - a]
        out[p.line.speaker][a:a + len(seg)] += seg
    return out


def write_call(directory: Path, placed: tuple[PlacedLine, ...], *, language: str,
               meta: dict[str, Any] | None = None, calibration: Audio | None = None) -> Path:
    """Write the call directory block by block, with an event per line."""
    audio = tracks(placed)
    block = int(_BLOCK_S * ANALYSIS_RATE_HZ)
    with CallWriter(directory, rate_hz=ANALYSIS_RATE_HZ,
                    meta={"language": language, "mode": "synthetic", **(meta or {})}) as writer:
        writer.event("call-start", t_s=0.0)
        pending = sorted(placed, key=lambda p: p.start_s)
        for i in range(0, len(audio["caller"]), block):
            writer.append_both(audio["caller"][i:i + block], audio["trainee"][i:i + block])
            now_s = (i + block) / ANALYSIS_RATE_HZ
            while pending and pending[0].end_s <= now_s:
                p = pending.pop(0)
                writer.event(f"{p.line.speaker}-line", t_s=p.start_s, end_s=p.end_s, text=p.line.text,
                             voice=p.line.voice, kind=p.line.kind, anger=p.line.anger)
        if calibration is not None:
            from roleplay.audio.clip import save_wav

            save_wav(directory / "calibration.wav", calibration)
    return directory
