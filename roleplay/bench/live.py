"""A scripted trainee over the virtual devices, and `roleplay bench latency`.

The scripted trainee plays espeak-ng replies into the virtual microphone at chosen moments,
relative to the caller's lines as they appear in the call's event log: `after` a line ended
(a silence first) or `interrupt` so many seconds after a line began.
"""

from __future__ import annotations

import functools
import io
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
BENCH_REPLIES = (
    ("Ik begrijp dat u ongerust bent.", "after", 0.8),
    ("Dat is heel vervelend voor u, vertelt u maar.", "after", 0.5),
    ("Ik hoor hoe bezorgd u bent over uw man.", "after", 1.0),
    ("Ik stuur nu een dokter naar u toe, binnen een uur is hij er.", "after", 0.6),
    ("Wat ik wel kan doen is de dokter nu bellen.", "after", 0.7),
    ("Ik blijf bij u aan de lijn.", "after", 0.5),
    ("U heeft gelijk dat het lang duurt.", "after", 0.8),
    ("De dokter weet ervan, hij komt zo snel mogelijk.", "after", 0.6),
)


PAUSE_S = 0.5  # longer than the VAD's shortest gap (0.3 s), shorter than the end of a turn (0.7 s)


@functools.lru_cache(maxsize=128)
def espeak(text: str, *, voice: str = "nl", speed_wpm: int = 150) -> Audio:
    """`text` spoken by espeak-ng at 16 kHz, silence trimmed (the scripted trainee's voice).
    " | " in `text` is a pause of PAUSE_S: the trainee goes on after it in the same turn."""
    import soundfile

    if " | " in text:
        gap = np.zeros(int(PAUSE_S * RATE_HZ), np.float32)
        parts = [espeak(part, voice=voice, speed_wpm=speed_wpm).samples for part in text.split(" | ")]
        joined = [x for part in parts for x in (part, gap)][:-1]
        return Audio(np.concatenate(joined), RATE_HZ)

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


def run_latency_bench(model: str | None, *, caller_lines: int = 7) -> int:
    """`roleplay bench latency`: a scripted call over virtual devices; reply-delay figures."""
    import os

    from roleplay.app.analyse import load_transcriber
    from roleplay.audio.virtual import virtual_devices
    from roleplay.bench.machine import print_machine
    from roleplay.session.live import DrillSettings, delay_summary, run_drill

    work = Path(tempfile.mkdtemp(prefix="roleplay-bench-latency-"))
    os.environ.setdefault("XDG_DATA_HOME", str(work / "data"))
    prepare_trainee("bench")
    transcriber = load_transcriber(model)
    with virtual_devices() as vd:
        trainee = ScriptedTrainee(vd, work / "call")
        result = run_drill(scenario_id=BENCH_SCENARIO, trainee="bench", out_dir=work / "call",
                           transcriber=transcriber, on_ready=trainee.on_ready,
                           settings=DrillSettings(max_caller_lines=caller_lines, seed=1))
        trainee.stop()
    s = delay_summary(result.reply_delays)
    print_machine()
    print(f"scenario {BENCH_SCENARIO}, {len(result.reply_delays)} answered trainee turns, "
          f"lag {result.lag.lag_ms:.0f} ms, call in {result.directory}")
    if not s:
        print("no trainee turn was answered")
        return 1
    print(f"reply delay (end of trainee speech -> first caller sample): median {s['p50_s']:.2f} s, "
          f"95th percentile {s['p95_s']:.2f} s; target median < 1.2 s, p95 < 2.0 s")
    print("parts (medians): " + ", ".join(
        f"{k.replace('_p50_s', '')} {v:.3f} s" for k, v in s.items() if k.endswith("_p50_s")))
    for d in result.reply_delays:
        print(f"  turn {d.turn}: {d.total_s:.2f} s = wait {d.silence_wait_s:.2f} + input "
              f"{d.input_s:.2f} + recognition {d.recognition_s:.2f} + decision {d.decision_s:.3f} "
              f"+ synthesis {d.synthesis_s:.3f} + output {d.output_s:.3f}  (recognised: {d.recognised})")
    print(" ".join(f"{k}={v:g}" for k, v in s.items()))
    return 0
