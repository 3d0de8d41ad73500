"""Leak calls of `roleplay bench accuracy` (issue 11, cross-talk and echo): calls of the labelled
set with the caller's voice leaking into the trainee's track.

Each entry of `leak_calls` in accuracy_set.yaml takes one of the set's calls and adds the caller
track to the trainee track `delay_ms` late and `gain_db` down, plus a microphone's noise floor
(seeded, `NOISE_DBFS`); `phone: true` band-limits both tracks to 8 kHz sampling (telephone band)
first. The planted interruptions, backchannels and double talk of the call stay the truth. Each
call is analysed without removal (`none`, what the analysis did before), with the echo gate
applied afterwards (`gate`) and with the canceller (`cancel`, the default of the analysis), and
scored for interruption precision and recall, phantom trainee turns (a trainee turn or
backchannel where no trainee line was planted), seconds of trainee turns outside the planted
trainee lines (the leak merged into a real turn) and the echo return loss enhancement (ERLE) where
only the leak sounds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NOISE_DBFS = -60.0
METHODS = ("none", "gate", "cancel")


@dataclass(frozen=True)
class LeakSpec:
    call_id: str
    delay_ms: float
    gain_db: float
    phone: bool


@dataclass(frozen=True)
class LeakTracks:
    caller: np.ndarray
    trainee: np.ndarray  # with the leak
    clean_trainee: np.ndarray  # the planted trainee alone (truth)
    rate_hz: int


def leak_specs(data: dict[str, Any]) -> tuple[LeakSpec, ...]:
    return tuple(LeakSpec(str(e["call"]), float(e["delay_ms"]), float(e["gain_db"]), bool(e.get("phone", False)))
                 for e in data.get("leak_calls") or ())


def leaked_tracks(caller: np.ndarray, trainee: np.ndarray, spec: LeakSpec, *, rate_hz: int,
                  seed: int = 0) -> LeakTracks:
    """The caller's voice in the trainee's track, `delay_ms` late and `gain_db` down, over a noise
    floor; band-limited to the telephone band first when `spec.phone`."""
    from roleplay.audio.clip import Audio

    if spec.phone:
        def band(x: np.ndarray) -> np.ndarray:
            return Audio(x.astype(np.float32), rate_hz).resampled(8000).resampled(rate_hz).samples[: len(x)]

        caller, trainee = band(caller), band(trainee)
    d = int(round(spec.delay_ms * rate_hz / 1000))
    echo = np.concatenate([np.zeros(d, np.float32), caller[: len(caller) - d]]) * 10 ** (spec.gain_db / 20)
    noise = np.random.default_rng(seed).normal(0.0, 10 ** (NOISE_DBFS / 20), len(trainee))
    mic = (trainee + echo[: len(trainee)] + noise).astype(np.float32)
    return LeakTracks(caller.astype(np.float32), mic, trainee.astype(np.float32), rate_hz)


# the caller talks; the trainee waits, then cuts in over the caller's second line (double talk)
DOUBLE_TALK_SCRIPT = (
    ("caller", "Ik wacht al een uur op de dokter en er komt gewoon niemand langs.", None, 0.6),
    ("trainee", "Ik begrijp dat u ongerust bent.", None, 1.0),
    ("caller", "Ongerust? Ik ben woedend, jullie beloofden dat de dokter zou komen vanavond.", None, 0.6),
    ("trainee", "Maar meneer, luister nu eens even naar mij.", 3.2, 0.0),
    ("caller", "Nee, nu luistert u naar mij.", None, 0.8),
)
DOUBLE_TALK_VOICES = {"caller": "nl-man-middle", "trainee": "nl-trainee-woman"}
DOUBLE_TALK_LEAKS = (LeakSpec("x", 15, -8, True), LeakSpec("x", 5, -8, False), LeakSpec("x", 20, -12, True))


def _frame_energy(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    energy: np.ndarray = np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    return energy


def double_talk_lost(trainee_db: float, *, cache_dir: Path, settings: Any = None) -> tuple[int, int]:
    """(double-talk frames the canceller set to silence, all double-talk frames) when the trainee
    cuts in over the caller `trainee_db` against the caller's level while the caller leaks into
    the trainee's track (`DOUBLE_TALK_LEAKS`: -8 and -12 dB, wideband and phone band). Real
    espeak-ng speech; 20 ms frames where both planted voices are over -50 dBFS."""
    from roleplay.audio.clip import ANALYSIS_RATE_HZ
    from roleplay.audio.crosstalk import DEFAULT_CROSSTALK, remove_leak
    from roleplay.recording.scripted import ScriptLine, place_lines, tracks

    frame = int(0.02 * ANALYSIS_RATE_HZ)
    lines = [ScriptLine(who, text, DOUBLE_TALK_VOICES[who], gap_s=gap, overlap_at_s=at,
                        gain_db=trainee_db if who == "trainee" else 0.0,
                        kind="interruption" if at is not None else "turn")
             for who, text, at, gap in DOUBLE_TALK_SCRIPT]
    planted = tracks(place_lines(lines, cache_dir=cache_dir))
    lost = total = 0
    for spec in DOUBLE_TALK_LEAKS:
        lt = leaked_tracks(planted["caller"], planted["trainee"], spec, rate_hz=ANALYSIS_RATE_HZ)
        both = (_frame_energy(lt.clean_trainee, frame) > 1e-5) & (_frame_energy(lt.caller, frame) > 1e-5)
        out = remove_leak(lt.caller, lt.trainee, rate_hz=ANALYSIS_RATE_HZ,
                          settings=settings or DEFAULT_CROSSTALK).samples
        lost += int(((_frame_energy(out, frame) < 1e-9) & both).sum())
        total += int(both.sum())
    return lost, total


def run_double_talk(*, cache_dir: Path) -> dict[str, str]:
    """Prints the planted double talk under a louder leak, with the canceller's double-talk rule and
    with the level rules alone; returns the key=value figures."""
    from roleplay.audio.crosstalk import CrosstalkSettings

    print("\n== double talk under a louder leak (the trainee cuts in over the caller; the caller leaks "
          "at -8 and -12 dB): double-talk frames set to silence")
    figures = {}
    for trainee_db in (0.0, -6.0, -9.0, -12.0):
        lost, total = double_talk_lost(trainee_db, cache_dir=cache_dir)
        before, _ = double_talk_lost(trainee_db, cache_dir=cache_dir, settings=CrosstalkSettings(double_talk_db=0.0))
        print(f"  trainee {trainee_db:+.0f} dB: {lost} of {total} ({100 * lost / max(total, 1):.1f} %); "
              f"level rules alone {before} ({100 * before / max(total, 1):.1f} %)")
        figures[f"double_talk_lost_pct_{abs(trainee_db):.0f}db"] = f"{100 * lost / max(total, 1):.1f}"
    return figures


def erle_db(tracks: LeakTracks, cleaned: np.ndarray, *, frame_s: float = 0.02) -> float | None:
    """Echo return loss enhancement where only the leak (and the noise floor) sounds: frames where
    the caller speaks and the planted trainee is silent."""
    frame = int(frame_s * tracks.rate_hz)
    n = len(tracks.trainee) // frame

    def energy(x: np.ndarray) -> np.ndarray:
        return np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)

    alone = (energy(tracks.caller) > 1e-5) & (energy(tracks.clean_trainee) < 1e-10)
    if not alone.any():
        return None
    return float(10 * np.log10(energy(tracks.trainee)[alone].sum() / max(energy(cleaned)[alone].sum(), 1e-20)))


def extra_trainee_s(analysis: Any, placed: tuple[Any, ...], *, tolerance_s: float = 0.3) -> float:
    """Seconds of analysed trainee turns outside every planted trainee line (widened by
    `tolerance_s`): the leak merged into a real turn, which `phantom_trainee` does not see."""
    lines = [(p.start_s - tolerance_s, p.end_s + tolerance_s) for p in placed if p.line.speaker == "trainee"]
    step_s = 0.01
    extra = 0
    for t in analysis.turns_of("trainee"):
        for x in np.arange(t.start_s, t.end_s, step_s):
            extra += not any(a <= x < b for a, b in lines)
    return round(extra * step_s, 2)


def phantom_trainee(analysis: Any, placed: tuple[Any, ...]) -> list[tuple[str, float, float, str]]:
    """Trainee turns and backchannels that overlap no planted trainee line: the leak taken for
    the trainee. (kind, start_s, end_s, text)."""
    lines = [(p.start_s, p.end_s) for p in placed if p.line.speaker == "trainee"]

    def planted(a: float, b: float) -> bool:
        return any(min(b, e) - max(a, s) > 0 for s, e in lines)

    out = [("turn", t.start_s, t.end_s, t.text) for t in analysis.turns
           if t.speaker == "trainee" and not planted(t.start_s, t.end_s)]
    out += [("backchannel", b.start_s, b.end_s, b.text) for b in analysis.backchannels
            if b.speaker == "trainee" and not planted(b.start_s, b.end_s)]
    return out


def score_leak_call(spec: LeakSpec, call: Any, *, method: str, transcriber: Any, cache_dir: Path,
                    score_overlaps: Any, tally: Any) -> float | None:
    """Analyse one leak call with `method`, add its counts to `tally` (accuracy.Tally) and return
    its ERLE in dB."""
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
    from roleplay.audio.crosstalk import CrosstalkSettings, remove_crosstalk
    from roleplay.recording.scripted import ScriptLine, place_lines, speak_line, tracks

    placed = place_lines([s.line for s in call.lines], cache_dir=cache_dir)
    planted = tracks(placed)
    lt = leaked_tracks(planted["caller"], planted["trainee"], spec, rate_hz=ANALYSIS_RATE_HZ)
    settings = None if method == "none" else CrosstalkSettings(method=method)
    audio = {"caller": Audio(lt.caller, lt.rate_hz), "trainee": Audio(lt.trainee, lt.rate_hz)}
    cleaned = remove_crosstalk(audio, settings=settings)[0]["trainee"].samples if settings else lt.trainee
    calibration = speak_line(ScriptLine("trainee", call.calibration_text, call.trainee_voice,
                                        rate_wpm=call.trainee_rate_wpm), cache_dir=cache_dir)
    analysis = analyse_audio(caller=audio["caller"], trainee=audio["trainee"], language=call.language,
                             transcriber=transcriber, calibration=calibration, crosstalk=settings)
    erle = erle_db(lt, cleaned)
    phantoms = phantom_trainee(analysis, placed)
    extra_s = extra_trainee_s(analysis, placed)
    print(f"\n== leak {spec.call_id} {spec.delay_ms:g} ms {spec.gain_db:+g} dB{' phone' if spec.phone else ''}"
          f" [{method}]: ERLE {'n/a' if erle is None else f'{erle:.1f}'} dB; {len(phantoms)} phantom trainee "
          f"turns/backchannels, {extra_s:.1f} s of trainee turns outside the trainee's lines; "
          f"warnings: {[w for w in analysis.warnings if 'leak' in w]}")
    for kind, a, b, text in phantoms:
        print(f"  phantom trainee {kind} {a:.2f}-{b:.2f} s heard as {text!r}")
    score_overlaps(placed, analysis, tally)
    k: Counter = tally.counts
    k["phantom"] += len(phantoms)
    k["extra_cs"] += round(100 * extra_s)  # centiseconds: Counter holds integers
    return erle


def run_leak_calls(specs: tuple[LeakSpec, ...], calls: dict[str, Any], *, transcriber: Any, cache_dir: Path,
                   score_overlaps: Any, new_tally: Any, methods: tuple[str, ...] = METHODS) -> dict[str, str]:
    """All leak calls with each method; prints a summary per method and returns the figures of
    the analysis's own method (`cancel`) for the key=value line."""
    figures: dict[str, str] = {}
    for method in methods:
        tally = new_tally()
        erles = [e for spec in specs
                 if (e := score_leak_call(spec, calls[spec.call_id], method=method, transcriber=transcriber,
                                          cache_dir=cache_dir, score_overlaps=score_overlaps,
                                          tally=tally)) is not None]
        k = tally.counts
        tp, fp, fn = k["interruption_tp"], k["interruption_fp"], k["interruption_fn"]
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        erle = float(np.median(erles)) if erles else None
        print(f"\n== leak calls [{method}] ({len(specs)} calls): interruptions TP/FP/FN {tp}/{fp}/{fn}, "
              f"precision {_fmt(precision)} recall {_fmt(recall)}; phantom trainee turns {k['phantom']} "
              f"(+{k['extra_cs'] / 100:.1f} s of trainee turns outside the trainee's lines); "
              f"ERLE median {_fmt(erle, '.1f')} dB; backchannels TP/FP/FN "
              f"{k['backchannel_tp']}/{k['backchannel_fp']}/{k['backchannel_fn']}")
        if method == "cancel":
            figures = {"leak_interruption_precision": _fmt(precision), "leak_interruption_recall": _fmt(recall),
                       "leak_phantom_turns": str(k["phantom"]),
                       "leak_extra_trainee_s": f"{k['extra_cs'] / 100:.1f}", "leak_erle_db": _fmt(erle, ".1f")}
    return figures


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)
