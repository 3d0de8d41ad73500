"""Syllable counts: from text (spelling rules) and from audio (acoustic syllable nuclei).

The text count feeds speech and articulation rates; the acoustic count (De Jong & Wempe 2009)
cross-checks it: Whisper drops fillers, so a transcript count runs low on hesitant speech.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.core.errors import InputError

LANGUAGES = ("nl", "en")

_DIAERESIS = "\u0308"
_VOWELS = frozenset("aeiouy")

# Dutch vowel spellings that make one syllable nucleus (GUIDE section 3); longest first so that
# "ieuw" takes "ieu", not "ie". "ai", "ay", "ey", "oy" and "eau" come from common loanwords
# (mail, okay, hockey, bureau); native Dutch writes the two-syllable "a-i" with a diaeresis.
_NL_GROUPS = (
    "ieu", "eeu", "oei", "ooi", "aai", "eau",
    "aa", "ee", "oo", "uu", "ie", "oe", "eu", "ui", "ei", "ij", "ou", "au",
    "ai", "ay", "ey", "oy",
)

_NL_UNITS = (
    "nul", "een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen",
    "tien", "elf", "twaalf", "dertien", "veertien", "vijftien", "zestien", "zeventien",
    "achttien", "negentien",
)
_NL_TENS = ("", "", "twintig", "dertig", "veertig", "vijftig", "zestig", "zeventig",
            "tachtig", "negentig")
_EN_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
)
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# Symbols that are read aloud as a word.
_SYMBOL_WORDS = {
    "nl": {"%": "procent", "&": "en", "+": "plus", "€": "euro", "=": "is"},
    "en": {"%": "percent", "&": "and", "+": "plus", "€": "euro", "=": "equals", "$": "dollar"},
}

# English words the vowel-group rules get wrong and that are common in calls.
_EN_EXCEPTIONS = {
    "people": 2, "every": 2, "everyone": 3, "everything": 3, "everybody": 4, "evening": 2,
    "different": 3, "business": 2, "family": 3, "interesting": 3, "actually": 4, "really": 2,
    "area": 3, "idea": 3, "someone": 2, "something": 2, "sometimes": 2, "somewhere": 2,
    "anyone": 3, "maybe": 2, "lovely": 2, "hour": 1, "hours": 1, "our": 1, "fire": 1,
    "doctor": 2, "quiet": 2, "science": 2, "ambulance": 3, "emergency": 4, "whatever": 3,
    "forever": 3, "however": 3, "minute": 2, "minutes": 2, "immediately": 5, "wednesday": 2,
    "colleague": 2, "colleagues": 2, "okay": 2, "ok": 2, "naive": 2, "create": 2, "created": 3,
    "poem": 2, "hundred": 2, "hundreds": 2, "being": 2, "seeing": 2, "going": 2, "doing": 2,
    "toward": 1, "towards": 1,
}
# Contraction stems after which "n't" is not a syllable of its own (don't, can't, won't, aren't).
_EN_NT_NO_SYLLABLE = frozenset({"do", "ca", "wo", "are", "ai"})

# A word: letters with inner apostrophes (m'n, zo'n, don't) or a leading clitic ('t, 's); a number:
# digits with inner separators (40.000, 1,5, 10:30); or a symbol that is read aloud.
_TOKEN_RE = re.compile(r"['’]?[^\W\d_]+(?:['’][^\W\d_]+)*|[0-9]+(?:[.,:][0-9]+)*|[%&+€=$]")
_APOSTROPHES = "'’"


def count_syllables(text: str, *, language: str) -> int:
    """Syllables in `text` when read aloud: words, numbers (spelled out) and spoken symbols."""
    _check_language(language)
    if not isinstance(text, str):
        raise InputError(f"count_syllables needs text as a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)  # a decomposed ï must not split a word in two
    return sum(_count_token(m.group(), language) for m in _TOKEN_RE.finditer(text))


def count_word_syllables(word: str, *, language: str) -> int:
    """Syllables in one written word (or number); punctuation around it is ignored."""
    return count_syllables(word, language=language)


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise InputError(
            f"syllable counting: unknown language {language!r}, "
            f"expected one of {', '.join(LANGUAGES)}"
        )


def _count_token(token: str, language: str) -> int:
    if token[0] in "0123456789":  # other numeric characters (², ½) count as a word
        return sum(_count_word(w, language) for w in _number_words(token, language))
    if token in _SYMBOL_WORDS[language]:
        return _count_word(_SYMBOL_WORDS[language][token], language)
    if not any(_strip_marks(c).lower() in _VOWELS for c in token):
        return _count_vowelless(token, language)
    return _count_word(token, language)


def _count_vowelless(token: str, language: str) -> int:
    letters = [c for c in token if c not in _APOSTROPHES]
    if any(c in _APOSTROPHES for c in token):
        # Clitics: 't, 's, 'k attach to a neighbour (0); m'n, z'n, d'r are one syllable.
        return 0 if len(letters) == 1 else 1
    if token.isupper() and len(letters) > 1:
        # An abbreviation said letter by letter (GGD, HVB); only English "w" has three.
        return sum(3 if language == "en" and c.lower() == "w" else 1 for c in letters)
    return 1  # interjections: hm, pff, sst


def _strip_marks(char: str) -> str:
    return unicodedata.normalize("NFKD", char)[0]


def _letters_with_breaks(word: str) -> list[tuple[str, bool]]:
    """Lowercase base letters, each flagged when a diaeresis marks it as starting a new syllable."""
    out: list[tuple[str, bool]] = []
    for char in unicodedata.normalize("NFKD", word.lower()):
        if unicodedata.combining(char):
            if char == _DIAERESIS and out:
                out[-1] = (out[-1][0], True)
        elif char.isalpha():
            out.append((char, False))
    return out


def _count_word(word: str, language: str) -> int:
    letters = _letters_with_breaks(word)
    if language == "nl":
        return len(_dutch_nuclei(letters))
    stem = re.sub(r"n['’]t$", "", word.lower())
    if stem != word.lower():
        # didn't, isn't, couldn't: the n of "n't" is a syllable; not in don't, can't, won't.
        extra = 0 if stem in _EN_NT_NO_SYLLABLE else 1
        return _count_english(_letters_with_breaks(stem)) + extra
    return _count_english(letters)


def _is_vowel(letters: list[tuple[str, bool]], i: int) -> bool:
    char = letters[i][0]
    if char == "y":
        # y before a vowel is a consonant (yoghurt, royaal, yes); elsewhere a vowel (baby, hobby).
        return not (i + 1 < len(letters) and letters[i + 1][0] in "aeiou")
    return char in "aeiou"


def _dutch_nuclei(letters: list[tuple[str, bool]]) -> list[int]:
    """Start indices of the vowel groups: the longest listed spelling counts once."""
    text = "".join(c for c, _ in letters)
    nuclei: list[int] = []
    i = 0
    while i < len(letters):
        if not _is_vowel(letters, i):
            i += 1
            continue
        nuclei.append(i)
        i += _group_length(text, letters, i)
    return nuclei


def _group_length(text: str, letters: list[tuple[str, bool]], i: int) -> int:
    for group in _NL_GROUPS:
        end = i + len(group)
        # A diaeresis inside the span breaks the group (ruïne, beëindigen: ë may start "ei").
        if text.startswith(group, i) and not any(b for _, b in letters[i + 1:end]):
            return len(group)
    return 1


def _count_english(letters: list[tuple[str, bool]]) -> int:
    word = "".join(c for c, _ in letters)
    if word in _EN_EXCEPTIONS:
        return _EN_EXCEPTIONS[word]
    groups = list(re.finditer(r"(?:[aeiou]|y(?![aeiou]))+", word))
    count = len(groups)
    if count > 1 and _silent_final_e(word, groups[-1]):
        count -= 1
    # A silent e stays silent before a suffix (statement, careful, useless, safely).
    count -= len(re.findall(r"[aeiouy][^aeiouy]+e(?=(?:ment|ly|ful|less|ness)s?$)", word))
    # Vowel pairs that are usually two syllables (radio, media, medium, actual, video).
    count += len(re.findall(r"(?<![cgst])i[aou]|(?<![qg])ua|eo(?!u)|[^aeiou]ee?ing", word))
    return max(count, 1)


def _silent_final_e(word: str, last: re.Match[str]) -> bool:
    if last.group() != "e":
        return False
    tail = word[last.start():]
    before = word[: last.start()]
    if tail == "e":
        # -le after a consonant is syllabic (table, little); other final e is silent (make, one).
        return not (before.endswith("l") and len(before) > 1 and before[-2] not in _VOWELS)
    if tail == "es":
        # -es is a syllable only after a sibilant (places, boxes, wishes).
        return not re.search(r"(?:[sxzcg]|ch|sh)$", before)
    if tail == "ed":
        return not before.endswith(("t", "d"))  # wanted, needed keep it; called, asked don't
    return False


def _number_words(token: str, language: str) -> list[str]:
    decimal_sep, thousands_sep = (",", ".") if language == "nl" else (".", ",")
    point_word = "komma" if language == "nl" else "point"
    if re.fullmatch(rf"[0-9]{{1,3}}(?:\{thousands_sep}[0-9]{{3}})+", token):
        token = token.replace(thousands_sep, "")  # 40.000 in Dutch, 40,000 in English
    words: list[str] = []
    for k, part in enumerate(re.split(r"([.,:])", token)):
        if part in ".,:":
            if part == decimal_sep:
                words.append(point_word)
            continue
        if k > 0 and words and words[-1] == point_word:
            words.extend(_digit_words(part, language))  # 1,25: "een komma twee vijf"
        elif (len(part) > 1 and part.startswith("0")) or len(part) > 6:
            words.extend(_digit_words(part, language))  # phone numbers are read digit by digit
        else:
            words.extend(_int_words(int(part), language))
    return words


def _digit_words(digits: str, language: str) -> list[str]:
    units = _NL_UNITS if language == "nl" else _EN_UNITS
    return [units[int(d)] for d in digits]


def _int_words(n: int, language: str) -> list[str]:
    """Words for 0..999 999; Dutch glues them into one word, which the syllable count ignores."""
    nl = language == "nl"
    units, tens = (_NL_UNITS, _NL_TENS) if nl else (_EN_UNITS, _EN_TENS)
    if n < 20:
        return [units[n]]
    if n < 100:
        ten, unit = divmod(n, 10)
        if unit == 0:
            return [tens[ten]]
        return [units[unit], "en", tens[ten]] if nl else [tens[ten], units[unit]]
    if n < 1000:
        hundred, rest = divmod(n, 100)
        head = ([] if nl and hundred == 1 else [units[hundred]]) + ["honderd" if nl else "hundred"]
        return head + (_int_words(rest, language) if rest else [])
    thousand, rest = divmod(n, 1000)
    head = ([] if nl and thousand == 1 else _int_words(thousand, language))
    head.append("duizend" if nl else "thousand")
    return head + (_int_words(rest, language) if rest else [])


# --- acoustic syllable nuclei (De Jong & Wempe 2009) ---

_HOP_S = 0.010  # intensity contour time step, as in the Praat script
_WINDOW_S = 0.040  # smooths over pitch periods, yet keeps the dips between fast syllables
_MIN_F0_HZ = 60.0
_MAX_F0_HZ = 500.0
_VOICING_WINDOW_S = 0.025  # short: F0 moves within a syllable, and a long window smears it


def syllable_nuclei_s(
    audio: Audio,
    *,
    min_dip_db: float = 2.0,
    silence_db: float = -25.0,
    min_voicing: float = 0.45,
) -> tuple[float, ...]:
    """Times (s) of syllable nuclei: voiced intensity peaks standing out from the dips beside them.

    `silence_db` is relative to the 99th-percentile intensity; `min_voicing` is the normalised
    autocorrelation a peak needs in the F0 range to count as voiced (Praat's voicing threshold).
    """
    if not isinstance(audio, Audio):
        raise InputError(f"syllable_nuclei_s needs an Audio, got {type(audio).__name__}")
    if min_dip_db <= 0 or silence_db >= 0 or not 0 < min_voicing < 1:
        raise InputError(
            f"syllable_nuclei_s: need min_dip_db > 0, silence_db < 0 and 0 < min_voicing < 1, "
            f"got {min_dip_db}, {silence_db}, {min_voicing}"
        )
    samples = np.asarray(audio.samples, dtype=np.float64)
    if not np.all(np.isfinite(samples)):
        raise InputError("syllable_nuclei_s: audio contains NaN or infinite samples")
    hop = max(1, int(round(_HOP_S * audio.rate_hz)))
    window = max(2, int(round(_WINDOW_S * audio.rate_hz)))
    if len(samples) < window + hop or not np.any(samples):
        return ()
    intensity_db = _intensity_db(samples, window=window, hop=hop)
    threshold_db = max(np.percentile(intensity_db, 99) + silence_db, intensity_db.min())
    peaks = _hysteresis_peaks(intensity_db, threshold_db=threshold_db, min_dip_db=min_dip_db)
    times_s = []
    for frame in peaks:
        centre = frame * hop + window // 2
        if _periodicity(samples, centre=centre, rate_hz=audio.rate_hz) >= min_voicing:
            times_s.append(round(centre / audio.rate_hz, 4))
    return tuple(times_s)


def _intensity_db(samples: np.ndarray, *, window: int, hop: int) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    weights = np.hanning(window)
    power = (frames**2) @ weights / weights.sum()
    return np.asarray(10.0 * np.log10(power + 1e-12))  # floor at -120 dB: digital silence stays finite


def _hysteresis_peaks(
    intensity_db: np.ndarray, *, threshold_db: float, min_dip_db: float
) -> list[int]:
    """Frames of peaks at least `min_dip_db` above the preceding dip, and as much above the next.

    One pass with hysteresis: a maximum is committed only once the contour has dropped `min_dip_db`
    below it (or into silence), so ripples on a rising or falling slope never count.
    """
    peaks: list[int] = []
    dip_db = np.inf  # lowest level since the last committed peak
    best = -1  # frame of the highest level since that dip
    for i, level in enumerate(intensity_db):
        if best < 0:
            if level < dip_db:
                dip_db = level
            elif level >= dip_db + min_dip_db and level > threshold_db:
                best = i
        elif level > intensity_db[best]:
            best = i
        elif level <= intensity_db[best] - min_dip_db or level <= threshold_db:
            peaks.append(best)
            best, dip_db = -1, level
    if best >= 0:
        peaks.append(best)  # the end of the recording closes the last syllable
    return peaks


def _periodicity(samples: np.ndarray, *, centre: int, rate_hz: int) -> float:
    """Highest normalised autocorrelation at lags in the F0 range: ~1 for vowels, low for noise."""
    half = int(_VOICING_WINDOW_S * rate_hz / 2)
    max_lag = int(rate_hz / _MIN_F0_HZ)
    start = max(0, centre - half - max_lag // 2)
    frame = samples[start:start + 2 * half + max_lag]
    frame = frame - frame.mean()
    min_lag = max(1, int(rate_hz / _MAX_F0_HZ))
    n = len(frame)
    if n <= 2 * max_lag:
        max_lag = n // 2
    if max_lag <= min_lag:
        return 0.0
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(frame, size)
    corr = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    # Normalise each lag by the energy of the two overlapping parts: a correlation coefficient.
    energy = np.cumsum(frame**2)
    lags = np.arange(min_lag, max_lag + 1)
    head = energy[n - 1 - lags]  # frame[:n-lag]
    tail = energy[-1] - energy[lags - 1]  # frame[lag:]
    denom = np.sqrt(head * tail)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(denom > 0, corr[lags] / denom, 0.0)
    return float(r.max())
