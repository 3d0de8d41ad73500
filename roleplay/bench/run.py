"""Benchmarks: they print figures and the machine they ran on; the last line is key=value pairs.

    roleplay bench analysis [--minutes 5]   speed and peak memory of `roleplay analyse`
    roleplay bench accuracy                 errors of the analysis on the labelled accuracy set
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roleplay.bench.machine import print_machine


def bench_call_script(minutes: float):
    """A long two-party call: the example exchange repeated with variations until it lasts `minutes`."""
    from roleplay.recording.scripted import ScriptLine

    caller_lines = [
        "Ik bel nu al voor de derde keer, en er is nog steeds niemand langs geweest voor mijn moeder.",
        "Dat zegt u elke keer, maar ondertussen ligt ze hier met pijn op de bank.",
        "Ik wil gewoon dat er nu een dokter komt, begrijpt u dat?",
        "Jullie laten mensen gewoon wachten, dat is toch niet normaal.",
        "En hoe lang gaat dat dan nog duren, nog een uur?",
    ]
    trainee_lines = [
        "Ik begrijp dat u ongerust bent over uw moeder.",
        "Wat ik wel kan doen: ik zet uw melding nu met spoed door naar de dokter.",
        "De dokter belt u binnen twintig minuten terug.",
        "Dat is vervelend, ik hoor dat u lang heeft gewacht.",
        "Ik blijf even met u aan de lijn tot het geregeld is.",
    ]
    script = [ScriptLine("trainee", "Goedenavond, huisartsenpost, u spreekt met Sanne.", "nl-trainee-woman")]
    i = 0
    estimated_s = 3.0
    while estimated_s < minutes * 60:
        c = caller_lines[i % len(caller_lines)]
        t = trainee_lines[(i * 2) % len(trainee_lines)]
        script.append(ScriptLine("caller", c, "nl-man-middle", anger=7 - (i % 4), gap_s=0.5))
        if i % 4 == 3:
            script.append(ScriptLine("trainee", t, "nl-trainee-woman", overlap_at_s=1.5, kind="interruption"))
        else:
            script.append(ScriptLine("trainee", t, "nl-trainee-woman", gap_s=0.4 + 0.3 * (i % 3)))
        estimated_s += len(c) / 14 + len(t) / 14 + 1.2
        i += 1
    return script


# issue 11: a five-minute call analysed in under 35 s with a peak under 1 GB, on this machine
TARGET_ANALYSIS_S = 35.0
TARGET_PEAK_MB = 1024


def stage_cpu_s(call_dir: Path, model: str | None) -> list[tuple[str, float]]:
    """CPU seconds (all threads) of each step of the analysis, in this process, split at the
    pipeline's progress messages: for a loaded machine, where wall time says little."""
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.app.analyse import load_transcriber, read_input  # sets up the models' environment

    start = time.process_time()
    transcriber = load_transcriber(model, own_model=True)  # as `roleplay analyse` has it
    out = [("model load", time.process_time() - start)]
    inp = read_input(argparse.Namespace(path=str(call_dir), caller=None, trainee=None, calibration=None,
                                         caller_channel=None, trainee_channel=None))
    steps: list[tuple[str, float]] = [("resampling and cross-talk removal", time.process_time())]
    analyse_audio(caller=inp.caller, trainee=inp.trainee, language=inp.language or "nl", transcriber=transcriber,
                  calibration=inp.calibration, events=inp.events, call=inp.call,
                  progress=lambda message: steps.append((message, time.process_time())))
    steps.append(("end", time.process_time()))
    return out + [(name, t1 - t0) for (name, t0), (_, t1) in itertools.pairwise(steps)]


def run_analysis_bench(minutes: float, model: str | None) -> int:
    from roleplay.core.paths import cache_dir
    from roleplay.recording.calldir import load_call
    from roleplay.recording.scripted import place_lines, write_call

    print_machine()
    with tempfile.TemporaryDirectory(prefix="roleplay-bench-") as tmp:
        print(f"synthesising a {minutes:g}-minute call ...", flush=True)
        tts_cache = cache_dir() / "bench-tts"
        placed = place_lines(bench_call_script(minutes), cache_dir=tts_cache)
        # the script's length is a guess: scale it once by what the voices really took
        placed = place_lines(bench_call_script(minutes * minutes * 60 / placed[-1].end_s), cache_dir=tts_cache)
        call = write_call(Path(tmp) / "call", placed, language="nl")
        call_s = load_call(call).duration_s
        cmd = [sys.executable, "-m", "roleplay", "analyse", str(call), "--quiet", "--json", str(Path(tmp) / "a.json")]
        if model:
            cmd += ["--model", model]
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        analysis_s = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        peak_mb = after.ru_maxrss / 1024
        load_after = os.getloadavg()[0]
        print("where the CPU time goes (a second analysis of the same call, in this process) ...", flush=True)
        stages = stage_cpu_s(call, model)
    helps = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "roleplay", "--help"], check=True, capture_output=True)
        helps.append(time.perf_counter() - start)
    help_s = statistics.median(helps)
    print(f"call: {call_s:.1f} s of two-party audio")
    print(f"analysis (whole `roleplay analyse` process, model load included): {analysis_s:.1f} s "
          f"({analysis_s / call_s:.3f} x real time); target under {TARGET_ANALYSIS_S:g} s for 5 minutes"
          f"{'' if analysis_s < TARGET_ANALYSIS_S else ': NOT MET'}")
    print(f"  its CPU time (user + sys, all threads): {cpu_s:.1f} s; load average {load_before:.1f} before, "
          f"{load_after:.1f} after (above ~1 the wall time is spoilt by other work)")
    print(f"peak memory of the analysis process: {peak_mb:.0f} MB; target under {TARGET_PEAK_MB} MB"
          f"{'' if peak_mb < TARGET_PEAK_MB else ': NOT MET'}")
    for name, seconds in stages:
        print(f"  CPU {seconds:6.1f} s  {name}")
    print(f"`roleplay --help`: {help_s:.3f} s (median of 5); target under 0.5 s")
    print(f"call_s={call_s:.1f} analysis_s={analysis_s:.1f} realtime_factor={analysis_s / call_s:.3f} "
          f"cpu_s={cpu_s:.1f} peak_rss_mb={peak_mb:.0f} load_avg={load_before:.1f} help_s={help_s:.3f}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.what == "latency":
        from roleplay.bench.live import run_latency_bench

        return run_latency_bench(args.model, seeds=args.seeds)
    if args.what == "analysis":
        return run_analysis_bench(args.minutes, args.model)
    if args.what == "rates":
        from roleplay.bench.rates import run_rates_bench

        return run_rates_bench(model=args.model, seeds=tuple(args.seeds))
    from roleplay.bench.accuracy import run_accuracy

    return run_accuracy(model=args.model)
