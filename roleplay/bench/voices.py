"""The caller voices measured: `roleplay bench voices`.

How anger sounds (rate via duration, pitch median and spread, level, per anger; a shouted line
against the same line said), and, per engine, how well Whisper base hears the scenarios' caller
lines (word error rate) and what a line costs to synthesise (real-time factor, wall and CPU).
The figures back the choice of default Dutch caller voice in docs/scenarios-and-voices.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roleplay.audio.clip import Audio

ANALYSIS_RATE_HZ = 16_000
SPEECH_BELOW_PEAK_DB = 30.0  # 20 ms frames within this of the loudest are speech
PITCH_FMIN_HZ = 60.0
PITCH_FMAX_HZ = 500.0


@dataclass(frozen=True)
class VoiceMeasure:
    duration_s: float  # the clip as the engine speaks it (edges cut by the synthesiser)
    f0_median_hz: float
    f0_spread_st: float  # 10th to 90th percentile of voiced F0, in semitones
    level_db: float  # median RMS of the speech frames, dBFS


def measure_voice(audio: Audio) -> VoiceMeasure:
    """Rate, pitch and level of one synthesised line; pyin, since yin's octave errors on high
    voices made the spread jump (measured on nl-woman-young)."""
    import librosa

    clip = audio.resampled(ANALYSIS_RATE_HZ)
    x = clip.samples
    f0, voiced, _ = librosa.pyin(x, fmin=PITCH_FMIN_HZ, fmax=PITCH_FMAX_HZ, sr=ANALYSIS_RATE_HZ,
                                 frame_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    if len(f0) == 0:
        return VoiceMeasure(audio.duration_s, math.nan, math.nan, level_db(audio))
    semitones = 12 * np.log2(f0 / np.median(f0))
    spread = float(np.percentile(semitones, 90) - np.percentile(semitones, 10))
    return VoiceMeasure(audio.duration_s, float(np.median(f0)), spread, level_db(audio))


def level_db(audio: Audio) -> float:
    frame = max(1, audio.rate_hz // 50)
    n = len(audio.samples) // frame
    rms = np.sqrt(np.mean(audio.samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    speech = rms[rms > rms.max() * 10 ** (-SPEECH_BELOW_PEAK_DB / 20)]
    return float(20 * np.log10(np.median(speech)))


def semitones_apart(a_hz: float, b_hz: float) -> float:
    return abs(12 * math.log2(a_hz / b_hz))


# --------------------------------------------------------------------------- the benchmark

LINES = {"nl": 24, "en": 12}  # caller lines per language, spread over the scenarios
VOICES = {"nl": ("nl-man-middle", "nl-woman-young", "nl-kokoro-man", "nl-kokoro-woman"),
          "en": ("en-woman", "en-man")}
WER_ANGER = 5.0  # the lines are heard at a middling anger
ANGER_STEPS = (0.0, 5.0, 10.0)
ANGER_LINE = {"nl": "Ik bel nu al voor de derde keer, en mijn dochter heeft nog steeds hoge koorts.",
              "en": "This is the third time I am calling, and my daughter still has a high fever."}


@dataclass(frozen=True)
class EngineResult:
    voice: str
    engine: str  # what actually spoke (after any fallback)
    language: str
    lines: int
    wer_pct: float  # Whisper base's word error rate over the lines
    speech_s: float  # total audio made
    wall_s: float  # total synthesis time
    cpu_s: float  # CPU of this process and its children (the pyttsx3 worker) while synthesising
    line_wall_p95_s: float

    @property
    def rtf_wall(self) -> float:
        return self.wall_s / self.speech_s

    @property
    def rtf_cpu(self) -> float:
        return self.cpu_s / self.speech_s


def bench_lines(language: str, count: int) -> tuple[str, ...]:
    """Every k-th caller line of the language's scenarios, so each scenario and situation shows."""
    from roleplay.caller.scenario import list_scenarios

    lines = [line.text for s in list_scenarios() if s.language == language
             for group in s.lines.values() for line in group if line.audio_path is None]
    step = max(1, len(lines) // count)
    return tuple(lines[::step][:count])


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Word edits (substitutions, insertions, deletions) over reference words, in percent."""
    import re

    def words(text: str) -> list[str]:
        return re.findall(r"[\w']+", text.lower())

    edits = total = 0
    for ref_text, hyp_text in zip(references, hypotheses, strict=True):
        ref, hyp = words(ref_text), words(hyp_text)
        row = list(range(len(hyp) + 1))
        for i, r in enumerate(ref, 1):
            prev, row[0] = row[0], i
            for j, h in enumerate(hyp, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
        edits += row[-1]
        total += len(ref)
    return 100.0 * edits / max(total, 1)


def cpu_s() -> float:
    """CPU seconds of this process (all threads: ONNX Runtime's) and its live children (the
    pyttsx3 worker, which outlives each utterance so rusage never sees it)."""
    import os
    import time

    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").glob("*/children"):
        for pid in task.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def engine_result(voice_id: str, lines: tuple[str, ...], transcriber: Any) -> EngineResult:
    import time

    from roleplay.speech.vad import SpeechSegment
    from roleplay.speech.voice import load_voice, synthesize, synthesizer_for

    profile = load_voice(voice_id)
    engine = synthesizer_for(profile)[1].split(":", 1)[0]
    synthesize(lines[0], voice=profile, anger=WER_ANGER)  # warm: worker start, model load
    heard, walls, speech_s, cpu_used = [], [], 0.0, 0.0
    for text in lines:
        began, cpu_began = time.perf_counter(), cpu_s()
        audio = synthesize(text, voice=profile, anger=WER_ANGER)
        walls.append(time.perf_counter() - began)
        cpu_used += cpu_s() - cpu_began
        speech_s += audio.duration_s
        words = transcriber.transcribe(audio, (SpeechSegment(0.0, audio.duration_s),),
                                       language=profile.language)
        heard.append(" ".join(w.text for w in words))
    return EngineResult(voice=voice_id, engine=engine, language=profile.language, lines=len(lines),
                        wer_pct=word_error_rate(list(lines), heard), speech_s=speech_s,
                        wall_s=sum(walls), cpu_s=cpu_used,
                        line_wall_p95_s=float(np.percentile(walls, 95)))


def anger_rows(voice_id: str) -> list[tuple[float, VoiceMeasure]]:
    """The same sentence at each anger step, plus the shouted version at anger 9 (anger -9)."""
    from roleplay.speech.voice import load_voice, synthesize

    profile = load_voice(voice_id)
    text = ANGER_LINE[profile.language]
    rows = [(a, measure_voice(synthesize(text, voice=profile, anger=a))) for a in ANGER_STEPS]
    rows.append((-9.0, measure_voice(synthesize(text.replace(",", "!"), voice=profile, anger=9))))
    return rows


def run_voices_bench(*, model: str | None = None, out: Any = None) -> int:
    import os
    import sys

    from roleplay.bench.machine import print_machine
    from roleplay.speech.asr import FasterWhisperTranscriber
    from roleplay.speech.models import choose_model

    out = out or sys.stdout
    print_machine()
    load_before = os.getloadavg()
    transcriber = FasterWhisperTranscriber(choose_model(model).path)
    results = [engine_result(v, bench_lines(lang, LINES[lang]), transcriber)
               for lang, voices in VOICES.items() for v in voices]
    angers = {v: anger_rows(v) for voices in VOICES.values() for v in voices}
    load_after = os.getloadavg()
    out.write(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}\n")
    _print_results(results, out)
    _print_anger(angers, out)
    out.write(" ".join(f"{r.voice}_wer_pct={r.wer_pct:.0f} {r.voice}_rtf_cpu={r.rtf_cpu:.3f}"
                       for r in results) + "\n")
    return 0


def _print_results(results: list[EngineResult], out: Any) -> None:
    out.write(f"\nintelligibility (Whisper base, anger {WER_ANGER:g}) and synthesis time per line\n")
    out.write(f"{'voice':<17}{'engine':<9}{'lines':>6}{'WER %':>7}{'speech s':>10}{'RTF wall':>10}"
              f"{'RTF CPU':>9}{'p95 line s':>11}\n")
    for r in results:
        out.write(f"{r.voice:<17}{r.engine:<9}{r.lines:>6}{r.wer_pct:>7.0f}{r.speech_s:>10.1f}"
                  f"{r.rtf_wall:>10.3f}{r.rtf_cpu:>9.3f}{r.line_wall_p95_s:>11.2f}\n")


def _print_anger(angers: dict[str, list[tuple[float, VoiceMeasure]]], out: Any) -> None:
    out.write("\nhow anger sounds (one sentence; 'shout' = with '!' at anger 9)\n")
    out.write(f"{'voice':<17}{'anger':>6}{'dur s':>7}{'F0 Hz':>7}{'F0 range st':>12}{'level dB':>9}\n")
    for voice, rows in angers.items():
        for anger, m in rows:
            label = "shout" if anger < 0 else f"{anger:g}"
            out.write(f"{voice:<17}{label:>6}{m.duration_s:>7.2f}{m.f0_median_hz:>7.0f}"
                      f"{m.f0_spread_st:>12.1f}{m.level_db:>9.1f}\n")
