"""Drills after a real incident: a scenario draft from a recorded call or from written notes.
The drafting is here, pure apart from reading the voice profiles; the commands that analyse,
write and record are `roleplay.app.incident`.

`roleplay scenarios from-recording CALL --out FILE` analyses the call like `roleplay analyse`,
takes the caller's turns (text, loudness, articulation rate, pitch), estimates the caller's anger
per turn, and writes a scenario draft: the caller's lines in order, grouped into the scenario's
situations, the anger curve (as a comment), a caller voice that fits, and every personal detail
replaced by a placeholder (`roleplay.caller.pii`) and listed for review. The trainee's side is the
"original call": its report is written next to the draft (the same placeholders in the transcript,
no audio) and recorded in the history under the new scenario id, so `roleplay progress --scenario
ID` can compare the drills with it.

`roleplay scenarios new [--from-notes FILE] --out FILE` writes a draft from a template, or from
incident notes: quoted speech becomes the caller's lines.

The anger estimate (0 calm .. 10 furious), per caller turn i:

    reference  = the calmest third of the caller's turns (at least one): turns ranked by loudness,
                 articulation rate and pitch, lowest mean rank first (turns under 1 s of speech
                 are never the reference); per measure the median over those turns
    dL_i = loudness_i - loudness_ref            (dB)
    dR_i = 100 * (rate_i / rate_ref - 1)        (% articulation rate)
    dP_i = 12 * log2(pitch_i / pitch_ref)       (semitones, median F0)
    anger_i = clamp(3 + mean(dL_i / 0.55, dR_i / 5.5, dP_i / 0.5), 0, 10)

over the measures the turn has. The steps per anger unit (0.55 dB, 5.5 %, 0.5 semitone) are what
the shipped caller voices do per unit of anger, measured on their audio, so a replayed draft speaks
its lines at about the levels it estimated; the calmest turns count as 3 (a caller who phones about
an incident is rarely calm). A real caller who shouts moves loudness far more than a synthetic one:
the estimate then saturates at 10. It is a starting point for the trainer, not a measurement.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from roleplay.caller import pii
from roleplay.core.errors import InputError

LOUDNESS_DB_PER_ANGER = 0.55
RATE_PCT_PER_ANGER = 5.5
PITCH_ST_PER_ANGER = 0.5
CALM_ANGER = 3.0  # what the caller's calmest turns count as
REFERENCE_FRACTION = 1 / 3
MIN_REFERENCE_SPEECH_S = 1.0  # shorter turns give unstable rates and pitch
ANGER_RANGE = (0.0, 10.0)
# Situations of the lines, from the change in anger against the previous caller turn.
ESCALATING_DELTA = 0.75
CALMING_DELTA = -0.75
# Voice choice: a median F0 below this is a man's voice (men ~85-155 Hz, women ~165-255 Hz).
MALE_PITCH_MAX_HZ = 165.0
# The espeak caller voices' articulation rate per wpm of their setting, measured on their audio
# (3.5 to 6.8 syll/s over 125 to 260 wpm): to compare a real caller's rate with a voice's setting.
SYLL_S_PER_WPM = 0.026
# Draft scenario settings
CALMED_BELOW = 3.0
HANG_UP_AT = 9.5
START_RANGE = (3.5, 9.0)  # calmed_below < start < hang_up_at, with room on both sides
MAX_DRAFT_LINE_CHARS = 300  # long turns are split at sentence ends (the loader allows 600)
TIME_LIMIT_RANGE_S = (180.0, 900.0)
BASE_NEEDS = ("greeting", "stay-calm", "slower-softer", "let-vent", "no-interrupt", "no-discussion",
              "positive", "silence", "concrete", "debrief")

# Cue words (lower case, matched as substrings) that say what kind of line a caller's line is.
CUES: dict[str, dict[str, tuple[str, ...]]] = {
    "nl": {
        "satisfied": ("dank u", "dank je", "bedankt", "fijn", "prima", "duidelijk", "goed dan", "oké dan"),
        "hanging_up": ("hang op", "hang ik op", "ophangen", "laat maar", "klaar mee", "bel zelf wel", "laat ook maar"),
        "interrupted": ("uitpraten", "laat me nou", "mijn zin", "u luistert niet", "luister nou", "onderbreek"),
        "silence": ("bent u er nog", "is daar iemand", "zegt u ook nog", "hallo?", "hoort u mij"),
        "threat": ("klacht", "advocaat", "krant", "politie", "facebook", "internet", "online", "sociale media",
                   "twitter", "instagram", "tiktok"),
        "social_media": ("facebook", "internet", "online", "sociale media", "twitter", "instagram", "tiktok",
                         "social media"),
        "transfer": ("doorverbonden", "doorverbinden", "verbonden met", "doorgeschakeld"),
        "ended_by_trainee": ("gesprek beëindigd", "verbinding verbroken", "opgehangen door", "heb opgehangen",
                             "gesprek afgebroken"),
    },
    "en": {
        "satisfied": ("thank you", "thanks", "that's clear", "that is clear", "fine", "okay then", "great"),
        "hanging_up": ("hang up", "hanging up", "forget it", "i'm done", "i am done", "useless", "goodbye then"),
        "interrupted": ("let me finish", "let me speak", "listen to me", "not listening", "interrupt"),
        "silence": ("are you there", "anyone there", "say something", "hello?", "can you hear me"),
        "threat": ("complain", "complaint", "lawyer", "newspaper", "police", "facebook", "internet", "online",
                   "social media", "twitter", "instagram", "tiktok"),
        "social_media": ("facebook", "internet", "online", "social media", "twitter", "instagram", "tiktok"),
        "transfer": ("transferred", "put through", "connected to", "passed on to"),
        "ended_by_trainee": ("ended the call", "i hung up", "we hung up", "call was ended", "terminated the call"),
    },
}

# Lines for the required situations a call or the notes did not provide (marked as templates).
TEMPLATE_LINES: dict[str, dict[str, tuple[str, ...]]] = {
    "nl": {
        "opening": ("Ja, goedenavond, met {NAAM}. Ik bel omdat er nog steeds niemand is geweest.",),
        "venting": ("Ik wacht nu al uren. Niemand vertelt me iets.", "Elke keer moet ik alles opnieuw uitleggen."),
        "escalating": ("Nee, daar heb ik niks aan. Dat zei uw collega ook al.",),
        "calming": ("Oké. Dus u gaat nu echt iets doen?", "Nou, goed. Dat is in ieder geval duidelijk."),
        "satisfied": ("Goed, dank u wel. Dan weet ik waar ik aan toe ben.",),
        "hanging_up": ("Laat maar. Hier heb ik niks aan. Ik hang op.",),
        "interrupted": ("Laat me nou even uitpraten!",),
        "silence": ("Hallo? Bent u er nog?",),
        "abusive": ("Jullie zijn echt een stelletje idioten.",),
    },
    "en": {
        "opening": ("Yes, good evening, this is {NAME}. I'm calling because still nobody has come.",),
        "venting": ("I have been waiting for hours. Nobody tells me anything.",
                    "Every time I have to explain everything again."),
        "escalating": ("No, that is no use to me. Your colleague said the same thing.",),
        "calming": ("Okay. So you are really going to do something now?", "Well, fine. At least that is clear."),
        "satisfied": ("Right, thank you. Now I know where I stand.",),
        "hanging_up": ("Forget it. This is useless. I'm hanging up.",),
        "interrupted": ("Let me finish, will you!",),
        "silence": ("Hello? Are you still there?",),
        "abusive": ("You are a bunch of idiots.",),
    },
}
DEBRIEF = {
    "nl": ("Dit gesprek is nagespeeld naar een echt incident. Vergelijk je poging met het oorspronkelijke "
           "gesprek (roleplay progress --scenario {id}): liet je de beller uitpraten, sprak je langzamer en "
           "zachter, bleef je concreet? Bespreek het gesprek na afloop met een collega: wat ging goed, en wat "
           "zou je een volgende keer anders doen?"),
    "en": ("This call was made from a real incident. Compare your attempt with the original call "
           "(roleplay progress --scenario {id}): did you let the caller finish, speak slower and softer, stay "
           "concrete? Talk the call over with a colleague afterwards: what went well, and what would you do "
           "differently next time?"),
}
DEBRIEF_SOCIAL_MEDIA = {
    "nl": (" Dreigt een beller je online aan te pakken, meld het dan aan je leidinggevende en de "
           "vertrouwenspersoon; de werkgever reageert, niet jij, en kan aangifte doen bij de politie."),
    "en": (" If a caller threatens to go after you online, tell your manager and the confidential adviser; "
           "the employer responds, not you, and may report it to the police."),
}
class _Texts(TypedDict):
    title_recording: str
    title_notes: str
    who_recording: str
    who_template: str
    reason_recording: str
    reason_template: str
    sex: dict[str | None, str]  # by voice sex; None when the pitch was not measured


TEXTS: dict[str, _Texts] = {
    "nl": {
        "title_recording": "Na het incident van {date}",
        "title_notes": "Na het incident ({id})",
        "who_recording": "{sex} uit de opname van {date}. Vul aan: wie belt er, en voor wie?",
        "who_template": "Vul aan: wie belt er, en voor wie? (bijvoorbeeld: mevrouw {NAAM}, dochter van een patiënt)",
        "reason_recording": "Zoals in het gesprek: {first}",
        "reason_template": "Vul aan: waarom belt de beller, en wat is er eerder gebeurd?",
        "sex": {"man": "Een man", "woman": "Een vrouw", None: "De beller"},
    },
    "en": {
        "title_recording": "After the incident of {date}",
        "title_notes": "After the incident ({id})",
        "who_recording": "{sex} from the recording of {date}. Fill in: who is calling, and for whom?",
        "who_template": "Fill in: who is calling, and for whom? (for example: Mrs {NAME}, a patient's daughter)",
        "reason_recording": "As in the call: {first}",
        "reason_template": "Fill in: why does the caller call, and what happened before?",
        "sex": {"man": "A man", "woman": "A woman", None: "The caller"},
    },
}


# --------------------------------------------------------------------------- the anger estimate


@dataclass(frozen=True)
class CallerMeasure:
    """What the analysis measured on one caller turn."""

    index: int
    start_s: float
    end_s: float
    speech_s: float  # without pauses
    loudness_dbfs: float | None
    rate_syll_s: float | None  # articulation rate
    pitch_hz: float | None  # median F0


@dataclass(frozen=True)
class TurnAnger:
    index: int
    start_s: float
    end_s: float
    loudness_db: float | None  # against the reference
    rate_pct: float | None
    pitch_st: float | None
    anger: float


@dataclass(frozen=True)
class AngerCurve:
    turns: tuple[TurnAnger, ...]
    reference_turns: tuple[int, ...]
    reference_loudness_dbfs: float | None
    reference_rate_syll_s: float | None
    reference_pitch_hz: float | None

    @property
    def start(self) -> float:
        return self.turns[0].anger

    @property
    def peak(self) -> float:
        return max(t.anger for t in self.turns)

    @property
    def end(self) -> float:
        return self.turns[-1].anger


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def estimate_anger(measures: Sequence[CallerMeasure]) -> AngerCurve:
    """The caller's anger per turn from loudness, rate and pitch against their calmest turns."""
    if not measures:
        raise InputError("no caller turns to estimate the anger from")
    usable = [m for m in measures if m.speech_s >= MIN_REFERENCE_SPEECH_S] or list(measures)
    keys = ("loudness_dbfs", "rate_syll_s", "pitch_hz")
    ranks: dict[int, list[float]] = {m.index: [] for m in usable}
    for key in keys:
        have = sorted((getattr(m, key), m.index) for m in usable if getattr(m, key) is not None)
        for r, (_, idx) in enumerate(have):
            ranks[idx].append(r / max(len(have) - 1, 1))
    score = {i: (sum(r) / len(r) if r else 0.5) for i, r in ranks.items()}
    n_ref = max(1, math.ceil(len(usable) * REFERENCE_FRACTION))
    ref = sorted(usable, key=lambda m: (score[m.index], m.start_s))[:n_ref]

    def reference(key: str) -> float | None:
        value = _median([getattr(m, key) for m in ref if getattr(m, key) is not None])
        return value if value is not None else _median([getattr(m, key) for m in usable
                                                         if getattr(m, key) is not None])

    ref_l, ref_r, ref_p = reference("loudness_dbfs"), reference("rate_syll_s"), reference("pitch_hz")
    turns = []
    for m in measures:
        d_l = m.loudness_dbfs - ref_l if m.loudness_dbfs is not None and ref_l is not None else None
        d_r = 100.0 * (m.rate_syll_s / ref_r - 1.0) if m.rate_syll_s and ref_r else None
        d_p = 12.0 * math.log2(m.pitch_hz / ref_p) if m.pitch_hz and ref_p else None
        parts = [d / step for d, step in ((d_l, LOUDNESS_DB_PER_ANGER), (d_r, RATE_PCT_PER_ANGER),
                                          (d_p, PITCH_ST_PER_ANGER)) if d is not None]
        anger = CALM_ANGER + (sum(parts) / len(parts) if parts else 0.0)
        anger = round(min(max(anger, ANGER_RANGE[0]), ANGER_RANGE[1]), 1)
        turns.append(TurnAnger(m.index, m.start_s, m.end_s, _round(d_l, 1), _round(d_r, 0), _round(d_p, 1), anger))
    return AngerCurve(tuple(turns), tuple(m.index for m in ref), _round(ref_l, 1), _round(ref_r, 2), _round(ref_p, 0))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- the caller's voice


@dataclass(frozen=True)
class VoiceChoice:
    voice_id: str
    sex: str | None  # "man", "woman" or None when the pitch was not measured
    reason: str


def voice_sex(profile: Any) -> str | None:
    words = f"{profile.id} {profile.description}".lower()
    if re.search(r"\b(woman|vrouw|female)\b", words):
        return "woman"
    if re.search(r"\b(man|male)\b", words):
        return "man"
    return None


def choose_voice(*, language: str, pitch_hz: float | None, rate_syll_s: float | None,
                 voices: Sequence[Any] | None = None) -> VoiceChoice:
    """A caller voice in the language; the pitch decides man or woman, the rate picks among them."""
    if voices is None:
        from roleplay.speech.voice import list_voices

        voices = list_voices()
    # Kokoro voices are options a scenario names, not picked here: too slow to reply live
    # (docs/scenarios-and-voices.md), and SYLL_S_PER_WPM is measured on espeak-ng.
    callers = [v for v in voices if v.role == "caller" and v.language == language
               and v.engine != "kokoro"]
    if not callers:
        raise InputError(f"no caller voice for language {language!r} in voices/; expected a voice profile "
                         f"with language: {language} and role: caller")
    sex = None if pitch_hz is None else ("man" if pitch_hz < MALE_PITCH_MAX_HZ else "woman")
    same = [v for v in callers if voice_sex(v) == sex] if sex else []
    why = []
    if pitch_hz is not None:
        why.append(f"median pitch {pitch_hz:.0f} Hz ({'below' if sex == 'man' else 'at or above'} "
                   f"{MALE_PITCH_MAX_HZ:.0f} Hz: a {sex})")
    if sex and not same:
        why.append(f"no {language} {sex}'s voice, so any {language} caller voice")
    pool = same or callers
    if rate_syll_s is not None:
        def distance(v: Any) -> float:
            return abs(v.prosody_at(CALM_ANGER).rate_wpm * SYLL_S_PER_WPM - rate_syll_s)

        pool = sorted(pool, key=lambda v: (distance(v), v.id))
        why.append(f"calm articulation rate {rate_syll_s:.1f} syll/s, closest to "
                   f"{pool[0].prosody_at(CALM_ANGER).rate_wpm:.0f} wpm")
    else:
        pool = sorted(pool, key=lambda v: v.id)
    return VoiceChoice(pool[0].id, sex, "; ".join(why) or "the first caller voice in the language")


# --------------------------------------------------------------------------- the draft


@dataclass(frozen=True)
class DraftLine:
    situation: str
    text: str  # placeholders in, personal details out
    note: str  # where it came from, for the comment beside the line
    findings: tuple[pii.Finding, ...] = ()
    template: bool = False


@dataclass(frozen=True)
class Review:
    where: str  # e.g. "lines.venting[1]"
    placeholder: str
    original: str  # only printed on the terminal, never written to the draft
    rule: str


@dataclass(frozen=True)
class Draft:
    scenario_id: str
    language: str
    title: str
    who: str
    reason: str
    caller_voice: str
    anger_start: float
    intensity: str
    swearing: bool
    social_media: bool
    needs: tuple[str, ...]
    expected: tuple[str, ...]
    time_limit_s: float
    debrief: str
    lines: tuple[DraftLine, ...]
    header: tuple[str, ...]  # comment lines at the top (without "# ")
    field_findings: tuple[tuple[str, tuple[pii.Finding, ...]], ...] = ()  # (field, findings) of who/reason

    def grouped(self) -> dict[str, list[DraftLine]]:
        from roleplay.caller.scenario import SITUATIONS

        groups: dict[str, list[DraftLine]] = {}
        for line in self.lines:
            groups.setdefault(line.situation, []).append(line)
        return {s: groups[s] for s in SITUATIONS if s in groups}

    def reviews(self) -> tuple[Review, ...]:
        out = [Review(name, f.placeholder(self.language), f.original, f.rule)
               for name, findings in self.field_findings for f in findings]
        for situation, lines in self.grouped().items():
            for i, line in enumerate(lines):
                out += [Review(f"lines.{situation}[{i}]", f.placeholder(self.language), f.original, f.rule)
                        for f in line.findings]
        return tuple(out)


def _cue(text: str, language: str, kind: str) -> bool:
    lowered = text.lower()
    return any(c in lowered for c in CUES[language][kind])


def split_line(text: str, *, max_chars: int = MAX_DRAFT_LINE_CHARS) -> list[str]:
    """A long turn as several lines, cut at sentence ends (a single long sentence at a word)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return [text] if text else []
    out, current = [], ""
    for whole in re.split(r"(?<=[.!?])\s+", text):
        rest = whole
        while len(rest) > max_chars:
            cut = rest.rfind(" ", 0, max_chars) if " " in rest[:max_chars] else max_chars
            head, rest = rest[:cut].strip(), rest[cut:].strip()
            if current:
                out.append(current)
                current = ""
            out.append(head)
        if current and len(current) + 1 + len(rest) > max_chars:
            out.append(current)
            current = rest
        else:
            current = f"{current} {rest}".strip()
    if current:
        out.append(current)
    return out


def situate(texts: Sequence[str], angers: Sequence[float | None], *, language: str, abusive: Sequence[bool],
            ending: str | None = None) -> list[str]:
    """The situation of each caller line, in order: the first is the opening; insults are abusive;
    cue words mark interrupted and silence lines; the last line is satisfied or hanging up (by its
    words, the notes' ending, else the anger against the start); the others follow the change in
    anger: up is escalating, down is calming, else venting (early on, or still as angry as at the
    start) or calming. Without angers (notes), a line with '!' or a threat is escalating."""
    n = len(texts)
    out: list[str] = []
    start = next((a for a in angers if a is not None), None)
    for i, text in enumerate(texts):
        anger, prev = angers[i], angers[i - 1] if i else None
        if i == 0:
            out.append("opening")
        elif abusive[i]:
            out.append("abusive")
        elif _cue(text, language, "interrupted"):
            out.append("interrupted")
        elif _cue(text, language, "silence"):
            out.append("silence")
        elif i == n - 1 and n >= 3:
            if _cue(text, language, "hanging_up") or ending == "hanging_up":
                out.append("hanging_up")
            elif _cue(text, language, "satisfied") or ending == "satisfied":
                out.append("satisfied")
            elif anger is not None and start is not None:
                out.append("hanging_up" if anger >= start + 1.0 or anger >= HANG_UP_AT - 1.0 else "satisfied")
            else:
                out.append("venting")
        elif anger is not None and prev is not None:
            delta = anger - prev
            if delta >= ESCALATING_DELTA or _cue(text, language, "hanging_up"):
                out.append("escalating")
            elif delta <= CALMING_DELTA or _cue(text, language, "satisfied"):
                out.append("calming")
            else:
                out.append("venting" if i <= 2 or (start is not None and anger >= start - 0.5) else "calming")
        else:
            escalate = "!" in text or _cue(text, language, "threat") or _cue(text, language, "hanging_up")
            out.append("escalating" if escalate else "calming" if _cue(text, language, "satisfied") else "venting")
    return out


def _with_templates(lines: list[DraftLine], language: str) -> list[DraftLine]:
    """Template lines for the required situations nobody said anything for (marked as such)."""
    from roleplay.caller.scenario import REQUIRED_SITUATIONS

    have = {line.situation for line in lines}
    extra = [DraftLine(s, t, "template: not from the incident; replace or delete", template=True)
             for s in REQUIRED_SITUATIONS if s not in have for t in TEMPLATE_LINES[language][s]]
    return lines + extra


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML); no control or odd line-break characters,
    which the scenario reader refuses."""
    return json.dumps("".join(ch if ch.isprintable() else " " for ch in text), ensure_ascii=False)


def render_draft(d: Draft) -> str:
    out = [f"# {h}".rstrip() for h in d.header]
    reviews = d.reviews()
    out.append("#")
    if reviews:
        out.append("# Personal details replaced by placeholders (check them, and read every line for anything")
        out.append("# the rules missed; invent details for the placeholders if the caller should say them):")
        out += [f"#   {r.where}: {r.placeholder} ({r.rule})" for r in reviews]
    else:
        out.append("# No personal details were found in the lines: read every line to be sure.")
    out.append("# Schema: scenario.schema.json (validate with: roleplay scenarios validate FILE)")
    out += [
        f"id: {d.scenario_id}",
        f"language: {d.language}",
        f"title: {_q(d.title)}",
        f"who: {_q(d.who)}",
        f"reason: {_q(d.reason)}",
        f"caller_voice: {d.caller_voice}",
        f"anger: {{start: {d.anger_start:g}, min: 0, max: 10, hang_up_at: {HANG_UP_AT:g}, "
        f"calmed_below: {CALMED_BELOW:g}}}",
        f"intensity: {d.intensity}",
        f"swearing: {'true' if d.swearing else 'false'}",
        f"social_media: {'true' if d.social_media else 'false'}",
        f"needs: [{', '.join(d.needs)}]",
        f"ending: {{expected: [{', '.join(d.expected)}], time_limit_s: {d.time_limit_s:g}}}",
        "lines:",
    ]
    for situation, lines in d.grouped().items():
        out.append(f"  {situation}:")
        out += [f"    - {_q(line.text)}  # {line.note}" for line in lines]
    out.append(f"debrief: {_q(d.debrief)}")
    return "\n".join(out) + "\n"


def _known_names(texts: Sequence[str]) -> frozenset[str]:
    return frozenset().union(*(pii.name_words(pii.find_pii(t)) for t in texts)) if texts else frozenset()


def _draft_lines(texts: Sequence[str], notes: Sequence[str], situations: Sequence[str],
                 language: str, known: frozenset[str] = frozenset()) -> list[DraftLine]:
    """Redacted lines (names found in one line, or in `known`, replaced in all), split where too long."""
    known = known | _known_names(texts)
    redactions = [pii.redact(t, language=language, known_names=known) for t in texts]
    out = []
    for r, note, situation in zip(redactions, notes, situations, strict=True):
        pieces = split_line(r.text)
        for k, piece in enumerate(pieces):
            # the findings go with the first piece: the review list names the line they were in
            out.append(DraftLine(situation, piece, note + (f" (part {k + 1} of {len(pieces)})" if len(pieces) > 1
                                                           else ""), r.findings if k == 0 else ()))
    return out


def _needs_and_ending(*, swearing: bool, transfer: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    needs = list(BASE_NEEDS)
    expected = ["calmed"]
    if swearing:
        needs[-1:-1] = ["address-behaviour", "announce-end"]
        expected.append("ended-by-trainee")
    if transfer:
        needs.insert(-1, "warm-transfer")
        expected.append("transferred")
    return tuple(needs), tuple(expected)


def _debrief(language: str, scenario_id: str, social_media: bool) -> str:
    return DEBRIEF[language].format(id=scenario_id) + (DEBRIEF_SOCIAL_MEDIA[language] if social_media else "")


# --------------------------------------------------------------------------- from a recording


def measures_of(turns: Sequence[Any]) -> list[CallerMeasure]:
    return [CallerMeasure(index=t.index, start_s=t.start_s, end_s=t.end_s,
                          speech_s=max(t.duration_s - t.pause_total_s, 0.0), loudness_dbfs=t.loudness_dbfs,
                          rate_syll_s=t.articulation_rate_syll_s or t.speech_rate_syll_s,
                          pitch_hz=t.pitch_median_hz) for t in turns]


def redact_analysis(data: dict[str, Any], *, language: str) -> tuple[dict[str, Any], int]:
    """The analysis JSON with the same placeholders in every turn's text, words and phrases heard
    (both parties: a receptionist repeats the caller's number). Returns (copy, replacements)."""
    turns = data.get("turns") or []
    redactions = pii.redact_all([t.get("text") or "" for t in turns], language=language)
    known = frozenset().union(*(pii.name_words(r.findings) for r in redactions)) if redactions else frozenset()
    new_turns, count = [], 0
    for turn, r in zip(turns, redactions, strict=True):
        count += len(r.findings)
        words = [dict(w) for w in turn.get("words") or []]
        # where each word sits in the turn's text ("text" is the words joined and stripped)
        joined, spans = "", []
        for w in words:
            joined = (joined + " " if joined else "") + w["text"]
            spans.append((len(joined) - len(w["text"]), len(joined)))
        lead = len(joined) - len(joined.lstrip())
        for f in r.findings:
            for w, (a, b) in zip(words, spans, strict=True):
                if a - lead < f.end and f.start < b - lead:
                    w["text"] = f.placeholder(language)
        for w in words:  # a detail the text-level pass saw only across words is still caught here
            w["text"] = pii.redact(w["text"], language=language, known_names=known).text
        phrases = [{**p, "heard": pii.redact(p.get("heard") or "", language=language, known_names=known).text}
                   for p in turn.get("phrases") or []]
        new_turns.append({**turn, "text": r.text, "words": words, "phrases": phrases})
    backchannels = [{**b, "text": pii.redact(b.get("text") or "", language=language, known_names=known).text}
                    for b in data.get("backchannels") or []]
    # the moments quote a turn and say-instead repeats a phrase: the redacted words there too
    texts = {t.get("index"): t["text"] for t in new_turns}
    moments = [{**m, "quote": texts.get(m.get("turn"), pii.redact(m.get("quote") or "", language=language,
                                                                  known_names=known).text) or None}
               for m in data.get("moments") or []]
    better = [{**x, "said": pii.redact(x.get("said") or "", language=language, known_names=known).text}
              for x in data.get("say_instead") or []]
    return {**data, "turns": new_turns, "backchannels": backchannels, "moments": moments,
            "say_instead": better}, count


def draft_from_analysis(analysis: Any, *, scenario_id: str, language: str, date: str, source_name: str
                        ) -> tuple[Draft, AngerCurve, VoiceChoice]:
    """The scenario draft from an analysed call (pure apart from reading the voice profiles)."""
    from roleplay.caller.scenario import REQUIRED_SITUATIONS

    caller = [t for t in analysis.turns_of("caller") if t.text.strip()]
    if not caller:
        raise InputError(f"{source_name}: no caller speech was recognised; expected the caller's voice on the "
                         "caller's channel or file")
    curve = estimate_anger(measures_of(caller))
    voice = choose_voice(language=language, pitch_hz=curve.reference_pitch_hz,
                         rate_syll_s=curve.reference_rate_syll_s)
    angers = [t.anger for t in curve.turns]
    texts = [t.text for t in caller]
    situations = situate(texts, angers, language=language, abusive=[bool(t.abuse) for t in caller])
    notes = [f"turn {t.index}, {t.start_s:.1f} s, anger {a.anger:g}" for t, a in zip(caller, curve.turns, strict=True)]
    lines = _with_templates(_draft_lines(texts, notes, situations, language), language)
    swearing = any(s == "abusive" for s in situations)
    all_text = " ".join(texts)
    social_media = _cue(all_text, language, "social_media")
    needs, expected = _needs_and_ending(swearing=swearing, transfer=False)
    start = round(min(max(round(curve.start * 2) / 2, START_RANGE[0]), START_RANGE[1]), 1)
    peak = curve.peak
    intensity = "severe" if peak >= 9.0 or swearing else "realistic" if peak >= 6.0 else "mild"
    t = TEXTS[language]
    first = next((line.text for line in lines if line.situation == "opening" and not line.template), "")
    day = date[:10]
    duration = float(getattr(analysis, "duration_s", 0.0) or 0.0)
    time_limit = min(max(math.ceil(duration * 1.5 / 30.0) * 30.0, TIME_LIMIT_RANGE_S[0]), TIME_LIMIT_RANGE_S[1])
    table = ["  turn  start_s  anger  loud_db  rate_pct  pitch_st  situation"]
    for a, situation in zip(curve.turns, situations, strict=True):
        table.append(f"  {a.index:>4}  {a.start_s:>7.1f}  {a.anger:>5.1f}  {_fmt(a.loudness_db):>7}  "
                     f"{_fmt(a.rate_pct, 0):>8}  {_fmt(a.pitch_st):>8}  {situation}")
    missing = [s for s in REQUIRED_SITUATIONS if s not in situations]
    header = (
        f"DRAFT made by `roleplay scenarios from-recording` from {pii.redact(source_name, language=language).text}"
        f" (recorded {day}).",
        "Check it before anyone drills it: the title, who, reason and debrief are a start; the situations were",
        "guessed from the caller's anger and a few cue words" + (
            f"; template lines fill {', '.join(missing)}." if missing else "."),
        "",
        "The caller's anger per turn (0 calm .. 10 furious), estimated from loudness, articulation rate and pitch",
        f"against the caller's own calmest turns ({', '.join(str(i) for i in curve.reference_turns)}: "
        f"{_plain(curve.reference_loudness_dbfs)} dBFS, {_plain(curve.reference_rate_syll_s)} syll/s, "
        f"{_plain(curve.reference_pitch_hz, 0)} Hz):",
        f"anger = {CALM_ANGER:g} + mean(loud_db / {LOUDNESS_DB_PER_ANGER:g}, rate_pct / {RATE_PCT_PER_ANGER:g}, "
        f"pitch_st / {PITCH_ST_PER_ANGER:g}), clamped to 0..10. anger.start below is the first turn's.",
        *table,
        "",
        f"caller_voice: {voice.voice_id}, from {voice.reason}.",
    )
    draft = Draft(
        scenario_id=scenario_id, language=language,
        title=t["title_recording"].format(date=day),
        who=t["who_recording"].format(sex=t["sex"][voice.sex], date=day),
        reason=t["reason_recording"].format(first=first)[:600].strip(),
        caller_voice=voice.voice_id, anger_start=start, intensity=intensity, swearing=swearing,
        social_media=social_media, needs=needs, expected=expected, time_limit_s=time_limit,
        debrief=_debrief(language, scenario_id, social_media), lines=tuple(lines), header=header,
    )
    return draft, curve, voice


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def _plain(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- from notes, or a template


_QUOTE_RE = re.compile(r"“([^”]+)”|„([^”“]+)[”“]|\"([^\"]+)\"|«([^»]+)»|‘([^’]+)’")
_LABELS = {
    "who": r"wie belde|wie|beller was|who called|who|caller was",
    "reason": r"waarom|reden|aanleiding|why|reason",
    "said": r"wat er gezegd werd|wat werd er gezegd|gezegd|what was said|said",
    "ending": r"hoe het afliep|hoe het eindigde|afloop|einde|how it ended|ending|outcome",
}
_LABEL_RE = re.compile(r"(?i)^\s*(?:" + "|".join(f"(?P<{k}>{v})" for k, v in _LABELS.items()) + r")\s*[:\-–]\s*")
_TRAINEE_SPEAKER = re.compile(
    r"(?i)\b(ik|wij|we|mijn collega|collega|assistente|doktersassistente|triagist|triagiste|receptionist|"
    r"medewerker|i|me|the receptionist|assistant|triage nurse|staff)\b\s*(zei|zeiden|antwoordde|vroeg|said|"
    r"answered|asked|replied)?\s*[:,]?\s*$"
)
_NL_WORDS = frozenset("de het een en ik je u niet dat is was hij zij met voor op van er maar".split())
_EN_WORDS = frozenset("the a an and i you not that is was he she with for on of there but".split())


@dataclass(frozen=True)
class Notes:
    who: str
    reason: str
    ending: str
    caller_quotes: tuple[tuple[int, str], ...]  # (line number, quote)
    trainee_quotes: int


def guess_language(text: str) -> str:
    words = re.findall(r"[a-zà-ÿ]+", text.lower())
    nl = sum(w in _NL_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    return "en" if en > nl else "nl"


def parse_notes(text: str) -> Notes:
    """Who called, why, what was said (quotes), how it ended: labelled paragraphs or free text."""
    sections: dict[str, list[str]] = {"who": [], "reason": [], "said": [], "ending": [], "free": []}
    caller_quotes: list[tuple[int, str]] = []
    trainee_quotes = 0
    current = "free"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = _LABEL_RE.match(line)
        if m:
            current = next(k for k in _LABELS if m.group(k))
            line = line[m.end():]
        pos = 0
        for q in _QUOTE_RE.finditer(line):
            quote = " ".join(next(g for g in q.groups() if g is not None).split())
            before = line[pos:q.start()]
            pos = q.end()
            if not re.search(r"\w", quote):
                continue
            if _TRAINEE_SPEAKER.search(before):
                trainee_quotes += 1
            else:
                caller_quotes.append((number, quote))
        rest = _QUOTE_RE.sub(" ", line).strip(" :-–")
        if rest:
            sections[current].append(rest)
    free = " ".join(sections["free"])
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", free) if s.strip()]
    who = " ".join(sections["who"]) or (sentences[0] if sentences else "")
    reason = " ".join(sections["reason"]) or " ".join(sentences[1:] if not sections["who"] else sentences)
    return Notes(who=who.strip(), reason=reason.strip(), ending=" ".join(sections["ending"]).strip(),
                 caller_quotes=tuple(caller_quotes), trainee_quotes=trainee_quotes)


def draft_from_notes(notes: Notes, *, scenario_id: str, language: str, source_name: str) -> Draft:
    from roleplay.caller.scenario import REQUIRED_SITUATIONS

    t = TEXTS[language]
    texts = [q for _, q in notes.caller_quotes]
    from roleplay.analysis.phrases import abuse_terms

    abusive = [bool(abuse_terms(q, language=language)) for q in texts]
    ending_text = notes.ending.lower()
    ending = None
    if any(w in ending_text for w in ("opgehangen", "hing op", "hing hij op", "hing zij op", "hung up",
                                      "hangs up", "hang up")):
        ending = "hanging_up"
    elif any(w in ending_text for w in ("rustig", "gekalmeerd", "bedankt", "tevreden", "calm", "thanked",
                                        "satisfied")):
        ending = "satisfied"
    situations = situate(texts, [None] * len(texts), language=language, abusive=abusive, ending=ending)
    known = _known_names([notes.who, notes.reason, notes.ending, *texts])
    lines = _draft_lines(texts, [f"notes line {n}" for n, _ in notes.caller_quotes], situations, language, known)
    lines = _with_templates(lines, language)
    swearing = any(abusive)
    everything = " ".join([notes.who, notes.reason, notes.ending, *texts])
    social_media = _cue(everything, language, "social_media")
    transfer = _cue(notes.ending, language, "transfer")
    needs, expected = _needs_and_ending(swearing=swearing, transfer=transfer)
    who = pii.redact(notes.who, language=language, known_names=known) if notes.who else None
    reason = pii.redact(notes.reason, language=language, known_names=known) if notes.reason else None
    field_findings = tuple((name, r.findings) for name, r in (("who", who), ("reason", reason)) if r and r.findings)
    missing = [s for s in REQUIRED_SITUATIONS if s not in situations]
    header = (
        f"DRAFT made by `roleplay scenarios new --from-notes {pii.redact(source_name, language=language).text}`.",
        f"{len(texts)} quoted caller line(s) became lines"
        + (f"; {notes.trainee_quotes} quote(s) of the receptionist were left out" if notes.trainee_quotes else "")
        + (f"; template lines fill {', '.join(missing)}." if missing else "."),
        "Check it before anyone drills it: the situations were guessed from the order of the quotes and a few",
        "cue words; anger.start is a guess (no recording). How it ended, from the notes: "
        + (pii.redact(notes.ending, language=language, known_names=known).text[:200] or "(not given)"),
    )
    return Draft(
        scenario_id=scenario_id, language=language, title=t["title_notes"].format(id=scenario_id),
        who=(who.text if who else t["who_template"])[:2000],
        reason=(reason.text if reason else t["reason_template"])[:2000],
        caller_voice=choose_voice(language=language, pitch_hz=None, rate_syll_s=None).voice_id,
        anger_start=7.5 if swearing else 6.5, intensity="severe" if swearing else "realistic", swearing=swearing,
        social_media=social_media, needs=needs, expected=expected, time_limit_s=300.0,
        debrief=_debrief(language, scenario_id, social_media), lines=tuple(lines), header=header,
        field_findings=field_findings,
    )


def template_draft(*, scenario_id: str, language: str) -> Draft:
    t = TEXTS[language]
    lines = [DraftLine(s, text, "template: write what the caller said instead", template=True)
             for s, texts in TEMPLATE_LINES[language].items() if s != "abusive" for text in texts]
    needs, expected = _needs_and_ending(swearing=False, transfer=False)
    header = (
        "DRAFT from the template of `roleplay scenarios new`: replace the lines with what the caller said,",
        "fill in who and reason, and keep personal details out (use placeholders such as "
        + ("{NAAM}, {TELEFOON})." if language == "nl" else "{NAME}, {PHONE})."),
        "A swearing caller needs swearing: true and a group abusive: with lines.",
    )
    return Draft(
        scenario_id=scenario_id, language=language, title=t["title_notes"].format(id=scenario_id),
        who=t["who_template"], reason=t["reason_template"],
        caller_voice=choose_voice(language=language, pitch_hz=None, rate_syll_s=None).voice_id,
        anger_start=6.5, intensity="realistic", swearing=False, social_media=False, needs=needs,
        expected=expected, time_limit_s=300.0, debrief=_debrief(language, scenario_id, False),
        lines=tuple(lines), header=header,
    )
