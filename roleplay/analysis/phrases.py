"""Calming and provoking phrases in what the trainee (or caller) said, tolerant of ASR errors.

The phrase lists are data (`roleplay/phrases/<language>.yaml`, format documented at the top of each
file); this module only normalises text and matches. Matching rules, in short:

- Text is normalised: lowercase, accents and punctuation removed, apostrophes dropped.
- A phrase of at most `EXACT_MAX_LETTERS` letters (spaces not counted) must match whole words
  exactly: a fuzzy "nee" or "geen" would be found everywhere.
- A longer phrase is compared (rapidfuzz Indel ratio) with every window of its own word count,
  one fewer (only when no letters go missing: two words heard as one) and one or two more, with and
  without spaces (Whisper splits and joins compounds: "huisartsen post", "hoe de avond"); a
  single-word phrase also with the prefix or suffix of a word it is glued into
  ("huisartsenpustertret"). It counts at `FUZZY_MIN_SCORE` (0.85), or `SHORT_PHRASE_MIN_SCORE`
  (0.90) for multi-word phrases of at most 12 letters, and only when most of its words are
  recognisably there (`MIN_WORDS_COVERED`).
- Polarity words (niet, geen / not, can't) must agree between phrase and window, so that fuzzy
  matching never turns "wat ik niet kan doen" into "wat ik wel kan doen".
- Overlaps: overlapping hits of one category count once. Across categories a hit inside a longer
  hit is dropped (the end announcement "ik kan u niet helpen als ..." swallows "kan niet"), and so
  is a hit mostly covered by a better-scoring one (exact "I'll put you through" beats a fuzzy
  "I'll put it through"); other partly overlapping hits both count, since both were said.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from roleplay.audio.clip import Audio
from roleplay.core.errors import InputError
from roleplay.speech.asr import TextScorer

CATEGORIES = (
    "greeting",
    "acknowledgement",
    "concrete-offer",
    "vague",
    "argument",
    "negative",
    "boundary",
    "end-announcement",
    "transfer",
)
PHRASES_DIR = Path(__file__).with_name("phrases")
EXACT_MAX_LETTERS = 8  # "ja maar", "kan niet", "u moet": one wrong letter is a different phrase
FUZZY_MIN_SCORE = 0.85  # "hoe de avond" ~ "goedenavond" scores 0.857; unrelated phrases stay < 0.8
# Short multi-word phrases are made of short words that one or two edits turn into other words
# ("weet ik niet" ~ "wat ik niet" scores 0.87), so they need a closer match.
SHORT_PHRASE_LETTERS = 12
SHORT_PHRASE_MIN_SCORE = 0.90
# Share of a phrase's words that must be recognisably heard: 4 of 6 in "wat kan ik voor de dung"
# for "wat kan ik voor u doen".
MIN_WORDS_COVERED = 0.66
_MIN_PARTIAL_LETTERS = 10  # a word glued into a longer word must be long enough to be distinctive

Word = tuple[str, float, float]  # (text, start_s, end_s), as the recognizer gives them


@dataclass(frozen=True)
class PhraseHit:
    category: str
    text: str  # the canonical phrase from the data file
    start_s: float
    matched: str  # the recognised words that matched
    score: float  # similarity in [0, 1]; 1.0 for exact and regular-expression matches


@dataclass(frozen=True)
class Pattern:
    text: str  # the entry as written in the data file
    kind: str  # "fuzzy", "exact" or "regex" (wildcard words become regular expressions)
    tokens: tuple[str, ...]  # normalised words; empty for regex
    regex: re.Pattern[str] | None
    exceptions: tuple[Pattern, ...] = ()

    @property
    def letters(self) -> str:
        return "".join(self.tokens)


@dataclass(frozen=True)
class Phrasebook:
    language: str
    polarity: frozenset[str]
    categories: MappingProxyType[str, tuple[Pattern, ...]]
    backchannel: tuple[Pattern, ...]
    abuse: tuple[Pattern, ...]
    spoken: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))  # "im": "I'm"


@dataclass(frozen=True)
class _Tokens:
    """Normalised words of an utterance, with where each came from."""

    words: tuple[str, ...]
    starts_s: tuple[float, ...]
    sources: tuple[int, ...]  # index of the recognizer word each token came from
    raw: tuple[str, ...]  # the recognizer words as given
    text: str  # " ".join(words), for regular expressions
    offsets: tuple[int, ...]  # character offset of each word in `text`


@dataclass(frozen=True)
class _Span:
    pattern: Pattern
    first: int  # token index, inclusive
    end: int  # token index, exclusive
    score: float


# --- normalisation ---

def normalise(text: str) -> str:
    """Lowercase, no accents, no punctuation, apostrophes dropped, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"['’`´]", "", plain)  # zo'n -> zon, can't -> cant: one word, as spoken
    plain = re.sub(r"[^\w]|_", " ", plain)
    plain = re.sub(r"([^\W\d])\1\1+", r"\1\1", plain)  # hmmm -> hmm, neeee -> nee
    return " ".join(plain.split())


def _tokens(words: str | Sequence[Word]) -> _Tokens:
    if isinstance(words, str):
        items: list[Word] = [(w, 0.0, 0.0) for w in words.split()]  # no times: start at 0
    else:
        items = list(_checked_words(words))
    out_words: list[str] = []
    starts: list[float] = []
    sources: list[int] = []
    for k, (text, start_s, _end_s) in enumerate(items):
        for token in normalise(text).split():
            out_words.append(token)
            starts.append(float(start_s))
            sources.append(k)
    offsets = []
    position = 0
    for token in out_words:
        offsets.append(position)
        position += len(token) + 1
    return _Tokens(
        words=tuple(out_words),
        starts_s=tuple(starts),
        sources=tuple(sources),
        raw=tuple(text.strip() for text, _, _ in items),
        text=" ".join(out_words),
        offsets=tuple(offsets),
    )


def _checked_words(words: Sequence[Word]) -> list[Word]:
    try:
        # Any: the caller's words are checked here, whatever they are (recognizer Word objects too)
        items: list[Any] = list(words)
    except TypeError:
        raise InputError(
            f"phrase matching needs text or a sequence of (text, start_s, end_s), "
            f"got {type(words).__name__}"
        ) from None
    for k, given in enumerate(items):
        item = given
        if all(hasattr(given, name) for name in ("text", "start_s", "end_s")):
            item = items[k] = (given.text, given.start_s, given.end_s)  # roleplay.speech.asr.Word
        ok = (
            isinstance(item, tuple | list)
            and len(item) == 3
            and isinstance(item[0], str)
            and all(isinstance(t, int | float) and not isinstance(t, bool) for t in item[1:])
        )
        if not ok:
            raise InputError(
                f"phrase matching needs words as (text, start_s, end_s), got {item!r}"
            )
    return items


# --- data files ---

def load_phrasebook(language: str) -> Phrasebook:
    """The phrase lists for `language` ("nl", "en"), read once and cached."""
    available = sorted(p.stem for p in PHRASES_DIR.glob("*.yaml"))
    if language not in available:
        raise InputError(
            f"no phrase lists for language {language!r}; available: {', '.join(available)}"
        )
    return _load_cached(language)


@functools.cache
def _load_cached(language: str) -> Phrasebook:
    return read_phrasebook(PHRASES_DIR / f"{language}.yaml")


def read_phrasebook(path: str | Path) -> Phrasebook:
    """Read and check one phrase file; a problem is an InputError naming the file and the entry."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read phrase file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InputError(f"{path}: not valid YAML{line} ({problem})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with language, categories, ...")
    missing = [k for k in ("language", "categories", "backchannel", "abuse") if k not in data]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
    if data["language"] != path.stem:
        raise InputError(f"{path}: language is {data['language']!r}, expected {path.stem!r}")
    macros = data.get("macros") or {}
    if not isinstance(macros, dict) or not all(isinstance(v, str) for v in macros.values()):
        raise InputError(f"{path}: macros must map names to regular expressions")
    polarity = data.get("polarity") or []
    if not isinstance(polarity, list) or not all(isinstance(w, str) for w in polarity):
        raise InputError(
            f"{path}: polarity must be a list of words, got {polarity!r} "
            f"(quote yes, no, true, on and off in YAML)"
        )
    categories = data["categories"]
    if not isinstance(categories, dict):
        raise InputError(f"{path}: categories must be a mapping of category to list of phrases")
    unknown = sorted(set(categories) - set(CATEGORIES))
    absent = [c for c in CATEGORIES if c not in categories]
    if unknown or absent:
        raise InputError(
            f"{path}: categories must be exactly {', '.join(CATEGORIES)}; "
            f"unknown: {', '.join(unknown) or 'none'}; missing: {', '.join(absent) or 'none'}"
        )

    def entries(key: str, value: Any) -> tuple[Pattern, ...]:
        if not isinstance(value, list) or not value:
            raise InputError(f"{path}: {key} must be a non-empty list of phrases")
        return tuple(_parse_entry(e, where=f"{path}: {key}", macros=macros) for e in value)

    spoken = data.get("spoken") or {}
    if not isinstance(spoken, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in spoken.items()):
        raise InputError(f"{path}: spoken must map list words to their written forms (quote yes, no, on, off)")
    backchannel = entries("backchannel", data["backchannel"])
    if any(p.kind == "regex" for p in backchannel):
        raise InputError(f"{path}: backchannel entries must be plain words, not re: or wildcards")
    return Phrasebook(
        language=path.stem,
        polarity=frozenset(normalise(w) for w in polarity),
        categories=MappingProxyType({c: entries(c, categories[c]) for c in CATEGORIES}),
        backchannel=backchannel,
        abuse=entries("abuse", data["abuse"]),
        spoken=MappingProxyType({normalise(k): v for k, v in spoken.items()}),
    )


def _parse_entry(entry: Any, *, where: str, macros: dict[str, str]) -> Pattern:
    if isinstance(entry, dict):
        if set(entry) - {"phrase", "except"} or "phrase" not in entry:
            raise InputError(f"{where}: entry {entry!r} must have 'phrase' and optional 'except'")
        exceptions = entry.get("except") or []
        if not isinstance(exceptions, list):
            raise InputError(f"{where}: 'except' of {entry['phrase']!r} must be a list")
        main = _parse_entry(entry["phrase"], where=where, macros=macros)
        excepts = tuple(_parse_entry(e, where=where, macros=macros) for e in exceptions)
        return Pattern(main.text, main.kind, main.tokens, main.regex, excepts)
    if not isinstance(entry, str):
        raise InputError(
            f"{where}: entry {entry!r} is a {type(entry).__name__}, expected text "
            f"(quote yes, no, true, on and off in YAML)"
        )
    if entry.startswith("re:"):
        source = entry[3:].strip()
        try:
            source = re.sub(r"\{(\w+)\}", lambda m: macros[m.group(1)], source)
            regex = re.compile(rf"(?<!\S)(?:{source})(?!\S)")
        except KeyError as exc:
            raise InputError(
                f"{where}: entry {entry!r} uses unknown macro {{{exc.args[0]}}}"
            ) from None
        except re.error as exc:
            raise InputError(
                f"{where}: entry {entry!r} is not a valid regular expression ({exc})"
            ) from None
        return Pattern(entry, "regex", (), regex)
    exact = entry.startswith("exact:")
    text = entry[len("exact:"):] if exact else entry
    if "*" in text:
        # Wildcard words: * stands for one or more letters (kut* = kutwijf, not kut itself).
        parts = [re.escape(normalise(p)) if p else "" for p in text.strip().split("*")]
        regex = re.compile(r"(?<!\S)" + r"[^\W\d_]+".join(parts) + r"(?!\S)")
        return Pattern(entry, "regex", (), regex)
    tokens = tuple(normalise(text).split())
    if not tokens:
        raise InputError(f"{where}: entry {entry!r} has no words after normalisation")
    short = len("".join(tokens)) <= EXACT_MAX_LETTERS
    return Pattern(entry, "exact" if exact or short else "fuzzy", tokens, None)


# --- matching ---

def _find(pattern: Pattern, toks: _Tokens, polarity: frozenset[str]) -> list[_Span]:
    """Non-overlapping best matches of one pattern, after its exceptions."""
    if pattern.kind == "regex":
        if pattern.regex is None:
            raise ValueError(f"pattern {pattern.text!r} is of kind regex but has no compiled expression")
        spans = [
            _regex_span(pattern, toks, m) for m in pattern.regex.finditer(toks.text) if m.group()
        ]
    else:
        spans = _window_spans(pattern, toks)
    spans = [s for s in spans if _polarity_agrees(s, toks, polarity)]
    best: list[_Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, s.end - s.first, s.first)):
        if not any(_overlap(span, kept) for kept in best):
            best.append(span)
    if pattern.exceptions:
        covers = [e for exc in pattern.exceptions for e in _find(exc, toks, polarity)]
        best = [s for s in best if not any(c.first <= s.first and c.end >= s.end for c in covers)]
    return sorted(best, key=lambda s: s.first)


def _regex_span(pattern: Pattern, toks: _Tokens, match: re.Match[str]) -> _Span:
    first = toks.offsets.index(match.start())  # the regex is anchored at word starts
    end = first + len(match.group().split())
    return _Span(pattern, first, end, 1.0)


def _window_spans(pattern: Pattern, toks: _Tokens) -> list[_Span]:
    n = len(pattern.tokens)
    letters = pattern.letters
    short = n > 1 and len(letters) <= SHORT_PHRASE_LETTERS
    cutoff = (SHORT_PHRASE_MIN_SCORE if short else FUZZY_MIN_SCORE) * 100
    spans = []
    for size in (n - 1, n, n + 1, n + 2):  # n + 2: a compound split in three ("hoe de avond")
        if size < 1:
            continue
        for first in range(len(toks.words) - size + 1):
            window = toks.words[first:first + size]
            joined = "".join(window)
            if size < n and len(joined) < len(letters):
                continue  # one word fewer is two words heard as one, not a word left out
            if pattern.kind == "exact":
                if window == pattern.tokens or joined == letters:
                    spans.append(_Span(pattern, first, first + size, 1.0))
                continue
            glued = n == 1 and size == 1 and len(letters) >= _MIN_PARTIAL_LETTERS
            score = _fuzzy_score(pattern, window, cutoff=cutoff, spaced=abs(size - n) <= 1,
                                 glued=glued)
            if score:
                spans.append(_Span(pattern, first, first + size, round(score / 100, 3)))
    return spans


def _fuzzy_score(
    pattern: Pattern, window: tuple[str, ...], *, cutoff: float, spaced: bool, glued: bool
) -> float:
    """Best similarity (0-100) of the phrase to a window of words, 0 when below `cutoff`."""
    letters = pattern.letters
    joined = "".join(window)
    score = fuzz.ratio(letters, joined, score_cutoff=cutoff)
    target = joined
    if spaced:
        score = max(score, fuzz.ratio(" ".join(pattern.tokens), " ".join(window),
                                      score_cutoff=cutoff))
    if glued and len(joined) > len(letters):
        # Whisper glues the next word on ("huisartsenpustertret" for "huisartsenpost Utrecht");
        # only a prefix or suffix counts, never a phrase inside an unrelated longer word.
        found = fuzz.partial_ratio_alignment(letters, joined, score_cutoff=max(cutoff, score))
        if found is not None and (found.dest_start == 0 or found.dest_end == len(joined)):
            score, target = found.score, joined[found.dest_start:found.dest_end]
    if not score or not _words_covered(pattern.tokens, target):
        return 0.0
    return score


def _words_covered(tokens: tuple[str, ...], heard: str) -> bool:
    """Most phrase words must be recognisably there, not only one long shared word.

    Without this, "I have an appointment" scores 0.86 against "I'll make an appointment".
    A word counts when more than half of its letters align with what was heard.
    """
    matched = [False] * sum(len(t) for t in tokens)
    for op in Indel.opcodes("".join(tokens), heard):
        if op.tag == "equal":
            matched[op.src_start:op.src_end] = [True] * (op.src_end - op.src_start)
    covered = 0
    position = 0
    for token in tokens:
        covered += 2 * sum(matched[position:position + len(token)]) > len(token)
        position += len(token)
    return covered >= MIN_WORDS_COVERED * len(tokens)


def _polarity_agrees(span: _Span, toks: _Tokens, polarity: frozenset[str]) -> bool:
    window = set(toks.words[span.first:span.end]) & polarity
    if span.pattern.kind == "regex":
        return True  # a regular expression states its own polarity
    wanted = set(span.pattern.tokens) & polarity
    if window != wanted:
        return False
    following = toks.words[span.end] if span.end < len(toks.words) else ""
    return bool(wanted) or len(span.pattern.tokens) < 2 or following not in polarity


def _overlap(a: _Span, b: _Span) -> int:
    """Number of words two spans share."""
    return max(0, min(a.end, b.end) - max(a.first, b.first))


def _matched_text(span: _Span, toks: _Tokens) -> str:
    sources = toks.sources[span.first:span.end]
    return " ".join(toks.raw[sources[0]:sources[-1] + 1])


def _resolve(found: list[tuple[str, _Span]]) -> list[tuple[str, _Span]]:
    """Overlapping hits of one category count once (best score, then longest phrase). Across
    categories, a hit is dropped when it lies inside a longer hit, or when a better-scoring hit
    covers most of it (an exact "ik zet u door" beats a fuzzy "ik zet het door" on the same words).
    """
    best: list[tuple[str, _Span]] = []
    for category, span in sorted(
        # A plain phrase names the hit better than a regular expression that found the same words.
        found,
        key=lambda cs: (-cs[1].score, cs[1].pattern.kind == "regex", -len(cs[1].pattern.text)),
    ):
        if not any(cat == category and _overlap(span, other) for cat, other in best):
            best.append((category, span))
    kept = [
        (category, span)
        for category, span in best
        if not any(
            (_overlap(span, other) == _length(span) and _length(other) > _length(span))
            or (other.score > span.score and 2 * _overlap(span, other) > _length(span))
            for _, other in best
        )
    ]
    return sorted(kept, key=lambda cs: cs[1].first)


def _length(span: _Span) -> int:
    return span.end - span.first


def find_phrases(words: str | Sequence[Word], *, language: str) -> tuple[PhraseHit, ...]:
    """Hits of the nine categories in an utterance, in spoken order.

    `words` are the recognizer's (text, start_s, end_s) words (tuples, or objects with those
    attributes such as `roleplay.speech.asr.Word`), or plain text (times then 0.0).
    """
    book = load_phrasebook(language)
    toks = _tokens(words)
    found = [
        (category, span)
        for category, patterns in book.categories.items()
        for pattern in patterns
        for span in _find(pattern, toks, book.polarity)
    ]
    return tuple(
        PhraseHit(
            category=category,
            text=span.pattern.text,
            start_s=toks.starts_s[span.first],
            matched=_matched_text(span, toks),
            score=span.score,
        )
        for category, span in _resolve(found)
    )


def is_backchannel(text: str | Sequence[Word], *, language: str) -> bool:
    """True when the whole utterance is listener tokens only ("ja", "hm hm", "oké ja")."""
    book = load_phrasebook(language)
    words = _tokens(text).words
    token_seqs = {p.tokens for p in book.backchannel}
    # reachable[i]: the first i words can be split into backchannel entries (exact words only:
    # fuzzy matching would make short real answers look like backchannels).
    reachable = [True] + [False] * len(words)
    for i in range(len(words)):
        if reachable[i]:
            for seq in token_seqs:
                if words[i:i + len(seq)] == seq:
                    reachable[i + len(seq)] = True
    return bool(words) and reachable[-1]


def abuse_terms(text: str | Sequence[Word], *, language: str) -> tuple[str, ...]:
    """The abuse entries heard, once per occurrence, in spoken order (canonical spelling)."""
    book = load_phrasebook(language)
    toks = _tokens(text)
    found = [
        ("abuse", span)
        for pattern in book.abuse
        for span in _find(pattern, toks, frozenset())  # a negated curse is still a curse
    ]
    return tuple(span.pattern.text for _, span in _resolve(found))


# --- verification against the audio ---
#
# Whisper base garbles espeak Dutch ("maat ik meel kan doen" for "wat ik wel kan doen"), so text
# matching alone misses most Dutch phrases. A phrase whose text is merely close to what was heard
# is a candidate; the recognizer then scores the heard transcript with the phrase put in place of
# the closest words, against the transcript as heard, on the turn's own audio. The phrase counts
# only when the audio supports it nearly as well as what the recognizer chose itself. The phrase is
# never put in the recognizer's prompt and never generated: it is only scored.

# Spelling or sound closeness (0-1) that makes a phrase a candidate, and the audio's support it
# needs: log P(transcript with the phrase) - log P(transcript as heard), per word of the phrase.
# Both chosen together, with the number of candidates below, for the best micro F1 on the training
# split of the accuracy set's phrase lines (roleplay bench accuracy prints the choice;
# docs/benchmarks.md has the figures). Category-specific thresholds were tried there and not kept:
# the best one per category differed from the common one by one line of about 14.
CANDIDATE_MIN_CLOSENESS = 0.70
CANDIDATE_MIN_LETTERS = 6  # shorter phrases ("nee", "hallo") are too easily close to anything
# The sound key folds 26 letters into about 15 classes, so unrelated words agree more often in
# sound than in spelling: "u bent bezorgd" is 0.73 close in sound to "en tmees groot" but 0.42 in
# spelling. A window close only in sound must also be at least this close in spelling (the best
# floor on the training split at the shipped thresholds; docs/benchmarks.md).
CANDIDATE_MIN_SPELLING = 0.55
# The audio check costs one decoder pass per candidate and its cost must not grow: at closeness
# 0.70 the closest 2 score about as many texts as the closest 3 did at 0.72 (training split micro F1
# 0.754 against 0.756 with 3, 0.721 with the former 3 / 0.72 / -2.75).
MAX_CANDIDATES_PER_TURN = 2
MIN_LOG_RATIO_PER_TOKEN = -3.5
_SCORED_CONTEXT_S = 3.0  # audio and words kept around a candidate in a long turn
_MAX_SCORED_S = 25.0  # turns up to this long are scored whole (one encoder pass)

# Sound classes for closeness: letters that Whisper confuses on synthetic Dutch ("maat ik meel"
# for "wat ik wel", "hoge haar wond" for "goedenavond") fall into one class.
_SOUND_RULES = (
    ("sch", "s"), ("ch", "g"), ("ij", "ei"), ("y", "ei"), ("ou", "au"), ("aa", "a"), ("ee", "e"),
    ("oo", "o"), ("uu", "u"), ("ie", "i"), ("oe", "u"), ("dt", "t"), ("ph", "f"), ("th", "t"),
    ("ck", "k"), ("qu", "kw"), ("c", "k"),
)
_SOUND_CLASSES = str.maketrans({"b": "p", "m": "p", "w": "p", "v": "p", "f": "p", "d": "t",
                                "z": "s", "h": "g", "x": "ks", "q": "k"})


@dataclass(frozen=True)
class Candidate:
    """A phrase whose text is close to some heard words, before the audio check."""

    category: str
    pattern: Pattern
    first: int  # token index, inclusive
    end: int  # token index, exclusive
    closeness: float  # 0-1, spelling or sound


@dataclass(frozen=True)
class CheckedCandidate:
    candidate: Candidate
    heard: str  # the recognizer's words the phrase would replace
    log_ratio_per_token: float  # the audio's support for the phrase over what was heard
    accepted: bool


@functools.lru_cache(maxsize=65536)
def sound_key(text: str) -> str:
    """A crude phonetic key: spelling variants and confusable consonants merged, no spaces."""
    key = normalise(text).replace(" ", "")
    for old, new in _SOUND_RULES:
        key = key.replace(old, new)
    return key.translate(_SOUND_CLASSES)


def phrase_candidates(words: str | Sequence[Word], *, language: str,
                      min_closeness: float = CANDIDATE_MIN_CLOSENESS,
                      min_spelling: float = CANDIDATE_MIN_SPELLING) -> tuple[Candidate, ...]:
    """Phrases from the lists whose spelling or sound is close to a window of the heard words (a
    window close in sound must not be far in spelling: `min_spelling`) and that the text matcher
    did not find there; the closest first, at most one per phrase."""
    book = load_phrasebook(language)
    toks = _tokens(words)
    found = _found_spans(book, toks)
    out: list[Candidate] = []
    for category, patterns in book.categories.items():
        for pattern in patterns:
            if pattern.kind == "regex" or len(pattern.letters) < CANDIDATE_MIN_LETTERS:
                continue
            best = _closest_window(pattern, toks, book.polarity, min_spelling)
            if best is None or best.score < min_closeness:
                continue
            if not any(c == category and _overlap(best, s) for c, s in found):
                out.append(Candidate(category, pattern, best.first, best.end, best.score))
    return tuple(sorted(out, key=lambda c: (-c.closeness, c.first)))


def _found_spans(book: Phrasebook, toks: _Tokens) -> list[tuple[str, _Span]]:
    return _resolve([
        (category, span)
        for category, patterns in book.categories.items()
        for pattern in patterns
        for span in _find(pattern, toks, book.polarity)
    ])


def _closest_window(pattern: Pattern, toks: _Tokens, polarity: frozenset[str], min_spelling: float) -> _Span | None:
    n = len(pattern.tokens)
    letters, sound = pattern.letters, sound_key(pattern.letters)
    best: _Span | None = None
    for size in range(max(1, n - 1), n + 3):
        for first in range(len(toks.words) - size + 1):
            joined = "".join(toks.words[first:first + size])
            spelling = fuzz.ratio(letters, joined) / 100
            if spelling < min_spelling:
                continue
            score = max(spelling, fuzz.ratio(sound, sound_key(joined)) / 100)
            span = _Span(pattern, first, first + size, round(score, 3))
            if (best is None or score > best.score) and _polarity_agrees(span, toks, polarity):
                best = span
    return best


def substituted(raw: Sequence[str], a: int, b: int, phrase: str) -> tuple[str, str]:
    """(the heard words raw[a:b], the whole utterance with the phrase in their place), keeping the
    heard capital and the punctuation after the span, so that only the words differ."""
    heard = " ".join(raw[a:b])
    text = phrase
    if heard[:1].isupper():
        text = text[:1].upper() + text[1:]
    trailing = re.search(r"[^\w]*$", heard)
    text += trailing.group() if trailing else ""
    return heard, " ".join([*raw[:a], text, *raw[b:]])


def spoken_form(pattern: Pattern, book: Phrasebook) -> str:
    """The phrase as a transcript would write it ("I'm going to end this call")."""
    text = pattern.text[len("exact:"):].strip() if pattern.text.startswith("exact:") else pattern.text
    return " ".join(book.spoken.get(w, w) for w in text.split())


def check_candidates(words: Sequence[Word], audio: Audio, *, audio_start_s: float, language: str,
                     scorer: TextScorer, min_log_ratio: float = MIN_LOG_RATIO_PER_TOKEN,
                     min_closeness: float = CANDIDATE_MIN_CLOSENESS) -> tuple[CheckedCandidate, ...]:
    """The candidate phrases of an utterance, each scored against its audio: log P(the heard
    words with the phrase in place of the closest ones) - log P(the heard words), per word of the
    phrase. `words` are the recognizer's (text, start_s, end_s) on the timeline on which `audio`
    starts at `audio_start_s`."""
    book = load_phrasebook(language)
    items = _checked_words(words)
    toks = _tokens(items)
    candidates = phrase_candidates(items, language=language, min_closeness=min_closeness)[:MAX_CANDIDATES_PER_TURN]
    if not candidates:
        return ()
    spans = [(toks.sources[c.first], toks.sources[c.end - 1] + 1) for c in candidates]
    if audio.duration_s <= _MAX_SCORED_S:
        # one encoder pass for the whole turn: the heard text, then each substitution
        subs = [substituted(toks.raw, a, b, spoken_form(c.pattern, book))
                for c, (a, b) in zip(candidates, spans, strict=True)]
        scores = scorer.score_texts(audio, (" ".join(toks.raw), *(t for _, t in subs)), language=language)
        ratios = [(s.log_prob - scores[0].log_prob) for s in scores[1:]]
    else:  # a long turn: each candidate with some context on either side
        subs, ratios = [], []
        for c, (a, b) in zip(candidates, spans, strict=True):
            t0, t1 = items[a][1] - _SCORED_CONTEXT_S, items[b - 1][2] + _SCORED_CONTEXT_S
            lo = min(k for k in range(a + 1) if items[k][1] >= t0)
            hi = max(k for k in range(b, len(items) + 1) if k == b or items[k - 1][2] <= t1)
            raw = toks.raw[lo:hi]
            heard, text = substituted(raw, a - lo, b - lo, spoken_form(c.pattern, book))
            start_s = max(items[lo][1] - 0.2, audio_start_s)  # a little air before the first word
            clip = audio.slice_s(start_s - audio_start_s, items[hi - 1][2] + 0.2 - audio_start_s)
            base, subst = scorer.score_texts(clip, (" ".join(raw), text), language=language)
            subs.append((heard, text))
            ratios.append(subst.log_prob - base.log_prob)
    out = []
    for c, (heard, _text), ratio in zip(candidates, subs, ratios, strict=True):
        per_word = ratio / len(c.pattern.tokens)
        out.append(CheckedCandidate(c, heard, round(per_word, 3), per_word >= min_log_ratio))
    return tuple(out)


def verify_phrases(words: Sequence[Word], audio: Audio, *, audio_start_s: float, language: str,
                   scorer: TextScorer, min_log_ratio: float = MIN_LOG_RATIO_PER_TOKEN
                   ) -> tuple[PhraseHit, ...]:
    """The text matches of `find_phrases` plus the candidates the audio supports, in spoken order.
    Overlaps are resolved as in `find_phrases`, a text match winning over a candidate."""
    book = load_phrasebook(language)
    items = _checked_words(words)
    toks = _tokens(items)
    found = [(c, s) for c, s in _found_spans(book, toks)]
    for checked in check_candidates(items, audio, audio_start_s=audio_start_s, language=language,
                                    scorer=scorer, min_log_ratio=min_log_ratio):
        if checked.accepted:
            c = checked.candidate
            # below every text match's score (>= 0.85), ordered by the audio's support
            score = min(0.84, 0.6 + 0.1 * checked.log_ratio_per_token)
            found.append((c.category, _Span(c.pattern, c.first, c.end, round(score, 3))))
    return tuple(
        PhraseHit(category=category, text=span.pattern.text, start_s=toks.starts_s[span.first],
                  matched=_matched_text(span, toks), score=span.score)
        for category, span in _resolve(found)
    )
