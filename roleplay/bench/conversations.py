"""Real English conversations scored against hand-checked speaker timings (issue 11, section 3):
the "real conversations" section of `roleplay bench accuracy`.

The conversations (../shared/speech, listed in real_conversations.yaml) are mono mixes; each party's
track is the mix gated by that party's speech spans, and the analysis runs on the two tracks like
on any two-party call (without cross-talk removal: where both speak, both tracks carry both voices).
Scored: backchannels found (recall, and precision), interruptions (precision, recall) and the
response latency of each reference answer.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roleplay.audio.clip import Audio, load_audio
from roleplay.core.files import read_yaml

REFERENCE_PATH = Path(__file__).with_name("real_conversations.yaml")
MATCH_S = 0.3  # a found backchannel or interruption matches a reference one this close
ANSWER_MATCH_S = 0.5  # the analysed turn that starts this close to a reference answer is that answer
GATE_PAD_S = 0.05
GATE_FADE_S = 0.01  # raised-cosine edges: a hard gate would click


@dataclass(frozen=True)
class Event:
    kind: str  # "backchannel", "interruption" or "answer"
    by: str  # "caller" or "trainee"
    start_s: float
    after_s: float | None = None  # for an answer: where the other party's speech ended


@dataclass(frozen=True)
class Conversation:
    id: str
    audio: str  # relative to ../shared/speech
    spans_s: dict[str, tuple[tuple[float, float], ...]]  # party -> speech spans
    events: tuple[Event, ...]


def load_conversations(path: Path = REFERENCE_PATH) -> tuple[Conversation, ...]:
    data: Any = read_yaml(path)
    return tuple(
        Conversation(c["id"], c["audio"],
                     {p: tuple((float(a), float(b)) for a, b in spans) for p, spans in c["spans_s"].items()},
                     tuple(Event(e["kind"], e["by"], float(e["start_s"]), e.get("after_s")) for e in c["events"]))
        for c in data["conversations"])


def party_tracks(mix: Audio, spans_s: dict[str, tuple[tuple[float, float], ...]], *,
                 pad_s: float = GATE_PAD_S) -> dict[str, Audio]:
    """Each party's track: the mix where that party speaks (spans padded by `pad_s`, but never into
    the other party's speech: a pad there would lengthen every overlap by up to 2 x `pad_s` and
    make a 0.46 s overlap an interruption), silence elsewhere, with short faded edges."""
    t = np.arange(len(mix.samples)) / mix.rate_hz
    out = {}
    for party, spans in spans_s.items():
        others = [x for p, other in spans_s.items() if p != party for x in other]
        gain = np.zeros(len(t))
        for a, b in spans:
            lo = max([a - pad_s] + [min(a, d) for c, d in others if c < a and d > a - pad_s])
            hi = min([b + pad_s] + [max(b, c) for c, d in others if d > b and c < b + pad_s])
            ramp = np.clip(np.minimum(t - lo, hi - t) / GATE_FADE_S, 0.0, 1.0)
            gain = np.maximum(gain, 0.5 - 0.5 * np.cos(np.pi * ramp))
        out[party] = Audio((mix.samples * gain).astype(np.float32), mix.rate_hz)
    return out


@dataclass(frozen=True)
class ConversationScore:
    counts: Counter
    latency_err_s: tuple[float, ...]
    lines: tuple[str, ...]  # what was found and missed, for the report


def score_analysis(conv: Conversation, analysis: Any) -> ConversationScore:
    """The analysis of one conversation against its reference events."""
    k: Counter = Counter()
    lines: list[str] = []
    found_bc = [(b.speaker, b.start_s) for b in analysis.backchannels]
    found_int = [(i.by, i.start_s) for i in analysis.interruptions]
    for kind, found in (("backchannel", found_bc), ("interruption", found_int)):
        ref = [e for e in conv.events if e.kind == kind]
        for e in ref:
            hit = any(by == e.by and abs(t - e.start_s) <= MATCH_S for by, t in found)
            k[f"{kind}_{'tp' if hit else 'fn'}"] += 1
            lines.append(f"  {kind} by {e.by} at {e.start_s:.2f} s: {'found' if hit else 'MISSED'}")
        for by, t in found:
            if not any(e.by == by and abs(t - e.start_s) <= MATCH_S for e in ref):
                k[f"{kind}_fp"] += 1
                lines.append(f"  {kind} by {by} at {t:.2f} s: not in the reference")
    errors = []
    for e in (e for e in conv.events if e.kind == "answer"):
        turn = min((t for t in analysis.turns if t.speaker == e.by and abs(t.start_s - e.start_s) <= ANSWER_MATCH_S),
                   key=lambda t: abs(t.start_s - e.start_s), default=None)
        want = e.start_s - (e.after_s or 0.0)
        got = None if turn is None else turn.response_latency_s
        if got is None:
            k["answer_missed"] += 1
            lines.append(f"  answer by {e.by} at {e.start_s:.2f} s (latency {want:.2f} s): no latency measured")
            continue
        errors.append(abs(got - want))
        lines.append(f"  answer by {e.by} at {e.start_s:.2f} s: latency {got:.2f} s (reference {want:.2f} s)")
    return ConversationScore(k, tuple(errors), tuple(lines))


Analyse = Callable[..., Any]  # roleplay.analysis.pipeline.analyse_audio or a stand-in with its keywords


def run_conversations(speech_dir: Path, *, transcriber: Any, analyse: Analyse | None = None,
                      path: Path = REFERENCE_PATH, verbose: bool = True) -> dict[str, str]:
    """Analyse and score every reference conversation present; the figures as key=value strings."""
    from roleplay.analysis.pipeline import analyse_audio

    run = analyse or analyse_audio
    total: Counter = Counter()
    errors: list[float] = []
    for conv in load_conversations(path):
        wav = speech_dir / conv.audio
        if not wav.exists():
            print(f"  ({conv.id} skipped: {wav} is not present)")
            continue
        tracks = party_tracks(load_audio(wav), conv.spans_s)
        analysis = run(caller=tracks["caller"], trainee=tracks["trainee"], language="en",
                           transcriber=transcriber, crosstalk=None)
        score = score_analysis(conv, analysis)
        total.update(score.counts)
        errors += score.latency_err_s
        if verbose:
            print(f"  {conv.id}:")
            print("\n".join(score.lines))
    return real_figures(total, errors)


def real_figures(k: Counter, latency_err_s: list[float]) -> dict[str, str]:
    def ratio(a: int, b: int) -> str:
        return f"{a / (a + b):.2f}" if a + b else "n/a"

    return {
        "real_backchannel_recall": ratio(k["backchannel_tp"], k["backchannel_fn"]),
        "real_backchannel_precision": ratio(k["backchannel_tp"], k["backchannel_fp"]),
        "real_interruption_precision": ratio(k["interruption_tp"], k["interruption_fp"]),
        "real_interruption_recall": ratio(k["interruption_tp"], k["interruption_fn"]),
        "real_latency_err_s": f"{statistics.median(latency_err_s):.3f}" if latency_err_s else "n/a",
        "real_latency_max_err_s": f"{max(latency_err_s):.3f}" if latency_err_s else "n/a",
        "real_answers_unmeasured": str(k["answer_missed"]),
    }
