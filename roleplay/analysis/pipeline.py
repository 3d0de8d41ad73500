"""Analysis of one call: turns, transcripts, rates, loudness, pitch, phrases and timing.

Input is the two parties' audio on one timeline (either may be missing); output is a frozen
`Analysis`. The recognizer is passed in, so logic tests can feed a fake one and everything
else runs for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from roleplay.analysis.phrases import abuse_terms, find_phrases, is_backchannel, verify_phrases
from roleplay.audio.clip import ANALYSIS_RATE_HZ, Audio
from roleplay.audio.crosstalk import DEFAULT_CROSSTALK, CrosstalkSettings, remove_crosstalk
from roleplay.core.errors import InputError
from roleplay.speech import prosody
from roleplay.speech.asr import LANGUAGES, TextScorer, Transcriber, Word
from roleplay.speech.syllables import count_syllables, count_word_syllables, syllable_nuclei_s
from roleplay.speech.vad import (
    SpeechSegment,
    quiet_segments,
    segments_from_probabilities,
    speech_probabilities,
    speech_segments,
)

SPEAKERS = ("caller", "trainee")


@dataclass(frozen=True)
class TimingSettings:
    turn_gap_s: float = 1.5  # a speaker's pause up to this stays inside one turn
    min_interruption_overlap_s: float = 0.5  # shorter overlaps are early starts, not take-overs
    max_backchannel_s: float = 1.5
    # a listener token in the other's pause (not over their speech) still counts as feedback when
    # the other stopped at most this long before it and takes up again after it (AMI dev00: 0.38 s;
    # a greeting answered 0.7 s after the other's 'Hello' is a turn)
    max_backchannel_gap_s: float = 0.5
    baseline_min_speech_s: float = 9.0  # the guide: a rate needs ~9 s or 40 syllables
    baseline_min_syllables: int = 40
    # transcript and acoustic counts further apart than this: the recognizer dropped or invented
    # words, so trust the acoustic count
    max_count_disagreement: float = 0.15
    min_word_probability: float = 0.5  # below this mean word probability a transcript is doubtful
    # coverage: the share of the turn's speaking time the recognised words account for. Whisper
    # stretches a word over speech it dropped ("I" lasting 2.9 s in a greeting heard as "How can I
    # help you?"), so a word accounts for at most this long per syllable (2 syll/s, slower than
    # slow speech)
    max_syllable_s: float = 0.5
    min_coverage: float = 0.7  # below this the recognizer dropped words: the transcript undercounts
    # an acoustic count giving an articulation rate outside this band is not trusted either
    acoustic_rate_band_syll_s: tuple[float, float] = (2.0, 8.0)
    # in a turn shorter than this one syllable is 13 to 33 % of its rate: when the two counts
    # disagree there, the recognizer misheard the words or the nuclei count missed one, and
    # neither can be told right (the guide: a rate needs about 40 syllables)
    min_rate_syllables: int = 8
    # pyin F0 of each turn (about 0.09 s CPU per turn): False in the live drill, where the caller's
    # reply waits for the turn's analysis and uses no pitch (the analysis after the call does)
    measure_pitch: bool = True
    # a word under this probability is the recognizer's guess ('call' heard as 'tutorial' at
    # p 0.07, 'maar' as 'marmen' at p 0.31 beside 'twee' at 0.07): when guesses hold more than
    # `max_guessed_share` of a transcript count, the count may be off by that much, and the
    # acoustic count is no check there (it found 12 and 13 nuclei in those 8 syllables)
    guess_word_probability: float = 0.1
    max_guessed_share: float = 0.2


@dataclass(frozen=True)
class Phrase:
    category: str
    text: str
    start_s: float
    heard: str


@dataclass(frozen=True)
class Turn:
    index: int
    speaker: str
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...]
    syllables: int
    syllables_transcript: int
    syllables_acoustic: int
    syllable_source: str  # "transcript" or "acoustic": which count `syllables` is
    pause_total_s: float
    speech_rate_syll_s: float | None
    articulation_rate_syll_s: float | None
    loudness_dbfs: float | None
    pitch_median_hz: float | None
    pitch_spread_st: float | None
    phrases: tuple[Phrase, ...]
    abuse: tuple[str, ...]
    response_latency_s: float | None = None
    rate_vs_baseline_pct: float | None = None
    loudness_vs_baseline_db: float | None = None
    pitch_vs_baseline_st: float | None = None
    coverage: float | None = None  # share of the speaking time the recognised words account for
    rate_excluded: str | None = None  # why the turn's rates are left out (neither count trusted)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Backchannel:
    speaker: str
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Interruption:
    by: str
    start_s: float
    overlap_s: float
    turn: int  # index of the interrupting turn
    interrupted_turn: int | None


@dataclass(frozen=True)
class Baseline:
    source: str  # "calibration", "first-turns" or "none"
    turns: tuple[int, ...]
    speech_s: float
    syllables: int
    articulation_rate_syll_s: float | None
    speech_rate_syll_s: float | None
    loudness_dbfs: float | None
    pitch_median_hz: float | None
    pitch_spread_st: float | None
    note: str


@dataclass(frozen=True)
class Analysis:
    language: str
    duration_s: float
    has_caller: bool
    has_trainee: bool
    turns: tuple[Turn, ...]
    backchannels: tuple[Backchannel, ...]
    interruptions: tuple[Interruption, ...]
    response_latencies_s: tuple[float, ...]
    baseline: Baseline
    anger: tuple[tuple[float, float], ...]  # (t_s, anger 0..10) from the call's event log
    call: dict[str, Any]
    warnings: tuple[str, ...]
    quality: dict[str, Any] = field(default_factory=dict)

    def turns_of(self, speaker: str) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.speaker == speaker)


@dataclass(frozen=True)
class _Segment:
    speaker: str
    start_s: float
    end_s: float
    words: tuple[Word, ...]
    quiet: bool = False  # found only by the second, level-lifted look (vad.quiet_segments)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words).strip()


def _assign_words(segments: tuple[SpeechSegment, ...], words: tuple[Word, ...], speaker: str,
                  quiet: frozenset[SpeechSegment] = frozenset()) -> list[_Segment]:
    buckets: list[list[Word]] = [[] for _ in segments]
    for w in words:
        mid = (w.start_s + w.end_s) / 2
        best = min(range(len(segments)),
                   key=lambda i: 0.0 if segments[i].start_s <= mid <= segments[i].end_s
                   else min(abs(mid - segments[i].start_s), abs(mid - segments[i].end_s)))
        buckets[best].append(w)
    return [_Segment(speaker, s.start_s, s.end_s, tuple(b), s in quiet)
            for s, b in zip(segments, buckets, strict=True)]


# hesitation sounds. Not "hm"/"hmm": alone over the other's speech that is the commonest continuer;
# before the speaker's own words it starts the turn by position (`_goes_on`), like any token
FILLERS = frozenset({"eh", "ehm", "uh", "uhm", "um", "umm", "er", "erm"})


def _words_of(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()


def is_filler(text: str) -> bool:
    """Only hesitation sounds ("uhm", "eh"): the start of a turn, never feedback on its own."""
    words = _words_of(text)
    return bool(words) and all(w in FILLERS for w in words)


def _goes_on(s: _Segment, own: list[_Segment], other: list[_Segment], settings: TimingSettings) -> bool:
    """The speaker goes on after `s` (within the turn gap) before the other party takes up again:
    `s` starts a turn ("Yes. ... I understand", "uhm ... Good evening"), it is no feedback."""
    nxt = next((o for o in own if o.start_s >= s.end_s), None)
    if nxt is None or nxt.start_s - s.end_s > settings.turn_gap_s:
        return False
    return not any(o.start_s < nxt.start_s and o.end_s > s.end_s + 0.3 for o in other)


def _feedback_position(s: _Segment, other: list[_Segment], settings: TimingSettings) -> bool:
    """While the other speaks (they were talking at its onset, or stopped under 0.3 s before, in
    speech longer than the token), or in their pause: they spoke under `max_backchannel_gap_s`
    before it and take up again within the turn gap after it."""
    duration = s.end_s - s.start_s
    if any(o.start_s < s.start_s < o.end_s + 0.3 and o.end_s - o.start_s > duration for o in other):
        return True
    before = any(0 <= s.start_s - o.end_s <= settings.max_backchannel_gap_s for o in other)
    after = any(0 <= o.start_s - s.end_s <= settings.turn_gap_s for o in other)
    return before and after


MAX_DOUBTFUL_TOKEN_WORDS = 2  # 'menu, right?' is feedback by position; a misheard sentence is not


def _token_words(s: _Segment, language: str, settings: TimingSettings) -> bool:
    """Whether the words allow feedback. Confident words: listener tokens only, not a filler alone.
    An untranscribed or low-confidence short token is judged on its own by its duration, never
    by its doubtful words: it is usually 'hm' or 'yes' ('Amen.', 'The end.', 'menu, right?' at
    p < 0.5), and taken as words it became a turn and a false interruption. Several doubtful words
    are speech all the same: a misheard 'Ja, maar luister nou even.' cutting in on the caller is
    an interruption, not feedback."""
    probability = float(np.mean([w.probability for w in s.words])) if s.words else 0.0
    if s.text and probability >= settings.min_word_probability:
        return is_backchannel(s.text, language=language) and not is_filler(s.text)
    # a doubtful 'ER.' may be 'mm' as well as 'uhm': its position decides
    return len(s.words) <= MAX_DOUBTFUL_TOKEN_WORDS


def _split_backchannels(segs: dict[str, list[_Segment]], language: str, settings: TimingSettings
                        ) -> tuple[dict[str, list[_Segment]], list[Backchannel]]:
    """A short listener token ('ja', 'hm', 'oké') while the other speaks is not a turn: decided by
    duration, position (`_feedback_position`, and the speaker does not go on) and words
    (`_token_words`). A quiet segment (found only by the second look) that is not feedback and does
    not start a turn is dropped: it may be breath or the other party's residue."""
    kept: dict[str, list[_Segment]] = {}
    backchannels: list[Backchannel] = []
    for speaker, own in segs.items():
        other = segs[_other(speaker)]
        kept[speaker] = []
        for s in own:
            goes_on = _goes_on(s, own, other, settings)
            if (s.end_s - s.start_s <= settings.max_backchannel_s and not goes_on
                    and _feedback_position(s, other, settings) and _token_words(s, language, settings)):
                backchannels.append(Backchannel(speaker, s.start_s, s.end_s, s.text))
            elif goes_on or not s.quiet:
                kept[speaker].append(s)
    return kept, sorted(backchannels, key=lambda b: b.start_s)


MIN_TAKEOVER_PAUSE_S = 0.1  # a silence the VAD bridges (under 0.3 s) but the other party can start in
VAD_FRAME_S = 0.032  # Silero's time step: an onset is known to about one frame


def _cut_tokens_after_takeover(segs: dict[str, list[_Segment]], tracks: dict[str, Audio], language: str,
                               settings: TimingSettings) -> dict[str, list[_Segment]]:
    """A speaker ends a turn, the other starts in the short silence after it, and the first speaker
    adds a token over them ('... from Chicago.' - 'Oh, I'm from Chicago too' with 'mm' 0.2 s after
    the first stopped): the VAD bridges that silence, so the token would lengthen the finished turn
    into the other's speech and make their answer an interruption. Cut such a segment in the
    silence when the other's onset lies in it and what follows is feedback by itself: no words, or
    confident listener tokens. Doubtful words there are more often the end of the speaker's own
    sentence (a leak call: '... de dr. Melon' - pause - 'Howe.' at p < 0.5, which the caller had
    cut into: an interruption)."""
    out: dict[str, list[_Segment]] = {}
    for speaker, own in segs.items():
        other = segs[_other(speaker)]
        out[speaker] = []
        for s in own:
            onsets = [o.start_s for o in other if s.start_s < o.start_s < s.end_s]
            pauses = prosody.pauses_s(tracks[speaker].slice_s(s.start_s, s.end_s),
                                      min_pause_s=MIN_TAKEOVER_PAUSE_S) if onsets else ()
            cut = next(((s.start_s + a, s.start_s + b) for a, b in reversed(pauses)
                        if any(s.start_s + a - VAD_FRAME_S <= t <= s.start_s + b + VAD_FRAME_S for t in onsets)),
                       None)
            if cut is not None:
                head = _Segment(speaker, s.start_s, cut[0], tuple(w for w in s.words if w.end_s <= cut[1]), s.quiet)
                tail = _Segment(speaker, cut[1], s.end_s, tuple(w for w in s.words if w.end_s > cut[1]), s.quiet)
                confident = not tail.words or min(w.probability for w in tail.words) >= settings.min_word_probability
                if (tail.end_s - tail.start_s <= settings.max_backchannel_s and confident
                        and _token_words(tail, language, settings) and _feedback_position(tail, other, settings)
                        and head.start_s < head.end_s):
                    out[speaker] += [head, tail]
                    continue
            out[speaker].append(s)
    return out


def _voice_activity(audio: Audio) -> tuple[tuple[SpeechSegment, ...], frozenset[SpeechSegment]]:
    """The VAD's segments plus the quiet ones of the second look (`vad.quiet_segments`); a quiet
    one under 0.3 s from an ordinary segment is joined to it (a soft onset: "uhm", "oh")."""
    probs = speech_probabilities(audio)
    loud = segments_from_probabilities(probs, duration_s=audio.duration_s)
    spans = [[s.start_s, s.end_s, False] for s in loud]
    spans += [[q.start_s, q.end_s, True] for q in quiet_segments(audio, loud, probs=probs)]
    merged: list[list[Any]] = []
    for a, b, quiet in sorted(spans, key=lambda x: x[0]):
        if merged and a - merged[-1][1] < 0.3:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = merged[-1][2] and quiet
        else:
            merged.append([a, b, quiet])
    segments = tuple(SpeechSegment(a, b) for a, b, _ in merged)
    return segments, frozenset(seg for seg, m in zip(segments, merged, strict=True) if m[2])


def _other(speaker: str) -> str:
    return "trainee" if speaker == "caller" else "caller"


def _group_turns(segs: dict[str, list[_Segment]], settings: TimingSettings) -> list[list[_Segment]]:
    """Join a speaker's segments into turns unless the gap is long or the other party spoke in it."""
    groups: list[list[_Segment]] = []
    for speaker, own in segs.items():
        other = segs[_other(speaker)]
        current: list[_Segment] = []
        for s in own:
            if current:
                gap_start = current[-1].end_s
                # the other party spoke in the gap (also when they started earlier and talked on)
                other_spoke = any(o.start_s < s.start_s and o.end_s > gap_start for o in other)
                if s.start_s - gap_start > settings.turn_gap_s or other_spoke:
                    groups.append(current)
                    current = []
            current.append(s)
        if current:
            groups.append(current)
    return sorted(groups, key=lambda g: g[0].start_s)


@dataclass(frozen=True)
class _Measured:
    syllables_acoustic: int
    pause_total_s: float
    loudness_dbfs: float | None
    pitch: prosody.Pitch


def _measure(audio: Audio, *, pitch: bool = True) -> _Measured:
    pauses = prosody.pauses_s(audio)
    return _Measured(
        syllables_acoustic=len(syllable_nuclei_s(audio)),
        pause_total_s=sum(b - a for a, b in pauses),
        loudness_dbfs=prosody.loudness_dbfs(audio),
        pitch=prosody.pitch(audio) if pitch else prosody.Pitch(None, None, 0.0),
    )


@dataclass(frozen=True)
class _Syllables:
    count: int
    source: str  # "transcript" or "acoustic"
    coverage: float | None  # None when the turn has no speaking time
    excluded: str | None  # why neither count is trusted


def _word_coverage(words: tuple[Word, ...], start_s: float, end_s: float, speaking_s: float,
                   language: str, settings: TimingSettings) -> float | None:
    """Share of the turn's speaking time that the recognised words account for: each word's span
    (within the turn), capped at its syllables x `max_syllable_s`, over duration less pauses."""
    if speaking_s <= 0:
        return None
    accounted = sum(min(max(0.0, min(w.end_s, end_s) - max(w.start_s, start_s)),
                        max(1, count_word_syllables(w.text.strip(), language=language)) * settings.max_syllable_s)
                    for w in words if w.text.strip())
    return min(1.0, accounted / speaking_s)


def _choose_syllables(words: tuple[Word, ...], n_text: int, n_acoustic: int, coverage: float | None,
                      speaking_s: float, settings: TimingSettings, *, language: str) -> _Syllables:
    """Which count the rates rest on (`_pick_count`). In a short turn whose counts disagree neither
    is trusted, nor a transcript count resting too much on guessed words: the chosen count stays as
    the best guess, but the turn's rates are left out."""
    choice = _pick_count(words, n_text, n_acoustic, coverage, speaking_s, settings)
    if choice.excluded is not None:
        return choice
    if max(n_text, n_acoustic) < settings.min_rate_syllables and n_text != n_acoustic:
        return replace(choice, excluded=f"a short turn whose counts disagree (transcript {n_text}, acoustic "
                                        f"{n_acoustic} syllables; under {settings.min_rate_syllables} one syllable "
                                        "is too much of the rate)")
    guessed = sum(count_word_syllables(w.text.strip(), language=language) for w in words
                  if w.probability < settings.guess_word_probability and w.text.strip())
    if choice.source == "transcript" and guessed > settings.max_guessed_share * n_text:
        return replace(choice, excluded=f"{guessed} of the {n_text} syllables are in words the recognizer guessed "
                                        f"(probability under {settings.guess_word_probability:g})")
    return choice


def _pick_count(words: tuple[Word, ...], n_text: int, n_acoustic: int, coverage: float | None,
                speaking_s: float, settings: TimingSettings) -> _Syllables:
    """The transcript, unless the recognizer dropped words (low coverage, and the acoustic count
    finds more syllables) or it is doubtful and disagrees with the acoustic count; then the acoustic
    count, if its rate is humanly plausible; else neither."""
    low, high = settings.acoustic_rate_band_syll_s
    acoustic_ok = low <= n_acoustic / max(speaking_s, 1e-3) <= high
    dropped = coverage is not None and coverage < settings.min_coverage and n_acoustic > n_text
    probability = float(np.mean([w.probability for w in words])) if words else 0.0
    disagree = abs(n_text - n_acoustic) > settings.max_count_disagreement * max(n_acoustic, 1)
    # a confident transcript that covers the speech beats the acoustic count (which misses
    # syllables in fast speech)
    doubtful = disagree and probability < settings.min_word_probability
    if not (dropped or doubtful):
        return _Syllables(n_text, "transcript", coverage, None)
    if acoustic_ok:
        return _Syllables(n_acoustic, "acoustic", coverage, None)
    why = (f"the words cover {100 * (coverage or 0):.0f} % of the speech" if dropped
           else f"the transcript is doubtful (mean word probability {probability:.2f})")
    return _Syllables(n_text, "transcript", coverage,
                      f"{why} and the acoustic count ({n_acoustic}) gives an implausible rate")


def _make_turn(index: int, group: list[_Segment], audio: Audio, language: str,
               settings: TimingSettings) -> Turn:
    speaker = group[0].speaker
    start_s, end_s = group[0].start_s, group[-1].end_s
    words = tuple(w for s in group for w in s.words)
    text = " ".join(w.text for w in words).strip()
    chunk = audio.slice_s(start_s, end_s)
    m = _measure(chunk, pitch=settings.measure_pitch)
    # words kept over the recognizer's no-speech guard are heard, not counted
    counted = tuple(w for w in words if not w.unsure)
    counted_text = " ".join(w.text for w in counted).strip()
    n_text = count_syllables(counted_text, language=language) if counted_text else 0
    duration = end_s - start_s
    speaking = max(duration - m.pause_total_s, 1e-3)
    coverage = _word_coverage(counted, start_s, end_s, duration - m.pause_total_s, language, settings)
    choice = _choose_syllables(counted, n_text, m.syllables_acoustic, coverage, speaking, settings,
                               language=language)
    syllables = choice.count
    rated = bool(syllables) and choice.excluded is None
    hits = find_phrases([(w.text, w.start_s, w.end_s) for w in words], language=language) if words else ()
    return Turn(
        index=index, speaker=speaker, start_s=round(start_s, 3), end_s=round(end_s, 3), text=text,
        words=words, syllables=syllables, syllables_transcript=n_text,
        syllables_acoustic=m.syllables_acoustic,
        syllable_source=choice.source,
        pause_total_s=round(m.pause_total_s, 3),
        speech_rate_syll_s=syllables / duration if rated and duration > 0 else None,
        articulation_rate_syll_s=syllables / speaking if rated else None,
        loudness_dbfs=m.loudness_dbfs,
        pitch_median_hz=m.pitch.median_hz, pitch_spread_st=m.pitch.spread_st,
        phrases=tuple(Phrase(h.category, h.text, round(h.start_s, 3), h.matched) for h in hits),
        abuse=abuse_terms(text, language=language) if speaker == "caller" and text else (),
        coverage=None if choice.coverage is None else round(choice.coverage, 3),
        rate_excluded=choice.excluded,
    )


def _interruptions(turns: list[Turn], segs: dict[str, list[_Segment]], settings: TimingSettings
                   ) -> list[Interruption]:
    out: list[Interruption] = []
    previous: dict[str, Turn] = {}  # each speaker's turn before this one
    # each speaker's last cut-in (counted or still too short to count) and the turn it got to
    last_cut_in: dict[str, tuple[Interruption, int]] = {}
    for t in turns:
        before, previous[t.speaker] = previous.get(t.speaker), t
        other_segs = segs[_other(t.speaker)]
        own_segs = [s for s in segs[t.speaker] if t.start_s - 1e-6 <= s.start_s and s.end_s <= t.end_s + 1e-6]
        # the other party must already be speaking when this turn starts
        active = [s for s in other_segs if s.start_s < t.start_s < s.end_s]
        if not active:
            continue
        # simultaneous speech from the onset until the interrupted stretch of speech ends
        talk = active[0]
        overlap = sum(max(0.0, min(own.end_s, talk.end_s) - max(own.start_s, t.start_s)) for own in own_segs)
        victim = next((u.index for u in turns if u.speaker != t.speaker and u.start_s <= t.start_s <= u.end_s),
                      None)
        # resuming after a short pause while the same turn of the other party goes on continues the
        # cut-in, counted or not ('Twenty minutes?' - pause - 'That is far too long!' over the same
        # sentence): one interruption from the first onset, the overlaps added up
        first, reached = last_cut_in.pop(t.speaker, (None, -1))
        resumes = (before is not None and first is not None and reached == before.index and victim is not None
                   and first.interrupted_turn == victim and t.start_s - before.end_s <= settings.turn_gap_s)
        if first is not None and resumes:
            cut_in = replace(first, overlap_s=round(first.overlap_s + overlap, 3))
        else:
            cut_in = Interruption(t.speaker, t.start_s, round(overlap, 3), t.index, victim)
        last_cut_in[t.speaker] = (cut_in, t.index)
        if resumes and first in out:
            out[out.index(first)] = cut_in
        elif cut_in.overlap_s >= settings.min_interruption_overlap_s:
            out.append(cut_in)
    return out


def _latencies(turns: list[Turn]) -> dict[int, float]:
    """For each caller turn, the trainee's answer: the first trainee turn that starts after the
    caller began, before the caller's next turn, and is still going when the caller stops (a cut-in
    that the caller talked over is an interruption, not the answer). Negative when it overlaps."""
    out: dict[int, float] = {}
    caller_turns = [t for t in turns if t.speaker == "caller"]
    for i, c in enumerate(caller_turns):
        nxt = caller_turns[i + 1].start_s if i + 1 < len(caller_turns) else float("inf")
        answer = next((t for t in turns if t.speaker == "trainee" and c.start_s < t.start_s < nxt
                       and t.end_s > c.end_s), None)
        if answer is not None and answer.index not in out:
            out[answer.index] = round(answer.start_s - c.end_s, 3)
    return out


def _baseline(turns: list[Turn], calibration: Audio | None, language: str, settings: TimingSettings,
              transcriber: Transcriber | None) -> Baseline:
    """The trainee's normal rate, loudness and pitch. Measured with the same estimators as the
    turns (not from a known text), so that their biases cancel in the relative figures."""
    if calibration is not None:
        cal = calibration.resampled(ANALYSIS_RATE_HZ)
        segs = speech_segments(cal)
        if segs:
            words = transcriber.transcribe(cal, segs, language=language) if transcriber else ()
            group = [_Segment("trainee", segs[0].start_s, segs[-1].end_s, words)]
            t = _make_turn(-1, group, cal, language, settings)
            return Baseline("calibration", (), round(t.duration_s, 3), t.syllables, t.articulation_rate_syll_s,
                            t.speech_rate_syll_s, t.loudness_dbfs, t.pitch_median_hz, t.pitch_spread_st,
                            "from the calibration recording")
    trainee = [t for t in turns if t.speaker == "trainee" and t.syllables > 0 and t.rate_excluded is None]
    chosen: list[Turn] = []
    for t in trainee:
        chosen.append(t)
        speech = sum(c.duration_s - c.pause_total_s for c in chosen)
        syllables = sum(c.syllables for c in chosen)
        if speech >= settings.baseline_min_speech_s or syllables >= settings.baseline_min_syllables:
            break
    # never let the baseline swallow more than half of the trainee's turns
    chosen = chosen[: max(1, len(trainee) // 2)] if len(trainee) > 1 else chosen
    if not chosen:
        return Baseline("none", (), 0.0, 0, None, None, None, None, None, "the trainee did not speak")
    speech_s = sum(c.duration_s - c.pause_total_s for c in chosen)
    syll = sum(c.syllables for c in chosen)
    louds = [c.loudness_dbfs for c in chosen if c.loudness_dbfs is not None]
    pitches = [c.pitch_median_hz for c in chosen if c.pitch_median_hz is not None]
    spreads = [c.pitch_spread_st for c in chosen if c.pitch_spread_st is not None]
    short = speech_s < settings.baseline_min_speech_s and syll < settings.baseline_min_syllables
    note = "from the trainee's first turns" + (
        f" (only {speech_s:.1f} s of speech: below the 9 s a stable rate needs)" if short else "")
    return Baseline(
        "first-turns", tuple(c.index for c in chosen), round(speech_s, 3), syll,
        syll / speech_s if speech_s > 0 else None,
        syll / sum(c.duration_s for c in chosen),
        float(np.median(louds)) if louds else None,
        float(np.median(pitches)) if pitches else None,
        float(np.median(spreads)) if spreads else None, note,
    )


def _relative(t: Turn, b: Baseline) -> Turn:
    if t.speaker != "trainee":
        return t
    rate = (100.0 * (t.articulation_rate_syll_s / b.articulation_rate_syll_s - 1.0)
            if t.articulation_rate_syll_s and b.articulation_rate_syll_s else None)
    loud = (t.loudness_dbfs - b.loudness_dbfs
            if t.loudness_dbfs is not None and b.loudness_dbfs is not None else None)
    pitch_st = (prosody.semitones(t.pitch_median_hz, b.pitch_median_hz)
                if t.pitch_median_hz and b.pitch_median_hz else None)
    return replace(t, rate_vs_baseline_pct=rate, loudness_vs_baseline_db=loud, pitch_vs_baseline_st=pitch_st)


def _anger_from_events(events: tuple[Mapping[str, Any], ...]) -> tuple[tuple[float, float], ...]:
    return tuple((float(e["t_s"]), float(e["anger"])) for e in events
                 if e.get("type") in ("anger", "call-start") and isinstance(e.get("anger"), int | float))


def _verified_phrases(turns: list[Turn], tracks: dict[str, Audio], language: str, transcriber: Transcriber,
                      step: Callable[[str], None]) -> list[Turn]:
    """The trainee's phrases with the candidates the audio supports (phrases.verify_phrases).
    Only here, in the whole-call analysis: not per turn in a live call (`analyse_turn`), where the
    extra decoder passes would add to the caller's reply delay."""
    if not isinstance(transcriber, TextScorer) or "trainee" not in tracks:
        return turns
    step("checking phrases against the audio")
    out = []
    for turn in turns:
        if turn.speaker != "trainee" or not turn.words:
            out.append(turn)
            continue
        hits = verify_phrases([(w.text, w.start_s, w.end_s) for w in turn.words],
                              tracks["trainee"].slice_s(turn.start_s, turn.end_s), audio_start_s=turn.start_s,
                              language=language, scorer=transcriber)
        out.append(replace(turn, phrases=tuple(Phrase(h.category, h.text, round(h.start_s, 3), h.matched)
                                               for h in hits)))
    return out


def _check_finite(audio: Audio | None, what: str) -> None:
    """NaN or inf would run silently through resampling, VAD and Whisper into garbage figures."""
    if audio is not None and not np.all(np.isfinite(audio.samples)):
        raise InputError(f"{what} audio contains NaN or infinite samples; expected finite audio")


def analyse_audio(
    *,
    caller: Audio | None,
    trainee: Audio | None,
    language: str,
    transcriber: Transcriber,
    calibration: Audio | None = None,
    events: tuple[Mapping[str, Any], ...] = (),  # a call directory's events, as JSON objects
    call: dict[str, Any] | None = None,
    settings: TimingSettings = TimingSettings(),
    progress: Callable[[str], None] | None = None,
    crosstalk: CrosstalkSettings | None = DEFAULT_CROSSTALK,  # None: the tracks as given
) -> Analysis:
    if language not in LANGUAGES:
        raise InputError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    if caller is None and trainee is None:
        raise InputError("nothing to analyse: give the trainee's audio, the caller's, or both")
    step = progress or (lambda _msg: None)
    for speaker, given in (("caller", caller), ("trainee", trainee), ("calibration", calibration)):
        _check_finite(given, speaker)
    tracks = {s: a.resampled(ANALYSIS_RATE_HZ) for s, a in (("caller", caller), ("trainee", trainee))
              if a is not None}
    duration_s = max(a.duration_s for a in tracks.values())
    warnings: list[str] = []
    if crosstalk is not None:  # before VAD: a leaked copy of the other party is never a turn
        tracks, leaks = remove_crosstalk(tracks, settings=crosstalk)
        warnings += [leak.warning() for leak in leaks]
    for speaker, original in (("caller", caller), ("trainee", trainee)):
        if original is not None and original.rate_hz < ANALYSIS_RATE_HZ:  # upsampling adds no detail
            warnings.append(f"{speaker} audio is sampled at {original.rate_hz} Hz (under {ANALYSIS_RATE_HZ}): "
                            "telephone-band speech is recognised less reliably")
    quality: dict[str, Any] = {}
    segs: dict[str, list[_Segment]] = {"caller": [], "trainee": []}
    for speaker, audio in tracks.items():
        step(f"voice activity ({speaker})")
        vad, quiet = _voice_activity(audio)
        step(f"speech recognition ({speaker})")
        words = transcriber.transcribe(audio, vad, language=language)
        segs[speaker] = _assign_words(vad, words, speaker, quiet) if vad else []
        peak = float(np.max(np.abs(audio.samples))) if len(audio.samples) else 0.0
        clipped = prosody.clipped_fraction(audio)
        quality[speaker] = {"peak_dbfs": round(20 * np.log10(max(peak, 1e-9)), 1),
                            "clipped_fraction": round(clipped, 5), "speech_s": round(sum(v.duration_s for v in vad), 2)}
        if clipped > 0.001:
            warnings.append(f"{speaker} audio clips ({100 * clipped:.2f} % of samples at full scale): "
                            "loudness is underestimated; lower the input gain")
        if vad and peak < 10 ** (-40 / 20):
            warnings.append(f"{speaker} audio is very quiet (peak {20 * np.log10(max(peak, 1e-9)):.0f} dBFS)")
    if not segs["caller"] and not segs["trainee"]:
        raise InputError("no speech found in the recording (silence or noise only)")
    segs = _cut_tokens_after_takeover(segs, tracks, language, settings)
    kept, backchannels = _split_backchannels(segs, language, settings)
    step("measuring turns")
    groups = _group_turns(kept, settings)
    turns = [_make_turn(i, g, tracks[g[0].speaker], language, settings) for i, g in enumerate(groups)]
    turns = _verified_phrases(turns, tracks, language, transcriber, step)
    interruptions = _interruptions(turns, kept, settings)
    latency_by_turn = _latencies(turns)
    turns = [replace(t, response_latency_s=latency_by_turn.get(t.index)) for t in turns]
    baseline = _baseline(turns, calibration, language, settings, transcriber)
    turns = [_relative(t, baseline) for t in turns]
    if "trainee" in tracks and baseline.source == "first-turns":
        warnings.append("baseline taken from the trainee's first turns; a calibration recording is more reliable")
    return Analysis(
        language=language, duration_s=round(duration_s, 3), has_caller="caller" in tracks,
        has_trainee="trainee" in tracks, turns=tuple(turns), backchannels=tuple(backchannels),
        interruptions=tuple(interruptions),
        response_latencies_s=tuple(latency_by_turn[k] for k in sorted(latency_by_turn)),
        baseline=baseline, anger=_anger_from_events(events), call=dict(call or {}),
        warnings=tuple(warnings), quality=quality,
    )


# ---------------------------------------------------------------------------------------------
# One turn at a time, as a live call (or the simulated one in roleplay.session.demo) measures it


def calibration_baseline(calibration: Audio, *, language: str, transcriber: Transcriber | None,
                         settings: TimingSettings = TimingSettings()) -> Baseline:
    """The trainee's baseline from a calibration recording, exactly as `analyse_audio` takes it."""
    return _baseline([], calibration, language, settings, transcriber)


def analyse_turn(*, audio: Audio, speaker: str, language: str, transcriber: Transcriber,
                 baseline: Baseline | None = None, offset_s: float = 0.0,
                 settings: TimingSettings = TimingSettings()) -> Turn | None:
    """One party's stretch of audio measured as one turn: VAD, recognizer, syllables, rates,
    loudness, pitch and phrases, relative to `baseline` (a trainee's). None when nobody spoke.
    Times are on the call's timeline: `offset_s` is where `audio` starts."""
    if speaker not in SPEAKERS:
        raise InputError(f"unknown speaker {speaker!r}; expected one of {', '.join(SPEAKERS)}")
    _check_finite(audio, speaker)
    audio = audio.resampled(ANALYSIS_RATE_HZ)
    vad = speech_segments(audio)
    if not vad:
        return None
    words = transcriber.transcribe(audio, vad, language=language)
    turn = _make_turn(0, _assign_words(vad, words, speaker), audio, language, settings)
    if baseline is not None and speaker == "trainee":
        turn = _relative(turn, baseline)
    if not offset_s:
        return turn

    def shift(t: float) -> float:
        return round(t + offset_s, 3)

    return replace(
        turn, start_s=shift(turn.start_s), end_s=shift(turn.end_s),
        words=tuple(replace(w, start_s=w.start_s + offset_s, end_s=w.end_s + offset_s)
                    for w in turn.words),
        phrases=tuple(replace(p, start_s=shift(p.start_s)) for p in turn.phrases),
    )
