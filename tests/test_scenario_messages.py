"""The scenario validator's problems in the editor's language: every message code has a Dutch and an
English text with exactly its placeholders, and real broken scenarios come back from the editor's
check in the trainer's language with the right line and field, while the CLI keeps its English line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import history_with_accounts
from starlette.testclient import TestClient

import roleplay.caller.scenario as scenario_module
from roleplay.caller.scenario import FOUND_KINDS, PROBLEMS, placeholders, scenario_from_text, scenarios_dir
from roleplay.cli.main import main as cli_main
from roleplay.core.errors import CodedInputError
from roleplay.history.accounts import Accounts
from roleplay.history.store import History
from roleplay.web import auth, server, trainer
from roleplay.web.i18n import texts, translator
from roleplay.web.settings import WebSettings

SOURCE = Path(scenario_module.__file__).read_text(encoding="utf-8")
SHIPPED = (scenarios_dir() / "nl-visite-derde-keer.yaml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- every code has its texts


def codes_in_source() -> set[str]:
    """The codes the validator's source raises: the literal code of every fail, _problem and _Refused
    call (both arms of a conditional one), and the YAML slips."""
    position = {"fail": 1, "_problem": 2, "_Refused": 0}
    found: set[str] = set()
    for node in ast.walk(ast.parse(SOURCE)):
        name = getattr(node, "func", None)
        name = getattr(name, "attr", None) or getattr(name, "id", None)
        if isinstance(node, ast.Call) and name in position and len(node.args) > position[name]:
            arg = node.args[position[name]]
            options = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
            found |= {o.value for o in options if isinstance(o, ast.Constant) and isinstance(o.value, str)}
    return found | {code for _, code in scenario_module._YAML_SLIPS} | {"yaml_invalid", "yaml_control"}


def test_every_code_in_the_source_is_registered_and_every_registered_code_is_used():
    used = codes_in_source()
    assert used - set(PROBLEMS) == set(), "raised but not in PROBLEMS"
    assert set(PROBLEMS) - used == set(), "in PROBLEMS but never raised"
    assert len(PROBLEMS) >= 45


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_code_and_found_kind_has_a_text_with_exactly_its_placeholders(language):
    table = texts(language)
    for code, english in PROBLEMS.items():
        key = f"scenario_problem.{code}"
        assert key in table, key
        assert placeholders(table[key]) == placeholders(english), key
        assert "key" not in placeholders(english), "t(key, **params) takes `key` itself"
    for kind, english in FOUND_KINDS.items():
        key = f"scenario_problem.found.{kind}"
        assert key in table and placeholders(table[key]) == placeholders(english), key
    kinds = set(re.findall(r'Found\("([a-z_]+)"', SOURCE))
    assert kinds and kinds <= set(FOUND_KINDS)
    assert placeholders(table["scenario_problem.at_field"]) == {"field", "problem"}


def test_the_validator_raises_no_uncoded_error():
    """Only the functions outside the validator (looking a scenario up by id, the state machine) may
    raise a plain InputError; a new check must go through a code, so it gets its texts."""
    raising = {node.name for node in ast.walk(ast.parse(SOURCE)) if isinstance(node, ast.FunctionDef)
               and any(isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
                       and getattr(n.exc.func, "id", "") == "InputError" for n in ast.walk(node))}
    assert raising == {"load_scenario", "list_scenarios", "react"}


def test_a_code_given_the_wrong_parameters_is_a_programming_error():
    with pytest.raises(ValueError, match="number_range"):
        scenario_module._problem(Path("x.yaml"), 3, "number_range", ("anger",), lo="0", hi="10")


# --------------------------------------------------------------------------- real broken scenarios


def replaced(old: str, new: str) -> str:
    assert SHIPPED.count(old) == 1, old
    return SHIPPED.replace(old, new)


def line_of(text: str, marker: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if marker in row)


ALLOWED_TOP = ("id, language, title, who, reason, caller_voice, anger, intensity, swearing, lines, ending, "
               "needs, debrief, reactions, triggers, rules, boundaries, social_media, seed, facts")

# (case, text, marker of the line it is on or None, field, code, Dutch, English)
CASES = [
    ("unknown field", SHIPPED + "kleur: rood\n", "kleur: rood", "kleur", "unknown_field",
     f"kleur: dit veld bestaat niet (een tikfout?). Mogelijk zijn: {ALLOWED_TOP}.",
     f"kleur: there is no such field (a typing error?). Possible fields: {ALLOWED_TOP}."),
    ("missing field", re.sub(r"reason: >-\n(  .*\n)+", "", SHIPPED), "id: nl-visite-derde-keer", "reason",
     "missing_field", "reason: dit veld ontbreekt, maar is verplicht. Vul het in.",
     "reason: this field is missing, but it is required. Fill it in."),
    ("wrong type", replaced("swearing: false", "swearing: soms"), "swearing: soms", "swearing", "true_false",
     "swearing: verwacht true (ja) of false (nee), maar er staat een tekst.",
     "swearing: expected true (yes) or false (no), but it says a text."),
    ("out of range", replaced("anger: {start: 6.5,", "anger: {start: 12,"), "anger: {start: 12", "anger.start",
     "number_range", "anger.start: verwacht een getal van 0 tot 10, maar er staat 12.",
     "anger.start: expected a number from 0 to 10, but it says 12."),
    ("levels out of order", replaced("hang_up_at: 9.5", "hang_up_at: 5"), "hang_up_at: 5", "anger.hang_up_at",
     "anger_hang_up_at", "anger.hang_up_at: moet boven start (6.5) liggen en hoogstens max (10) zijn, maar er "
     "staat 5.", "anger.hang_up_at: must lie above start (6.5) and be at most max (10), but it says 5."),
    ("bad id", replaced("id: nl-visite-derde-keer", "id: Mijn Visite"), "id: Mijn Visite", "id", "id_format",
     "id: de naam mag alleen kleine letters, cijfers en streepjes (-) bevatten, maar er staat 'Mijn Visite'.",
     "id: the name may only contain lower-case letters, digits and hyphens (-), but it says 'Mijn Visite'."),
    ("not a choice", replaced("intensity: realistic", "intensity: heel erg"), "intensity: heel erg",
     "intensity", "choice", "intensity: verwacht een van deze waarden: mild, realistic, severe. Er staat "
     "'heel erg'.", "intensity: expected one of these values: mild, realistic, severe. It says 'heel erg'."),
    ("empty list", re.sub(r"needs: \[.*\]", "needs: []", SHIPPED), "needs: []", "needs", "list_is_empty",
     "needs: de lijst is leeg. Zet er minstens één waarde in.",
     "needs: the list is empty. Put at least one value in it."),
    ("swearing without abusive lines", replaced("swearing: false", "swearing: true"), "  opening:",
     "lines.abusive", "abusive_missing",
     "lines.abusive: deze groep ontbreekt: een beller die scheldt (swearing: true) heeft scheldzinnen nodig.",
     "lines.abusive: this group is missing: a caller who swears (swearing: true) needs abusive lines."),
    ("social media, debrief without the police",
     replaced("social_media: false", "social_media: true").replace(
         "debrief: >-\n",
         "debrief: >-\n  Bespreek het met je leidinggevende, de vertrouwenspersoon en je werkgever.\n"),
     "debrief: >-", "debrief", "debrief_social_media_either",
     "debrief: de beller dreigt met sociale media, dus de nabespreking moet 'politie' of 'aangifte' noemen.",
     "debrief: the caller threatens with social media, so the debrief must mention 'politie' or 'aangifte'."),
    ("duplicate key", replaced("title: Derde", "title: X\ntitle: Derde"), "title: Derde", "", "duplicate_key",
     "het veld 'title' staat hier voor de tweede keer. Haal een van de twee weg.",
     "the field 'title' appears here for the second time. Remove one of the two."),
    ("tab", replaced("  caller_name:", "\tcaller_name:"), "\tcaller_name:", "", "yaml_tab",
     "hier staat een tab. Spring in met spaties, niet met de Tab-toets. (YAML meldt: found character "
     "'\\t' that cannot start any token)",
     "there is a tab here. Indent with spaces, not with the Tab key. (YAML says: found character '\\t' "
     "that cannot start any token)"),
    ("invalid YAML", "id: [kapot\n", None, "", "yaml_unclosed",
     "een haakje of aanhalingsteken wordt niet gesloten. Kijk of elke [ een ], elke { een } en elk "
     "aanhalingsteken een partner heeft. (YAML meldt: expected ',' or ']', but got '<stream end>')",
     "a bracket or quote is not closed. Check that every [ has a ], every { a } and every quote its "
     "partner. (YAML says: expected ',' or ']', but got '<stream end>')"),
    ("empty file", "# nog niets\n", None, "", "empty_file",
     "de tekst is leeg. Begin met een voorbeeld en vul dat in.",
     "the text is empty. Start from an example and fill it in."),
]
WRONG_VOICE = replaced("caller_voice: nl-man-middle", "caller_voice: en-man")


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> dict[str, tuple[TestClient, str]]:
    """A Dutch trainer (the default language) and an English one, signed in."""
    root = tmp_path_factory.mktemp("messages")
    db = history_with_accounts(root / "history.sqlite3", {"tom": "trainer", "tess": "trainer"})
    app = server.create_app(WebSettings(db=db, calls_dir=root / "calls"))
    out = {}
    with History(db) as history:
        acc = Accounts(history)
        acc.set_language("tess", "en")
        for name, language in (("tom", "nl"), ("tess", "en")):
            user = acc.user(name)
            assert user is not None and user.language == language
            token, session = acc.start_session(user)
            client = TestClient(app, follow_redirects=False)
            client.cookies.set(auth.SESSION_COOKIE, token)
            out[language] = (client, session.csrf_token)
    return out


def check(clients, language: str, text: str) -> dict:
    client, csrf = clients[language]
    answer = client.post("/api/scenarios/validate", json={"text": text}, headers={auth.CSRF_HEADER: csrf})
    assert answer.status_code == 200
    return answer.json()


@pytest.mark.parametrize(("case", "text", "marker", "field", "code", "dutch", "english"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_editor_says_each_problem_in_the_trainers_language(clients, case, text, marker, field, code,
                                                              dutch, english):
    line = line_of(text, marker) if marker else None
    if case == "invalid YAML":
        line = 2  # PyYAML points past the end of the text, where the bracket should have closed
    for language, message in (("nl", dutch), ("en", english)):
        result = check(clients, language, text)
        assert result == {"ok": False, "line": line, "field": field, "code": code, "message": message}, language
    with pytest.raises(CodedInputError) as caught:  # the CLI's English line is another text
        scenario_from_text(text, path=trainer.EDITOR_SOURCE)
    assert str(caught.value) != english and "\n" not in str(caught.value)


def test_a_voice_of_another_language_names_the_voices_that_fit(clients):
    from roleplay.caller.scenario import known_voices

    fitting = ", ".join(v for v, lang in known_voices().items() if lang == "nl")
    line = line_of(WRONG_VOICE, "caller_voice:")
    nl = check(clients, "nl", WRONG_VOICE)
    assert nl["line"] == line and nl["message"] == (
        f"caller_voice: deze stem past niet bij de taal nl. Kies een van: {fitting}. Er staat 'en-man'.")
    en = check(clients, "en", WRONG_VOICE)
    assert en["line"] == line and en["message"] == (
        f"caller_voice: this voice does not fit the language nl. Choose one of: {fitting}. It says 'en-man'.")


def test_the_saved_page_says_the_problem_in_dutch(clients, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLEPLAY_SAVED_SCENARIOS_DIR", str(tmp_path / "saved"))
    client, csrf = clients["nl"]
    text = replaced("anger: {start: 6.5,", "anger: {start: 12,").replace("id: nl-visite-derde-keer", "id: nl-kopie")
    refused = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": text})
    assert refused.status_code == 400 and not (tmp_path / "saved").exists()
    said = " ".join(re.findall(r'<div id="validation"[^>]*>(.*?)</div>|class="error-summary".*?</div>',
                               refused.text, re.S)).replace("&#39;", "'")
    page = refused.text.replace("&#39;", "'")
    assert "Het scenario is niet opgeslagen: regel 11: anger.start: verwacht een getal van 0 tot 10, maar er " \
           "staat 12." in page
    assert "Regel 11: anger.start: verwacht een getal van 0 tot 10, maar er staat 12." in said
    empty = client.post("/scenarios/editor", data={"csrf_token": csrf, "text": "# nog niets\n"})
    assert empty.status_code == 400  # a problem of the whole text has no line to name
    assert "Het scenario is niet opgeslagen: de tekst is leeg. Begin met een voorbeeld" in empty.text


def test_every_registered_code_renders_in_both_languages_without_leftover_braces():
    for language in ("nl", "en"):
        t = translator(language)
        for code, english in PROBLEMS.items():
            params = {name: f"<{name}>" for name in placeholders(english)}
            said = t(f"scenario_problem.{code}", **params)
            assert said != f"scenario_problem.{code}" and "{" not in said.replace("{ ", ""), (language, code)
            assert all(f"<{name}>" in said for name in params), (language, code)


def test_the_loaders_own_broken_cases_come_out_in_both_languages(tmp_path, monkeypatch):
    """test_scenario.py's broken scenarios and texts (real raise paths for most codes): the line and
    field the English line names, a text for each, no placeholder left."""
    import test_scenario as ts

    monkeypatch.setenv("ROLEPLAY_VOICES_DIR", str(tmp_path))  # the built-in voice list, as there
    texts_of = [(case, ts.yaml.safe_dump(_mutated(ts, mutate), allow_unicode=True, sort_keys=False))
                for case, mutate, _, _ in ts.BROKEN]
    texts_of += [(case, text) for case, text, _ in ts.BROKEN_TEXT]
    codes = set()
    for case, text in texts_of:
        with pytest.raises(CodedInputError) as caught:
            scenario_from_text(text, path=Path("t-broken.yaml"))
        error = caught.value
        english = re.match(r"t-broken\.yaml(?::(\d+))?: (.*)$", str(error))
        assert english and error.line == (int(english[1]) if english[1] else None), case
        assert english[2].startswith(f"{error.field}: ") if error.field else True, case
        codes.add(error.code)
        for language in ("nl", "en"):
            problem = trainer.problem_of(error, Path("t-broken.yaml"), translator(language))
            assert (problem.line, problem.field, problem.code) == (error.line, error.field, error.code)
            assert "scenario_problem" not in problem.message and not re.search(r"\{[a-z_]+\}", problem.message)
            assert problem.message.startswith(f"{error.field}: ") if error.field else True, case
    assert len(codes) >= 25, sorted(codes)


def _mutated(ts, mutate) -> dict:
    data = ts.base_data()
    mutate(data)
    return data


# --------------------------------------------------------------------------- the CLI keeps its English line


def test_the_cli_prints_the_english_line_and_fails(tmp_path, capsys):
    path = tmp_path / "nl-visite-derde-keer.yaml"
    path.write_text(replaced("anger: {start: 6.5,", "anger: {start: 12,"), encoding="utf-8")
    assert cli_main(["scenarios", "validate", str(path)]) != 0
    out, err = capsys.readouterr()
    assert out == f"{path}:11: anger.start: expected a number from 0 to 10, got 12\n"
    assert "Traceback" not in out + err
