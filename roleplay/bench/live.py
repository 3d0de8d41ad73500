"""A scripted trainee over the virtual devices, and `roleplay bench latency`.

The scripted trainee plays espeak-ng replies into the virtual microphone at chosen moments,
relative to the caller's lines as they appear in the call's event log: `after` a line ended
(a silence first) or `interrupt` so many seconds after a line began.

`roleplay bench latency` first replays the scripted turns on a clock of their own under every rule
(`turnreplay`), then runs the same scripted call per seed with each live rule, alternating, in the
same conditions: "cues" (the words and pitch of the turn, `turntaking.end_of_turn_wait`, with the
turn recognised as until 2026-11-30: before) and "fast" (the same rule, the turn recognised sooner
and leaner: after), and prints side by side the reply delays, the premature caller starts and the
CPU seconds of each.
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.core.constants import RATE_HZ
from roleplay.core.errors import RoleplayError

BENCH_SCENARIO = "nl-visite-derde-keer"
CALIBRATION_TEXT = ("Goedenavond, u spreekt met de huisartsenpost. Ik lees deze zin rustig voor, op "
                    "mijn gewone toon, zodat het programma mijn stem leert kennen.")
GREETING = "Huisartsenpost, goedenavond, u spreekt met Anna."
# Turns that pause: mid-sentence after "maar", "want", "dus", "en" (the comma makes espeak's
# pitch stay up, as a speaker's does who is not done), 0.5 to 0.9 s, and once between two
# sentences (0.5 s), where a listener may well take the turn: the cost of ending turns sooner.
BENCH_REPLIES = (
    ("Ik begrijp dat u ongerust bent.", "after", 0.8),
    ("Dat is heel vervelend voor u, maar, |0.6| vertelt u maar.", "after", 0.5),
    ("Ik hoor hoe bezorgd u bent over uw man.", "after", 1.0),
    ("Wat is de geboortedatum van uw man?", "after", 0.6),
    ("Ik stuur nu een dokter naar u toe, want, |0.9| hij moet echt even naar hem kijken.", "after", 0.6),
    ("Ik blijf bij u aan de lijn.", "after", 0.5),
    ("U heeft gelijk dat het lang duurt. | Dat spijt me.", "after", 0.8),
    ("De dokter weet ervan, dus, |0.8| hij komt zo snel mogelijk.", "after", 0.6),
    ("Wat ik wel kan doen is de dokter nu bellen.", "after", 0.7),
    ("Ik heb het adres, en, | de dokter rijdt nu weg.", "after", 0.6),
)


PAUSE_S = 0.5  # longer than the VAD's shortest gap (0.3 s), shorter than the end of a turn (0.7 s)
_PAUSE = re.compile(r" \|(\d+(?:\.\d+)?)?\| | \| ")


@functools.lru_cache(maxsize=128)
def espeak(text: str, *, voice: str = "nl", speed_wpm: int = 150) -> Audio:
    """`text` spoken by espeak-ng at 16 kHz, silence trimmed (the scripted trainee's voice).
    " | " in `text` is a pause of PAUSE_S, " |0.8| " one of 0.8 s: the trainee goes on after it
    in the same turn."""
    import soundfile

    pieces = _PAUSE.split(text)  # text, pause, text, ...
    if len(pieces) > 1:
        out = [espeak(pieces[0], voice=voice, speed_wpm=speed_wpm).samples]
        for pause, part in zip(pieces[1::2], pieces[2::2], strict=True):
            out.append(np.zeros(int(float(pause or PAUSE_S) * RATE_HZ), np.float32))
            out.append(espeak(part, voice=voice, speed_wpm=speed_wpm).samples)
        return Audio(np.concatenate(out), RATE_HZ)

    if shutil.which("espeak-ng") is None:
        raise RoleplayError("the scripted trainee needs espeak-ng (Debian: apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "--stdout", text],
                         capture_output=True, check=True, timeout=30).stdout
    data, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    audio = Audio(np.ascontiguousarray(data), int(rate)).resampled(RATE_HZ)
    loud = np.flatnonzero(np.abs(audio.samples) > 0.01)
    return Audio(audio.samples[loud[0] : loud[-1] + 1].copy(), RATE_HZ)


@dataclass(frozen=True)
class Played:
    text: str
    planned_s: float  # call time it was meant to start
    mode: str


class ScriptedTrainee:
    """Answers the live caller from a script; pass `on_ready` to `run_drill`."""

    def __init__(self, vd, call_dir: Path, *, greeting: str = GREETING,
                 replies=BENCH_REPLIES, voice: str = "nl", greeting_at_s: float = 0.5) -> None:
        self.vd, self.call_dir, self.voice = vd, Path(call_dir), voice
        self.greeting, self.greeting_at_s = greeting, greeting_at_s
        self.replies = list(replies)
        self.played: list[Played] = []
        self.ready_wall: float | None = None
        self._stop = threading.Event()
        for text in [greeting] + [r[0] for r in self.replies]:
            espeak(text, voice=voice)

    def on_ready(self) -> None:
        self.ready_wall = time.monotonic()
        threading.Thread(target=self._run, name="scripted-trainee", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _inject(self, text: str, at_s: float, mode: str) -> None:
        assert self.ready_wall is not None
        delay = self.ready_wall + at_s - time.monotonic()
        self.vd.play_into_mic(espeak(text, voice=self.voice), delay_s=max(0.0, delay))
        self.played.append(Played(text, at_s, mode))

    def _run(self) -> None:
        if self.greeting:
            self._inject(self.greeting, self.greeting_at_s, "greeting")
        seen = 0
        from roleplay.recording.calldir import read_events
        from roleplay.recording.events import CallerLine

        while not self._stop.is_set() and self.replies:
            # the log grows as we read: a half-written last line is skipped, as any reader does
            caller = [e for e in read_events(self.call_dir) if isinstance(e, CallerLine)]
            if len(caller) > seen:
                ev = caller[seen]
                seen += 1
                text, mode, offset_s = self.replies.pop(0)
                at = ev.t_s + offset_s if mode == "interrupt" else ev.end_s + offset_s
                self._inject(text, at, mode)
            time.sleep(0.03)


def prepare_trainee(name: str) -> Path:
    """Store an espeak calibration for `name` (under $XDG_DATA_HOME) unless one exists."""
    from roleplay.audio.clip import save_wav
    from roleplay.session.live import calibration_path

    path = calibration_path(name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_wav(path, espeak(CALIBRATION_TEXT))
    return path


def _bench_call(work: Path, name: str, transcriber, rule: str, seed: int, caller_lines: int):
    """One scripted call with the end-of-turn `rule` (`turnreplay.RULES`); its DrillResult and the
    CPU seconds of this process during it (wall time is spoiled by a loaded machine, CPU time
    much less)."""
    from roleplay.audio.virtual import virtual_devices
    from roleplay.bench.turnreplay import RULES
    from roleplay.session.live import DrillSettings, run_drill

    waits, recognition = RULES[rule]
    settings = DrillSettings(turn=waits, recognition=recognition, max_caller_lines=caller_lines,
                             seed=seed)
    cpu = time.process_time()
    with virtual_devices() as vd:
        trainee = ScriptedTrainee(vd, work / name)
        result = run_drill(scenario_id=BENCH_SCENARIO, trainee="bench", out_dir=work / name,
                           transcriber=transcriber, on_ready=trainee.on_ready, settings=settings)
        trainee.stop()
    return result, time.process_time() - cpu


LIVE_RULES = ("cues", "fast")  # before, after; "fixed" is in the replay (its live figures: docs)


def run_latency_bench(model: str | None, *, seeds: list[int] | None = None,
                      caller_lines: int | None = None, rules: tuple[str, ...] = LIVE_RULES) -> int:
    """`roleplay bench latency`: the replay of the scripted turns, then the scripted call over
    virtual devices, once per seed with each of `rules`, alternating so all meet the same load;
    reply-delay figures, premature caller starts and CPU seconds per rule."""
    import os

    from roleplay.app.analyse import load_transcriber
    from roleplay.bench.machine import print_machine
    from roleplay.bench.turnreplay import print_replay, replay

    work = Path(tempfile.mkdtemp(prefix="roleplay-bench-latency-"))
    os.environ.setdefault("XDG_DATA_HOME", str(work / "data"))
    prepare_trainee("bench")
    transcriber = load_transcriber(model)
    caller_lines = caller_lines or len(BENCH_REPLIES) + 1  # the greeting's reply, then one a reply
    results: dict[str, list] = {rule: [] for rule in rules}
    cpu: dict[str, float] = dict.fromkeys(rules, 0.0)
    print_machine()
    print_replay(replay([GREETING] + [r[0] for r in BENCH_REPLIES], transcriber,
                        speak=lambda text: espeak(text).samples))
    print(f"\nlive calls over the virtual devices; load average at the start: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for seed in seeds or [1, 2]:
        for rule in rules:
            result, cpu_s = _bench_call(work, f"{rule}-{seed}", transcriber, rule, seed, caller_lines)
            results[rule].append(result)
            cpu[rule] += cpu_s
            _print_call(result, rule, seed, cpu_s)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return _print_summary(results, cpu)


def _print_call(result, rule: str, seed: int, cpu_s: float) -> None:
    print(f"\n{rule} (seed {seed}): {len(result.reply_delays)} answered trainee turns, "
          f"{len(result.premature_starts)} premature caller starts, lag {result.lag.lag_ms:.0f} ms, "
          f"CPU {cpu_s:.1f} s, call in {result.directory}")
    for d in result.reply_delays:
        early = " PREMATURE" if d.turn in result.premature_starts else ""
        print(f"  turn {d.turn}: {d.total_s:.2f} s = wait {d.silence_wait_s:.2f} + input "
              f"{d.input_s:.2f} + recognition {d.recognition_s:.2f} + decision {d.decision_s:.3f} "
              f"+ synthesis {d.synthesis_s:.3f} + output {d.output_s:.3f}  (recognised: "
              f"{d.recognised}; end: {d.end_reason}){early}")


def _print_summary(results: dict[str, list], cpu: dict[str, float]) -> int:
    from roleplay.session.live import delay_summary

    print("\nrule   calls  turns  median  p95     premature starts  CPU/turn  parts (medians)")
    ok = True
    for rule, calls in results.items():
        delays = [d for r in calls for d in r.reply_delays]
        s = delay_summary(delays)
        if not s:
            print(f"{rule:<6} {len(calls):>5}  no trainee turn was answered")
            ok = False
            continue
        premature = sum(len(r.premature_starts) for r in calls)
        parts = ", ".join(f"{k.replace('_p50_s', '')} {v:.3f}" for k, v in s.items() if k.endswith("_p50_s"))
        print(f"{rule:<6} {len(calls):>5}  {len(delays):>5}  {s['p50_s']:.2f} s  {s['p95_s']:.2f} s  "
              f"{premature:>3} of {len(delays):<3}        {cpu[rule] / len(delays):.2f} s    {parts}")
        print(f"  {rule}: " + " ".join(f"{k}={v:g}" for k, v in s.items()) + f" premature={premature}")
    print("target (fast): median <= 0.6 s, p95 <= 1.0 s, premature starts no more than cues")
    return 0 if ok else 1
