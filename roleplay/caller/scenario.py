"""Scenarios: who calls, why, how angry, and how the caller reacts to the trainee.

A scenario is a YAML file in `scenarios/` (editor schema: `scenarios/scenario.schema.json`). The
loader checks it fully and names the file, line and field of the first problem it finds.

The caller's state machine is pure and seeded: the same scenario, observations and seed give the
same call. A session runs it like this:

    state, line = next_line(scenario, initial_state(scenario), rng=rng)   # the opening
    loop:  play line; stop if outcome(...)                                  # hung up, calmed, time
           observe the trainee's turn; state, changes = react(...); stop if outcome(...)
           state, line = next_line(scenario, state, rng=rng)
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Formatter
from types import MappingProxyType
from typing import Any, NoReturn, TextIO

import yaml

from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import CodedInputError, Found, InputError, ProblemParam
from roleplay.core.paths import data_dir, saved_scenarios_dir

LANGUAGES = ("nl", "en")
INTENSITIES = ("mild", "realistic", "severe")
DEFAULT_VOICES = ("nl-man-middle", "nl-woman-young", "nl-man-old", "nl-woman-old", "en-man")
OUTCOMES = ("calmed", "ended-by-trainee", "transferred", "caller-hung-up", "time-limit")

SITUATIONS = (
    "opening",
    "venting",
    "escalating",
    "calming",
    "abusive",
    "satisfied",
    "hanging_up",
    "interrupted",
    "silence",
    "apology",
)
REQUIRED_SITUATIONS = ("opening", "venting", "calming", "satisfied", "hanging_up")
# Where the caller's words come from when a scenario leaves an optional group out.
FALLBACK_SITUATION = MappingProxyType(
    {
        "abusive": "escalating",
        "interrupted": "escalating",
        "escalating": "venting",
        "silence": "venting",
        "apology": "calming",
    }
)

# How each trainee behaviour moves the caller's anger (0..10 scale); negative calms.
DEFAULT_REACTIONS = MappingProxyType(
    {
        "acknowledgement": -0.6,
        "concrete-offer": -0.9,
        "let-vent": -0.5,
        "silence": -0.4,
        "boundary": -0.4,
        "end-announcement": -1.0,  # when the caller stops (see Boundaries); else it is shrugged off
        "transfer": -0.8,  # a warm transfer: told, and the colleague briefed
        "cold-transfer": 0.6,  # put through without a word to the colleague: the story again
        "interruption": 0.9,
        "argument": 0.8,
        "negative": 0.4,
        "vague": 0.5,
        "louder": 0.7,
        "faster": 0.4,
        "dead-silence": 0.6,
    }
)
BEHAVIOURS = tuple(DEFAULT_REACTIONS)
# Intensity scales how hard provocations land; calming behaviours are not scaled.
PROVOKE_FACTOR = MappingProxyType({"mild": 0.75, "realistic": 1.0, "severe": 1.25})

# Rule defaults that a scenario's `rules:` may override.
DEFAULT_ABUSIVE_BELOW_HANG_UP = 1.5  # abusive_at defaults to hang_up_at minus this
DEFAULT_BARGE_IN_BELOW_HANG_UP = 2.0  # barge_in_at defaults to hang_up_at minus this
DEFAULT_BARGE_IN_AFTER_S = 6.0
DEFAULT_VENTING_TURNS = 2
DEFAULT_VARIABILITY = 0.2
IGNORED_DELTA = 0.3  # a boundary or end announcement the caller shrugs off provokes a little

# What a caller can be asked, and the scenario states (`facts:`); questions/<language>.yaml maps
# the receptionist's questions onto these.
FACT_IDS = (
    "caller_name",  # who is calling
    "patient",  # for whom: "voor mezelf" or "voor mijn dochter Sanne"
    "patient_name",  # the patient's name when it is someone else
    "date_of_birth",  # the patient's
    "address",
    "phone",
    "gp",  # the patient's own GP
    "complaint",
    "since",  # since when
    "medication",
    "allergies",
    "promised",  # what was promised before (an earlier call)
)
MAX_FACT_CHARS = 200
ANNOUNCEMENT_REACTIONS = ("stop", "carry-on", "hang-up")

# A social-media debrief must point to these (any word of each group), per language.
SOCIAL_MEDIA_DEBRIEF_WORDS = MappingProxyType(
    {
        "nl": (
            ("leidinggevende",),
            ("vertrouwenspersoon",),
            ("werkgever",),
            ("politie", "aangifte"),
        ),
        "en": (
            ("manager",),
            ("confidential adviser", "confidential counsellor"),
            ("employer",),
            ("police",),
        ),
    }
)

MAX_FILE_BYTES = 1_000_000
MAX_YAML_NODES = 20_000  # a full scenario has about 1,000
MAX_YAML_DEPTH = 12
MAX_LINE_CHARS = 600
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")  # what roleplay.audio.clip reads
ANGER_SCALE = (0.0, 10.0)
REACTION_RANGE = (-5.0, 5.0)
TIME_LIMIT_RANGE_S = (30.0, 3600.0)
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_GROUP_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


# ---------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Line:
    text: str
    audio_path: Path | None = None  # a trainer's own recording, resolved against the scenario


@dataclass(frozen=True)
class Anger:
    start: float
    min: float
    max: float
    hang_up_at: float  # the caller hangs up when anger reaches this
    calmed_below: float  # the call counts as calmed when anger falls below this


@dataclass(frozen=True)
class Rules:
    abusive_at: float  # a swearing caller turns abusive from this anger on
    barge_in_at: float  # from this anger on the caller talks over a long trainee turn
    barge_in_after_s: float  # ... that has lasted this long
    venting_turns: int  # the caller keeps venting for this many trainee turns unless provoked
    variability: float  # random spread of each reaction, as a fraction of its delta


@dataclass(frozen=True)
class Boundaries:
    """How the caller takes the seed's sequence: name the behaviour, announce the end, end."""

    ignore_first: int  # boundaries the caller shrugs off before one reaches him
    stop_below: float  # at an end announcement below this anger the caller stops and apologises
    hang_up_from: float  # ... from this anger on he hangs up; in between he carries on


@dataclass(frozen=True)
class Trigger:
    """A scenario-specific line group that stands in for a standard situation at high anger."""

    group: str
    when: str
    min_anger: float


@dataclass(frozen=True)
class Ending:
    expected: tuple[str, ...]  # outcomes that count as a good end of this call
    time_limit_s: float


@dataclass(frozen=True)
class Scenario:
    id: str
    path: Path
    language: str
    title: str
    who: str
    reason: str
    caller_voice: str
    anger: Anger
    intensity: str
    swearing: bool
    lines: Mapping[str, tuple[Line, ...]]
    reactions: Mapping[str, float]  # every behaviour: the scenario's value or the default
    triggers: tuple[Trigger, ...]
    rules: Rules
    boundaries: Boundaries
    ending: Ending
    needs: tuple[str, ...]
    social_media: bool
    debrief: str
    seed: int | None
    facts: Mapping[str, str] = field(default_factory=dict)  # FACT_IDS -> what the caller answers


# ---------------------------------------------------------------------------------------------
# Where scenarios and voices live


def scenarios_dir() -> Path:
    return data_dir("scenarios", env="ROLEPLAY_SCENARIOS_DIR")


def voices_dir() -> Path:
    return data_dir("voices", env="ROLEPLAY_VOICES_DIR")


def known_voices() -> Mapping[str, str]:
    """Caller voice id -> language, from the voice files in `voices/` (trainee voices left out),
    or the fixed list while there are none."""
    directory = voices_dir()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        return {v: _voice_language(v, {}) for v in DEFAULT_VOICES}
    voices = {}
    for path in files:
        try:
            data, _ = _parse_yaml(path.read_text(encoding="utf-8"), path)
        except (InputError, OSError, UnicodeDecodeError):
            data = {}  # the voice loader reports a broken voice file; here the id is enough
        info = data if isinstance(data, dict) else {}
        if info.get("role", "caller") != "trainee":
            voices[path.stem] = _voice_language(path.stem, info)
    return voices


def _voice_language(voice_id: str, info: Mapping[str, Any]) -> str:
    language = info.get("language")
    return language if isinstance(language, str) else voice_id.split("-", 1)[0]


# ---------------------------------------------------------------------------------------------
# Safe YAML: no aliases (billion laughs), bounded size and depth, YAML 1.2 booleans


class _Refused(Exception):
    def __init__(self, code: str, mark: yaml.Mark | None, **params: str) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
        self.mark = mark


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _Refused("refused_alias", self.peek_event().start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _Refused("refused_nodes", self.peek_event().start_mark, limit=str(MAX_YAML_NODES))
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(
                    "refused_depth", self.peek_event().start_mark, limit=str(MAX_YAML_DEPTH)
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 reads yes/no/on/off as booleans, which would turn a caller's "No" into False.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_Path = tuple[str | int, ...]

# ---------------------------------------------------------------------------------------------
# The validator's problems: code -> the English text the CLI prints after file, line and field.
# The web editor words each code in the page's language (web/texts/*.yaml, `scenario_problem.`),
# so a code is added here and there together (tests/test_scenario_messages.py checks).

PROBLEMS = MappingProxyType({
    "refused_alias": "refused: aliases (*name) are not allowed in a scenario",
    "refused_nodes": "refused: more than {limit} YAML nodes",
    "refused_depth": "refused: nested deeper than {limit} levels",
    "duplicate_key": "refused: duplicate key {name}",
    "empty_file": "empty file, expected a scenario (a YAML mapping)",
    # PyYAML's own English is kept as `detail`; the code says which common slip it is
    "yaml_tab": "invalid YAML: {detail}",
    "yaml_colon": "invalid YAML: {detail}",
    "yaml_missing_colon": "invalid YAML: {detail}",
    "yaml_unclosed": "invalid YAML: {detail}",
    "yaml_tag": "invalid YAML: {detail}",
    "yaml_control": "invalid YAML: {detail}",
    "yaml_invalid": "invalid YAML: {detail}",
    "yaml_value": "invalid YAML value: {detail}",
    "too_big": "more than {mb} MB, too big for a scenario",
    "file_too_big": "{size} bytes, more than the {mb} MB a scenario may have",
    "is_directory": "is a directory, expected a scenario file (.yaml)",
    "no_such_file": "no such file, expected a scenario (.yaml)",
    "not_utf8": "not UTF-8 text (byte {byte}), expected a YAML scenario",
    "not_mapping": "expected a mapping, got {got}",
    "key_not_text": "expected text keys, got key {name}",
    "unknown_field": "unknown field (expected one of: {allowed})",
    "missing_field": "missing field",
    "text_empty": "expected a non-empty string, got {got}",
    "text_is_empty": "expected a non-empty string, got an empty string",
    "text_too_long": "expected at most {limit} characters, got {count}",
    "number_range": "expected a number from {lo} to {hi}, got {got}",
    "whole_number_range": "expected a whole number from {lo} to {hi}, got {got}",
    "true_false": "expected true or false, got {got}",
    "choice": "expected one of {choices}, got {got}",
    "list_empty": "expected a non-empty list, got {got}",
    "list_is_empty": "expected a non-empty list, got a list",
    "listed_twice": "{item} is listed twice",
    "id_format": "expected lower-case letters, digits and '-', got {got}",
    "id_file_name": "expected {expected} (the file name), got {got}",
    "voice_language": "expected a {language} voice ({voices}), got {got}",
    "needs_advice": "expected {advice}, since ending.expected has {outcome}",
    "debrief_social_media": "a social-media scenario's debrief must mention '{word}'",
    "debrief_social_media_either": "a social-media scenario's debrief must mention '{word} or {other}'",
    "anger_max": "expected more than min ({min}), got {got}",
    "anger_start": "expected between min ({min}) and max ({max}), got {got}",
    "anger_calmed_below": "expected above min ({min}) and below start ({start}), got {got}",
    "anger_hang_up_at": "expected above start ({start}) and at most max ({max}), got {got}",
    "group_name": "expected a situation name of lower-case letters, digits, '_' and '-'",
    "lines_empty": "expected a non-empty list of caller lines, got {got}",
    "lines_is_empty": "expected a non-empty list of caller lines, got an empty list",
    "abusive_missing": "missing: a caller with swearing: true needs abusive lines",
    "abusive_unused": "abusive lines are only spoken when swearing is true",
    "line_type": "expected a string or {{text, audio}}, got {got}",
    "audio_suffix": "expected an audio file ({suffixes}), got {got}",
    "audio_missing": "expected an audio file (relative to the scenario), {file} does not exist",
    "trigger_group": "expected the name of a scenario-specific group in lines ({groups})",
    "trigger_no_groups": "expected the name of a scenario-specific group in lines (there are none)",
    "trigger_missing": "a scenario-specific group needs an entry triggers.{group} saying when it is used",
    "trigger_abusive": "the caller is never abusive when swearing is false; expected another situation",
    "trigger_below": "expected below {ceiling}: the caller is never {when} at anger {got} or more, "
                     "so these lines would never be said",
    "trigger_at_most": "expected at most {ceiling}: the caller is never {when} at anger {got} or "
                       "more, so these lines would never be said",
    "rule_level": "expected above anger.calmed_below ({calmed_below}) and at most anger.hang_up_at "
                  "({hang_up_at}), got {got}",
    "rule_level_default": "expected above anger.calmed_below ({calmed_below}) and at most "
                          "anger.hang_up_at ({hang_up_at}), got {got} (the default, hang_up_at - {below})",
    "hang_up_from": "expected at least stop_below ({stop_below}), got {got}",
})
# How a Found reads in the English message.
FOUND_KINDS = MappingProxyType({
    "nothing": "nothing",
    "true_false": "true/false",
    "number": "the number {value}",
    "text": "a string",
    "list": "a list",
    "mapping": "a mapping",
    "other": "a {value}",
})
# PyYAML's problem text -> the slip it points to (first match wins); anything else: yaml_invalid.
_YAML_SLIPS = (
    ("'\\t'", "yaml_tab"),
    ("mapping values are not allowed here", "yaml_colon"),
    ("could not find expected ':'", "yaml_missing_colon"),
    ("found unexpected end of stream", "yaml_unclosed"),
    ("expected ',' or ", "yaml_unclosed"),
    ("could not determine a constructor for the tag", "yaml_tag"),
)


def placeholders(template: str) -> frozenset[str]:
    """The {names} a message template fills in."""
    return frozenset(name for _, name, _, _ in Formatter().parse(template) if name)


def _yaml_code(problem: str) -> str:
    return next((code for text, code in _YAML_SLIPS if text in problem), "yaml_invalid")


def _english(param: ProblemParam) -> str:
    return FOUND_KINDS[param.kind].format(value=param.value) if isinstance(param, Found) else param


def _problem(source: Path, line: int | None, code: str, path: _Path | None = None, /,
             **params: ProblemParam) -> CodedInputError:
    """The validator's error for `code`: str() is the English `SOURCE[:LINE]: [FIELD: ]TEXT`; `path`
    None is a problem of the text as a whole (no field), () the top level."""
    template = PROBLEMS[code]
    if set(params) != placeholders(template):  # a programming slip, caught by the tests
        raise ValueError(f"problem {code!r} takes {sorted(placeholders(template))}, got {sorted(params)}")
    where = f":{line}" if line is not None else ""
    said = "" if path is None else f"{_dotted(path)}: "
    text = template.format(**{k: _english(v) for k, v in params.items()})
    return CodedInputError(f"{source}{where}: {said}{text}", code=code, params=params, line=line,
                           field=_dotted(path) if path else "")


def _collect_marks(node: yaml.Node, path: _Path, marks: dict[_Path, int]) -> None:
    """Line number (1-based) of every field, so errors can point into the file."""
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # the checker rejects non-string keys
            if key_node.value in seen:
                raise _Refused("duplicate_key", key_node.start_mark, name=repr(key_node.value))
            seen.add(key_node.value)
            _collect_marks(value_node, (*path, key_node.value), marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_marks(item, (*path, i), marks)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _parse_yaml(text: str, source: Path) -> tuple[Any, dict[_Path, int]]:
    marks: dict[_Path, int] = {}
    loader = None
    try:
        loader = _Loader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
        if node is None:
            raise _problem(source, None, "empty_file")
        _collect_marks(node, (), marks)
        data = loader.construct_document(node)
    except _Refused as e:
        raise _problem(source, e.mark.line + 1 if e.mark else None, e.code, **e.params) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = _one_line(e.problem or e.context or "not valid YAML")
        raise _problem(source, mark.line + 1 if mark else None, _yaml_code(problem),
                       detail=problem) from None
    except yaml.YAMLError as e:  # reader errors: control characters and the like
        code = "yaml_control" if isinstance(e, yaml.reader.ReaderError) else "yaml_invalid"
        raise _problem(source, None, code, detail=_one_line(e)) from None
    except (ValueError, OverflowError) as e:  # e.g. a date such as 2024-13-45
        raise _problem(source, None, "yaml_value", detail=_one_line(e)) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, marks


# ---------------------------------------------------------------------------------------------
# Checking: one line per error, naming file, line and field


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) or not _PLAIN_KEY_RE.fullmatch(part):
            out += f"[{part!r}]"  # repr keeps odd keys (spaces, newlines) on one line
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _kind(value: object) -> Found:
    if value is None:
        return Found("nothing")
    if isinstance(value, bool):
        return Found("true_false")
    if isinstance(value, (int, float)):
        return Found("number", str(value))
    if isinstance(value, str):
        return Found("text")
    if isinstance(value, list):
        return Found("list")
    if isinstance(value, dict):
        return Found("mapping")
    return Found("other", type(value).__name__)


def _g(number: float) -> str:
    return f"{number:g}"


class _Checker:
    def __init__(self, source: Path, marks: dict[_Path, int]) -> None:
        self.source = source
        self.marks = marks

    def fail(self, path: _Path, code: str, /, **params: ProblemParam) -> NoReturn:
        probe = tuple(path)
        while probe not in self.marks and probe:
            probe = probe[:-1]
        raise _problem(self.source, self.marks.get(probe), code, path, **params)

    def mapping(
        self, path: _Path, value: object, *, required: Iterable[str], optional: Iterable[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "not_mapping", got=_kind(value))
        required, optional = tuple(required), tuple(optional)
        for key in value:
            if not isinstance(key, str):
                self.fail(path, "key_not_text", name=repr(key))
            if key not in required and key not in optional:
                allowed = ", ".join((*required, *optional))
                self.fail((*path, key), "unknown_field", allowed=allowed)
        for key in required:
            if key not in value:
                self.fail((*path, key), "missing_field")
        return value

    def text(self, path: _Path, value: object, *, max_chars: int = 2000) -> str:
        if not isinstance(value, str) or not value.strip():
            if isinstance(value, str):
                self.fail(path, "text_is_empty")
            self.fail(path, "text_empty", got=_kind(value))
        if len(value) > max_chars:
            self.fail(path, "text_too_long", limit=str(max_chars), count=str(len(value)))
        return value.strip()

    def number(self, path: _Path, value: object, *, lo: float, hi: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self.fail(path, "number_range", lo=_g(lo), hi=_g(hi), got=_kind(value))
        if not lo <= value <= hi:
            self.fail(path, "number_range", lo=_g(lo), hi=_g(hi), got=_g(value))
        return float(value)

    def integer(self, path: _Path, value: object, *, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(path, "whole_number_range", lo=str(lo), hi=str(hi), got=_kind(value))
        return value

    def boolean(self, path: _Path, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "true_false", got=_kind(value))
        return value

    def choice(self, path: _Path, value: object, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        if not isinstance(value, str) or value not in choices:
            shown = repr(value) if isinstance(value, str) else _kind(value)
            self.fail(path, "choice", choices=", ".join(choices), got=shown)
        return value

    def choices(self, path: _Path, value: object, choices: Iterable[str]) -> tuple[str, ...]:
        if value == []:
            self.fail(path, "list_is_empty")
        if not isinstance(value, list):
            self.fail(path, "list_empty", got=_kind(value))
        picked = tuple(self.choice((*path, i), item, choices) for i, item in enumerate(value))
        for i, item in enumerate(picked):
            if item in picked[:i]:
                self.fail((*path, i), "listed_twice", item=repr(item))
        return picked


_TOP_REQUIRED = (
    "id",
    "language",
    "title",
    "who",
    "reason",
    "caller_voice",
    "anger",
    "intensity",
    "swearing",
    "lines",
    "ending",
    "needs",
    "debrief",
)
_TOP_OPTIONAL = ("reactions", "triggers", "rules", "boundaries", "social_media", "seed", "facts")


def _check_scenario(data: object, source: Path, marks: dict[_Path, int]) -> Scenario:
    c = _Checker(source, marks)
    top = c.mapping((), data, required=_TOP_REQUIRED, optional=_TOP_OPTIONAL)

    scenario_id = c.text(("id",), top["id"], max_chars=64)
    if not _ID_RE.match(scenario_id):
        c.fail(("id",), "id_format", got=repr(scenario_id))
    if source.suffix in (".yaml", ".yml") and scenario_id != source.stem:
        c.fail(("id",), "id_file_name", expected=repr(source.stem), got=repr(scenario_id))
    language = c.choice(("language",), top["language"], LANGUAGES)

    voices = known_voices()
    voice = c.choice(("caller_voice",), top["caller_voice"], voices)
    if voices[voice] != language:
        same = [v for v, lang in voices.items() if lang == language]
        c.fail(("caller_voice",), "voice_language", language=language, voices=", ".join(same),
               got=repr(voice))

    anger = _check_anger(c, top["anger"])
    intensity = c.choice(("intensity",), top["intensity"], INTENSITIES)
    swearing = c.boolean(("swearing",), top["swearing"])
    social_media = c.boolean(("social_media",), top.get("social_media", False))
    lines = _check_lines(c, top["lines"], source=source, swearing=swearing)
    triggers = _check_triggers(c, top.get("triggers", {}), lines=lines)
    reactions = _check_reactions(c, top.get("reactions", {}))
    rules = _check_rules(c, top.get("rules", {}), anger=anger)
    boundaries = _check_boundaries(c, top.get("boundaries", {}), anger=anger)
    facts = _check_facts(c, top.get("facts", {}))
    _check_reachable(c, triggers, anger=anger, swearing=swearing)
    needs = c.choices(("needs",), top["needs"], ADVICE_IDS)
    ending = _check_ending(c, top["ending"])
    for outcome_id, advice in (
        ("transferred", ("warm-transfer",)),
        ("ended-by-trainee", ("address-behaviour", "announce-end")),
    ):
        for advice_id in advice:
            if outcome_id in ending.expected and advice_id not in needs:
                c.fail(("needs",), "needs_advice", advice=repr(advice_id), outcome=repr(outcome_id))

    debrief = c.text(("debrief",), top["debrief"], max_chars=4000)
    if social_media:
        lowered = debrief.lower()
        for words in SOCIAL_MEDIA_DEBRIEF_WORDS[language]:
            if not any(w in lowered for w in words):
                if len(words) == 1:  # each group has one word or two
                    c.fail(("debrief",), "debrief_social_media", word=words[0])
                c.fail(("debrief",), "debrief_social_media_either", word=words[0], other=words[1])
    seed = top.get("seed")
    if seed is not None:
        seed = c.integer(("seed",), seed, lo=0, hi=2**32 - 1)

    return Scenario(
        id=scenario_id,
        path=source,
        language=language,
        title=c.text(("title",), top["title"], max_chars=120),
        who=c.text(("who",), top["who"]),
        reason=c.text(("reason",), top["reason"]),
        caller_voice=voice,
        anger=anger,
        intensity=intensity,
        swearing=swearing,
        lines=lines,
        reactions=reactions,
        triggers=triggers,
        rules=rules,
        boundaries=boundaries,
        ending=ending,
        needs=needs,
        social_media=social_media,
        debrief=debrief,
        seed=seed,
        facts=facts,
    )


def _check_anger(c: _Checker, value: object) -> Anger:
    fields = ("start", "min", "max", "hang_up_at", "calmed_below")
    raw = c.mapping(("anger",), value, required=fields)
    lo, hi = ANGER_SCALE
    a = Anger(**{f: c.number(("anger", f), raw[f], lo=lo, hi=hi) for f in fields})
    if a.min >= a.max:
        c.fail(("anger", "max"), "anger_max", min=_g(a.min), got=_g(a.max))
    if not a.min <= a.start <= a.max:
        c.fail(("anger", "start"), "anger_start", min=_g(a.min), max=_g(a.max), got=_g(a.start))
    if not a.min < a.calmed_below < a.start:
        c.fail(("anger", "calmed_below"), "anger_calmed_below", min=_g(a.min), start=_g(a.start),
               got=_g(a.calmed_below))
    if not a.start < a.hang_up_at <= a.max:
        c.fail(("anger", "hang_up_at"), "anger_hang_up_at", start=_g(a.start), max=_g(a.max),
               got=_g(a.hang_up_at))
    return a


def _check_lines(
    c: _Checker, value: object, *, source: Path, swearing: bool
) -> Mapping[str, tuple[Line, ...]]:
    raw = c.mapping(
        ("lines",),
        value,
        required=REQUIRED_SITUATIONS,
        optional=[k for k in value if isinstance(k, str)] if isinstance(value, dict) else (),
    )
    groups: dict[str, tuple[Line, ...]] = {}
    for name, items in raw.items():
        path: _Path = ("lines", name)
        if not _GROUP_RE.match(name):
            c.fail(path, "group_name")
        if not isinstance(items, list) or not items:
            if items == []:
                c.fail(path, "lines_is_empty")
            c.fail(path, "lines_empty", got=_kind(items))
        groups[name] = tuple(
            _check_line(c, (*path, i), item, source=source) for i, item in enumerate(items)
        )
    if swearing and "abusive" not in groups:
        c.fail(("lines", "abusive"), "abusive_missing")
    if not swearing and "abusive" in groups:
        c.fail(("lines", "abusive"), "abusive_unused")
    return MappingProxyType(groups)


def _check_line(c: _Checker, path: _Path, item: object, *, source: Path) -> Line:
    if isinstance(item, str):
        return Line(c.text(path, item, max_chars=MAX_LINE_CHARS))
    if not isinstance(item, dict):
        c.fail(path, "line_type", got=_kind(item))
    raw = c.mapping(path, item, required=("text",), optional=("audio",))
    text = c.text((*path, "text"), raw["text"], max_chars=MAX_LINE_CHARS)
    if "audio" not in raw:
        return Line(text)
    audio = c.text((*path, "audio"), raw["audio"], max_chars=500)
    audio_path = source.parent / audio
    if audio_path.suffix.lower() not in AUDIO_SUFFIXES or "\0" in audio:
        c.fail((*path, "audio"), "audio_suffix", suffixes=", ".join(AUDIO_SUFFIXES), got=repr(audio))
    if not audio_path.is_file():
        c.fail((*path, "audio"), "audio_missing", file=str(audio_path))
    return Line(text, audio_path.resolve())


def _check_triggers(
    c: _Checker, value: object, *, lines: Mapping[str, tuple[Line, ...]]
) -> tuple[Trigger, ...]:
    custom = [k for k in lines if k not in SITUATIONS]
    if isinstance(value, dict):
        for group in value:
            if group not in custom:
                if custom:
                    c.fail(("triggers", group), "trigger_group", groups=", ".join(custom))
                c.fail(("triggers", group), "trigger_no_groups")
    raw = c.mapping(("triggers",), value, required=(), optional=custom)
    triggers = []
    for group, spec in raw.items():
        path: _Path = ("triggers", group)
        t = c.mapping(path, spec, required=("when",), optional=("min_anger",))
        when = c.choice((*path, "when"), t["when"], [s for s in SITUATIONS if s != "opening"])
        min_anger = c.number(
            (*path, "min_anger"), t.get("min_anger", 0.0), lo=ANGER_SCALE[0], hi=ANGER_SCALE[1]
        )
        triggers.append(Trigger(group, when, min_anger))
    for group in lines:
        if group not in SITUATIONS and group not in raw:
            c.fail(("lines", group), "trigger_missing", group=str(group))
    return tuple(triggers)


def _check_reachable(c: _Checker, triggers: tuple[Trigger, ...], *, anger: Anger, swearing: bool) -> None:
    """A scenario-specific group the caller can never reach is a mistake, not a spare: refuse it.
    (Situations follow from the anger level, not from transitions, so there are no cycles to find.)"""
    for t in triggers:
        path: _Path = ("triggers", t.group)
        if t.when == "abusive" and not swearing:
            c.fail((*path, "when"), "trigger_abusive")
        # the highest anger at which the situation can happen (anger stays within min..max)
        if t.when == "hanging_up":
            ceiling, below = anger.max, False
        elif t.when == "satisfied":
            ceiling, below = anger.calmed_below, True
        else:
            ceiling, below = anger.hang_up_at, True
        if t.min_anger > ceiling or (below and t.min_anger >= ceiling):
            c.fail((*path, "min_anger"), "trigger_below" if below else "trigger_at_most",
                   ceiling=_g(ceiling), when=repr(t.when), got=_g(t.min_anger))


def _check_reactions(c: _Checker, value: object) -> Mapping[str, float]:
    raw = c.mapping(("reactions",), value, required=(), optional=BEHAVIOURS)
    lo, hi = REACTION_RANGE
    merged = {b: raw[b] if b in raw else DEFAULT_REACTIONS[b] for b in BEHAVIOURS}
    return MappingProxyType(
        {b: c.number(("reactions", b), v, lo=lo, hi=hi) for b, v in merged.items()}
    )


def _check_rules(c: _Checker, value: object, *, anger: Anger) -> Rules:
    raw = c.mapping(
        ("rules",),
        value,
        required=(),
        optional=("abusive_at", "barge_in_at", "barge_in_after_s", "venting_turns", "variability"),
    )
    levels = {}
    for name, below in (
        ("abusive_at", DEFAULT_ABUSIVE_BELOW_HANG_UP),
        ("barge_in_at", DEFAULT_BARGE_IN_BELOW_HANG_UP),
    ):
        level = c.number(("rules", name), raw.get(name, anger.hang_up_at - below), lo=0.0, hi=10.0)
        if not anger.calmed_below < level <= anger.hang_up_at:
            limits = {"calmed_below": _g(anger.calmed_below), "hang_up_at": _g(anger.hang_up_at),
                      "got": _g(level)}
            if name in raw:
                c.fail(("rules", name), "rule_level", **limits)
            c.fail(("rules", name), "rule_level_default", below=_g(below), **limits)
        levels[name] = level
    return Rules(
        abusive_at=levels["abusive_at"],
        barge_in_at=levels["barge_in_at"],
        barge_in_after_s=c.number(
            ("rules", "barge_in_after_s"),
            raw.get("barge_in_after_s", DEFAULT_BARGE_IN_AFTER_S),
            lo=0.5,
            hi=60.0,
        ),
        venting_turns=c.integer(
            ("rules", "venting_turns"), raw.get("venting_turns", DEFAULT_VENTING_TURNS), lo=0, hi=20
        ),
        variability=c.number(
            ("rules", "variability"), raw.get("variability", DEFAULT_VARIABILITY), lo=0.0, hi=1.0
        ),
    )


def _check_boundaries(c: _Checker, value: object, *, anger: Anger) -> Boundaries:
    raw = c.mapping(("boundaries",), value, required=(),
                    optional=("ignore_first", "stop_below", "hang_up_from"))
    path: _Path = ("boundaries",)
    ignore_first = c.integer((*path, "ignore_first"), raw.get("ignore_first", 0), lo=0, hi=5)
    # defaults: any announcement below the hang-up anger stops the caller; none makes him hang up
    stop_below = c.number((*path, "stop_below"), raw.get("stop_below", anger.hang_up_at),
                          lo=0.0, hi=10.0)
    hang_up_from = c.number((*path, "hang_up_from"), raw.get("hang_up_from", 10.0), lo=0.0,
                            hi=10.0)
    if hang_up_from < stop_below:
        c.fail((*path, "hang_up_from"), "hang_up_from", stop_below=_g(stop_below),
               got=_g(hang_up_from))
    return Boundaries(ignore_first, stop_below, hang_up_from)


def _check_facts(c: _Checker, value: object) -> Mapping[str, str]:
    raw = c.mapping(("facts",), value, required=(), optional=FACT_IDS)
    return MappingProxyType({k: c.text(("facts", k), v, max_chars=MAX_FACT_CHARS)
                             for k, v in raw.items()})


def _check_ending(c: _Checker, value: object) -> Ending:
    raw = c.mapping(("ending",), value, required=("expected", "time_limit_s"))
    lo, hi = TIME_LIMIT_RANGE_S
    return Ending(
        expected=c.choices(("ending", "expected"), raw["expected"], OUTCOMES),
        time_limit_s=c.number(("ending", "time_limit_s"), raw["time_limit_s"], lo=lo, hi=hi),
    )


# ---------------------------------------------------------------------------------------------
# Loading


def scenario_from_text(text: str, *, path: Path) -> Scenario:
    """Parse and check scenario text; `path` names it in errors and anchors relative audio paths."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _problem(path, None, "too_big", mb=str(MAX_FILE_BYTES // 1_000_000))
    data, marks = _parse_yaml(text, path)
    return _check_scenario(data, path, marks)


def _read_scenario_file(path: Path) -> Scenario:
    if path.is_dir():
        raise _problem(path, None, "is_directory")
    if not path.is_file():
        raise _problem(path, None, "no_such_file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _problem(path, None, "file_too_big", size=str(size), mb=str(MAX_FILE_BYTES // 1_000_000))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _problem(path, None, "not_utf8", byte=str(e.start)) from None
    return scenario_from_text(text, path=path)


def _looks_like_path(ref: str | Path) -> bool:
    return isinstance(ref, Path) or "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml"))


def scenario_files() -> dict[str, Path]:
    """Scenario id -> file: the scenarios directory, then the scenarios saved in the app
    (`saved_scenarios_dir`), whose ids never hide a scenario of the first."""
    files = {p.stem: p for p in sorted(scenarios_dir().glob("*.yaml"))}
    saved = saved_scenarios_dir()
    if saved.is_dir() and saved.resolve() != scenarios_dir().resolve():
        for p in sorted(saved.glob("*.yaml")):
            files.setdefault(p.stem, p)
    return dict(sorted(files.items()))


def load_scenario(path_or_id: str | Path) -> Scenario:
    """A scenario by file path, or by id from the scenarios directory (or the saved scenarios)."""
    if _looks_like_path(path_or_id):
        return _read_scenario_file(Path(path_or_id))
    files = scenario_files()
    if path_or_id not in files:
        known = ", ".join(files) or "none"
        raise InputError(
            f"unknown scenario {path_or_id!r}: expected a file path or one of: {known}"
        )
    return _read_scenario_file(files[path_or_id])


def list_scenarios() -> tuple[Scenario, ...]:
    """Every scenario in the scenarios directory and the saved ones, by id; a broken file raises
    its InputError."""
    directory = scenarios_dir()
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory, expected the scenarios directory")
    return tuple(_read_scenario_file(p) for p in scenario_files().values())


# ---------------------------------------------------------------------------------------------
# The caller's state machine


@dataclass(frozen=True)
class TurnObservation:
    """What the analysis found in the trainee's last turn."""

    behaviours: frozenset[str] = frozenset()  # keys of DEFAULT_REACTIONS
    trainee_silent: bool = False  # said nothing at all: counts as dead-silence
    trainee_ended_call: bool = False  # the trainee put the phone down


@dataclass(frozen=True)
class StateChange:
    reason: str  # the behaviour that caused it
    delta: float
    anger_after: float


@dataclass(frozen=True)
class CallerState:
    anger: float
    peak_anger: float
    situation: str = ""  # situation of the caller's last line; "" before the opening
    turn_index: int = 0  # trainee turns reacted to so far
    last_delta: float = 0.0  # net anger change from the last trainee turn
    last_behaviours: frozenset[str] = frozenset()
    warned: bool = False  # the trainee named the behaviour after an abusive line
    ended_by_trainee: bool = False
    transferred: bool = False
    said: frozenset[tuple[str, int]] = frozenset()  # (group, index) already spoken
    boundaries_heard: int = 0  # boundaries and end announcements so far
    announcement: str = ""  # how the caller took an end announcement in the last turn


@dataclass(frozen=True)
class CallerLine:
    situation: str  # the standard situation chosen from the state
    text: str
    audio_path: Path | None
    group: str  # the line group it came from (a fallback or scenario-specific group)


def initial_state(scenario: Scenario) -> CallerState:
    return CallerState(anger=scenario.anger.start, peak_anger=scenario.anger.start)


def react(
    scenario: Scenario, state: CallerState, observation: TurnObservation, *, rng: random.Random
) -> tuple[CallerState, tuple[StateChange, ...]]:
    """Move the caller's anger for each behaviour in the trainee's turn, in a fixed order.

    The boundary sequence: the first `boundaries.ignore_first` boundaries are shrugged off, and an
    end announcement stops the caller, is shrugged off or makes him hang up, by his anger then. A
    turn shrugged off calms nothing (he is not listening) and provokes a little; the change says
    why (`boundary-ignored`, `announcement-ignored`, `announcement-hang-up`)."""
    unknown = observation.behaviours - set(BEHAVIOURS)
    if unknown:
        raise InputError(
            f"turn observation: unknown behaviours {sorted(unknown)}, expected some of {BEHAVIOURS}"
        )
    behaviours = set(observation.behaviours) | (
        {"dead-silence"} if observation.trainee_silent else set()
    )
    announcement = _announcement_reaction(scenario, state, behaviours)
    shrugged = announcement == "carry-on" or (
        not announcement and "boundary" in behaviours
        and state.boundaries_heard < scenario.boundaries.ignore_first)
    counted = {b for b in behaviours if not (shrugged and scenario.reactions[b] < 0)}
    anger = state.anger
    changes: list[StateChange] = []
    for behaviour in BEHAVIOURS:  # fixed order so the same turn gives the same log
        if behaviour not in behaviours:
            continue
        delta = scenario.reactions[behaviour]
        if delta > 0:
            delta *= PROVOKE_FACTOR[scenario.intensity]
        # Draw for every behaviour present, so one override does not shift later draws.
        delta *= 1.0 + rng.uniform(-scenario.rules.variability, scenario.rules.variability)
        if behaviour in counted:
            anger = _change(scenario, changes, anger, delta, behaviour)
    if shrugged:
        reason = "announcement-ignored" if announcement else "boundary-ignored"
        anger = _change(scenario, changes, anger, IGNORED_DELTA, reason)
    elif announcement == "hang-up":
        anger = _change(scenario, changes, anger, scenario.anger.hang_up_at - anger,
                        "announcement-hang-up")
    named = bool({"boundary", "end-announcement"} & behaviours)
    new_state = replace(
        state,
        anger=anger,
        peak_anger=max(state.peak_anger, anger),
        turn_index=state.turn_index + 1,
        last_delta=round(anger - state.anger, 3),
        last_behaviours=frozenset(behaviours),
        warned=state.warned or ("boundary" in behaviours and state.situation == "abusive"),
        ended_by_trainee=state.ended_by_trainee or observation.trainee_ended_call,
        transferred=state.transferred or "transfer" in behaviours,
        boundaries_heard=state.boundaries_heard + named,
        announcement=announcement,
    )
    return new_state, tuple(changes)


def _announcement_reaction(scenario: Scenario, state: CallerState, behaviours: set[str]) -> str:
    """How the caller takes an end announcement ("" when there is none), by his anger."""
    if "end-announcement" not in behaviours:
        return ""
    if state.anger >= scenario.boundaries.hang_up_from:
        return "hang-up"
    return "stop" if state.anger < scenario.boundaries.stop_below else "carry-on"


def _change(scenario: Scenario, changes: list[StateChange], anger: float, delta: float,
            reason: str) -> float:
    after = round(min(scenario.anger.max, max(scenario.anger.min, anger + delta)), 3)
    if after != anger:
        changes.append(StateChange(reason=reason, delta=round(after - anger, 3), anger_after=after))
    return after


def choose_situation(scenario: Scenario, state: CallerState) -> str:
    """Which kind of line the caller says next, from the anger level and the last turn."""
    anger, rules = state.anger, scenario.rules
    if not state.situation:
        return "opening"
    if anger >= scenario.anger.hang_up_at:
        return "hanging_up"
    if state.announcement == "stop":
        return "apology"  # the end announcement reached him
    if anger < scenario.anger.calmed_below:
        return "satisfied"
    if "dead-silence" in state.last_behaviours:
        return "silence"
    if "interruption" in state.last_behaviours:
        return "interrupted"
    if scenario.swearing and anger >= rules.abusive_at:
        return "abusive"
    if state.last_delta > 0:
        return "escalating"
    if state.turn_index <= rules.venting_turns:
        return "venting"  # early on the caller still needs to tell the story
    return "calming" if state.last_delta < 0 else "venting"


def next_line(
    scenario: Scenario, state: CallerState, *, rng: random.Random
) -> tuple[CallerState, CallerLine]:
    """The caller's next line, not repeating a line until its group is used up."""
    situation = choose_situation(scenario, state)
    said = state.said
    group = _triggered_group(scenario, situation, state)
    if group is None:
        group = situation
        while group not in scenario.lines:
            group = FALLBACK_SITUATION[group]
        if all((group, i) in said for i in range(len(scenario.lines[group]))):
            said = frozenset(s for s in said if s[0] != group)  # group used up: start again
    unused = [i for i in range(len(scenario.lines[group])) if (group, i) not in said]
    index = rng.choice(unused)
    line = scenario.lines[group][index]
    new_state = replace(state, situation=situation, said=said | {(group, index)})
    return new_state, CallerLine(
        situation=situation, text=line.text, audio_path=line.audio_path, group=group
    )


def _triggered_group(scenario: Scenario, situation: str, state: CallerState) -> str | None:
    """A scenario-specific group standing in for this situation; each of its lines is said once."""
    for trigger in scenario.triggers:
        if (
            trigger.when == situation
            and state.anger >= trigger.min_anger
            and any(
                (trigger.group, i) not in state.said
                for i in range(len(scenario.lines[trigger.group]))
            )
        ):
            return trigger.group
    return None


def outcome(scenario: Scenario, state: CallerState, *, elapsed_s: float) -> str | None:
    """How the call ended, or None while it goes on.

    The trainee's actions end the call at once; the caller's ending (hanging up, being satisfied)
    only after the caller has said that line.
    """
    if state.ended_by_trainee:
        return "ended-by-trainee"
    if state.transferred:
        return "transferred"
    if state.situation == "hanging_up":
        return "caller-hung-up"
    if state.situation == "satisfied" and "calmed" in scenario.ending.expected:
        return "calmed"
    if elapsed_s >= scenario.ending.time_limit_s:
        return "time-limit"
    return None


def should_barge_in(scenario: Scenario, state: CallerState, *, trainee_speaking_s: float) -> bool:
    """A very angry caller talks over a trainee turn that goes on too long."""
    return (
        state.anger >= scenario.rules.barge_in_at
        and trainee_speaking_s >= scenario.rules.barge_in_after_s
    )


# ---------------------------------------------------------------------------------------------
# CLI helpers (argparse wiring lives in roleplay.cli.main)


def cmd_scenarios_list(out: TextIO) -> int:
    scenarios = list_scenarios()
    width = max([len(s.id) for s in scenarios] + [2])
    out.write(f"{'id':<{width}}  language  intensity  title\n")
    for s in scenarios:
        out.write(f"{s.id:<{width}}  {s.language:<8}  {s.intensity:<9}  {s.title}\n")
    return 0


def cmd_scenarios_show(id_or_path: str, out: TextIO) -> int:
    s = load_scenario(id_or_path)
    a = s.anger
    changed = {b: v for b, v in s.reactions.items() if v != DEFAULT_REACTIONS[b]}
    rows = [
        f"{s.title} ({s.id})",
        f"  file:          {s.path}",
        f"  language:      {s.language}, voice {s.caller_voice}",
        f"  who:           {s.who}",
        f"  reason:        {s.reason}",
        f"  anger:         starts at {a.start:g} (range {a.min:g} to {a.max:g}); calmed below "
        f"{a.calmed_below:g}, hangs up at {a.hang_up_at:g}",
        f"  intensity:     {s.intensity}; swearing {'yes' if s.swearing else 'no'}; "
        f"threatens social media {'yes' if s.social_media else 'no'}",
        f"  practises:     {', '.join(s.needs)}",
        f"  good endings:  {', '.join(s.ending.expected)}; time limit {s.ending.time_limit_s:g} s",
        "  reactions:     "
        + (", ".join(f"{b} {v:+g}" for b, v in changed.items()) or "the defaults"),
        "  lines:         " + ", ".join(f"{g} {len(ls)}" for g, ls in s.lines.items()),
        f"  opening:       {s.lines['opening'][0].text}",
        f"  debrief:       {s.debrief}",
    ]
    out.write("\n".join(rows) + "\n")
    return 0


def cmd_scenarios_validate(paths: Iterable[str | Path], out: TextIO) -> int:
    """`OK path` or the one-line error per file; no paths checks the scenarios directory."""
    targets = list(paths) or sorted(scenarios_dir().glob("*.yaml"))
    failed = False
    for target in targets:
        try:
            load_scenario(target)
        except InputError as e:
            failed = True
            out.write(f"{e}\n")
        else:
            out.write(f"OK {target}\n")
    return 1 if failed else 0
