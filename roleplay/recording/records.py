"""Typed JSON records: frozen dataclasses checked field by field against their type hints, and the
JSON Schema of each derived from the same hints (so the schema files cannot drift from the code).

Field types understood: str, int, float, bool, Literal[...], tuple[X, ...] (a JSON array),
dict[str, X] (a JSON object) and `X | None` (optional: None is left out of the JSON)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from functools import cache, cached_property
from typing import Any, Literal

_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@cache
def record_fields(cls: Any) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type hint, required) of each dataclass field; a field is optional when `| None`."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        out.append((f.name, hint, not _is_optional(hint)))
    return tuple(out)


def _is_optional(hint: Any) -> bool:
    # `Literal[...] | None` is a typing.Union, `str | None` a types.UnionType
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _without_none(hint: Any) -> Any:
    if not _is_optional(hint):
        return hint
    rest = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(rest) != 1:
        raise TypeError(f"unsupported field type {hint}")
    return rest[0]


def check_value(value: Any, hint: Any, where: str) -> Any:
    """`value` (as json.loads gives it) checked against `hint`; arrays become tuples (hashable,
    immutable). Raises ValueError naming `where`."""
    if value is None and _is_optional(hint):
        return None
    hint = _without_none(hint)
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint) or isinstance(value, bool):
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(hint)))}")
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        item = typing.get_args(hint)[1]
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: check_value(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    # bool is an int to Python, not to JSON; an int is a fine float (JSON has one number type)
    ok = (isinstance(value, bool) if hint is bool
          else isinstance(value, int | float) and not isinstance(value, bool) if hint is float
          else isinstance(value, int) and not isinstance(value, bool) if hint is int
          else isinstance(value, hint))
    if not ok:
        raise ValueError(f"{where}: expected {_SCALARS.get(hint, hint)}, got {type(value).__name__} {value!r:.40}")
    return value


def fields_from_dict(cls: type, data: Mapping[str, Any], *, where: str, skip: tuple[str, ...] = (),
                     strict: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dataclass's keyword arguments from `data`, checked; and the keys it does not know
    (an error when `strict`). Keys in `skip` are the caller's to handle."""
    known = {name for name, _h, _r in record_fields(cls)}
    extra = {k: v for k, v in data.items() if k not in known and k not in skip}
    if strict and extra:  # before missing fields: a misspelt name is the likelier mistake
        raise ValueError(f"{where}: unknown field{'s' if len(extra) > 1 else ''} "
                         f"{', '.join(f'`{k}`' for k in extra)}")
    kwargs: dict[str, Any] = {}
    for name, hint, required in record_fields(cls):
        if name in skip:
            continue
        if name not in data:
            if required:
                raise ValueError(f"{where}: missing field `{name}`")
            continue
        kwargs[name] = check_value(data[name], hint, f"{where}.{name}")
    return kwargs, extra


def to_json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def fields_to_dict(record: object, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The record's fields in declaration order, None left out (an optional field not given)."""
    out: dict[str, Any] = {}
    cls: Any = type(record)  # (a class is hashable; mypy's type[object] says otherwise)
    for name, _hint, _required in record_fields(cls):
        value = getattr(record, name)
        if name not in skip and value is not None:
            out[name] = to_json_value(value)
    return out


def schema_of(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one field type. An optional field also accepts null: files written
    before None was left out had nulls there (e.g. `latency_s` of a silent turn)."""
    if _is_optional(hint):
        inner = schema_of(_without_none(hint))
        if "type" in inner and isinstance(inner["type"], str) and "enum" not in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    origin = typing.get_origin(hint)
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin is tuple:
        return {"type": "array", "items": schema_of(typing.get_args(hint)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(typing.get_args(hint)[1])}
    if hint is Any:
        return {}
    return {"type": _SCALARS[hint]}


def record_schema(cls: type, *, skip: tuple[str, ...] = (), extra_properties: Mapping[str, Any] | None = None,
                  required_first: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object schema with one property per field; closed (additionalProperties false), so a
    renamed or misspelt field fails validation."""
    props: dict[str, Any] = dict(extra_properties or {})
    required = list(required_first)
    for name, hint, req in record_fields(cls):
        if name in skip:
            continue
        props[name] = schema_of(hint)
        if req:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                              "additionalProperties": False}
    doc = (cls.__doc__ or "").strip()
    if doc:
        schema = {"description": " ".join(doc.split()), **schema}
    return schema


class JsonView(Mapping[str, Any]):
    """A typed record that also reads like its JSON object (`r["type"]`, `r.get(...)`), for readers
    written against the plain dicts. Subclasses provide `to_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def _json(self) -> dict[str, Any]:
        return self.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)
