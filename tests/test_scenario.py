"""Scenarios: the shipped files, the loader's errors, and the caller's state machine."""

from __future__ import annotations

import copy
import io
import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roleplay.caller.scenario import (
    ADVICE_IDS,
    BEHAVIOURS,
    INTENSITIES,
    LANGUAGES,
    OUTCOMES,
    REQUIRED_SITUATIONS,
    SITUATIONS,
    CallerState,
    TurnObservation,
    choose_situation,
    cmd_scenarios_list,
    cmd_scenarios_show,
    cmd_scenarios_validate,
    initial_state,
    list_scenarios,
    load_scenario,
    next_line,
    outcome,
    react,
    scenario_from_text,
    scenarios_dir,
    should_barge_in,
)
from roleplay.core.errors import InputError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "scenarios"
SCHEMA = json.loads((SHIPPED_DIR / "scenario.schema.json").read_text(encoding="utf-8"))
SHIPPED_FILES = sorted(SHIPPED_DIR.glob("*.yaml"))


@pytest.fixture(autouse=True)
def _shipped_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLEPLAY_SCENARIOS_DIR", raising=False)


@pytest.fixture
def no_voice_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Validate voices against the built-in list, whatever voices/ holds."""
    empty = tmp_path / "no-voices"
    empty.mkdir()
    monkeypatch.setenv("ROLEPLAY_VOICES_DIR", str(empty))


# ---------------------------------------------------------------------------------------------
# Shipped scenarios


def test_shipped_scenarios_load_and_cover_every_advice_item() -> None:
    scenarios = list_scenarios()
    assert [s.path.name for s in scenarios] == [p.name for p in SHIPPED_FILES]
    assert sum(s.language == "nl" for s in scenarios) >= 6
    assert sum(s.language == "en" for s in scenarios) >= 2
    covered = {need for s in scenarios for need in s.needs}
    assert covered == set(ADVICE_IDS)
    nl = [s for s in scenarios if s.language == "nl"]
    assert {need for s in nl for need in s.needs} == set(ADVICE_IDS), (
        "Dutch alone covers every item"
    )
    assert any(s.social_media for s in nl)
    assert any("transferred" in s.ending.expected for s in nl)
    assert any("ended-by-trainee" in s.ending.expected and s.swearing for s in nl)


def test_schema_lists_match_the_loader() -> None:
    props = SCHEMA["properties"]
    assert props["needs"]["items"]["enum"] == list(ADVICE_IDS)
    assert list(props["reactions"]["properties"]) == list(BEHAVIOURS)
    assert props["ending"]["properties"]["expected"]["items"]["enum"] == list(OUTCOMES)
    assert list(props["lines"]["properties"]) == list(SITUATIONS)
    assert props["lines"]["required"] == list(REQUIRED_SITUATIONS)
    assert props["language"]["enum"] == list(LANGUAGES)
    assert props["intensity"]["enum"] == list(INTENSITIES)


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_shipped_scenario_validates_against_the_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(
        yaml.safe_load(path.read_text(encoding="utf-8")),
        SCHEMA,
        cls=jsonschema.Draft202012Validator,
    )


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_shipped_scenario_is_speakable_and_complete(path: Path) -> None:
    s = load_scenario(path)
    for situation in SITUATIONS:
        if situation == "abusive" and not s.swearing:
            assert situation not in s.lines
            continue
        if situation == "apology" and situation not in s.lines:
            continue  # optional: a caller without apology lines apologises with calming ones
        assert len(s.lines[situation]) >= 4, situation
    for group, lines in s.lines.items():
        texts = [line.text for line in lines]
        assert len(set(texts)) == len(texts), f"{group} repeats a line"
        for text in texts:
            # espeak-ng reads the lines: numbers as words, no symbols or abbreviations
            assert not re.search(r"[0-9%&@#/=+*<>]|\b(?:dr|bijv|ca|etc|nr|mr|mrs)\.", text, re.I), (
                text
            )
    assert len(s.debrief) > 100
    assert load_scenario(s.id) == s


def test_social_media_debrief_names_manager_adviser_employer_police() -> None:
    for s in list_scenarios():
        if s.social_media and s.language == "nl":
            for word in ("leidinggevende", "vertrouwenspersoon", "werkgever", "politie"):
                assert word in s.debrief


def test_scenarios_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "nl-visite-derde-keer.yaml").write_text(
        (SHIPPED_DIR / "nl-visite-derde-keer.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv("ROLEPLAY_SCENARIOS_DIR", str(tmp_path))
    assert scenarios_dir() == tmp_path
    assert [s.id for s in list_scenarios()] == ["nl-visite-derde-keer"]
    with pytest.raises(InputError, match="unknown scenario 'nl-sociale-media'"):
        load_scenario("nl-sociale-media")


# ---------------------------------------------------------------------------------------------
# Broken files: one line naming the file, the line or field, and what was expected


def base_data() -> dict:
    data = yaml.safe_load((SHIPPED_DIR / "nl-visite-derde-keer.yaml").read_text(encoding="utf-8"))
    data["id"] = "t-broken"
    return data


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "t-broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def expect_error(path: Path, field: str) -> str:
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    assert field in message, message
    return message


def _set(path: tuple, value: object):
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(*path: str | int):
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


# (case, mutation, field path in the message, whether the schema also rejects it)
BROKEN = [
    ("missing field", _delete("reason"), "reason: missing field", True),
    (
        "missing anger level",
        _delete("anger", "hang_up_at"),
        "anger.hang_up_at: missing field",
        True,
    ),
    ("unknown field", _set(("colour",), "red"), "colour: unknown field", True),
    ("wrong type bool", _set(("swearing",), "sometimes"), "swearing: expected true or false", True),
    ("wrong type mapping", _set(("anger",), 5), "anger: expected a mapping", True),
    (
        "wrong type line",
        _set(("lines", "venting", 1), 42),
        "lines.venting[1]: expected a string or {text, audio}",
        True,
    ),
    (
        "audio that is no audio",
        _set(("lines", "venting", 0), {"text": "Hoi.", "audio": "a.txt"}),
        "lines.venting[0].audio: expected an audio file (.wav",
        True,
    ),
    ("odd key", _set(("anger", "so\nme"), 1), "anger['so\\nme']: unknown field", True),
    (
        "line without text",
        _set(("lines", "venting", 0), {"audio": "x.wav"}),
        "lines.venting[0].text: missing field",
        True,
    ),
    (
        "unknown advice id",
        lambda d: d["needs"].append("be-nice"),
        "needs[7]: expected one of",
        True,
    ),
    (
        "duplicate advice id",
        lambda d: d["needs"].append("greeting"),
        "needs[7]: 'greeting' is listed twice",
        True,
    ),
    ("unknown voice", _set(("caller_voice",), "nl-robot"), "caller_voice: expected one of", False),
    (
        "voice of another language",
        _set(("caller_voice",), "en-man"),
        "caller_voice: expected a nl voice",
        False,
    ),
    (
        "start anger out of range",
        _set(("anger", "start"), 12),
        "anger.start: expected a number from 0 to 10, got 12",
        True,
    ),
    (
        "start anger below min",
        _set(("anger", "min"), 7),
        "anger.start: expected between min (7)",
        False,
    ),
    (
        "calmed above start",
        _set(("anger", "calmed_below"), 7),
        "anger.calmed_below: expected above min",
        False,
    ),
    (
        "hang up below start",
        _set(("anger", "hang_up_at"), 6),
        "anger.hang_up_at: expected above start",
        False,
    ),
    ("anger not a number", _set(("anger", "start"), "six"), "anger.start: expected a number", True),
    (
        "empty line group",
        _set(("lines", "calming"), []),
        "lines.calming: expected a non-empty list",
        True,
    ),
    ("missing line group", _delete("lines", "satisfied"), "lines.satisfied: missing field", True),
    (
        "unknown behaviour",
        _set(("reactions", "shouting"), 1),
        "reactions.shouting: unknown field",
        True,
    ),
    (
        "reaction too large",
        _set(("reactions", "argument"), 9),
        "reactions.argument: expected a number from -5 to 5",
        True,
    ),
    (
        "unknown outcome",
        _set(("ending", "expected"), ["happy"]),
        "ending.expected[0]: expected one of",
        True,
    ),
    (
        "time limit too short",
        _set(("ending", "time_limit_s"), 5),
        "ending.time_limit_s: expected a number from 30",
        True,
    ),
    (
        "id differs from file",
        _set(("id",), "other"),
        "id: expected 't-broken' (the file name)",
        False,
    ),
    ("bad id", _set(("id",), "Has Spaces"), "id: expected lower-case letters", True),
    ("swearing without abusive lines", _set(("swearing",), True), "lines.abusive: missing", False),
    (
        "custom group without trigger",
        _set(("lines", "extra"), ["Hallo."]),
        "lines.extra: a scenario-specific group",
        False,
    ),
    (
        "trigger for a standard group",
        _set(("triggers",), {"venting": {"when": "calming"}}),
        "triggers.venting: expected the name of a scenario-specific group",
        False,
    ),
    (
        "social media debrief too thin",
        _set(("social_media",), True),
        "debrief: a social-media scenario",
        False,
    ),
    (
        "transfer without warm-transfer",
        _set(("ending", "expected"), ["transferred"]),
        "needs: expected 'warm-transfer'",
        False,
    ),
    (
        "rule level above hang-up",
        _set(("rules",), {"abusive_at": 9.8}),
        "rules.abusive_at: expected above",
        False,
    ),
    ("seed is a string", _set(("seed",), "abc"), "seed: expected a whole number", True),
    ("bool is not a number", _set(("anger", "max"), True), "anger.max: expected a number", True),
    ("empty text", _set(("title",), "   "), "title: expected a non-empty string", True),
]


@pytest.mark.parametrize(
    ("case", "mutate", "field", "schema_rejects"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_file_names_file_and_field(
    case, mutate, field, schema_rejects, tmp_path, no_voice_files
) -> None:
    data = base_data()
    mutate(data)
    path = write(tmp_path, data)
    message = expect_error(path, field)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", message), (
        "a line number where the field exists"
    )
    if schema_rejects:
        assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(data), case


def test_error_points_at_the_line_of_the_bad_field(tmp_path: Path) -> None:
    text = (SHIPPED_DIR / "nl-visite-derde-keer.yaml").read_text(encoding="utf-8")
    rows = text.splitlines()
    row = next(i for i, r in enumerate(rows) if "Mijn vader is eenentachtig" in r)
    rows[row] = "    - 81"
    path = tmp_path / "nl-visite-derde-keer.yaml"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    message = expect_error(
        path, "lines.venting[1]: expected a string or {text, audio}, got the number 81"
    )
    assert message.startswith(f"{path}:{row + 1}: ")


def test_missing_audio_file_is_named(tmp_path: Path, no_voice_files) -> None:
    data = base_data()
    data["lines"]["opening"][0] = {"text": "Hallo.", "audio": "opnames/hallo.wav"}
    path = write(tmp_path, data)
    expect_error(path, "lines.opening[0].audio: expected an audio file (relative to the scenario)")
    (tmp_path / "opnames").mkdir()
    (tmp_path / "opnames" / "hallo.wav").write_bytes(b"RIFF")
    scenario = load_scenario(path)
    assert scenario.lines["opening"][0].audio_path == (tmp_path / "opnames" / "hallo.wav").resolve()
    assert scenario.lines["opening"][0].text == "Hallo."


BROKEN_TEXT = [
    ("bad yaml syntax", "id: t-broken\nlanguage: [nl\ntitle: x\n", r":\d+: invalid YAML"),
    ("tab indentation", "id: t-broken\nanger:\n\tstart: 5\n", r":\d+: invalid YAML"),
    (
        "billion laughs",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
        r":2: refused: aliases",
    ),
    ("python object tag", "id: !!python/object/apply:os.system ['echo hi']\n", r":1: invalid YAML"),
    ("empty file", "", r": empty file"),
    ("only a comment", "# nothing here\n", r": empty file"),
    ("top level list", "- id\n- language\n", r":1: \(top level\): expected a mapping, got a list"),
    ("duplicate key", "id: t-broken\nid: t-broken\n", r":2: refused: duplicate key 'id'"),
    ("deep nesting", "a: " + "[" * 100 + "]" * 100 + "\n", r":1: refused: nested deeper"),
    ("many nodes", "a: [" + ", ".join(["x"] * 30_000) + "]\n", r":1: refused: more than"),
    ("non-text key", "1: x\n", r":1: \(top level\): expected text keys"),
    ("impossible date", "id: 2024-13-45\n", r": invalid YAML value"),
]


@pytest.mark.parametrize(("case", "text", "pattern"), BROKEN_TEXT, ids=[b[0] for b in BROKEN_TEXT])
def test_broken_yaml_text_is_refused(case: str, text: str, pattern: str, tmp_path: Path) -> None:
    path = tmp_path / "t-broken.yaml"
    path.write_text(text, encoding="utf-8")
    message = expect_error(path, "")
    assert re.match(re.escape(str(path)) + pattern, message), message


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("debrief: " + "x" * 1_100_000 + "\n", encoding="utf-8")
    expect_error(path, "more than the 1 MB a scenario may have")
    with pytest.raises(InputError, match="too big"):
        scenario_from_text("x" * 1_100_000, path=path)


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("title: caf\xe9\n".encode("latin-1"))
    expect_error(path, "not UTF-8 text")
    with pytest.raises(InputError, match="no such file"):
        load_scenario(tmp_path / "absent.yaml")


def test_yes_and_no_stay_text(tmp_path: Path, no_voice_files) -> None:
    data = base_data()
    data["lines"]["venting"][0] = "No"
    path = tmp_path / "t-broken.yaml"
    path.write_text(
        yaml.safe_dump(data, allow_unicode=True).replace("'No'", "No"), encoding="utf-8"
    )
    assert load_scenario(path).lines["venting"][0].text == "No"


def test_voices_come_from_the_voices_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "nl-only-voice.yaml").write_text("engine: espeak\n", encoding="utf-8")
    (voices / "en-dutch-voice.yaml").write_text("language: nl\nrole: caller\n", encoding="utf-8")
    (voices / "nl-trainee.yaml").write_text("language: nl\nrole: trainee\n", encoding="utf-8")
    monkeypatch.setenv("ROLEPLAY_VOICES_DIR", str(voices))
    path = write(tmp_path, base_data())
    expect_error(path, "caller_voice: expected one of en-dutch-voice, nl-only-voice, got 'nl-man")
    for voice in ("nl-only-voice", "en-dutch-voice"):  # the file's language wins over the prefix
        data = base_data()
        data["caller_voice"] = voice
        assert load_scenario(write(tmp_path, data)).caller_voice == voice
    data["caller_voice"] = "nl-trainee"
    expect_error(write(tmp_path, data), "caller_voice: expected one of")


# ---------------------------------------------------------------------------------------------
# Fuzzing: the loader raises InputError and nothing else

_yamlish = st.lists(
    st.sampled_from(
        [
            "id:",
            " ",
            "\n",
            "  ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ":",
            ",",
            "&a",
            "*a",
            "!!str",
            "!!python/name:os.system",
            "'",
            '"',
            "#",
            "anger:",
            "start: 5",
            "lines:",
            "opening:",
            "nl",
            "0x1F",
            "1e999",
            ".nan",
            "2024-02-30",
            "~",
            "? ",
            "|",
            ">",
            "---",
            "...",
            "\t",
            "\x00",
            "\ud800",
            "é",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=300), _yamlish))
def test_fuzz_text_only_raises_input_error(text: str) -> None:
    try:
        scenario_from_text(text, path=Path("fuzz.yaml"))
    except InputError as e:
        assert "\n" not in str(e) and str(e).startswith("fuzz.yaml")


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.text(max_size=12), _values, max_size=8))
def test_fuzz_random_dicts_only_raise_input_error(data: dict) -> None:
    with pytest.raises(InputError) as caught:
        scenario_from_text(yaml.safe_dump(data, allow_unicode=True), path=Path("fuzz.yaml"))
    assert "\n" not in str(caught.value)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


_BASE = base_data()
_BASE_PATHS = _paths(_BASE)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(_BASE_PATHS), value=_values)
def test_fuzz_one_field_of_a_valid_scenario(where: tuple, value: object) -> None:
    data = copy.deepcopy(_BASE)
    _set(where, value)(data)
    try:
        scenario = scenario_from_text(
            yaml.safe_dump(data, allow_unicode=True), path=Path("t-broken.yaml")
        )
    except InputError as e:
        assert str(e).startswith("t-broken.yaml") and "\n" not in str(e)
    else:
        assert scenario.id == "t-broken"


# ---------------------------------------------------------------------------------------------
# The caller's state machine

CALM = frozenset({"acknowledgement", "concrete-offer"})
PROVOKE = frozenset({"interruption", "argument"})


def run_call(scenario_id: str, turns: list[frozenset[str]], *, seed: int):
    scenario = load_scenario(scenario_id)
    rng = random.Random(seed)
    state, line = next_line(scenario, initial_state(scenario), rng=rng)
    lines, changes = [line], []
    result = None
    for i, behaviours in enumerate(turns):
        state, turn_changes = react(
            scenario, state, TurnObservation(behaviours=behaviours), rng=rng
        )
        changes.extend(turn_changes)
        state, line = next_line(scenario, state, rng=rng)
        lines.append(line)
        result = outcome(scenario, state, elapsed_s=20.0 * (i + 1))
        if result:
            break
    return scenario, state, lines, changes, result


def test_acknowledging_and_concrete_offers_calm_the_caller() -> None:
    scenario, state, lines, changes, result = run_call("nl-visite-derde-keer", [CALM] * 10, seed=1)
    assert result == "calmed"
    assert state.anger < scenario.anger.calmed_below
    assert lines[0].situation == "opening" and lines[-1].situation == "satisfied"
    assert all(c.delta < 0 for c in changes)


def test_interrupting_and_arguing_make_the_caller_hang_up() -> None:
    scenario, state, lines, changes, result = run_call(
        "nl-visite-derde-keer", [PROVOKE] * 10, seed=1
    )
    assert result == "caller-hung-up"
    assert state.anger >= scenario.anger.hang_up_at
    assert state.peak_anger == state.anger
    assert lines[-1].situation == "hanging_up"
    assert "interrupted" in [line.situation for line in lines]


def test_the_same_seed_gives_the_same_call() -> None:
    turns = [CALM, PROVOKE, frozenset({"silence", "let-vent"}), frozenset({"vague"}), CALM, CALM]
    first = run_call("nl-bezorgde-moeder", turns, seed=7)
    second = run_call("nl-bezorgde-moeder", turns, seed=7)
    assert first[1:] == second[1:]


def test_every_state_change_carries_its_reason() -> None:
    scenario = load_scenario("nl-boos-op-de-organisatie")
    rng = random.Random(3)
    state, _ = next_line(scenario, initial_state(scenario), rng=rng)
    for behaviours in (frozenset(BEHAVIOURS[:4]), frozenset(BEHAVIOURS[6:]), frozenset({"louder"})):
        before = state.anger
        state, changes = react(scenario, state, TurnObservation(behaviours=behaviours), rng=rng)
        assert changes, behaviours
        anger = before
        for change in changes:
            assert change.reason in behaviours
            assert (change.delta > 0) == (scenario.reactions[change.reason] > 0)
            assert change.anger_after == pytest.approx(anger + change.delta, abs=1e-6)
            anger = change.anger_after
        assert state.anger == anger
        state, _ = next_line(scenario, state, rng=rng)


def test_anger_stays_within_the_scenario_range() -> None:
    scenario = load_scenario("nl-scheldende-beller")
    rng = random.Random(0)
    state = initial_state(scenario)
    for _ in range(10):
        state, changes = react(scenario, state, TurnObservation(behaviours=PROVOKE), rng=rng)
    assert state.anger == scenario.anger.max and changes == ()
    for _ in range(20):
        state, _ = react(scenario, state, TurnObservation(behaviours=CALM | {"boundary"}), rng=rng)
    assert state.anger == scenario.anger.min


def test_lines_do_not_repeat_until_the_group_is_used_up() -> None:
    scenario = load_scenario("nl-visite-derde-keer")
    rng = random.Random(5)
    state = CallerState(anger=5.0, peak_anger=6.5, situation="venting", turn_index=1)
    group = scenario.lines["venting"]
    texts = []
    for _ in range(len(group) * 2):
        state, line = next_line(scenario, state, rng=rng)
        texts.append(line.text)
    assert len(set(texts[: len(group)])) == len(group)
    assert len(set(texts[len(group) :])) == len(group)


def test_the_caller_reacts_to_interruption_and_silence() -> None:
    scenario = load_scenario("nl-bezorgde-moeder")
    rng = random.Random(2)
    state, _ = next_line(scenario, initial_state(scenario), rng=rng)
    interrupted, _ = react(
        scenario, state, TurnObservation(behaviours=frozenset({"interruption"})), rng=rng
    )
    assert choose_situation(scenario, interrupted) == "interrupted"
    assert next_line(scenario, interrupted, rng=rng)[1].text.startswith(
        ("Laat", "Wacht", "Nee", "U laat")
    )
    silent, changes = react(scenario, state, TurnObservation(trainee_silent=True), rng=rng)
    assert choose_situation(scenario, silent) == "silence"
    assert [c.reason for c in changes] == ["dead-silence"]


def test_abusive_lines_need_swearing_and_boundary_is_remembered() -> None:
    scenario = load_scenario("nl-scheldende-beller")
    rng = random.Random(4)
    state, _ = next_line(scenario, initial_state(scenario), rng=rng)
    state, _ = react(scenario, state, TurnObservation(behaviours=frozenset({"argument"})), rng=rng)
    state, line = next_line(scenario, state, rng=rng)
    assert line.situation == "abusive" and line.group == "abusive"
    state, _ = react(scenario, state, TurnObservation(behaviours=frozenset({"boundary"})), rng=rng)
    assert state.warned
    state, _ = react(scenario, state, TurnObservation(trainee_ended_call=True), rng=rng)
    assert outcome(scenario, state, elapsed_s=30.0) == "ended-by-trainee"

    calm_caller = load_scenario("nl-visite-derde-keer")  # swearing: false
    angry = CallerState(
        anger=9.0, peak_anger=9.0, situation="venting", turn_index=3, last_delta=0.5
    )
    assert choose_situation(calm_caller, angry) == "escalating"


def test_transfer_and_time_limit_end_the_call() -> None:
    scenario = load_scenario("nl-doorverbinden")
    rng = random.Random(0)
    state, _ = next_line(scenario, initial_state(scenario), rng=rng)
    assert outcome(scenario, state, elapsed_s=10.0) is None
    assert outcome(scenario, state, elapsed_s=scenario.ending.time_limit_s) == "time-limit"
    moved, changes = react(
        scenario, state, TurnObservation(behaviours=frozenset({"transfer"})), rng=rng
    )
    assert outcome(scenario, moved, elapsed_s=10.0) == "transferred"
    assert changes[0].reason == "transfer" and changes[0].delta < 0
    # this caller is not done when calm: he still needs the doctor
    calm = CallerState(anger=1.0, peak_anger=5.5, situation="satisfied", turn_index=4)
    assert outcome(scenario, calm, elapsed_s=10.0) is None


def test_scenario_specific_group_stands_in_once_per_line() -> None:
    scenario = load_scenario("nl-sociale-media")
    rng = random.Random(9)
    state = CallerState(anger=7.0, peak_anger=7.0, situation="opening", turn_index=1)
    groups = []
    for _ in range(6):
        state, line = next_line(scenario, state, rng=rng)
        groups.append(line.group)
        assert line.situation == "venting"
    assert groups == ["threat-online"] * 4 + ["venting"] * 2


def test_unknown_behaviour_is_an_input_error() -> None:
    scenario = load_scenario("nl-visite-derde-keer")
    with pytest.raises(InputError, match="unknown behaviours"):
        react(
            scenario,
            initial_state(scenario),
            TurnObservation(behaviours=frozenset({"yelling"})),
            rng=random.Random(0),
        )


def test_barge_in_follows_the_rules() -> None:
    scenario = load_scenario("nl-bezorgde-moeder")  # barge_in_at 6.5 after 4 s
    angry = CallerState(anger=7.0, peak_anger=7.0, situation="venting")
    assert should_barge_in(scenario, angry, trainee_speaking_s=4.5)
    assert not should_barge_in(scenario, angry, trainee_speaking_s=2.0)
    assert not should_barge_in(
        scenario, CallerState(anger=5.0, peak_anger=7.0), trainee_speaking_s=9.0
    )


# ---------------------------------------------------------------------------------------------
# CLI helpers


def test_cli_list_show_validate(tmp_path: Path) -> None:
    out = io.StringIO()
    assert cmd_scenarios_list(out) == 0
    table = out.getvalue().splitlines()
    assert table[0].split() == ["id", "language", "intensity", "title"]
    assert len(table) == 1 + len(SHIPPED_FILES)

    out = io.StringIO()
    assert cmd_scenarios_show("nl-scheldende-beller", out) == 0
    assert "Beller die gaat schelden" in out.getvalue() and "address-behaviour" in out.getvalue()

    broken = tmp_path / "t-broken.yaml"
    broken.write_text("id: t-broken\n", encoding="utf-8")
    good = SHIPPED_FILES[0]
    out = io.StringIO()
    assert cmd_scenarios_validate([good, broken], out) == 1
    rows = out.getvalue().splitlines()
    assert rows[0] == f"OK {good}"
    assert rows[1].startswith(f"{broken}:1: language: missing field")
    assert cmd_scenarios_validate([], io.StringIO()) == 0
