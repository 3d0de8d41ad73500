"""The JSON Schemas of a call directory (meta.json, each events.jsonl line) and of analysis.json:
the committed files equal what the classes generate, every event type round-trips, and real
outputs (a demo call on the real model, a scripted call) validate, while a renamed field fails."""

from __future__ import annotations

import copy
import json
import random
import typing
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest

from roleplay.recording import schemagen
from roleplay.recording.calldir import CallWriter, load_call, read_events, read_meta
from roleplay.recording.events import EVENT_TYPES, CallEnd, Event, UnknownEvent, event_from_json
from roleplay.recording.meta import CallMeta
from roleplay.recording.records import record_fields


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = schemagen.load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


META, EVENTS, ANALYSIS = (_validator(n) for n in ("meta", "events", "analysis"))


def _errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]


# --------------------------------------------------------------------------- fast: the files and the classes


def test_committed_schema_files_are_the_generated_ones():
    for name, text in schemagen.generated().items():
        assert (schemagen.SCHEMA_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python -m roleplay.recording.schemagen")
    assert schemagen.main(["--check"]) == 0


def _sample(hint: Any, rng: random.Random) -> Any:
    """A value of the field type, as the JSON would hold it."""
    args = typing.get_args(hint)
    if type(None) in args:
        return _sample(next(a for a in args if a is not type(None)), rng)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return rng.choice(args)
    if origin is tuple:
        return [_sample(args[0], rng) for _ in range(2)]
    if origin is dict:
        return {"a": _sample(args[1], rng)}
    return {str: "x", int: rng.randint(0, 9), float: round(rng.uniform(0, 10), 3), bool: rng.random() < 0.5}[hint]


def _event_json(cls: type[Event], *, full: bool, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    data: dict[str, Any] = {"t_s": 1.25, "type": cls.TYPE}
    for name, hint, required in record_fields(cls):
        if name != "t_s" and (required or full):
            data[name] = _sample(hint, rng)
    return data


@pytest.mark.parametrize("full", [True, False], ids=["every-field", "required-only"])
@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_and_fits_its_schema(name, full):
    cls = EVENT_TYPES[name]
    data = _event_json(cls, full=full, seed=len(name))
    event = Event.from_dict(data)
    assert type(event) is cls and cls.from_dict(data) == event and event.type == name
    assert event.to_dict() == data
    assert Event.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert not _errors(EVENTS, event.to_dict())
    assert dict(event) == data  # the read-only dict view


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_a_renamed_field_fails_the_class_and_the_schema(name):
    data = _event_json(EVENT_TYPES[name], full=True)
    renamed = {("t" if k == "t_s" else k + "_x") if k != "type" else k: v for k, v in data.items()}
    with pytest.raises(ValueError):
        Event.from_dict(renamed)
    assert _errors(EVENTS, renamed)
    # an old reader keeps a line whose fields do not fit as it was (a line without `t_s` is no event)
    kept = {**renamed, "t_s": data["t_s"]}
    del kept["t"]
    assert isinstance(event_from_json(kept), UnknownEvent) or len(data) == 2


def test_a_type_from_a_newer_version_is_kept_not_refused():
    line = {"t_s": 3.0, "type": "caller-sighs", "depth_db": 4.5}
    event = event_from_json(line)
    assert isinstance(event, UnknownEvent) and event.type == "caller-sighs"
    assert event.to_dict() == line and event["depth_db"] == 4.5
    assert Event.from_dict(line) == event  # the base class, too, keeps it as it was
    with pytest.raises(ValueError, match="not a known event type"):
        CallWriter.write(None, event)  # type: ignore[arg-type] - refused before the writer is touched
    with pytest.raises(ValueError, match="t_s"):
        event_from_json({"type": "caller-sighs"})


def test_meta_class_and_schema_agree():
    full = {name: _sample(hint, random.Random(1)) for name, hint, _r in record_fields(CallMeta) if name != "extra"}
    full["outcome"], full["status"] = "calmed", "complete"
    meta = CallMeta.from_dict(full, strict=True)
    assert meta.to_dict() == full and not _errors(META, full)
    assert _errors(META, {**full, "scenario_id": "x"})  # closed: an unknown key fails
    assert CallMeta.from_dict({**full, "scenario_id": "x"}).extra == {"scenario_id": "x"}  # a reader keeps it


def test_outcomes_are_one_list():
    from roleplay.recording.calldir import OUTCOMES

    assert set(OUTCOMES) == set(typing.get_args(typing.get_type_hints(CallEnd)["outcome"]))


# --------------------------------------------------------------------------- real outputs


def _check_call_directory(d: Path) -> None:
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    assert not _errors(META, meta), _errors(META, meta)
    lines = [json.loads(x) for x in (d / "events.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    assert lines
    for line in lines:
        assert not _errors(EVENTS, line), (line, _errors(EVENTS, line))
    events = read_events(d)
    assert not any(isinstance(e, UnknownEvent) for e in events)
    assert [e.to_dict() for e in events] == lines  # typed and back: the same lines
    assert read_meta(d).to_dict() == meta


def _doctored(validator: jsonschema.Draft202012Validator, data: Any, path: tuple, new_key: str) -> list[str]:
    """Errors for a copy of `data` with the key at `path` renamed to `new_key`."""
    bad = copy.deepcopy(data)
    parent = bad
    for key in path[:-1]:
        parent = parent[key]
    parent[new_key] = parent.pop(path[-1])
    return _errors(validator, bad)


@pytest.fixture(scope="module")
def demo_call(tmp_path_factory, transcriber, tts_cache) -> Path:
    """A short real demo call (the poor trainee: interruptions, barge-ins, anger rising)."""
    try:
        from roleplay.app.demo import run_demo
    except ImportError:  # before demo moved to the app layer
        from roleplay.session.demo import run_demo  # type: ignore[attr-defined,no-redef]

    out = tmp_path_factory.mktemp("schemas") / "call"
    run_demo(scenario_id="nl-visite-derde-keer", style="poor", seed=1, out_dir=out, transcriber=transcriber,
             cache_dir=tts_cache, max_caller_lines=3)
    return out


@pytest.mark.model
def test_a_real_demo_call_validates(demo_call):
    _check_call_directory(demo_call)
    types = {e.type for e in load_call(demo_call).events}
    assert {"call-start", "caller-line", "trainee-turn", "anger", "call-end"} <= types
    data = json.loads((demo_call / "analysis.json").read_text(encoding="utf-8"))
    assert not _errors(ANALYSIS, data), _errors(ANALYSIS, data)


@pytest.mark.model
def test_a_renamed_field_in_a_real_call_fails(demo_call):
    meta = json.loads((demo_call / "meta.json").read_text(encoding="utf-8"))
    assert _doctored(META, meta, ("rate_hz",), "rate")
    assert _doctored(META, meta, ("anger_peak",), "peak_anger")
    line = json.loads((demo_call / "events.jsonl").read_text(encoding="utf-8").splitlines()[2])
    assert line["type"] == "caller-line"
    assert _doctored(EVENTS, line, ("end_s",), "end")
    data = json.loads((demo_call / "analysis.json").read_text(encoding="utf-8"))
    assert _doctored(ANALYSIS, data, ("duration_s",), "length_s")
    assert _doctored(ANALYSIS, data, ("turns", 0, "start_s"), "begin_s")
    assert _doctored(ANALYSIS, data, ("turns", 0, "words", 0, "probability"), "p")
    assert _doctored(ANALYSIS, data, ("baseline", "loudness_dbfs"), "loudness_db")
    assert _doctored(ANALYSIS, data, ("advice", 0, "verdict"), "result")
    assert _doctored(ANALYSIS, data, ("call", "anger_end"), "anger_final")


@pytest.mark.slow
def test_a_scripted_call_validates(tmp_path, tts_cache):
    """The example call's writer (trainee-line events, no scenario) on synthesized speech."""
    from roleplay.app.example import write_example_call

    _check_call_directory(write_example_call(tmp_path / "call", language="nl", cache_dir=tts_cache))
    assert {e.type for e in read_events(tmp_path / "call")} == {"call-start", "caller-line", "trainee-line"}
