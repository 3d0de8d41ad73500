"""Personal details in caller lines, found and replaced by placeholders.

A drill made from a real call must not carry a patient's data. `redact(text, language=...)` finds
names, phone numbers, dates (of birth), addresses, postcodes, citizen service numbers (BSN), e-mail
addresses and bank accounts with regular expressions plus small word lists, and replaces each by a
placeholder in the call's language (`{NAAM}`, `{TELEFOON}`, ... / `{NAME}`, `{PHONE}`, ...). Every
replacement is returned as a `Finding` so the trainer can check it.

The rules (all run, whatever the language; the language only picks the placeholders):

- e-mail addresses; IBAN bank accounts (NL91 ABNA 0417 1643 00);
- postcodes: Dutch `1234 AB` / `1234AB`, British `SW1A 1AA`;
- dates: `12-03-1954`, `12/3/54`, `12 maart 1954`, `12 March 1954`, `March 12, 1954`, `12th of
  March 1954`; a day and month without a year, and a year alone, only after "geboren" / "born";
  a date near a birth word, or with a year at least 10 years back, is a date of birth;
- numbers of 9 to 13 digits (spaces, dashes, dots, brackets allowed between them): a BSN (or NHS
  number) after such a word or when 9 digits pass the eleven test, else a phone number (`06-12345678`,
  `020 1234567`, `+31 6 1234 5678`, `07700 900123`); 7 or 8 digits only after a phone word; five or
  more digit words in a row ("nul zes een twee ...") as a phone number; British National Insurance
  numbers;
- addresses: a street name (a capitalised word ending in straat, laan, weg, plein, gracht, ... or
  followed by Street, Road, Lane, ...) with a house number, or a capitalised Dutch street name alone;
- names: after a title ("mevrouw X", "meneer X", "de heer X", "dokter X", "Mrs X"), after an
  introduction ("met X" at the start of a sentence, "mijn naam is X", "ik heet X", "ik ben X",
  "u spreekt met X", "this is X", "my name is X", "I'm X"), a known first name (with the
  surname after it) or a common surname anywhere. A name is one to four capitalised words with
  Dutch particles (van, de, der, den, ter, 't) between them.

This finds what a recogniser writes down, not everything a person might say: the list is for the
trainer to check, and the draft says so.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

KINDS = ("name", "phone", "birth_date", "date", "address", "postcode", "bsn", "email", "iban")
PLACEHOLDERS = {
    "nl": {
        "name": "{NAAM}",
        "phone": "{TELEFOON}",
        "birth_date": "{GEBOORTEDATUM}",
        "date": "{DATUM}",
        "address": "{ADRES}",
        "postcode": "{POSTCODE}",
        "bsn": "{BSN}",
        "email": "{EMAIL}",
        "iban": "{REKENINGNUMMER}",
    },
    "en": {
        "name": "{NAME}",
        "phone": "{PHONE}",
        "birth_date": "{DATE_OF_BIRTH}",
        "date": "{DATE}",
        "address": "{ADDRESS}",
        "postcode": "{POSTCODE}",
        "bsn": "{ID_NUMBER}",
        "email": "{EMAIL}",
        "iban": "{ACCOUNT_NUMBER}",
    },
}
PLACEHOLDER_RE = re.compile(r"\{[A-Z_]+\}")
BIRTH_DATE_MIN_AGE_YEARS = 10  # a full date this far back in a GP call is someone's date of birth

# --------------------------------------------------------------------------- word lists

# Common first names (Dutch, then English). Names that are also everyday capitalised words at the
# start of a sentence ("Will", "May", "Mark", "Joke", "Wil") are left out on purpose.
FIRST_NAMES = frozenset(
    """
    Aad Adrie Anna Anne Annie Anneke Ans Anouk Arie Bart Bas Bep Bert Bram Carla Cees Cor Corrie Daan
    Dennis Dirk Els Emma Erik Esther Eva Femke Fleur Freek Gerard Gerrit Gert Greet Hanna Hans
    Hendrik Henk Herman Ilse Ineke Ingrid Jaap Jan Janneke Jeroen Johan Johanna Joop Joris Jos
    Kees Karin Klaas Koen Lars Lieke Linda Lotte Lucas Luuk Maaike Marco Marieke Marja Marloes Martijn
    Martin Maria Mieke Mien Monique Nel Niels Noor Petra Piet Pieter Remco Ria Riet Rik Rob Ruud
    Sander Sanne Sem Sjaak Sophie Stijn Theo Thijs Tineke Tom Truus Wim Willem Wilma Wout Yvonne
    Alice Amy Andrew Anthony Barbara Brian Charles Charlotte Chris Christopher Daniel David
    Deborah Donald Dorothy Edward Elizabeth Emily Fiona George Hannah Harry Helen Jack Jacob James
    Jane Jennifer Jessica John Joseph Julie Karen Kate Kevin Laura Lisa Margaret Mary Matthew Michael
    Michelle Nancy Oliver Olivia Patricia Paul Peter Rachel Richard Robert Sarah Simon Stephen
    Steven Susan Thomas Timothy William
    """.split()
)
# Common surnames, matched when capitalised. Those that are also Dutch words ("Groot", "Meer",
# "Berg") only count after a particle ("de Groot", "van den Berg"). The lower-case set is not an
# everyday word in either language, so it also counts in lower case (a recogniser writes "met jansen").
SURNAMES = frozenset(
    """
    Jansen Janssen Bakker Visser Smit Meijer Mulder Bos Vos Peters Hendriks Dekker Brouwer Dijkstra
    Smits Jacobs Vermeulen Schouten Willems Hoekstra Verhoeven Koster Postma Pietersen Kuipers
    Wouters Timmermans
    Smith Jones Williams Brown Taylor Davies Wilson Evans Johnson Roberts Robinson Thompson Hughes
    Edwards Harris Lewis Jackson Clarke Patel Murphy O'Brien Kelly
    """.split()
)
SURNAMES_AFTER_PARTICLE = frozenset(
    "Jong Vries Berg Dijk Boer Groot Wit Graaf Meer Linden Haan Heuvel Veen Broek Bruijn Bruin Beek Leeuwen "
    "Bosch Velde Wijk".split()
)
LOWER_CASE_SURNAMES = frozenset(
    "jansen janssen dijkstra hendriks meijer mulder dekker visser hoekstra verhoeven pietersen postma "
    "smith jones williams".split()
)
# Capitalised words that follow "met", "ik ben", "this is" ... without being a name.
NOT_NAMES = frozenset(
    """
    Ik Ja Nee Dit Dat Het Een Er U Uw Wij We Ze Zij Hij Mijn Onze Goedenavond Goedemorgen Goedemiddag
    Goedendag Hallo Dag Dank Sorry Oké Ok Okay Huisartsenpost Huisarts Huisartsen Dokter Doktersdienst
    Doktersassistente Assistente Triagist Spoedpost Ziekenhuis Apotheek Ambulance Meldkamer Centrale
    Politie Facebook Twitter Instagram Tiktok Google Nederland Pasen Kerst Kerstmis Pinksteren
    Maandag Dinsdag Woensdag Donderdag Vrijdag Zaterdag Zondag Januari Februari Maart April Mei Juni
    Juli Augustus September Oktober November December
    I The A An It This That My Your Our Hello Hi Good Yes No Thank Thanks Sorry Doctor Doctors Sir
    Madam Nurse Hospital Surgery Practice Police Monday Tuesday Wednesday Thursday Friday Saturday
    Sunday January February March May June July August October Not Just Very Really Calling Christmas
    Easter Dr Mr Mrs Ms Mevrouw Meneer
    """.split()
)
# Small words that start a sentence capitalised next to a name ("Met Jansen", "Hi John"): never part
# of the name when a name is widened to its neighbours (compared in lower case).
FUNCTION_WORDS = frozenset(
    """
    met van bij voor naar om op in aan en of maar want dus nou ook nog al zo toch hier daar dag hoi hallo
    ja nee oké mevrouw meneer beste bel belt zegt zei is was
    with for to at on and or but so hi hello dear yes no okay call calls said says is was
    """.split()
)
# Capitalised words with a street ending that are not streets ("Onderweg!" starts many a sentence).
NOT_STREETS = frozenset(
    "Onderweg Halfweg Snelweg Zijstraat Zijweg Omweg Uitweg Voetpad Fietspad Kerkhof Binnenhof".split()
)

_MONTHS_NL = (
    "januari februari maart april mei juni juli augustus september oktober november december "
    "jan feb mrt apr jun jul aug sep sept okt nov dec"
).split()
_MONTHS_EN = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_MONTH = "(?:" + "|".join(sorted(set(_MONTHS_NL + _MONTHS_EN), key=len, reverse=True)) + r")\.?"
_DIGIT_WORDS = (
    "nul een één twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien vijftien "
    "zestien zeventien achttien negentien twintig dertig veertig vijftig zestig zeventig tachtig "
    "negentig honderd zero oh one two three four five six seven eight nine ten eleven twelve double "
    "triple"
).split()
# Street endings; endings that also end town names (-dam, -berg, -wijk, -dal) are left out, and the
# weak ones (a "-park" or "-markt" is often a place, not an address) count only with a house number.
_STREET_SUFFIX_NL = "straatweg|straat|laan|weg|plein|gracht|kade|singel|steeg|dreef|burgwal|boulevard|plantsoen"
_STREET_SUFFIX_NL_WEAK = "dijk|hof|park|pad|markt|ring|baan|erf|wal|akker|wei|kamp|hoeve|vliet|kanaal|stede|lei"
_STREET_WORD_EN = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Way|Court|Ct|Place|Pl|Crescent|Terrace|"
    "Gardens|Grove|Square|Sq|Boulevard|Blvd|Hill|Row|Mews|Walk|Park"
)

# --------------------------------------------------------------------------- patterns

_UP = "A-ZÀ-ÖØ-Þ"
_LOW = "a-zß-öø-ÿ"
_CAP = rf"(?:O['’]|Mc|Mac)?[{_UP}][{_LOW}]+(?:['’][{_LOW}]+)?(?:-[{_UP}][{_LOW}]+)*"
_PARTICLES = r"(?i:van der|van den|van de|van 't|van|von|de|der|den|ter|ten|te|'t|le|la|du|da|di|del)"
_SURNAME = rf"(?:{_PARTICLES}\s+){{0,1}}{_CAP}"
_NAME = rf"{_SURNAME}(?:\s+{_SURNAME}){{0,3}}"
_LOWER_SURNAME = "(?:" + "|".join(sorted(LOWER_CASE_SURNAMES)) + ")"

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+(?!\w)")
_IBAN = re.compile(r"(?<!\w)[A-Z]{2}\d{2}[ ]?[A-Z]{4}(?:[ ]?\d){10}(?!\w)")
_POSTCODE_NL = re.compile(r"(?<![\w-])[1-9]\d{3}[ ]?(?!SA|SD|SS)[A-Z]{2}(?![\w])")
_POSTCODE_UK = re.compile(r"(?<!\w)[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}(?!\w)")
_NINO = re.compile(r"(?<!\w)[A-CEGHJ-PR-TW-Z]{2}[ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D](?!\w)")
_DATE_NUMERIC = re.compile(r"(?<![\d/.-])(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:\d{4}|\d{2})(?![\d/-])")
_DATE_DAY_MONTH = re.compile(
    rf"(?i)(?<!\w)(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th|e|ste|de)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<year>\d{{4}}))?(?!\w)"
)
_DATE_MONTH_DAY = re.compile(
    rf"(?i)(?<!\w){_MONTH}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{{4}}))?(?!\w)"
)
_BIRTH_WORDS = re.compile(
    r"(?i)(?:geboren|geb\.|geboortedatum|geboortejaar|verjaardag|jarig|born|birth|birthday|d\.?o\.?b\.?)"
)
_YEAR = re.compile(r"(?<![\d,.])(?:19|20)\d{2}(?![\d,.]\d)")
_NUMBER_RUN = re.compile(r"(?<![\w+(])\(?(?:\+|00)?\d(?:[ .\-/()]{0,2}\d){6,15}(?![\w])")
_PHONE_WORDS = re.compile(
    r"(?i)(?:telefoon|tel\.|nummer|mobiel|bel(?:len|t)?|terugbellen|phone|number|mobile|call|ring|contact)"
)
_BSN_WORDS = re.compile(
    r"(?i)(?:bsn|burgerservicenummer|burger\s*service\s*nummer|sofi-?nummer|citizen service number|"
    r"nhs number|national insurance|social security)"
)
_DIGIT_RUN = re.compile(
    r"(?i)(?<!\w)(?:" + "|".join(_DIGIT_WORDS) + r")(?:[\s,.-]+(?:" + "|".join(_DIGIT_WORDS) + r")){4,}(?!\w)"
)
_HOUSE_NUMBER = r"\s+\d{1,4}(?:\s?[a-zA-Z](?!\w)|-\d{1,3}|\s?(?:hoog|bis|huis))?"
_STREET_NL = re.compile(
    rf"(?<!\w)(?:[{_UP}][{_LOW}]+\s+){{0,2}}[{_UP}][{_LOW}]*(?:{_STREET_SUFFIX_NL})(?:{_HOUSE_NUMBER})?(?!\w)"
    rf"|(?<!\w)(?:[{_UP}][{_LOW}]+\s+){{0,2}}[{_UP}][{_LOW}]*(?:{_STREET_SUFFIX_NL_WEAK}){_HOUSE_NUMBER}(?!\w)"
)
_STREET_NL_LOWER = re.compile(
    rf"(?<!\w)[{_LOW}]{{3,}}(?:{_STREET_SUFFIX_NL}|{_STREET_SUFFIX_NL_WEAK}){_HOUSE_NUMBER}(?!\w)"
)
_STREET_EN = re.compile(
    rf"(?<!\w)(?:\d{{1,4}}[a-zA-Z]?,?\s+)?(?:[{_UP}][{_LOW}]+\s+){{1,3}}(?:{_STREET_WORD_EN})\.?(?!\w)"
)
_TITLE = (
    r"(?i:mevrouw|mevr\.|meneer|mnr\.|dhr\.|de heer|mw\.|juffrouw|dokter|dr\.?|mr\.?|mrs\.?|ms\.?|miss|"
    r"sir|madam|zuster|broeder)"
)
_TITLED_NAME = re.compile(rf"(?<!\w){_TITLE}\s+(?P<name>{_NAME}|{_LOWER_SURNAME}(?!\w))")
_CLAUSE_START = r"(?:^|(?<=[.,!?;:])\s*|(?i:\b(?:ja|hallo|goedenavond|goedemorgen|goedemiddag|goedendag|dag|hoi)\s+))"
_MET_NAME = re.compile(rf"{_CLAUSE_START}(?i:met)\s+(?P<name>{_NAME}|{_LOWER_SURNAME}(?!\w))")
_INTRO = (
    r"(?i:mijn na+m is|ik heet|ik ben|u spreekt met|je spreekt met|spreek ik met|dit is|hier is|"
    r"my name is|this is|i am|i'm|it's|it is|called|named|"
    r"mijn (?:vader|moeder|man|vrouw|zoon|dochter|broer|zus|opa|oma|buurman|buurvrouw|partner),?|"
    r"my (?:father|mother|husband|wife|son|daughter|brother|sister|neighbour|neighbor|partner),?)"
)
_INTRO_NAME = re.compile(rf"(?<!\w){_INTRO}\s+(?P<name>{_NAME})")
# A recogniser writes names after an introduction in lower case and often misheard ("met jonsen,
# ik ben karin jonsen" for "met Jansen, ik ben Karin Jansen"): up to two lower-case words there.
_LOWER_AFTER_INTRO = re.compile(
    rf"(?:{_CLAUSE_START}(?i:met)|(?<!\w){_INTRO})\s+(?P<name>[{_LOW}]+(?:\s+[{_LOW}]+)?)(?!\w)"
)
_KNOWN_NAMES_LOWER = frozenset(n.lower() for n in FIRST_NAMES | SURNAMES)
MISHEARD_NAME_MIN_LETTERS = 5  # one letter off a known name: only in longer words ("boos" is no "Bos")


def _heard_as_name(word: str) -> bool:
    """A known first name or surname, or one letter off one in a word of 5 letters or more."""
    from rapidfuzz.distance import Levenshtein

    if word in NOT_NAMES or word.capitalize() in NOT_NAMES:
        return False
    if word in _KNOWN_NAMES_LOWER:
        return True
    return len(word) >= MISHEARD_NAME_MIN_LETTERS and any(
        Levenshtein.distance(word, n, score_cutoff=1) <= 1 for n in _KNOWN_NAMES_LOWER)


_FIRST_NAME = re.compile(
    r"(?<!\w)(?:" + "|".join(sorted(FIRST_NAMES, key=len, reverse=True)) + rf")(?!\w)(?:\s+{_SURNAME})*"
)
_KNOWN_SURNAME = re.compile(
    rf"(?<!\w)(?:{_PARTICLES}\s+)?(?:" + "|".join(sorted(SURNAMES, key=len, reverse=True)) + r")(?![\w'])"
    rf"|(?<!\w){_PARTICLES}\s+(?:" + "|".join(sorted(SURNAMES_AFTER_PARTICLE, key=len, reverse=True)) + r")(?!\w)"
    rf"|(?<!\w){_LOWER_SURNAME}(?!\w)"
)


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    start: int  # character offsets in the original text
    end: int
    original: str
    rule: str  # which rule found it, in words, for the review list

    def placeholder(self, language: str) -> str:
        return PLACEHOLDERS.get(language, PLACEHOLDERS["en"])[self.kind]


@dataclass(frozen=True)
class Redaction:
    original: str
    text: str  # with placeholders
    findings: tuple[Finding, ...]
    language: str


# Order matters twice: overlapping candidates go to the earlier rule (a date is not a phone number),
# and within a rule to the longer match.
_PRIORITY = ("email", "iban", "postcode", "bsn", "birth_date", "date", "phone", "address", "name")


def _candidates(text: str) -> list[Finding]:
    out: list[Finding] = []

    def add(kind: str, m: re.Match[str], rule: str, group: str | int = 0) -> None:
        s, e = m.span(group)
        value = text[s:e].rstrip(" ,.")
        if value:
            out.append(Finding(kind, s, s + len(value), value, rule))

    for m in _EMAIL.finditer(text):
        add("email", m, "e-mail address")
    for m in _IBAN.finditer(text):
        add("iban", m, "bank account (IBAN)")
    for m in _POSTCODE_NL.finditer(text):
        add("postcode", m, "Dutch postcode")
    for m in _POSTCODE_UK.finditer(text):
        if any(ch.isdigit() for ch in m.group()[:4]):
            add("postcode", m, "British postcode")
    for m in _NINO.finditer(text):
        add("bsn", m, "National Insurance number")
    this_year = _dt.date.today().year
    for rx, rule in ((_DATE_NUMERIC, "date"), (_DATE_DAY_MONTH, "date"), (_DATE_MONTH_DAY, "date")):
        for m in rx.finditer(text):
            birth = _near_before(text, m.start(), _BIRTH_WORDS, 40)
            year = _year_of(m.group())
            if year is None and not birth:
                continue  # "op 12 maart" alone is an appointment, not a person
            old = year is not None and year <= this_year - BIRTH_DATE_MIN_AGE_YEARS
            kind = "birth_date" if birth or old else "date"
            add(kind, m, "date of birth" if kind == "birth_date" else rule)
    for m in _YEAR.finditer(text):  # a year alone, next to a birth word
        if _near_before(text, m.start(), _BIRTH_WORDS, 40) or _BIRTH_WORDS.search(text[m.end():m.end() + 20]):
            add("birth_date", m, "year of birth")
    for run in _NUMBER_RUN.finditer(text):
        m = run
        if run.group().startswith("(") and ")" not in run.group():
            m = re.compile(r"\d.*", re.S).search(text, run.start(), run.end()) or run  # "(06-1234..." in brackets
        digits = re.sub(r"\D", "", m.group())
        if 8 <= len(digits) <= 12 and _near_before(text, m.start(), _BSN_WORDS, 40):
            add("bsn", m, "citizen service or health number")
        elif _elfproef(digits):
            add("bsn", m, "BSN (9 digits passing the eleven test)")
        elif len(digits) >= 9 or _near_before(text, m.start(), _PHONE_WORDS, 30):
            add("phone", m, f"phone number ({len(digits)} digits)")
    for m in _DIGIT_RUN.finditer(text):
        add("phone", m, "number spoken as digit words")
    for rx, rule in ((_STREET_NL, "street"), (_STREET_NL_LOWER, "street"), (_STREET_EN, "street")):
        for m in rx.finditer(text):
            if m.group().split()[-1] in NOT_STREETS or m.group().split()[0] in NOT_STREETS:
                continue
            add("address", m, rule + (" and house number" if re.search(r"\d", m.group()) else ""))
    for rx, rule in ((_TITLED_NAME, "name after a title"), (_MET_NAME, 'name after "met"'),
                     (_INTRO_NAME, "name after an introduction")):
        for m in rx.finditer(text):
            span = _name_span(text, *m.span("name"))
            if span is not None:
                out.append(Finding("name", *span, text[span[0]:span[1]], rule))
    for m in _LOWER_AFTER_INTRO.finditer(text):
        for w in re.finditer(r"\S+", m.group("name")):
            if _heard_as_name(w.group()):
                a = m.start("name") + w.start()
                out.append(Finding("name", a, a + len(w.group()), w.group(), "name heard after an introduction"))
    for m in _FIRST_NAME.finditer(text):
        span = _name_span(text, *m.span(), first_is_name=True)
        if span is not None:
            out.append(Finding("name", *span, text[span[0]:span[1]], "known first name"))
    for m in _KNOWN_SURNAME.finditer(text):
        out.append(Finding("name", m.start(), m.end(), m.group(), "common surname"))
    return out


def _name_span(text: str, start: int, end: int, *, first_is_name: bool = False) -> tuple[int, int] | None:
    """Trim a matched name to its name words: stop at the first word that is not a name."""
    words = list(re.finditer(r"\S+", text[start:end]))
    keep_end = None
    for i, w in enumerate(words):
        word = w.group()
        if word in NOT_NAMES and not (i == 0 and first_is_name) and not re.fullmatch(_PARTICLES, word):
            break
        keep_end = start + w.end()
    if keep_end is None:
        return None
    # a name does not end in a particle ("Karin de" when the surname was not heard)
    chunk = text[start:keep_end]
    while True:
        parts = chunk.rsplit(" ", 1)
        if len(parts) == 2 and re.fullmatch(_PARTICLES, parts[1]):
            chunk = parts[0]
        else:
            break
    return (start, start + len(chunk)) if chunk.strip() and chunk.strip() not in NOT_NAMES else None


def _near_before(text: str, pos: int, rx: re.Pattern[str], window: int) -> bool:
    return rx.search(text[max(0, pos - window):pos]) is not None


def _year_of(date_text: str) -> int | None:
    m = re.search(r"(?<!\d)(\d{4})(?!\d)$", date_text.strip())
    if m:
        return int(m.group(1))
    m = re.search(r"[-/.](\d{2})$", date_text.strip())
    if m:  # a two-digit year: 54 is 1954, 12 is 2012
        yy = int(m.group(1))
        return 2000 + yy if 2000 + yy <= _dt.date.today().year else 1900 + yy
    return None


def _elfproef(digits: str) -> bool:
    """The Dutch eleven test that every BSN passes (weights 9..2, and -1 for the last digit)."""
    if len(digits) != 9 or digits.startswith("0"):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def find_pii(text: str, *, known_names: frozenset[str] = frozenset()) -> tuple[Finding, ...]:
    """The personal details in `text`, non-overlapping, in text order.

    `known_names`: name words found elsewhere in the same call (lower case); each occurrence here
    counts too, with the capitalised words right next to it ("Gita Jonsen" once "met Jonsen" was
    heard)."""
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    cands = _candidates(text)
    for word in known_names:
        for m in re.finditer(rf"(?i)(?<!\w){re.escape(word)}(?!\w)", text):
            s, e = _widen_name(text, m.start(), m.end())
            cands.append(Finding("name", s, e, text[s:e], "name heard elsewhere in the call"))
    chosen: list[Finding] = []
    for f in sorted(cands, key=lambda f: (_PRIORITY.index(f.kind), -(f.end - f.start), f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return tuple(sorted(chosen, key=lambda f: f.start))


def _widen_name(text: str, start: int, end: int) -> tuple[int, int]:
    """Take in the capitalised words (and particles) right before and after a known name word."""
    word = rf"(?:{_CAP}|{_PARTICLES})"
    def ok(w: str) -> bool:
        return w not in NOT_NAMES and w.lower() not in FUNCTION_WORDS

    while (m := re.search(rf"(?<!\w)({word})\s+$", text[:start])) and ok(m.group(1)):
        start = m.start(1)
    while (m := re.match(rf"\s+({_CAP})(?!\w)", text[end:])) and ok(m.group(1)):
        end += m.end(1)
    while (m := re.match(rf"^({_PARTICLES})\s+", text[start:end])) and m.end() < end - start:
        start += m.end()  # "de" before "Jonsen" stays when nothing capitalised precedes it
    return start, end


def name_words(findings: tuple[Finding, ...]) -> frozenset[str]:
    """The words of the names found (lower case), for `known_names`: particles and short words out."""
    out = set()
    for f in findings:
        if f.kind == "name":
            for w in re.findall(r"[\w'’-]+", f.original):
                if len(w) >= 3 and not re.fullmatch(_PARTICLES, w) and w not in NOT_NAMES:
                    out.add(w.lower())
    return frozenset(out)


def redact(text: str, *, language: str = "nl", known_names: frozenset[str] = frozenset()) -> Redaction:
    """`text` with each personal detail replaced by its placeholder, and what was replaced."""
    if language not in PLACEHOLDERS:
        raise ValueError(f"unknown language {language!r}; expected one of {', '.join(PLACEHOLDERS)}")
    findings = find_pii(text, known_names=known_names)
    out, pos = [], 0
    for f in findings:
        out.append(text[pos:f.start])
        out.append(f.placeholder(language))
        pos = f.end
    out.append(text[pos:])
    return Redaction(original=text, text="".join(out), findings=findings, language=language)


def redact_all(texts: list[str] | tuple[str, ...], *, language: str = "nl") -> tuple[Redaction, ...]:
    """Each text redacted, with the names found in any of them also replaced in all the others
    (a surname said once after "met" and later on its own)."""
    first = [find_pii(t) for t in texts]
    known = frozenset().union(*(name_words(f) for f in first)) if first else frozenset()
    return tuple(redact(t, language=language, known_names=known) for t in texts)
