"""The documentation against the code: README.md and docs/*.md.

(a) README.md stays short and starts with the two commands; (b) every `roleplay SUBCOMMAND` the
docs name exists in the CLI parser, with every `--flag` written next to it; (c) the events table of
docs/call-format.md lists exactly the event types the code writes; (d) every relative link (and
its #anchor) points to something that exists. Fast: no model, no audio."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from roleplay.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]

FIRST_COMMANDS = [
    "bash scripts/setup.sh && .venv/bin/roleplay demo",
    "bash scripts/setup.sh --test && .venv/bin/python -m pytest -q -ra",
]
# flags of other programs that the docs name in backticks on their own:
FOREIGN_FLAGS = {"--strict-markers", "--check"}  # pytest; python -m roleplay.recording.schemagen

_SPAN = re.compile(r"`([^`\n]+)`")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
_COMMAND_START = re.compile(r"^(?:\.venv/bin/)?roleplay\s+(\S.*)$")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# ------------------------------------------------------------------------------------ (a) README


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; keep it under 200 (details go to docs/)"
    body = [line for line in lines if line.strip()]
    if body and body[0].startswith("# "):  # the title may come first
        body = body[1:]
    assert body[:4] == ["```", *FIRST_COMMANDS, "```"], (
        "README.md must open with a fenced block holding exactly the two commands:\n" + "\n".join(FIRST_COMMANDS)
    )


def test_readme_names_the_fast_lane():
    assert '.venv/bin/python -m pytest -q -m "not slow"' in README.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ (b) commands


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    out = _options(parser)
    for sub in _subparsers(parser).values():
        out |= _all_options(sub)
    return out


def _command_texts(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every `roleplay ...` the file names: lines of code blocks (fenced or
    indented), with shell comments cut off, and inline code spans (also those wrapped over two
    lines)."""
    out: list[tuple[int, str]] = []
    prose: list[str] = []
    in_fence = False
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = raw.lstrip().startswith("```")
        if fence:
            in_fence = not in_fence
        if fence or in_fence or raw.startswith("    "):
            prose.append("")  # keeps the line numbers
            code = raw.split(" #", 1)[0].strip()
            for part in code.split("&&"):
                m = _COMMAND_START.match(part.strip())
                if m:
                    out.append((n, m.group(1)))
            continue
        prose.append(raw.replace("\\|", "|"))
    text = "\n".join(prose)
    for span in re.finditer(r"`([^`]+)`", text):
        if "\n\n" in span.group(1):
            continue  # not a span: an unmatched backtick
        m = _COMMAND_START.match(" ".join(span.group(1).split()))
        if m:
            out.append((text.count("\n", 0, span.start()) + 1, m.group(1)))
    return sorted(out)


def _check_command(parser: argparse.ArgumentParser, rest: str) -> list[str]:
    """What is wrong with `roleplay REST` as the docs wrote it (placeholders and brackets allowed)."""
    tokens = rest.split()
    if tokens[0].startswith("-"):  # roleplay --help, roleplay --version
        target, name = parser, "roleplay"
    else:
        subs = _subparsers(parser)
        if tokens[0] not in subs:
            return [f"unknown subcommand `roleplay {tokens[0]}` (known: {', '.join(sorted(subs))})"]
        target, name = subs[tokens[0]], f"roleplay {tokens[0]}"
        actions = _subparsers(target)
        if actions and len(tokens) > 1 and re.fullmatch(r"[a-z][a-z-]*", tokens[1]):
            if tokens[1] not in actions:
                return [f"unknown action `{name} {tokens[1]}` (known: {', '.join(sorted(actions))})"]
            target, name = actions[tokens[1]], f"{name} {tokens[1]}"
    known = _options(target)
    return [f"`{name}` has no option {flag}" for flag in _FLAG.findall(rest) if flag not in known]


def _doc_commands() -> list[tuple[str, int, str]]:
    return [(_rel(path), n, text) for path in DOC_FILES for n, text in _command_texts(path)]


def test_docs_name_commands():
    commands = _doc_commands()
    assert len(commands) > 40, "the command scanner found too few `roleplay ...` commands in the docs"
    assert any(where == "README.md" for where, _, _ in commands)


def test_every_command_and_flag_in_the_docs_exists():
    parser = build_parser()
    problems = [f"{where}:{n}: {problem}   [{text}]"
                for where, n, text in _doc_commands() for problem in _check_command(parser, text)]
    assert not problems, "commands in the docs that the CLI does not accept:\n" + "\n".join(problems)


def test_the_checker_catches_a_renamed_command_or_flag():
    parser = build_parser()
    assert _check_command(parser, "drill SCENARIO --trainee NAME --repeat N") == []
    assert _check_command(parser, "scenarios from-recording CALL --out FILE --taken-by NAME") == []
    assert _check_command(parser, "drills SCENARIO")
    assert _check_command(parser, "drill SCENARIO --repeats N")
    assert _check_command(parser, "scenarios from-recordings CALL")
    assert _check_command(parser, "voices preview VOICE --angry 5")


def test_every_subcommand_is_in_the_readme_command_table():
    table = "\n".join(line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `"))
    subs = _subparsers(build_parser())
    canonical = {name for name, p in subs.items() if p.prog.split()[-1] == name}  # aliases (analyze) left out
    missing = [name for name in sorted(canonical) if not re.search(rf"`roleplay {re.escape(name)}\b", table)]
    assert not missing, f"subcommands missing from README.md's command table: {missing}"
    for name, p in subs.items():
        for action in sorted(_subparsers(p)):
            assert re.search(rf"`roleplay {name} {re.escape(action)}\b", table), (
                f"`roleplay {name} {action}` is missing from README.md's command table")


def test_flags_named_on_their_own_exist():
    """A flag in backticks on its own (`--repeat N`) belongs to some roleplay command."""
    known = _all_options(build_parser()) | FOREIGN_FLAGS
    problems = []
    for path in DOC_FILES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for span in _SPAN.findall(line):
                first = span.split()[0] if span.split() else ""
                if first.startswith("--"):
                    flag = _FLAG.match(first)
                    if flag and flag.group(1) not in known:
                        problems.append(f"{_rel(path)}:{n}: {flag.group(1)}")
    assert not problems, "flags that no roleplay command accepts:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------ (c) events


def _documented_events() -> list[str]:
    text = (DOCS / "call-format.md").read_text(encoding="utf-8")
    m = re.search(r"^## Events\s*$(.*?)(?=^## )", text, re.M | re.S)
    assert m, "docs/call-format.md has no `## Events` section"
    rows = [line for line in m.group(1).splitlines() if line.startswith("|")]
    types = []
    for row in rows[2:]:  # after the header and the |---| line
        cell = row.strip("|").split("|")[0].strip()
        found = re.fullmatch(r"`([a-z][a-z-]*)`", cell)
        assert found, f"events table row without a `type` in its first cell: {row}"
        types.append(found.group(1))
    assert types, "the events table of docs/call-format.md is empty"
    return types


def _written_by_code() -> set[str]:
    """Event types as `.event("...")` and `make_event("...")` calls write them (literal names)."""
    pattern = re.compile(r"""(?:\.event|make_event)\(\s*["']([a-z][a-z-]*)["']""")
    found: set[str] = set()
    for path in (REPO / "roleplay").rglob("*.py"):
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def _code_events() -> set[str]:
    try:
        from roleplay.recording.events import EVENT_TYPES
    except ImportError:  # no registry: the types the code writes
        written = _written_by_code()
        # scripted calls write f"{speaker}-line"
        return written | {"caller-line", "trainee-line"}
    return set(EVENT_TYPES)


def test_events_table_matches_the_code():
    documented = _documented_events()
    assert len(documented) == len(set(documented)), f"an event type is listed twice: {documented}"
    code = _code_events()
    assert not set(documented) - code, f"documented but never written: {sorted(set(documented) - code)}"
    assert not code - set(documented), f"written but not in docs/call-format.md: {sorted(code - set(documented))}"


def test_every_event_the_code_writes_by_name_is_documented():
    undocumented = _written_by_code() - set(_documented_events())
    assert not undocumented, f"events written in roleplay/ but not documented: {sorted(undocumented)}"


def _section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"{_rel(path)} has no `## {heading}` section"
    return m.group(1)


def test_meta_json_fields_are_documented():
    """Every field of the typed meta.json (roleplay/recording/meta.py) is named in its section."""
    meta = pytest.importorskip("roleplay.recording.meta")
    import dataclasses

    names = {f.name for f in dataclasses.fields(meta.CallMeta) if f.name != "extra"}
    section = _section(DOCS / "call-format.md", "meta.json")
    missing = sorted(n for n in names if f"`{n}`" not in section)
    assert not missing, f"meta.json fields missing from docs/call-format.md: {missing}"


def test_schema_files_that_exist_are_linked():
    schemas = sorted(p for d in ("recording", "analysis") for p in (REPO / "roleplay" / d / "schemas").glob("*.json"))
    text = (DOCS / "call-format.md").read_text(encoding="utf-8")
    missing = [_rel(p) for p in schemas if f"(../{_rel(p)})" not in text]
    assert not missing, f"JSON Schema files not linked from docs/call-format.md: {missing}"


def test_code_paths_named_in_the_docs_exist():
    """`roleplay/...` paths in backticks (modules, data files, folders) exist: a renamed module fails."""
    problems = []
    for path in DOC_FILES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for span in _SPAN.findall(line):
                for found in re.findall(r"(?<![\w./])((?:roleplay|scenarios|voices|tests|scripts)/[\w./*<>-]*)", span):
                    name = found.rstrip(".")
                    if any(c in name for c in "*<>"):  # a pattern: its folder must exist
                        name = name.split("/*")[0].split("/<")[0]
                    if not (REPO / name).exists():
                        problems.append(f"{_rel(path)}:{n}: {name}")
    assert not problems, "paths in the docs that do not exist:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------ (d) links

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    heads = re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", path.read_text(encoding="utf-8"), re.M)
    return {_slug(h) for h in heads}


def _links() -> list[tuple[Path, int, str]]:
    out = []
    for path in DOC_FILES:
        in_fence = False
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
            if not in_fence:
                out.extend((path, n, target) for target in _LINK.findall(line))
    return out


def test_docs_have_links():
    readme_links = [t for p, _, t in _links() if p == README]
    linked = {(README.parent / t.split("#")[0]).resolve() for t in readme_links if not t.startswith("#")}
    missing = [_rel(p) for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_relative_links_point_to_existing_files(path: Path):
    problems = []
    for where, n, target in _links():
        if where != path or re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{_rel(path)}:{n}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            problems.append(f"{_rel(path)}:{n}: {target} (no heading with that anchor)")
    assert not problems, "broken links:\n" + "\n".join(problems)
