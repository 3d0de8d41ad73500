"""Accuracy of the analysis on a labelled set: `roleplay bench accuracy`.

The set (roleplay/accuracy_set.yaml) holds synthetic two-party calls whose truth is what was
planted (line times, overlaps, gains, phrase categories) and human read Dutch whose truth is the
transcript. Truth of a rate: syllables of the text (count_syllables) over the clean clip's duration
(speech rate), and over that minus its own pauses of 0.25 s or more (articulation rate).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SET_PATH = Path(__file__).with_name("accuracy_set.yaml")
ONSET_MATCH_S = 0.3  # a detected interruption or backchannel matches a planted one this close


@dataclass(frozen=True)
class LineSpec:
    line: Any  # roleplay.recording.scripted.ScriptLine (imported lazily: the CLI must start fast)
    categories: frozenset[str] | None  # None for caller lines and backchannels: not scored


@dataclass(frozen=True)
class CallSpec:
    id: str
    language: str
    trainee_voice: str
    trainee_rate_wpm: float
    calibration_text: str
    lines: tuple[LineSpec, ...]


@dataclass(frozen=True)
class AccuracySet:
    calls: tuple[CallSpec, ...]
    human_directory: str
    human_language: str


@dataclass(frozen=True)
class RateTruth:
    syllables: int
    speech_rate_syll_s: float
    articulation_rate_syll_s: float


@dataclass
class Tally:
    """Errors and counts accumulated over items; medians are taken at the end."""

    artic_err_pct: list[float]
    speech_err_pct: list[float]
    loudness_err_db: list[float]
    onset_err_s: list[float]
    latency_err_s: list[float]
    trainee_artic_err_pct: list[float]  # the trainee's rates are what the feedback is about
    counts: Counter

    @classmethod
    def empty(cls) -> Tally:
        return cls([], [], [], [], [], [], Counter())

    def add(self, other: Tally) -> None:
        self.artic_err_pct += other.artic_err_pct
        self.speech_err_pct += other.speech_err_pct
        self.loudness_err_db += other.loudness_err_db
        self.onset_err_s += other.onset_err_s
        self.latency_err_s += other.latency_err_s
        self.trainee_artic_err_pct += other.trainee_artic_err_pct
        self.counts.update(other.counts)


def load_set(path: Path = SET_PATH) -> AccuracySet:
    import yaml

    from roleplay.recording.scripted import ScriptLine

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    calls = []
    for c in data["calls"]:
        voices = {"caller": c["caller_voice"], "trainee": c["trainee_voice"]}
        lines = []
        for raw in c["lines"]:
            who, kind = raw["who"], raw.get("kind", "turn")
            rate = raw.get("rate_wpm", c["trainee_rate_wpm"] if who == "trainee" else None)
            line = ScriptLine(who, raw["text"], voices[who], rate_wpm=rate, gain_db=float(raw.get("gain_db", 0.0)),
                              anger=float(raw.get("anger", 0.0)), gap_s=float(raw.get("gap_s", 0.6)),
                              overlap_at_s=raw.get("overlap_at_s"), kind=kind)
            scored = who == "trainee" and kind != "backchannel"
            if scored and "categories" not in raw:
                raise ValueError(f"{path}: call {c['id']}: trainee line {raw['text']!r} has no `categories`")
            lines.append(LineSpec(line, frozenset(raw["categories"]) if scored else None))
        calls.append(CallSpec(c["id"], c["language"], c["trainee_voice"], float(c["trainee_rate_wpm"]),
                              c["calibration"], tuple(lines)))
    human = data.get("human") or {}
    return AccuracySet(tuple(calls), human.get("directory", ""), human.get("language", "nl"))


def rate_truth(text: str, clip: Any, *, language: str) -> RateTruth:
    """Rates of a clean clip (trimmed to the voice) of known text."""
    from roleplay.speech.prosody import pauses_s
    from roleplay.speech.syllables import count_syllables

    n = count_syllables(text, language=language)
    pause_s = sum(b - a for a, b in pauses_s(clip))
    return RateTruth(n, n / clip.duration_s, n / (clip.duration_s - pause_s))


def _err_pct(measured: float | None, truth: float) -> float | None:
    return None if measured is None else 100.0 * (measured / truth - 1.0)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _precision(tp: int, fp: int) -> float | None:
    return tp / (tp + fp) if tp + fp else None


def _recall(tp: int, fn: int) -> float | None:
    return tp / (tp + fn) if tp + fn else None


def _overlap_s(turn: Any, start_s: float, end_s: float) -> float:
    return min(turn.end_s, end_s) - max(turn.start_s, start_s)


def _turn_at(analysis: Any, placed: Any) -> Any | None:
    """The analysed turn of the line's speaker that overlaps the planted line most, if any."""
    own = [t for t in analysis.turns if t.speaker == placed.line.speaker]
    best = max(own, key=lambda t: _overlap_s(t, placed.start_s, placed.end_s), default=None)
    return best if best is not None and _overlap_s(best, placed.start_s, placed.end_s) > 0 else None


def _planted_overlap_s(placed: tuple[Any, ...], i: int) -> float:
    p = placed[i]
    other = [q for q in placed[:i] if q.line.speaker != p.line.speaker and q.line.kind != "backchannel"]
    return max((min(p.end_s, q.end_s) - p.start_s for q in other), default=0.0)


def _phrase_line_text(found: set[str], planted: frozenset[str]) -> str:
    missing, extra = sorted(planted - found), sorted(found - planted)
    out = ",".join(sorted(planted & found)) or "-"
    if missing:
        out += " missed:" + ",".join(missing)
    if extra:
        out += " extra:" + ",".join(extra)
    return out


def score_call(spec: CallSpec, *, transcriber: Any, cache_dir: Path, work_dir: Path) -> Tally:
    from roleplay.analysis.phrases import find_phrases
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.recording.calldir import load_call
    from roleplay.recording.scripted import ScriptLine, place_lines, speak_line, write_call

    placed = place_lines([s.line for s in spec.lines], cache_dir=cache_dir)
    calibration = speak_line(ScriptLine("trainee", spec.calibration_text, spec.trainee_voice,
                                        rate_wpm=spec.trainee_rate_wpm), cache_dir=cache_dir)
    rec = load_call(write_call(work_dir / spec.id, placed, language=spec.language, calibration=calibration))
    analysis = analyse_audio(caller=rec.caller, trainee=rec.trainee, language=spec.language,
                             transcriber=transcriber, calibration=rec.calibration)
    tally = Tally.empty()
    k = tally.counts
    print(f"\n== {spec.id} ({spec.language}, trainee {spec.trainee_voice} at {spec.trainee_rate_wpm:g} wpm, "
          f"{analysis.duration_s:.1f} s, {len(analysis.turns)} turns found for "
          f"{sum(p.line.kind != 'backchannel' for p in placed)} planted)")
    print("  who      start   truth AR/SR   meas AR/SR    errAR%  errSR%  syl t/m src  gain  loudΔ  lat(t/m)"
          "     phrases")
    for i, (p, s) in enumerate(zip(placed, spec.lines, strict=True)):
        if p.line.kind == "backchannel":
            continue
        turn = _turn_at(analysis, p)
        truth = rate_truth(p.line.text, p.audio, language=spec.language)
        if turn is None:
            k["turn_missing"] += 1
            print(f"  {p.line.speaker:8s} {p.start_s:6.2f}  no analysed turn overlaps this line")
            continue
        # a turn that also covers another planted line of the same speaker has no single truth rate
        merged = any(q is not p and q.line.speaker == p.line.speaker and q.line.kind != "backchannel"
                     and _overlap_s(turn, q.start_s, q.end_s) > 0 for q in placed)
        ar = sr = None
        if merged:
            k["turn_merged"] += 1
        else:
            ar = _err_pct(turn.articulation_rate_syll_s, truth.articulation_rate_syll_s)
            sr = _err_pct(turn.speech_rate_syll_s, truth.speech_rate_syll_s)
            if ar is not None and sr is not None:
                tally.artic_err_pct.append(abs(ar))
                tally.speech_err_pct.append(abs(sr))
                if p.line.speaker == "trainee":
                    tally.trainee_artic_err_pct.append(abs(ar))
        loud_err = None
        if p.line.speaker == "trainee" and turn.loudness_vs_baseline_db is not None:
            loud_err = turn.loudness_vs_baseline_db - p.line.gain_db
            tally.loudness_err_db.append(abs(loud_err))
        lat = "            "
        prev = next((q for q in reversed(placed[:i]) if q.line.kind == "turn"), None)
        if (p.line.speaker == "trainee" and p.line.kind == "turn" and prev is not None
                and prev.line.speaker == "caller"):
            want = p.start_s - prev.end_s
            got = turn.response_latency_s
            lat = f"{want:4.2f}/{_fmt(got):>5s}  "
            if got is None:
                k["latency_missing"] += 1
            else:
                tally.latency_err_s.append(abs(got - want))
        phr = ""
        if s.categories is not None:
            found = {ph.category for ph in turn.phrases}
            on_text = {h.category for h in find_phrases(p.line.text, language=spec.language)}
            if on_text != set(s.categories):  # the label and the phrase book disagree on the script
                k["label_vs_phrasebook"] += 1
                phr = f"[script text gives {sorted(on_text)}] "
            phr += _phrase_line_text(found, s.categories) + f"  heard: {turn.text!r}"
            for cat in s.categories | found:
                key = "tp" if cat in s.categories and cat in found else ("fn" if cat in s.categories else "fp")
                k[f"phrase_{key}"] += 1
                k[f"phrase_{key}:{cat}"] += 1
        loud = _fmt(loud_err, "+5.1f") if p.line.speaker == "trainee" else ""
        print(f"  {p.line.speaker:8s} {p.start_s:6.2f}  {truth.articulation_rate_syll_s:5.2f}/"
              f"{truth.speech_rate_syll_s:5.2f}   {_fmt(turn.articulation_rate_syll_s):>5s}/"
              f"{_fmt(turn.speech_rate_syll_s):>5s}  {_fmt(ar, '+6.1f'):>6s}  {_fmt(sr, '+6.1f'):>6s}  "
              f"{truth.syllables:3d}/{turn.syllables:<3d} {turn.syllable_source[0]}  {p.line.gain_db:+4.0f} "
              f"{loud:>6s}"
              f"  {lat}{'merged ' if merged else ''}{phr}")
    _score_overlaps(placed, analysis, tally)
    _print_tally(spec.id, tally)
    return tally


def _score_overlaps(placed: tuple[Any, ...], analysis: Any, tally: Tally) -> None:
    k = tally.counts
    planted = [(i, p) for i, p in enumerate(placed) if p.line.kind == "interruption"]
    detected = list(analysis.interruptions)
    used: set[int] = set()
    for i, p in planted:
        match = min((j for j, d in enumerate(detected) if j not in used and d.by == p.line.speaker
                     and abs(d.start_s - p.start_s) <= ONSET_MATCH_S),
                    key=lambda j: abs(detected[j].start_s - p.start_s), default=None)
        got = "missed"
        if match is not None:
            used.add(match)
            tally.onset_err_s.append(abs(detected[match].start_s - p.start_s))
            k["interruption_tp"] += 1
            got = f"found at {detected[match].start_s:.2f} s, overlap {detected[match].overlap_s:.2f} s"
        else:
            k["interruption_fn"] += 1
        print(f"  interruption by {p.line.speaker} at {p.start_s:.2f} s (planted overlap "
              f"{_planted_overlap_s(placed, i):.2f} s): {got}")
    for j, d in enumerate(detected):
        if j not in used:
            k["interruption_fp"] += 1
            print(f"  interruption by {d.by} at {d.start_s:.2f} s: not planted (false alarm)")
    bcs = [p for p in placed if p.line.kind == "backchannel"]
    found_bc = list(analysis.backchannels)
    used_bc: set[int] = set()
    for p in bcs:
        match = next((j for j, b in enumerate(found_bc) if j not in used_bc and b.speaker == p.line.speaker
                      and abs(b.start_s - p.start_s) <= ONSET_MATCH_S), None)
        as_interruption = any(abs(d.start_s - p.start_s) <= ONSET_MATCH_S for d in detected)
        if match is not None:
            used_bc.add(match)
            k["backchannel_tp"] += 1
        else:
            k["backchannel_fn"] += 1
        k["backchannel_as_interruption"] += as_interruption
        became = next((t for t in analysis.turns if t.speaker == p.line.speaker
                       and _overlap_s(t, p.start_s, p.end_s) > 0), None)
        fate = "found" if match is not None else "missed"
        if match is None and became is not None:
            fate += f": became a {became.duration_s:.2f} s turn heard as {became.text!r}"
            k["backchannel_as_turn"] += 1
        print(f"  backchannel {p.line.text!r} at {p.start_s:.2f} s: {fate}"
              f"{' (counted as an interruption)' if as_interruption else ''}")
    for j, b in enumerate(found_bc):
        if j not in used_bc:
            k["backchannel_fp"] += 1
            print(f"  backchannel {b.text!r} by {b.speaker} at {b.start_s:.2f} s: not planted")


def _print_tally(name: str, t: Tally) -> None:
    k = t.counts
    print(f"  -> {name}: median |err| articulation {_fmt(_median(t.artic_err_pct), '.1f')} % "
          f"speech {_fmt(_median(t.speech_err_pct), '.1f')} % (n={len(t.artic_err_pct)}; trainee articulation "
          f"{_fmt(_median(t.trainee_artic_err_pct), '.1f')} %, n={len(t.trainee_artic_err_pct)}; "
          f"merged {k['turn_merged']}, missing {k['turn_missing']}); loudness "
          f"{_fmt(_median(t.loudness_err_db))} dB (n={len(t.loudness_err_db)}); onset "
          f"{_fmt(_median(t.onset_err_s))} s; latency {_fmt(_median(t.latency_err_s))} s "
          f"(n={len(t.latency_err_s)}, missing {k['latency_missing']})")
    print(f"     interruptions TP/FP/FN {k['interruption_tp']}/{k['interruption_fp']}/{k['interruption_fn']}; "
          f"backchannels TP/FP/FN {k['backchannel_tp']}/{k['backchannel_fp']}/{k['backchannel_fn']} "
          f"({k['backchannel_as_interruption']} counted as interruption, {k['backchannel_as_turn']} as a turn); "
          f"phrases TP/FP/FN "
          f"{k['phrase_tp']}/{k['phrase_fp']}/{k['phrase_fn']}")


def score_human(directory: Path, *, language: str, transcriber: Any) -> Tally:
    """Human read speech, one file = one trainee turn; truth from the transcript beside it."""
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.audio.clip import ANALYSIS_RATE_HZ, load_audio
    from roleplay.speech.prosody import speaking_extent_s

    tally = Tally.empty()
    print(f"\n== human read speech: {directory.name} ({language}; digital silence between words, so "
          "pauses are artificially clean)")
    print("  file         syl  truth AR/SR   meas AR/SR    errAR%  errSR%  source      heard")
    for wav in sorted(directory.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            continue
        text = " ".join(ln for ln in txt.read_text(encoding="utf-8").splitlines() if not ln.startswith("#"))
        audio = load_audio(wav).resampled(ANALYSIS_RATE_HZ)
        extent = speaking_extent_s(audio)
        if extent is None:
            continue
        truth = rate_truth(text, audio.slice_s(*extent), language=language)
        analysis = analyse_audio(caller=None, trainee=audio, language=language, transcriber=transcriber)
        turns = analysis.turns_of("trainee")
        if len(turns) != 1:
            tally.counts["turn_merged" if len(turns) > 1 else "turn_missing"] += 1
            print(f"  {wav.name:12s} {len(turns)} turns found, expected 1")
            continue
        t = turns[0]
        ar = _err_pct(t.articulation_rate_syll_s, truth.articulation_rate_syll_s)
        sr = _err_pct(t.speech_rate_syll_s, truth.speech_rate_syll_s)
        if ar is not None and sr is not None:
            tally.artic_err_pct.append(abs(ar))
            tally.speech_err_pct.append(abs(sr))
        print(f"  {wav.name:12s} {truth.syllables:3d}  {truth.articulation_rate_syll_s:5.2f}/"
              f"{truth.speech_rate_syll_s:5.2f}   {_fmt(t.articulation_rate_syll_s):>5s}/"
              f"{_fmt(t.speech_rate_syll_s):>5s}  {_fmt(ar, '+6.1f'):>6s}  {_fmt(sr, '+6.1f'):>6s}  "
              f"{t.syllable_source:10s}  {t.text!r}")
    print(f"  -> human: median |err| articulation {_fmt(_median(tally.artic_err_pct), '.1f')} % speech "
          f"{_fmt(_median(tally.speech_err_pct), '.1f')} % (n={len(tally.artic_err_pct)})")
    return tally


def shared_speech_dir() -> Path:
    root = os.environ.get("ROLEPLAY_SHARED_DIR")
    return (Path(root) if root else Path(__file__).resolve().parents[3] / "shared") / "speech"


def run_accuracy(*, model: str | None) -> int:
    from roleplay.bench.machine import print_machine
    from roleplay.core.paths import cache_dir
    from roleplay.speech.models import choose_model, prepare_environment

    print_machine()
    prepare_environment()
    from roleplay.speech.asr import FasterWhisperTranscriber

    started = time.perf_counter()
    choice = choose_model(model)
    transcriber = FasterWhisperTranscriber(choice.path)
    acc_set = load_set()
    print(f"model: {choice.path}; set: {SET_PATH.name}, {len(acc_set.calls)} synthetic calls")
    total = Tally.empty()
    tts_cache = cache_dir() / "accuracy-tts"
    tts_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="roleplay-accuracy-") as tmp:
        for spec in acc_set.calls:
            total.add(score_call(spec, transcriber=transcriber, cache_dir=tts_cache, work_dir=Path(tmp)))
    k = total.counts
    print("\n== synthetic calls, total")
    _print_tally("all synthetic", total)
    cats = sorted({key.split(":", 1)[1] for key in k if key.startswith("phrase_") and ":" in key})
    for cat in cats:
        tp, fp, fn = (k[f"phrase_{x}:{cat}"] for x in ("tp", "fp", "fn"))
        print(f"     phrase {cat:17s} TP {tp} FP {fp} FN {fn}  precision {_fmt(_precision(tp, fp))} "
              f"recall {_fmt(_recall(tp, fn))}")
    if k["label_vs_phrasebook"]:
        print(f"     note: on {k['label_vs_phrasebook']} lines the phrase book applied to the script text "
              "disagrees with the hand label")
    print("     phrases are scored per planted trainee line: TP = a labelled category found in the analysed "
          "turn that overlaps the line, FP = a category found there but not labelled, FN = labelled, not found")
    human_dir = shared_speech_dir() / acc_set.human_directory
    human = Tally.empty()
    if acc_set.human_directory and human_dir.is_dir():
        human = score_human(human_dir, language=acc_set.human_language, transcriber=transcriber)
    else:
        print(f"\n(human read speech skipped: {human_dir} is not present)")
    leak_figures = _run_leak_calls(acc_set, transcriber=transcriber, cache_dir=tts_cache)
    leak_figures |= _run_double_talk(cache_dir=tts_cache)
    real_figures = _run_real_conversations(transcriber=transcriber)
    phrase_figures = score_phrase_set(transcriber=transcriber, cache_dir=tts_cache)
    elapsed = time.perf_counter() - started
    print(f"\nrun time {elapsed:.0f} s")
    figures = {
        "artic_rate_err_pct": _fmt(_median(total.artic_err_pct), ".1f"),
        "speech_rate_err_pct": _fmt(_median(total.speech_err_pct), ".1f"),
        "trainee_artic_rate_err_pct": _fmt(_median(total.trainee_artic_err_pct), ".1f"),
        "loudness_err_db": _fmt(_median(total.loudness_err_db)),
        "onset_err_s": _fmt(_median(total.onset_err_s), ".3f"),
        "interruption_precision": _fmt(_precision(k["interruption_tp"], k["interruption_fp"])),
        "interruption_recall": _fmt(_recall(k["interruption_tp"], k["interruption_fn"])),
        "backchannel_precision": _fmt(_precision(k["backchannel_tp"], k["backchannel_fp"])),
        "backchannel_recall": _fmt(_recall(k["backchannel_tp"], k["backchannel_fn"])),
        "phrase_precision": _fmt(_precision(k["phrase_tp"], k["phrase_fp"])),
        "phrase_recall": _fmt(_recall(k["phrase_tp"], k["phrase_fn"])),
        "latency_err_s": _fmt(_median(total.latency_err_s), ".3f"),
        "human_artic_rate_err_pct": _fmt(_median(human.artic_err_pct), ".1f"),
        "human_speech_rate_err_pct": _fmt(_median(human.speech_err_pct), ".1f"),
        "run_s": f"{elapsed:.0f}",
    }
    figures.update(leak_figures)
    figures.update(real_figures)
    figures.update(phrase_figures)
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


def _run_leak_calls(acc_set: AccuracySet, *, transcriber: Any, cache_dir: Path) -> dict[str, str]:
    """The leak calls (roleplay/bench/leaks.py): the set's calls with the caller leaking into the
    trainee's track, scored with this module's interruption and backchannel matching."""
    import yaml

    from roleplay.bench.leaks import leak_specs, run_leak_calls

    specs = leak_specs(yaml.safe_load(SET_PATH.read_text(encoding="utf-8")))
    return run_leak_calls(specs, {c.id: c for c in acc_set.calls}, transcriber=transcriber, cache_dir=cache_dir,
                          score_overlaps=_score_overlaps, new_tally=Tally.empty)


def _run_double_talk(*, cache_dir: Path) -> dict[str, str]:
    from roleplay.bench.leaks import run_double_talk

    return run_double_talk(cache_dir=cache_dir)


def _run_real_conversations(*, transcriber: Any) -> dict[str, str]:
    """Human English conversations against hand-checked speaker timings (issue 11, section 3;
    roleplay/bench/conversations.py and real_conversations.yaml)."""
    from roleplay.bench.conversations import run_conversations

    print("\n== real conversations (human English from ../shared/speech, two tracks gated by "
          "hand-checked timings)")
    figures = run_conversations(shared_speech_dir(), transcriber=transcriber)
    print("  -> " + " ".join(f"{key}={value}" for key, value in figures.items()))
    return figures


# --- phrases per category (issue 11, "Dutch phrases") ---

@dataclass(frozen=True)
class PhraseLine:
    language: str
    text: str
    truth: frozenset[str]  # the categories the phrase book finds in the clean text
    planted: str | None  # the category the line was made for; None for a line without a phrase
    split: str  # "train" or "test"
    voice: str
    rate_wpm: float


@dataclass(frozen=True)
class PhraseResult:
    line: PhraseLine
    heard: str
    found: frozenset[str]  # with the audio check (what the analysis reports)
    text_only: frozenset[str]  # the text matcher alone on the same words
    # (category, log ratio per word, closeness) of each candidate down to TUNING_MIN_CLOSENESS
    ratios: tuple[tuple[str, float, float], ...]


def phrase_lines(path: Path = SET_PATH, *, voice_key: str = "voices") -> tuple[PhraseLine, ...]:
    """The generated phrase lines of the set's `phrase_set` (see the comment there), spoken by
    the voices under `voice_key` ("neural_voices": only the languages it names)."""
    import yaml

    from roleplay.analysis.phrases import CATEGORIES, find_phrases, load_phrasebook, spoken_form

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))["phrase_set"]
    rates = [float(r) for r in spec["rates_wpm"]]
    out: list[PhraseLine] = []
    for language, n in spec["per_category"].items():
        if language not in spec[voice_key]:
            continue
        book, carriers, voices = load_phrasebook(language), spec["carriers"][language], spec[voice_key][language]

        def line(text: str, planted: str | None, i: int, *, _lang: str = language, _voices: list[str] = voices
                 ) -> PhraseLine:
            truth = frozenset(h.category for h in find_phrases(text, language=_lang))
            return PhraseLine(_lang, text, truth, planted, "train" if i % 2 == 0 else "test",
                              _voices[i % len(_voices)], rates[(i // 2) % len(rates)])

        for k, category in enumerate(CATEGORIES):
            plain = [p for p in book.categories[category] if p.kind != "regex"]
            for i in range(n):
                phrase = spoken_form(plain[i % len(plain)], book)
                carrier = carriers[(i + k) % len(carriers)]
                out.append(line(carrier.replace("{P}", phrase[:1].upper() + phrase[1:]).replace("{p}", phrase),
                                category, i))
        out += [line(text, None, i) for i, text in enumerate(spec["without"][language])]
    return tuple(out)


def run_phrase_lines(lines: tuple[PhraseLine, ...], *, transcriber: Any, cache_dir: Path
                     ) -> tuple[PhraseResult, ...]:
    """Each language's lines spoken as trainee-only calls of `lines_per_call` lines, analysed by
    the real pipeline; each line's result is the analysed turn that overlaps it most."""
    import yaml

    from roleplay.analysis.phrases import check_candidates, find_phrases
    from roleplay.analysis.pipeline import analyse_audio
    from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
    from roleplay.recording.scripted import ScriptLine, place_lines, tracks

    spec = yaml.safe_load(SET_PATH.read_text(encoding="utf-8"))["phrase_set"]
    per_call, gap_s = int(spec["lines_per_call"]), float(spec["gap_s"])
    results: list[PhraseResult] = []
    # one language per call
    chunks = [chunk for language in sorted({x.language for x in lines})
              for same in [tuple(x for x in lines if x.language == language)]
              for chunk in (same[j:j + per_call] for j in range(0, len(same), per_call))]
    for chunk in chunks:
        language = chunk[0].language
        script = [ScriptLine("trainee", x.text, x.voice, rate_wpm=x.rate_wpm, gap_s=gap_s) for x in chunk]
        placed = place_lines(script, cache_dir=cache_dir)
        track = Audio(tracks(placed)["trainee"], ANALYSIS_RATE_HZ)
        analysis = analyse_audio(caller=None, trainee=track, language=language, transcriber=transcriber)
        for x, p in zip(chunk, placed, strict=True):
            turn = _turn_at(analysis, p)
            if turn is None or not turn.words:
                results.append(PhraseResult(x, "", frozenset(), frozenset(), ()))
                continue
            words = [(w.text, w.start_s, w.end_s) for w in turn.words]
            checked = check_candidates(words, track.slice_s(turn.start_s, turn.end_s), audio_start_s=turn.start_s,
                                       language=language, scorer=transcriber,
                                       min_closeness=TUNING_MIN_CLOSENESS) if x.split == "train" else ()
            results.append(PhraseResult(
                x, turn.text, frozenset(ph.category for ph in turn.phrases),
                frozenset(h.category for h in find_phrases(words, language=language)),
                tuple((c.candidate.category, c.log_ratio_per_token, c.candidate.closeness) for c in checked)))
    return tuple(results)


def phrase_counts(results: tuple[PhraseResult, ...], found: Any) -> Counter:
    """TP/FP/FN per category (`found(result)` gives the categories reported for a line), and the
    lines without the category in truth (for the false-positive rate)."""
    from roleplay.analysis.phrases import CATEGORIES

    k: Counter = Counter()
    for r in results:
        got = found(r)
        for cat in CATEGORIES:
            if cat in r.line.truth:
                k[("tp" if cat in got else "fn", cat)] += 1
            else:
                k[("without", cat)] += 1
                k[("fp", cat)] += cat in got
    return k


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


TUNING_MIN_CLOSENESS = 0.6  # the training split's candidates are scored down to this closeness


def best_threshold(results: tuple[PhraseResult, ...]) -> tuple[float, float, float]:
    """(closeness, log ratio per word, micro F1): the pair of thresholds with the best micro F1
    on these (training) lines, the stricter pair on a tie."""
    def f1_at(closeness: float, ratio: float) -> float:
        k = phrase_counts(results, lambda r: r.text_only | {c for c, v, near in r.ratios
                                                            if v >= ratio and near >= closeness})
        tp, fp, fn = (sum(v for (kind, _), v in k.items() if kind == x) for x in ("tp", "fp", "fn"))
        return _f1(tp, fp, fn) or 0.0

    grid = [(c / 100, r / 4) for c in range(60, 90, 2) for r in range(-16, 9)]
    return max(((c, r, f1_at(c, r)) for c, r in grid), key=lambda x: (x[2], x[0], x[1]))


def print_phrase_table(results: tuple[PhraseResult, ...], *, title: str) -> dict[str, str]:
    """Per language and category: counts, precision, recall, F1 and the false-positive rate,
    for the audio-checked phrases and (in brackets) the text matcher alone. Returns key figures."""
    from roleplay.analysis.phrases import CATEGORIES

    figures: dict[str, str] = {}
    print(f"\n== phrases, {title}")
    print("  lang category          lines  TP  FP  FN  prec  rec   F1    FP-rate   (text only: TP FP FN  F1)")
    for language in sorted({r.line.language for r in results}):
        mine = tuple(r for r in results if r.line.language == language)
        k, t = phrase_counts(mine, lambda r: r.found), phrase_counts(mine, lambda r: r.text_only)
        for cat in (*CATEGORIES, "all"):
            cats = CATEGORIES if cat == "all" else (cat,)
            tp, fp, fn, n_without = (sum(k[(x, c)] for c in cats) for x in ("tp", "fp", "fn", "without"))
            ttp, tfp, tfn = (sum(t[(x, c)] for c in cats) for x in ("tp", "fp", "fn"))
            fp_rate = fp / n_without if n_without else None
            print(f"  {language:4s} {cat:17s} {tp + fn:5d} {tp:3d} {fp:3d} {fn:3d}  {_fmt(_precision(tp, fp))}  "
                  f"{_fmt(_recall(tp, fn))}  {_fmt(_f1(tp, fp, fn))}  {_fmt(fp_rate, '.3f'):>6s}"
                  f"     ({ttp:3d} {tfp:3d} {tfn:3d}  {_fmt(_f1(ttp, tfp, tfn))})")
            if cat == "all":
                figures[f"phrase_{language}_f1"] = _fmt(_f1(tp, fp, fn))
                figures[f"phrase_{language}_fp_rate"] = _fmt(fp_rate, ".3f")
                figures[f"phrase_{language}_text_only_f1"] = _fmt(_f1(ttp, tfp, tfn))
    return figures


def score_phrase_set(*, transcriber: Any, cache_dir: Path, verbose: bool = True) -> dict[str, str]:
    """The phrase section of `roleplay bench accuracy`: run the lines, print each line (verbose),
    the threshold the training split prefers, and the tables of both splits."""
    from roleplay.analysis.phrases import CANDIDATE_MIN_CLOSENESS, MAX_CANDIDATES_PER_TURN, MIN_LOG_RATIO_PER_TOKEN

    lines = phrase_lines()
    print(f"\n== phrase lines: {len(lines)} "
          f"({', '.join(f'{lang}: {sum(x.language == lang for x in lines)}' for lang in ('nl', 'en'))})")
    results = run_phrase_lines(lines, transcriber=transcriber, cache_dir=cache_dir)
    if verbose:
        _print_phrase_lines(results)
    train = tuple(r for r in results if r.line.split == "train")
    closeness, ratio, f1 = best_threshold(train)
    print(f"\n  thresholds: shipped closeness >= {CANDIDATE_MIN_CLOSENESS:.2f} (the closest {MAX_CANDIDATES_PER_TURN} "
          f"per turn) and audio support >= {MIN_LOG_RATIO_PER_TOKEN:+.2f} nats per phrase word; the training split's "
          f"best: {closeness:.2f} and {ratio:+.2f} (micro F1 {f1:.2f})")
    print_phrase_table(train, title="training split")
    figures = print_phrase_table(tuple(r for r in results if r.line.split == "test"), title="test split (the figures)")
    figures.update(_score_neural_phrase_lines(transcriber=transcriber, cache_dir=cache_dir, verbose=verbose))
    return figures


def _score_neural_phrase_lines(*, transcriber: Any, cache_dir: Path, verbose: bool) -> dict[str, str]:
    """The same lines spoken by the neural voices (Kokoro, Piper), all held out; skipped, and said
    so, where a voice cannot speak (it would fall back to espeak-ng and measure that again)."""
    from roleplay.speech.voice import engine_missing, load_voice

    lines = phrase_lines(voice_key="neural_voices")
    missing = sorted({why for voice in {x.voice for x in lines} for why in [engine_missing(load_voice(voice))] if why})
    if missing:
        print(f"\n(phrase lines in neural voices skipped: {'; '.join(missing)})")
        return {}
    print(f"\n== phrase lines in neural voices: {len(lines)} "
          f"({', '.join(sorted({x.voice for x in lines}))}; no threshold chosen on them)")
    results = run_phrase_lines(lines, transcriber=transcriber, cache_dir=cache_dir)
    if verbose:
        _print_phrase_lines(results, only_wrong=True)
    figures = print_phrase_table(results, title="neural voices, all lines (held out)")
    return {f"neural_{key}": value for key, value in figures.items()}


def _print_phrase_lines(results: tuple[PhraseResult, ...], *, only_wrong: bool = False) -> None:
    for r in results:
        miss, extra = sorted(r.line.truth - r.found), sorted(r.found - r.line.truth)
        if miss or extra or not only_wrong:
            print(f"  {r.line.split:5s} {r.line.language} {','.join(sorted(r.line.truth)) or '-':32s} "
                  f"{'missed:' + ','.join(miss) if miss else ''}{' extra:' + ','.join(extra) if extra else ''}"
                  f"  {r.line.text!r} heard {r.heard!r}")
