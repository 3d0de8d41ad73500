"""`roleplay demo`: a whole call between the synthetic caller and the simulated trainee.

Both parties are synthesized and placed on one timeline with real timing (overlaps included when
the trainee cuts in or a furious caller talks over a long answer). The caller reacts to each
trainee turn through the live analysis path: the trainee's audio of that turn goes through voice
activity detection, the recognizer, the phrase matcher and the rate and loudness measures against
the calibration baseline (`roleplay.analysis.pipeline.analyse_turn`); the behaviours found there, never the
script's intent labels, move the caller's anger (`roleplay.caller.scenario.react`). The call directory is
written as the call goes (`CallWriter`), then analysed and assessed like any recorded call.

Timeline of one round:

    caller line  |=========|                        (prosody from the caller's anger)
    good trainee             ~1 s  |======|          (waits, slower and softer)
    poor trainee         |=====|                     (cuts in 1-2 s before the caller's end)
    next caller line                       |====|    (after the trainee; or barge-in: while the
                                                      trainee is still talking)
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from roleplay.analysis.assessment import SILENCE_S, AdviceResult
from roleplay.analysis.phrases import abuse_terms, is_backchannel
from roleplay.analysis.pipeline import Analysis, Baseline, Turn, analyse_turn, calibration_baseline
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio, save_wav
from roleplay.caller.scenario import (
    CallerLine,
    CallerState,
    TurnObservation,
    initial_state,
    load_scenario,
    next_line,
    outcome,
    react,
    should_barge_in,
)
from roleplay.caller.simtrainee import STYLES, Heard, SimTrainee, TraineeTurn, load_trainee_lines
from roleplay.core.errors import InputError
from roleplay.recording.calldir import CallWriter
from roleplay.speech.asr import Transcriber

DEFAULT_SCENARIO = "nl-visite-derde-keer"
MAX_CALLER_LINES = 8  # the opening included; a demo call stays short
LEAD_IN_S = 0.8  # the phone rings, the trainee picks up
CALLER_GAP_S = (0.35, 0.7)  # the caller answers this long after the trainee stops
MIN_CUT_IN_AFTER_START_S = 0.4  # an interruption starts at least this far into the caller's line
TAIL_S = 1.0
# What the per-turn analysis counts as which behaviour (the guide's thresholds).
INTERRUPTION_MIN_OVERLAP_S = 0.5  # trainee speech this long over the caller's line takes over
LET_VENT_MAX_SPEECH_S = 2.0  # a turn this short while the caller vents lets them go on
DEAD_SILENCE_S = 4.0  # no answer for this long after the caller stopped
LOUDER_DB = 2.0  # against the trainee's baseline; smaller changes are noise
FASTER_PCT = 10.0  # listeners notice a tempo change of about 10 %
VENTING = frozenset({"opening", "venting", "escalating", "interrupted", "abusive", "silence"})
PHRASE_BEHAVIOURS = {
    "acknowledgement": "acknowledgement",
    "concrete-offer": "concrete-offer",
    "boundary": "boundary",
    "end-announcement": "boundary",
    "transfer": "transfer",
    "argument": "argument",
    "negative": "negative",
    "vague": "vague",
}


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    scenario: str
    style: str
    seed: int
    outcome: str
    anger_start: float
    anger_peak: float
    anger_end: float
    caller_lines: int
    trainee_turns: int
    duration_s: float  # of the call's audio
    wall_s: float  # time taken, synthesis, live analysis and the full analysis together
    analysis: Analysis
    advice: tuple[AdviceResult, ...]
    json_path: Path
    report_path: Path

    def verdicts(self) -> dict[str, str]:
        return {a.id: a.verdict for a in self.advice}


@dataclass(frozen=True)
class Observed:
    """What the live analysis made of one trainee turn."""

    observation: TurnObservation
    turn: Turn | None
    latency_s: float | None  # from the end of the caller's line to the trainee's first speech
    overlap_s: float


def observe(turn: Turn | None, *, caller_start_s: float, caller_end_s: float, caller_situation: str,
            ends_call: bool, language: str) -> Observed:
    """The caller's view of a trainee turn, from its analysis only (the script is not consulted,
    except for the trainee putting the phone down, which is an action, not speech)."""
    if turn is None or not turn.words and turn.duration_s < 0.3:
        return Observed(TurnObservation(trainee_silent=True, trainee_ended_call=ends_call), turn,
                        None, 0.0)
    found: set[str] = set()
    latency = round(turn.start_s - caller_end_s, 3)
    overlap = max(0.0, min(turn.end_s, caller_end_s) - max(turn.start_s, caller_start_s))
    interrupting = (turn.start_s < caller_end_s and overlap >= INTERRUPTION_MIN_OVERLAP_S
                    and not is_backchannel(turn.text, language=language))
    if interrupting:
        found.add("interruption")
    elif latency >= DEAD_SILENCE_S:
        found.add("dead-silence")
    elif latency >= SILENCE_S:
        found.add("silence")
    speech_s = turn.duration_s - turn.pause_total_s
    if (not interrupting and caller_situation in VENTING and speech_s <= LET_VENT_MAX_SPEECH_S
            and latency < DEAD_SILENCE_S):
        found.add("let-vent")
    for phrase in turn.phrases:
        if phrase.category in PHRASE_BEHAVIOURS:
            found.add(PHRASE_BEHAVIOURS[phrase.category])
    if turn.loudness_vs_baseline_db is not None and turn.loudness_vs_baseline_db >= LOUDER_DB:
        found.add("louder")
    if turn.rate_vs_baseline_pct is not None and turn.rate_vs_baseline_pct >= FASTER_PCT:
        found.add("faster")
    return Observed(TurnObservation(behaviours=frozenset(found), trainee_ended_call=ends_call),
                    turn, latency, round(overlap, 3))


class _Timeline:
    """Both tracks of the call, growing; everything before `commit(t)` goes to the call files."""

    def __init__(self, writer: CallWriter) -> None:
        self.writer = writer
        self.tracks = {"caller": np.zeros(0, np.float32), "trainee": np.zeros(0, np.float32)}
        self.written = 0

    def place(self, speaker: str, start_s: float, audio: Audio) -> float:
        a = int(round(start_s * ANALYSIS_RATE_HZ))
        if a < self.written:
            raise RuntimeError("placing audio before what is already written")
        end = a + len(audio.samples)
        for name, track in self.tracks.items():
            if len(track) < end:
                self.tracks[name] = np.concatenate([track, np.zeros(end - len(track), np.float32)])
        self.tracks[speaker][a:end] += audio.samples
        return end / ANALYSIS_RATE_HZ

    def extend(self, seconds: float) -> float:
        """Silence at the end of both tracks; returns the new length in seconds."""
        pad = np.zeros(int(round(seconds * ANALYSIS_RATE_HZ)), np.float32)
        for name in self.tracks:
            self.tracks[name] = np.concatenate([self.tracks[name], pad])
        return len(self.tracks["caller"]) / ANALYSIS_RATE_HZ

    def slice(self, speaker: str, start_s: float, end_s: float) -> Audio:
        a = max(0, int(round(start_s * ANALYSIS_RATE_HZ)))
        b = int(round(end_s * ANALYSIS_RATE_HZ))
        return Audio(self.tracks[speaker][a:b].copy(), ANALYSIS_RATE_HZ)

    def commit(self, until_s: float | None = None) -> None:
        total = len(self.tracks["caller"])
        upto = total if until_s is None else min(total, int(round(until_s * ANALYSIS_RATE_HZ)))
        if upto > self.written:
            self.writer.append_both(self.tracks["caller"][self.written:upto],
                                    self.tracks["trainee"][self.written:upto])
            self.written = upto


def _speak(text: str, *, voice: Any, prosody: Any, gain_db: float, cache_dir: Path | None) -> Audio:
    from roleplay.speech.prosody import speaking_extent_s
    from roleplay.speech.voice import synthesize

    audio = synthesize(text, voice=voice, prosody=prosody, cache_dir=cache_dir)
    audio = audio.resampled(ANALYSIS_RATE_HZ)
    extent = speaking_extent_s(audio, threshold_db=-55.0)
    if extent is not None:
        audio = audio.slice_s(*extent)
    return audio.gained(gain_db)


def free_directory(path: Path) -> Path:
    """`path` if it does not exist or is empty, else the first free `path-2`, `path-3`, ..."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    for n in range(2, 1000):
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise InputError(f"{path}: exists and so do {path.name}-2 to -999; choose another --out")


def run_demo(*, scenario_id: str, style: str, seed: int, out_dir: Path, transcriber: Transcriber,
             cache_dir: Path | None = None, max_caller_lines: int = MAX_CALLER_LINES,
             trainee_audio: Callable[[Audio], Audio] | None = None,
             progress: TextIO | None = None) -> DemoResult:
    """Run one simulated call into `out_dir` (must not exist or be empty), analyse and assess it.

    `trainee_audio` may replace each trainee utterance before it goes on the timeline (the tests
    use it to silence the trainee and check that the caller reacts to the audio, not the script).
    """
    from roleplay.speech.voice import load_voice

    if style not in STYLES:
        raise InputError(f"unknown trainee style {style!r}; expected one of: {', '.join(STYLES)}")
    started = time.monotonic()
    say = (lambda msg: print(msg, file=progress, flush=True)) if progress else (lambda _m: None)
    scenario = load_scenario(scenario_id)
    lines = load_trainee_lines(scenario.language)
    caller_voice = load_voice(scenario.caller_voice)
    trainee_voice = load_voice(lines.voice)
    caller_rng = random.Random(seed)
    timing_rng = random.Random(seed * 7919 + 1)
    trainee = SimTrainee(style=style, scenario=scenario, lines=lines,
                         rng=random.Random(seed * 7919 + 2))
    language = scenario.language

    def trainee_speech(turn: TraineeTurn) -> Audio:
        base = trainee_voice.base
        prosody = dataclasses.replace(
            base, rate_wpm=base.rate_wpm * turn.delivery.rate_factor,
            pitch=min(100.0, max(0.0, base.pitch + turn.delivery.pitch_delta)))
        audio = _speak(turn.text, voice=trainee_voice, prosody=prosody,
                       gain_db=turn.delivery.gain_db, cache_dir=cache_dir)
        return trainee_audio(audio) if trainee_audio is not None else audio

    calibration = _speak(lines.calibration, voice=trainee_voice, prosody=trainee_voice.base,
                         gain_db=0.0, cache_dir=cache_dir)
    # The calibration is read before the call (never passed through `trainee_audio`).
    baseline: Baseline = calibration_baseline(calibration, language=language,
                                              transcriber=transcriber)

    state: CallerState = initial_state(scenario)
    meta = {
        "mode": "demo", "scenario": scenario.id, "language": language, "trainee": style,
        "seed": seed, "needs": list(scenario.needs), "caller_voice": caller_voice.id,
        "trainee_voice": trainee_voice.id, "calibration_text": lines.calibration,
        "expected_outcomes": list(scenario.ending.expected), "anger_start": state.anger,
    }
    writer = CallWriter(out_dir, rate_hz=ANALYSIS_RATE_HZ, meta=meta)
    final_outcome = "aborted"
    caller_count = trainee_count = 0
    try:
        save_wav(Path(out_dir) / "calibration.wav", calibration)
        tl = _Timeline(writer)
        writer.event("call-start", t_s=0.0, anger=state.anger, scenario=scenario.id, trainee=style)

        greeting = trainee.greeting()
        g_audio = trainee_speech(greeting)
        g_end = tl.place("trainee", LEAD_IN_S, g_audio)
        trainee_count += 1
        writer.event("trainee-turn", t_s=LEAD_IN_S, end_s=round(g_end, 3), intent=greeting.intent,
                     text=greeting.text, rate_factor=greeting.delivery.rate_factor,
                     gain_db=greeting.delivery.gain_db)
        say(f"  trainee  {LEAD_IN_S:6.1f} s  {greeting.text}")
        prev_trainee_end = g_end
        state, line = next_line(scenario, state, rng=caller_rng)
        caller_start = g_end + timing_rng.uniform(*CALLER_GAP_S)

        result: str | None = None
        while True:
            c_audio = _caller_speech(line, caller_voice, state.anger, cache_dir)
            tl.commit(caller_start)
            caller_end = tl.place("caller", caller_start, c_audio)
            caller_count += 1
            prosody = caller_voice.prosody_at(state.anger)
            writer.event("caller-line", t_s=round(caller_start, 3), end_s=round(caller_end, 3),
                         text=line.text, situation=line.situation, group=line.group,
                         anger=state.anger, rate_wpm=round(prosody.rate_wpm, 1),
                         volume=round(prosody.volume, 3))
            say(f"  caller   {caller_start:6.1f} s  [{state.anger:4.1f}] {line.text}")
            result = outcome(scenario, state, elapsed_s=caller_end)
            if result is not None:
                break
            if caller_count >= max_caller_lines:
                result = "time-limit"
                break

            heard = Heard(situation=line.situation, anger=state.anger,
                          abusive=bool(abuse_terms(line.text, language=language)),
                          duration_s=caller_end - caller_start)
            reply = trainee.reply(heard)
            t_audio = trainee_speech(reply)
            t_start = caller_end + reply.delivery.gap_s
            t_start = max(t_start, caller_start + MIN_CUT_IN_AFTER_START_S, prev_trainee_end + 0.2)
            tl.commit(min(caller_start, t_start))
            t_end = tl.place("trainee", t_start, t_audio)
            trainee_count += 1

            # The live path: the trainee's audio since the caller began (or since the trainee's
            # own previous turn ended), analysed like a microphone stream would be.
            window_start = max(caller_start, prev_trainee_end + 0.05)
            window_end = t_end + 0.3
            turn = analyse_turn(audio=tl.slice("trainee", window_start, window_end),
                                speaker="trainee", language=language, transcriber=transcriber,
                                baseline=baseline, offset_s=window_start)
            seen = observe(turn, caller_start_s=caller_start, caller_end_s=caller_end,
                           caller_situation=line.situation, ends_call=reply.ends_call,
                           language=language)
            before = state
            state, changes = react(scenario, state, seen.observation, rng=caller_rng)
            writer.event(
                "trainee-turn", t_s=round(t_start, 3), end_s=round(t_end, 3), intent=reply.intent,
                text=reply.text, heard=turn.text if turn else "",
                behaviours=sorted(state.last_behaviours),
                latency_s=seen.latency_s, overlap_s=seen.overlap_s,
                rate_vs_baseline_pct=_round(turn.rate_vs_baseline_pct if turn else None),
                loudness_vs_baseline_db=_round(turn.loudness_vs_baseline_db if turn else None),
                rate_factor=reply.delivery.rate_factor, gain_db=reply.delivery.gain_db,
                pitch_delta=reply.delivery.pitch_delta, ends_call=reply.ends_call)
            say(f"  trainee  {t_start:6.1f} s  {reply.text}  -> {sorted(state.last_behaviours)}")
            for ch in changes:
                writer.event("anger", t_s=round(t_end, 3), anger=ch.anger_after, delta=ch.delta,
                             reason=ch.reason)
            prev_trainee_end = t_end
            result = outcome(scenario, state, elapsed_s=t_end)
            if result is not None:
                break
            speaking_s = turn.duration_s if turn else 0.0
            barge = should_barge_in(scenario, before, trainee_speaking_s=speaking_s)
            state, line = next_line(scenario, state, rng=caller_rng)
            if barge:
                caller_start = t_start + scenario.rules.barge_in_after_s
                writer.event("barge-in", t_s=round(caller_start, 3), anger=before.anger,
                             trainee_speaking_s=round(speaking_s, 3))
            else:
                caller_start = t_end + timing_rng.uniform(*CALLER_GAP_S)

        final_outcome = result
        end_s = tl.extend(TAIL_S)
        tl.commit()
        writer.event("call-end", t_s=round(end_s, 3), outcome=final_outcome, anger=state.anger)
        writer.update_meta(anger_start=scenario.anger.start, anger_peak=state.peak_anger,
                           anger_end=state.anger, caller_lines=caller_count,
                           trainee_turns=trainee_count)
        writer.close(outcome=final_outcome)
    except BaseException:
        writer.close(outcome="aborted", status="aborted")
        raise

    say("analysing the call ...")
    from roleplay.app.analyse import analyse_call_dir

    analysis, advice, _data, json_path, report_path = analyse_call_dir(Path(out_dir), language, transcriber)
    return DemoResult(
        directory=Path(out_dir), scenario=scenario.id, style=style, seed=seed,
        outcome=final_outcome, anger_start=scenario.anger.start, anger_peak=state.peak_anger,
        anger_end=state.anger, caller_lines=caller_count, trainee_turns=trainee_count,
        duration_s=round(analysis.duration_s, 2), wall_s=round(time.monotonic() - started, 2),
        analysis=analysis, advice=advice, json_path=json_path, report_path=report_path,
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _caller_speech(line: CallerLine, voice: Any, anger: float, cache_dir: Path | None) -> Audio:
    if line.audio_path is not None:
        # A trainer's own recording: trimmed, levelled, and made louder and faster as the voice
        # profile says for this anger (pitch kept); see roleplay.caller.recordlines.
        from roleplay.caller.recordlines import recorded_line_audio

        return recorded_line_audio(line.audio_path, voice, anger)
    return _speak(line.text, voice=voice, prosody=voice.prosody_at(anger), gain_db=0.0,
                  cache_dir=cache_dir)


def cmd_demo(args: Any, out: TextIO | None = None) -> int:
    """The `roleplay demo` command."""
    out = out if out is not None else sys.stdout
    from roleplay.app.analyse import load_transcriber
    from roleplay.report.html import analysis_dict, print_summary

    scenario = load_scenario(args.scenario)  # fail early on a bad id
    requested = Path(args.out)
    directory = free_directory(requested)
    if directory != requested:
        out.write(f"{requested} is not empty; writing to {directory}\n")
    out.write(f"Demo call: scenario {scenario.id} ({scenario.title}), {args.trainee} trainee, "
              f"seed {args.seed}\n")
    transcriber = load_transcriber(args.model)
    from roleplay.core.paths import cache_dir

    # the id or file as given: a scenario file outside scenarios/ (a recorded copy) loads too
    result = run_demo(scenario_id=args.scenario, style=args.trainee, seed=args.seed,
                      out_dir=directory, transcriber=transcriber,
                      cache_dir=cache_dir() / "tts", progress=out)
    data = analysis_dict(result.analysis, result.advice, source={"call_dir": str(directory)})
    print_summary(data, out)
    out.write(f"\nOutcome: {result.outcome}; caller anger {result.anger_start:.1f} at the start, "
              f"{result.anger_peak:.1f} at its peak, {result.anger_end:.1f} at the end "
              f"({result.caller_lines} caller lines, {result.duration_s:.0f} s of call, "
              f"{result.wall_s:.0f} s to make and analyse)\n")
    out.write(f"Call: {directory}\nReport: {result.report_path}\n")
    return 0
