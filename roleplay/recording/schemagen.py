"""The JSON Schemas of meta.json and of an events.jsonl line, generated from `CallMeta` and the
event classes, so the files in roleplay/recording/schemas/ cannot drift from the code
(tests/test_schemas.py checks that the committed files equal these).

    python -m roleplay.recording.schemagen          rewrite the schema files
    python -m roleplay.recording.schemagen --check  exit 1 when they differ from the classes
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from roleplay.recording.events import EVENT_TYPES
from roleplay.recording.meta import CallMeta
from roleplay.recording.records import record_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).with_name("schemas")


def meta_schema() -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "$id": "urn:roleplay:schema:call-meta:1",
        "title": "roleplay call directory: meta.json",
        **record_schema(CallMeta, skip=("extra",)),
    }


def events_schema() -> dict[str, Any]:
    """One line of events.jsonl: exactly one of the event types, told apart by `type`."""
    defs = {
        name: record_schema(cls, skip=("t_s",), required_first=("t_s", "type"),
                            extra_properties={"t_s": {"type": "number"}, "type": {"const": name}})
        for name, cls in sorted(EVENT_TYPES.items())
    }
    return {
        "$schema": DRAFT,
        "$id": "urn:roleplay:schema:call-event:1",
        "title": "roleplay call directory: one line of events.jsonl",
        "description": "An event at `t_s` seconds on the call's timeline; `type` says which one "
                       "(roleplay.recording.events has a class per type).",
        "type": "object",
        "required": ["t_s", "type"],
        "properties": {"type": {"enum": sorted(defs)}},
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in defs],
        "$defs": defs,
    }


def generated() -> dict[str, str]:
    """File name -> contents, as committed."""
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
            for name, schema in (("meta.schema.json", meta_schema()), ("events.schema.json", events_schema()))}


def load_schema(name: str) -> dict[str, Any]:
    """A shipped schema: "meta", "events" (roleplay.recording.schemas) or "analysis"
    (roleplay.analysis.schemas)."""
    package = "roleplay.analysis.schemas" if name == "analysis" else "roleplay.recording.schemas"
    data: dict[str, Any] = json.loads(resources.files(package).joinpath(f"{name}.schema.json").read_text("utf-8"))
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roleplay.recording.schemagen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = [name for name, text in generated().items()
             if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text(encoding="utf-8") != text]
    if args.check:
        for name in stale:
            print(f"{SCHEMA_DIR / name}: differs from the classes; run python -m roleplay.recording.schemagen",
                  file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (SCHEMA_DIR / name).write_text(generated()[name], encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
