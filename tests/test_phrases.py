"""Phrase matching: found in clean and misrecognised speech, never invented in neutral speech."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roleplay.analysis.phrases import (
    CATEGORIES,
    PhraseHit,
    abuse_terms,
    find_phrases,
    is_backchannel,
    load_phrasebook,
    read_phrasebook,
)
from roleplay.core.errors import InputError


def categories(text, language):
    return [hit.category for hit in find_phrases(text, language=language)]


CLEAN = {
    "nl": {
        "greeting": "Goedenavond, huisartsenpost Utrecht, u spreekt met Sanne.",
        "acknowledgement": "Wat vervelend voor u, dat snap ik.",
        "concrete-offer": "De dokter belt u binnen twintig minuten terug.",
        "vague": "Misschien, we zullen zien.",
        "argument": "Ja maar dat klopt niet.",
        "negative": "Dat is niet mogelijk.",
        "boundary": "Ik wil niet dat u scheldt.",
        "end-announcement": "Als u blijft schreeuwen, ik ga het gesprek beëindigen.",
        "transfer": "Ik verbind u door, ik heb mijn collega al ingelicht.",
    },
    "en": {
        "greeting": "Good evening, out of hours service, you're speaking to Sam.",
        "acknowledgement": "I understand that you're upset, that must be frightening.",
        "concrete-offer": "The doctor will call you back within thirty minutes.",
        "vague": "Maybe, we'll see.",
        "argument": "Yes but that's not true.",
        "negative": "That's not possible.",
        "boundary": "Please stop swearing.",
        "end-announcement": "I'm going to end this call.",
        "transfer": "I'll put you through, I've already briefed my colleague.",
    },
}


@pytest.mark.parametrize("language", ["nl", "en"])
@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_is_found_in_a_clean_sentence(language, category):
    assert set(categories(CLEAN[language][category], language)) == {category}


@pytest.mark.parametrize(
    "heard",
    [
        "Hoe de avond, huisartsenpustertret, is terecht met zanne",  # Goedenavond, ... Utrecht
        "wat kan ik, voor de dung?",  # wat kan ik voor u doen?
        "Goede avond, huisartsen post",
    ],
)
def test_greeting_survives_recognition_errors(heard):
    assert "greeting" in categories(heard, "nl")


def test_misrecognised_greeting_names_the_canonical_phrases():
    hits = find_phrases("Hoe de avond, huisartsenpustertret, is terecht met zanne", language="nl")
    assert [(h.text, h.matched) for h in hits] == [
        ("goedenavond", "Hoe de avond,"),
        ("huisartsenpost", "huisartsenpustertret,"),
    ]
    assert all(0.85 <= h.score < 1.0 for h in hits)


NEUTRAL = {
    "nl": [
        "Ik heb morgen een afspraak bij de tandarts.",
        "Mijn dochter heeft al drie dagen hoge koorts.",
        "Het weer is vandaag erg mooi, de zon schijnt.",
        "Ik woon in Utrecht en werk bij een bakkerij.",
        "Kunt u uw geboortedatum en postcode noemen?",
        "Wat is uw adres en telefoonnummer?",
        "Heeft uw dochter ook pijn in haar buik?",
        "Hoe lang heeft ze al koorts?",
        "De apotheek is tot elf uur open.",
        "Mijn man heeft gisteren de auto naar de garage gebracht.",
        "Wilt u even uw naam spellen?",
        "Het kind ademt rustig en drinkt goed.",
        "We gaan zaterdag naar het strand met de kinderen.",
        "Ik bel namens mijn moeder, zij is tachtig jaar.",
    ],
    "en": [
        "I have an appointment with the dentist tomorrow.",
        "My daughter has had a fever for three days.",
        "The weather is lovely today and the sun is shining.",
        "I live in Leeds and work at a bakery.",
        "Could you give me your date of birth and postcode?",
        "What is your address and phone number?",
        "Does she have any pain in her tummy?",
        "The pharmacy is open until eleven.",
        "My husband took the car to the garage yesterday.",
        "We are going to the beach with the children on Saturday.",
        "I am calling for my mother, she is eighty years old.",
        "How long has she had the rash?",
    ],
}


@pytest.mark.parametrize(
    ("language", "sentence"),
    [(lang, s) for lang, sentences in NEUTRAL.items() for s in sentences],
)
def test_neutral_sentences_have_no_hits(language, sentence):
    assert find_phrases(sentence, language=language) == ()


@pytest.mark.parametrize(
    ("language", "sentence", "absent"),
    [
        ("nl", "Wat ik niet kan doen is een afspraak maken.", "concrete-offer"),
        ("nl", "Ik begrijp dat niet.", "acknowledgement"),
        ("nl", "De dokter belt u niet.", "concrete-offer"),
        ("nl", "Wat ik niet kan doen.", "vague"),  # ~ "weet ik niet" by letters only
        ("en", "I can't help you with that appointment.", "concrete-offer"),
        ("en", "What I can't do is promise a visit.", "concrete-offer"),
    ],
)
def test_negated_or_similar_sounding_phrases_are_not_invented(language, sentence, absent):
    assert absent not in categories(sentence, language)


def test_model_sentence_is_acknowledgement_and_end_announcement_not_negative():
    text = ("Ik begrijp dat u boos bent maar ik kan u niet helpen als u tegen mij blijft "
            "schreeuwen.")
    assert categories(text, "nl") == ["acknowledgement", "end-announcement"]


@pytest.mark.parametrize(
    ("sentence", "category"),
    [  # what the guidance document advises, as a receptionist says it
        ("Meneer, ik sta u niet langer te woord.", "end-announcement"),
        ("Ik wil u niet verder te woord staan.", "end-announcement"),
        ("Dan leg ik de telefoon neer.", "end-announcement"),
        ("Ik spreek u aan op uw gedrag.", "boundary"),
        ("Meneer, dit gaat te ver.", "boundary"),
        ("Ik hoor dat u boos bent.", "acknowledgement"),
        ("Ik begrijp uw zorgen.", "acknowledgement"),
        ("Ik ga dat voor u regelen.", "concrete-offer"),
    ],
)
def test_guidance_phrasings_are_found(sentence, category):
    assert category in categories(sentence, "nl")


@pytest.mark.parametrize(
    "sentence",
    ["Ik leg de telefoon even op tafel.", "Hij heeft de telefoon neergelegd.", "De bus gaat te ver weg.",
     "Heeft hij last van zijn gedrag?", "Ik regel dat morgen wel."],
)
def test_ordinary_sentences_near_the_guidance_phrasings_have_no_hits(sentence):
    assert categories(sentence, "nl") == []


def test_overlapping_hits_of_one_category_count_once():
    hits = find_phrases("Ik begrijp dat u boos bent.", language="nl")
    assert [(h.category, h.text) for h in hits] == [
        ("acknowledgement", "ik begrijp dat u boos bent")
    ]


def test_exceptions_in_the_data_keep_geen_probleem_positive():
    assert categories("Dat is geen probleem.", "nl") == []
    assert categories("Daar is geen plek meer.", "nl") == ["negative"]
    assert categories("No problem at all.", "en") == []
    assert categories("No.", "en") == ["negative"]


def test_recognizer_words_give_times_and_heard_text():
    words = [
        (" Goede", 0.5, 0.8), (" avond,", 0.8, 1.1), (" huisartsenpost.", 1.2, 1.9),
        (" De", 3.0, 3.1), (" dokter", 3.1, 3.4), (" belt", 3.4, 3.6), (" u", 3.6, 3.7),
        (" om", 3.7, 3.8), (" 10", 3.8, 4.0), (" uur.", 4.0, 4.3),
    ]
    hits = find_phrases(words, language="nl")
    assert hits[0] == PhraseHit("greeting", "goedenavond", 0.5, "Goede avond,", hits[0].score)
    assert 0.9 < hits[0].score < 1.0  # "goedeavond" lacks the n
    assert [(h.category, h.start_s) for h in hits] == [
        ("greeting", 0.5), ("greeting", 1.2), ("concrete-offer", 3.0), ("concrete-offer", 3.7)
    ]
    assert hits[-1].matched == "om 10 uur."


def test_plain_text_has_times_zero():
    assert {h.start_s for h in find_phrases("Ja maar, misschien.", language="nl")} == {0.0}


@pytest.mark.parametrize("words", [[("ja", 0.0)], [(1, 0.0, 1.0)], 42, [("ja", "0", "1")]])
def test_malformed_words_are_input_errors(words):
    with pytest.raises(InputError):
        find_phrases(words, language="nl")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_plain_phrase_in_the_data_finds_its_own_category(language):
    book = load_phrasebook(language)
    for category, patterns in book.categories.items():
        for pattern in patterns:
            if pattern.kind != "regex":
                said = " ".join(pattern.tokens)
                assert category in categories(said, language), (category, said)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), language=st.sampled_from(["nl", "en"]))
def test_any_text_is_matched_without_crashing(text, language):
    for hit in find_phrases(text, language=language):
        assert hit.category in CATEGORIES
        assert 0.0 < hit.score <= 1.0
    assert isinstance(is_backchannel(text, language=language), bool)
    assert isinstance(abuse_terms(text, language=language), tuple)


# --- backchannels and abuse ---

@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("nl", "ja", True), ("nl", "Hm hm.", True), ("nl", "oké, ja", True),
        ("nl", "Hmmm", True), ("nl", "ja ja, klopt", True), ("nl", "uhu", True),
        ("nl", "ja, ik kom eraan", False), ("nl", "nee dat klopt niet", False),
        ("nl", "", False), ("nl", "...", False),
        ("en", "uh-huh", True), ("en", "Yeah, right.", True), ("en", "I see", True),
        ("en", "mm-hmm okay", True), ("en", "yes I will come", False), ("en", "see", False),
    ],
)
def test_backchannel(language, text, expected):
    assert is_backchannel(text, language=language) is expected


def test_abuse_terms_dutch():
    text = "Jij kutwijf, rot op! Achterlijke idioot, kankerlijer."
    assert abuse_terms(text, language="nl") == (
        "kut*", "rot op", "achterlijke", "idioot", "kanker*"
    )
    assert abuse_terms("Mijn vader heeft kanker, hij is kankerpatiënt.", language="nl") == ()
    assert abuse_terms("Ik wil graag een afspraak.", language="nl") == ()


def test_abuse_terms_english():
    assert abuse_terms("Shut up, you bloody idiot!", language="en") == (
        "shut up", "bloody", "idiot"
    )
    assert abuse_terms("I'm not stupid.", language="en") == ("stupid",)
    assert abuse_terms("Could the doctor come tonight?", language="en") == ()


# --- the data files ---

def test_phrasebook_is_cached_and_complete():
    book = load_phrasebook("nl")
    assert load_phrasebook("nl") is book
    assert tuple(book.categories) == CATEGORIES
    assert book.backchannel and book.abuse and "niet" in book.polarity


def test_unknown_language_names_the_available_ones():
    with pytest.raises(InputError, match=r"'fr'.*available: en, nl"):
        load_phrasebook("fr")
    with pytest.raises(InputError, match="'de'"):
        find_phrases("hallo", language="de")


GOOD = """\
language: xx
polarity: [niet]
macros: {num: '\\d+'}
categories:
  greeting: [hallo daar]
  acknowledgement: [ik begrijp het]
  concrete-offer: ['re: om {num} uur']
  vague: [misschien]
  argument: [ja maar]
  negative: [{phrase: geen, except: [geen probleem]}]
  boundary: [op deze toon]
  end-announcement: [ik hang op]
  transfer: [mijn collega]
backchannel: [ja]
abuse: ['kut*']
"""


def _write(tmp_path, text):
    path = tmp_path / "xx.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_valid_file_reads(tmp_path):
    book = read_phrasebook(_write(tmp_path, GOOD))
    assert book.language == "xx"
    assert book.categories["negative"][0].exceptions[0].tokens == ("geen", "probleem")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("greeting: [hallo daar]", "greeting: [hallo daar"), r"not valid YAML at line \d+"),
        (("  transfer: [mijn collega]\n", ""), "missing: transfer"),
        (("  transfer:", "  transfers:"), "unknown: transfers"),
        (("vague: [misschien]", "vague: [misschien, yes]"), "entry True is a bool"),
        (("['re: om {num} uur']", "['re: om ({num} uur']"), "not a valid regular expression"),
        (("{num} uur", "{getal} uur"), r"unknown macro \{getal\}"),
        (("language: xx", "language: nl"), "language is 'nl', expected 'xx'"),
        (("backchannel: [ja]", "backchannel: []"), "backchannel must be a non-empty list"),
        (("vague: [misschien]", "vague: ['...']"), "no words after normalisation"),
        (("except: [geen probleem]", "unless: [geen probleem]"), "'phrase' and optional 'except'"),
        (("polarity: [niet]", "polarity: niet"), "polarity must be a list"),
        (("backchannel: [ja]", "backchannel: ['ja*']"), "backchannel entries must be plain"),
    ],
)
def test_broken_files_name_the_file_and_the_problem(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InputError, match=message) as caught:
        read_phrasebook(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_phrasebook(tmp_path / "xx.yaml")


def test_word_objects_with_text_and_times_are_accepted():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Word:  # the shape of roleplay.speech.asr.Word
        text: str
        start_s: float
        end_s: float

    hits = find_phrases([Word(" Ja", 1.0, 1.2), Word(" maar", 1.2, 1.5)], language="nl")
    assert [(h.category, h.start_s, h.matched) for h in hits] == [("argument", 1.0, "Ja maar")]
