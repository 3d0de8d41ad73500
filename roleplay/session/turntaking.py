"""Turn-taking of a live call: an explicit state machine on voice activity, thresholds in seconds.

Pure logic. It is fed one Silero frame at a time (32 ms): the trainee's speech probability (after
the echo of the caller has been suppressed) and whether the caller's audio is audible in that
frame (playback state, aligned to the microphone by the measured lag). It answers with events:

    trainee-start    the trainee started speaking (start_s = first speech frame)
    end-of-turn      the trainee stopped long enough: the caller's turn (start_s, end_s). How long
                     is `end_of_turn_wait`'s decision for the current pause (the owner sets it as
                     the words and the pitch of the turn so far become known, `end_wait`);
                     without one, `end_of_turn_s`
    interruption     trainee speech that started during caller playback and lasted
                     `interrupt_min_s` (start_s = its first frame): the caller stops or talks on
    backchannel      trainee speech during caller playback that ended sooner ("ja", "hm")
    barge-in         the trainee has talked `barge_in_after_s` without a pause long enough to end
                     the turn, and the caller (very angry) may talk over them; the owner sets
                     `barge_in_after_s` from the caller's state (None: no barge-in)
    no-answer        the caller finished and the trainee has said nothing for `no_answer_s`

States:

    WAITING  --speech-->  TRAINEE  --silence >= the pause's wait-->  (end-of-turn) WAITING
    CALLER   --speech-->  OVERLAP  --speech >= interrupt_min_s-->  (interruption) TRAINEE
                          OVERLAP  --silence before that-->  (backchannel) CALLER

The caller playing is an input, not a state the machine decides: the owner starts and stops the
caller's audio; an end-of-turn is held back while the caller is audible and given when it stops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import numpy as np

from roleplay.speech.vad import FRAME_S

AWAIT_CALLER_MAX_S = 2.0  # a started caller reply not audible after this is given up on

# Last words after which a speaker goes on: conjunctions, articles, prepositions and fillers. A
# pause after one is a hesitation, not the end of the turn ("en ...", "want ...", "because ...").
TRAILING_WORDS = {
    "nl": frozenset("en want maar dus of omdat als dat die de het een met van voor naar om te bij in "
                    "op aan zodat wanneer toen terwijl nou eh ehm euh uh uhm hm mijn uw ik u we".split()),
    "en": frozenset("and but because so or the a an to of with for if that which who when then my "
                    "your i we is are was uh um er erm hmm well like".split()),
}
_SENTENCE_END = re.compile(r"[.!?]['\")\]]*$")


class State(Enum):
    WAITING = "waiting"  # nobody speaks; the caller has had its turn (or not yet started)
    TRAINEE = "trainee"  # the trainee has the turn (speaking or pausing within it)
    CALLER = "caller"  # the caller's audio is playing, the trainee silent
    OVERLAP = "overlap"  # the trainee speaks over the caller, not yet long enough to take over


@dataclass(frozen=True)
class TurnSettings:
    onset_threshold: float = 0.5  # a frame at or above this is speech
    offset_threshold: float = 0.35  # once speaking, a frame below this is silence
    end_of_turn_s: float = 0.7  # a silence this long after the trainee ends the turn
    interrupt_min_s: float = 0.5  # the guide: 0.5 s minimum take-over
    backchannel_max_s: float = 1.0  # the guide: 1 s backchannel boundary (for the text check)
    no_answer_s: float = 6.0  # the trainee leaves the caller hanging this long
    frame_s: float = FRAME_S
    # The end of a turn from its words and pitch (`end_of_turn_wait`); False: always end_of_turn_s.
    adaptive: bool = True
    complete_s: float = 0.3  # a question
    # a sentence ending in falling pitch: a speaker may pause this long between two sentences of
    # one turn (0.48 s to the VAD in the bench's "U heeft gelijk dat het lang duurt. | Dat spijt
    # me.", answered at 0.3 s once the words came that soon); espeak-ng ends every full stop with
    # the same fall, so the pitch cannot tell that pause from the end
    statement_s: float = 0.5
    sentence_s: float = 0.5  # a sentence without measured pitch, or falling words without a full stop
    continuing_s: float = 1.0  # the pitch stays level or rises: the speaker may go on
    trailing_s: float = 1.2  # the words trail off ("en ...", a filler): a hesitation, wait longer
    # the end of the turn this many semitones below what came before: falling. -0.5, not -1.0: of
    # 60 espeak-ng statements from the scenarios 54 fall (47 at -1.0), of the same 60 cut at a
    # trailing "maar,"/"want,"/... 2 (1), and all 19 human and neural read sentences in
    # ../shared/speech (18: "De plant van de aardappel is giftig" ends -0.56)
    falling_st: float = -0.5
    rising_st: float = 1.5  # ... this many above: rising (a list or a continuation goes on)

    def __post_init__(self) -> None:
        if not 0.0 < self.offset_threshold <= self.onset_threshold < 1.0:
            raise ValueError("expected 0 < offset_threshold <= onset_threshold < 1")
        for name in ("end_of_turn_s", "interrupt_min_s", "backchannel_max_s", "no_answer_s",
                     "frame_s", "complete_s", "statement_s", "sentence_s", "continuing_s",
                     "trailing_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class TurnEvent:
    kind: str  # see the module docstring
    t_s: float  # when the machine decided (end of the frame that tipped it)
    start_s: float | None = None
    end_s: float | None = None

    @property
    def duration_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s


@dataclass(frozen=True)
class EndCues:
    """What is known of a turn in a pause: the words recognised so far (None: not yet) and the
    pitch movement at its end (`final_pitch_st`; None: not measurable)."""

    text: str | None
    final_pitch_st: float | None
    language: str


@dataclass(frozen=True)
class EndWait:
    """How long a pause must last to end the turn, and why (logged with the reply delay)."""

    wait_s: float
    reason: str


def end_of_turn_wait(cues: EndCues, settings: TurnSettings) -> EndWait:
    """The silence that ends the turn, from its words and the voice. The words decide first: a
    question ends it soon, words that trail off ("maar ...", "and ...", a filler) make the caller
    wait longer. The recognizer ends nearly every stretch with a full stop, also one cut at a
    comma, so a sentence ends the turn soon only when its pitch falls; a level or rising end may go
    on (`continuing_s`). No words yet: the fixed `end_of_turn_s`, longer if the pitch says the
    speaker may go on (the caller needs the words to answer, so ending sooner gains nothing)."""
    s = settings
    if not s.adaptive:
        return EndWait(s.end_of_turn_s, "fixed")
    pitch = cues.final_pitch_st
    tone = ("falling" if pitch is not None and pitch <= s.falling_st
            else "rising" if pitch is not None and pitch >= s.rising_st else "level")
    going_on = tone != "falling" and pitch is not None
    if cues.text is None:
        if going_on:
            return EndWait(max(s.end_of_turn_s, s.continuing_s), f"no words yet, {tone} pitch")
        return EndWait(s.end_of_turn_s, "no words yet")
    text = cues.text.strip()
    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words:
        return EndWait(s.end_of_turn_s, "no words heard")
    last = words[-1]
    if text.endswith(("...", "…", ",", "-", ";", ":")) or last in TRAILING_WORDS.get(cues.language, ()):
        return EndWait(s.trailing_s, f"trails off: '{last} ...'")
    if text.endswith("?"):
        return EndWait(s.complete_s, "question")
    if going_on:
        return EndWait(max(s.end_of_turn_s, s.continuing_s), f"words, {tone} pitch")
    if not _SENTENCE_END.search(text):
        return EndWait(s.sentence_s if tone == "falling" else s.end_of_turn_s,
                       f"no sentence end, {tone if pitch is not None else 'no'} pitch")
    if tone == "falling":
        return EndWait(s.statement_s, "sentence, falling pitch")
    return EndWait(s.sentence_s, "sentence, no pitch")


# The waits until 2026-11-30, when the words came 0.5-0.65 s into a pause anyway: a sentence
# with falling pitch 0.3 s (`roleplay bench latency` compares them as "before")
WAITS_BEFORE = TurnSettings(statement_s=0.3, sentence_s=0.45)


PITCH_FRAME = 640  # 40 ms at 16 kHz
PITCH_HOP = 160  # 10 ms
PITCH_MIN_HZ, PITCH_MAX_HZ = 70.0, 400.0
FINAL_S = 0.2  # the end of the turn whose pitch is compared with what came before
# The speech before a pause whose pitch movement is measured. Not longer: at 1.5 s more statements
# fall (espeak-ng, 60 lines of the scenarios: 53 against 47) but so do 10 of the 60 clauses cut
# at "maar,"/"want,"/"en,"/"dus," (1 at 1.0 s), whose trailing word the recognizer may drop.
PITCH_WINDOW_S = 1.0


def final_pitch_st(samples: np.ndarray, rate_hz: int) -> float | None:
    """The pitch of the last FINAL_S of voiced speech in `samples` (the end of a turn, about the
    last second) against the median before it, in semitones; None without enough voiced frames.
    Normalised autocorrelation per 40 ms frame: a few ms of numpy for a second of audio, where
    pyin would take 40 ms and its first call seconds (the guide)."""
    x = np.asarray(samples, np.float64)
    n = (len(x) - PITCH_FRAME) // PITCH_HOP + 1
    if n < 8:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, PITCH_FRAME)[::PITCH_HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    spectrum = np.fft.rfft(frames * np.hanning(PITCH_FRAME), 2 * PITCH_FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :PITCH_FRAME]
    lo, hi = int(rate_hz / PITCH_MAX_HZ), int(rate_hz / PITCH_MIN_HZ)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    strength = ac[np.arange(n), lag] / np.maximum(ac[:, 0], 1e-12)
    voiced = (strength > 0.45) & (energy > 0.1 * energy.max())
    idx = np.flatnonzero(voiced)
    if len(idx) < 6:
        return None
    f0 = rate_hz / lag[idx].astype(np.float64)
    final = idx >= idx[-1] - int(FINAL_S * rate_hz / PITCH_HOP)
    if final.sum() < 3 or (~final).sum() < 3:
        return None
    return float(12.0 * np.log2(np.median(f0[final]) / np.median(f0[~final])))


class TurnTaker:
    """Feed `step()` one frame at a time, in order; it returns the events of that frame."""

    def __init__(self, settings: TurnSettings = TurnSettings()) -> None:
        self.settings = settings
        self.state = State.WAITING
        self.barge_in_after_s: float | None = None
        self.end_wait: EndWait | None = None  # the current pause's; the owner sets it, speech clears it
        self.speaking = False  # the VAD hysteresis: the trainee's voice in this frame
        self.turn_start_s: float | None = None  # the trainee's turn (WAITING -> TRAINEE)
        self.last_speech_end_s: float | None = None
        self.speech_start_s: float | None = None  # current stretch of trainee speech
        self.caller_end_s: float | None = 0.0  # when the caller was last audible
        self._barged = False
        self._no_answer_sent = False
        self._held_end: TurnEvent | None = None  # an end-of-turn waiting for the caller to stop
        self._talked_over = False  # the caller took the turn while the trainee was still talking
        self._awaiting_since: float | None = None  # caller reply started, not audible yet
        self.t_s = 0.0

    @property
    def trainee_speaking(self) -> bool:
        return self.speaking

    @property
    def wait_s(self) -> float:
        """The silence that ends the trainee's turn in the current pause."""
        return self.end_wait.wait_s if self.end_wait is not None else self.settings.end_of_turn_s

    def step(self, t_s: float, probability: float, *, caller_playing: bool) -> list[TurnEvent]:
        """One frame starting at `t_s`; `caller_playing`: the caller is audible in it."""
        end_t = t_s + self.settings.frame_s
        self.t_s = end_t
        events: list[TurnEvent] = []
        self._hear(t_s, probability)
        if caller_playing:
            self.caller_end_s = end_t
            self._no_answer_sent = False
            self._awaiting_since = None
        elif self._awaiting_since is not None:
            if end_t - self._awaiting_since < AWAIT_CALLER_MAX_S:
                return events  # the caller's reply is on its way through the device
            self._awaiting_since = None
        handler = {State.WAITING: self._waiting, State.CALLER: self._caller,
                   State.OVERLAP: self._overlap, State.TRAINEE: self._trainee}[self.state]
        handler(t_s, end_t, caller_playing, events)
        return events

    def _hear(self, t_s: float, probability: float) -> None:
        """The VAD hysteresis: is the trainee speaking in this frame, and since when."""
        s = self.settings
        was_speaking = self.speaking
        threshold = s.offset_threshold if self.speaking else s.onset_threshold
        self.speaking = probability >= threshold
        if self.speaking and not was_speaking:
            self.speech_start_s = t_s
            self.end_wait = None  # a new pause will need its own decision
        if was_speaking and not self.speaking:
            self.last_speech_end_s = t_s

    def _waiting(self, t_s: float, end_t: float, caller_playing: bool,
                 events: list[TurnEvent]) -> None:
        if caller_playing:
            self.state = State.CALLER
            if self.speaking:  # trainee already talking when the caller starts
                self.state = State.OVERLAP
        elif self.speaking:
            self._start_turn(self.speech_start_s if self.speech_start_s is not None else t_s,
                             events, end_t)
        elif (not self._no_answer_sent and self.caller_end_s is not None
              and end_t - self.caller_end_s >= self.settings.no_answer_s):
            self._no_answer_sent = True
            events.append(TurnEvent("no-answer", end_t, start_s=self.caller_end_s, end_s=end_t))

    def _caller(self, t_s: float, end_t: float, caller_playing: bool,
                events: list[TurnEvent]) -> None:
        if self._talked_over and not self.speaking:
            self._talked_over = False
        if not caller_playing:
            self.state = State.WAITING
            if self._held_end is not None:  # the trainee finished while the caller talked
                events.append(TurnEvent("end-of-turn", end_t, self._held_end.start_s,
                                        self._held_end.end_s))
                self._held_end = None
            elif self.speaking:
                self._start_turn(self.speech_start_s or t_s, events, end_t)
        elif self.speaking and not self._talked_over:
            self.state = State.OVERLAP

    def _overlap(self, t_s: float, end_t: float, caller_playing: bool,
                 events: list[TurnEvent]) -> None:
        start = self.speech_start_s if self.speech_start_s is not None else t_s
        if not self.speaking:
            events.append(TurnEvent("backchannel", end_t, start_s=start, end_s=t_s))
            self.state = State.CALLER if caller_playing else State.WAITING
        elif end_t - start >= self.settings.interrupt_min_s - 1e-9:
            if caller_playing:
                events.append(TurnEvent("interruption", end_t, start_s=start))
            self._start_turn(start, events, end_t, announce=not caller_playing)
        elif not caller_playing:
            # the caller finished while the trainee was starting: a plain early start
            self._start_turn(start, events, end_t)

    def _trainee(self, t_s: float, end_t: float, caller_playing: bool,
                 events: list[TurnEvent]) -> None:
        if self.speaking:
            self._held_end = None
            speaking_s = end_t - (self.turn_start_s or t_s)
            if (self.barge_in_after_s is not None and not self._barged
                    and not caller_playing and speaking_s >= self.barge_in_after_s):
                self._barged = True
                events.append(TurnEvent("barge-in", end_t, start_s=self.turn_start_s))
            return
        silent_since = self.last_speech_end_s if self.last_speech_end_s is not None else t_s
        if end_t - silent_since >= self.wait_s - 1e-9:
            end = TurnEvent("end-of-turn", end_t, start_s=self.turn_start_s, end_s=silent_since)
            self.turn_start_s = None
            if caller_playing:  # the caller talked on over the trainee: answer after
                self._held_end = end
                self.state = State.CALLER
            else:
                events.append(end)
                self.state = State.WAITING
                self.caller_end_s = None  # no-answer counts from the caller's next line

    def _start_turn(self, start_s: float, events: list[TurnEvent], end_t: float,
                    *, announce: bool = True) -> None:
        self.state = State.TRAINEE
        self.turn_start_s = start_s
        self._barged = False
        self._held_end = None
        if announce:
            events.append(TurnEvent("trainee-start", end_t, start_s=start_s))

    def caller_took_turn(self) -> None:
        """The owner started the caller's reply (after end-of-turn, or barging in).

        If the trainee is still talking (a barge-in), the rest of that speech belongs to the
        turn already answered: it is neither an interruption nor a new turn.
        """
        if self.state is State.TRAINEE:
            self._talked_over = self.speaking
        self.turn_start_s = None
        self._held_end = None
        self.state = State.CALLER
        self._awaiting_since = self.t_s


def run(probabilities, caller_playing, *, settings: TurnSettings = TurnSettings(),
        barge_in_after_s: float | None = None) -> list[TurnEvent]:
    """All events of a whole sequence (frame i starts at i * frame_s): for tests and replays."""
    taker = TurnTaker(settings)
    taker.barge_in_after_s = barge_in_after_s
    out: list[TurnEvent] = []
    for i, (p, playing) in enumerate(zip(probabilities, caller_playing, strict=True)):
        out.extend(taker.step(i * settings.frame_s, float(p), caller_playing=bool(playing)))
    return out
