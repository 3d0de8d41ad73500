"""Readiness: is a trainee ready for real angry callers? Rules are data (`readiness_rules.yaml`,
documented at its top); the decision is computed from the history, trainer overrides included."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import InputError
from roleplay.history.store import INTENSITY_ORDER, CallRow
from roleplay.report.agreement import agreement, agreement_html
from roleplay.report.html import CSS
from roleplay.report.svg import sparkline_svg, verdict_strip_svg
from roleplay.report.text import texts

DEFAULT_RULES = Path(__file__).with_name("readiness_rules.yaml")
EXTRA_ITEMS = ("outcome",)


@dataclass(frozen=True)
class Requirement:
    scenario: str
    min_intensity: str
    window: int
    min_passes: int
    items: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    name: str
    language: str
    requirements: tuple[Requirement, ...]
    not_applicable_counts_as_pass: frozenset[str]
    path: Path

    @property
    def items(self) -> tuple[str, ...]:
        seen: list[str] = []
        for r in self.requirements:
            seen.extend(i for i in r.items if i not in seen)
        return tuple(seen)


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and check a rules file; errors name the file and the field."""

    path = Path(path) if path else DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the readiness rules ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with `requirements`")
    known_items = set(ADVICE_IDS) | set(EXTRA_ITEMS)

    def check_items(value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise InputError(f"{path}: {where}: expected a list of advice ids")
        bad = [i for i in value if i not in known_items]
        if bad:
            raise InputError(
                f"{path}: {where}: unknown item {bad[0]!r}; expected one of: {', '.join(sorted(known_items))}"
            )
        return tuple(value)

    def check_int(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{path}: {where}: expected a whole number of at least 1, got {value!r}")
        return value

    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InputError(f"{path}: defaults: expected a mapping")
    reqs = data.get("requirements")
    if not isinstance(reqs, list) or not reqs:
        raise InputError(f"{path}: requirements: expected a non-empty list")
    out = []
    for n, raw in enumerate(reqs):
        where = f"requirements[{n}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("scenario"), str):
            raise InputError(f"{path}: {where}: expected a mapping with `scenario`")
        merged = {**defaults, **raw}
        unknown = set(merged) - {"scenario", "min_intensity", "window", "min_passes", "items"}
        if unknown:
            raise InputError(f"{path}: {where}: unknown field {sorted(unknown)[0]!r}")
        intensity = merged.get("min_intensity", "mild")
        if intensity not in INTENSITY_ORDER:
            raise InputError(
                f"{path}: {where}.min_intensity: expected one of {', '.join(INTENSITY_ORDER)}, got {intensity!r}"
            )
        window = check_int(merged.get("window", 4), f"{where}.window")
        passes = check_int(merged.get("min_passes", 3), f"{where}.min_passes")
        if passes > window:
            raise InputError(f"{path}: {where}: min_passes ({passes}) is more than window ({window})")
        out.append(
            Requirement(
                raw["scenario"], intensity, window, passes, check_items(merged.get("items", []), f"{where}.items")
            )
        )
    na = check_items(data.get("not_applicable_counts_as_pass") or [], "not_applicable_counts_as_pass")
    return Rules(str(data.get("name") or path.stem), str(data.get("language") or "nl"), tuple(out), frozenset(na), path)


@dataclass(frozen=True)
class Evidence:
    call_id: int
    date: str
    verdict: str | None  # the verdict that counts
    automatic: str | None
    override_note: str | None
    counts: bool  # counted as a pass


@dataclass(frozen=True)
class ItemResult:
    item: str
    passes: int
    needed: int
    window: int
    evidence: tuple[Evidence, ...]

    @property
    def met(self) -> bool:
        return self.passes >= self.needed


@dataclass(frozen=True)
class RequirementResult:
    requirement: Requirement
    attempts: int  # all qualifying attempts
    items: tuple[ItemResult, ...]

    @property
    def met(self) -> bool:
        return all(i.met for i in self.items)

    def missing(self) -> list[str]:
        r = self.requirement
        if self.attempts == 0:
            return [
                f"{r.scenario}: no attempt at {r.min_intensity} or above yet "
                f"(need {r.min_passes} good of the last {r.window})"
            ]
        if self.attempts < r.min_passes:
            out = [
                f"{r.scenario}: {self.attempts} attempt(s) at {r.min_intensity} or above; "
                f"need {r.min_passes} good ones among the last {r.window}"
            ]
            out += [
                f"{r.scenario}: {i.item} not passed in {len(i.evidence) - i.passes} of them"
                for i in self.items
                if i.passes < len(i.evidence)
            ]
            return out
        return [
            f"{r.scenario}: {i.item} passed {i.passes} of the last {len(i.evidence)} "
            f"(need {i.needed} of the last {r.window})"
            for i in self.items
            if not i.met
        ]


@dataclass(frozen=True)
class TraineeReadiness:
    trainee: str
    requirements: tuple[RequirementResult, ...]

    @property
    def ready(self) -> bool:
        return all(r.met for r in self.requirements)

    def missing(self) -> list[str]:
        return [m for r in self.requirements for m in r.missing()]


def _rank(intensity: str | None) -> int:
    return INTENSITY_ORDER.get(intensity or "", -1)


def evaluate(trainee: str, rows: Sequence[CallRow], rules: Rules) -> TraineeReadiness:
    """Apply the rules to one trainee's calls (any order; other trainees' rows are ignored)."""
    mine = sorted((r for r in rows if r.trainee == trainee), key=lambda r: (r.started_utc, r.id))
    results = []
    for req in rules.requirements:
        attempts = [r for r in mine if r.scenario == req.scenario and _rank(r.intensity) >= _rank(req.min_intensity)]
        last = attempts[-req.window :]
        items = []
        for item in req.items:
            evidence = []
            for r in last:
                v = r.verdict(item)
                # `no-evidence` is never a pass: the item was not yet shown in that call
                counts = v == "pass" or (v == "not-applicable" and item in rules.not_applicable_counts_as_pass)
                review = r.reviews.get(item)
                evidence.append(
                    Evidence(
                        r.id,
                        r.started_utc,
                        v,
                        r.verdicts.get(item) if item != "outcome" else v,
                        review["note"] if review else None,
                        counts,
                    )
                )
            items.append(ItemResult(item, sum(e.counts for e in evidence), req.min_passes, req.window, tuple(evidence)))
        results.append(RequirementResult(req, len(attempts), tuple(items)))
    return TraineeReadiness(trainee, tuple(results))


# --------------------------------------------------------------------------- output


def print_readiness(result: TraineeReadiness, out: TextIO) -> None:
    met = sum(r.met for r in result.requirements)
    print(
        f"{result.trainee}: {'READY' if result.ready else 'NOT READY'} "
        f"({met} of {len(result.requirements)} requirements met)",
        file=out,
    )
    for r in result.requirements:
        req = r.requirement
        figures = ", ".join(f"{i.item} {i.passes}/{len(i.evidence)}" for i in r.items)
        print(
            f"  {'✔' if r.met else '✘'} {req.scenario} (≥ {req.min_intensity}, {req.min_passes} of last {req.window}; "
            f"{r.attempts} attempt(s)): {figures or '-'}",
            file=out,
        )
    for m in result.missing():
        print(f"    missing: {m}", file=out)


_CELL = {"pass": "#3a9d5d", "fail": "#d9534f", "no-evidence": "#9aa9bf", "not-applicable": "#ccc", None: "#fff"}


def render_readiness_html(
    results: Sequence[TraineeReadiness], rows: Sequence[CallRow], rules: Rules, *, title: str | None = None
) -> str:
    """The group overview (trainees as rows, items as columns, small trend plots) and, below it, the
    evidence per trainee. Self-contained like the call report."""
    t = texts(rules.language)
    rt, items_t = t["readiness"], t["items"]
    e = html.escape
    items = rules.items
    required = {req.scenario for req in rules.requirements}
    head = "".join(f"<th>{e(items_t.get(i, i))}</th>" for i in items)
    body = []
    details = []
    for res in results:
        mine = [r for r in rows if r.trainee == res.trainee and r.scenario in required]
        mine.sort(key=lambda r: (r.started_utc, r.id))
        cells = []
        for item in items:
            verdicts = [r.verdict(item) for r in mine][-12:]
            met = [ir for rr in res.requirements for ir in rr.items if ir.item == item]
            ok = sum(ir.met for ir in met)
            cells.append(f"<td>{verdict_strip_svg(verdicts, size=10)}<br><small>{ok}/{len(met)}</small></td>")
        share = []
        for r in mine:
            req = next(q for q in rules.requirements if q.scenario == r.scenario)
            vs = [r.verdict(i) for i in req.items]
            share.append(100.0 * sum(v == "pass" for v in vs) / len(vs) if vs else None)
        status = rt["ready"] if res.ready else rt["not_ready"]
        body.append(
            f'<tr class="{"ready" if res.ready else "not-ready"}"><th><a href="#t-{e(res.trainee)}">'
            f"{e(res.trainee)}</a></th><td><b>{e(status)}</b></td>{''.join(cells)}"
            f"<td>{sparkline_svg(share[-20:], band=(75, 100), label='trend')}</td></tr>"
        )
        reqs_html = []
        for rr in res.requirements:
            req = rr.requirement
            ev_rows = []
            for k in range(max((len(i.evidence) for i in rr.items), default=0)):
                first = rr.items[0].evidence[k]
                tds = []
                for i in rr.items:
                    ev = i.evidence[k]
                    note = f' title="{e(ev.override_note)}"' if ev.override_note else ""
                    mark = "*" if ev.override_note else ""
                    tds.append(
                        f'<td style="background:{_CELL.get(ev.verdict, "#fff")}33"{note}>'
                        f"{e(t['verdicts'].get(ev.verdict or '', ev.verdict or '–'))}{mark}</td>"
                    )
                ev_rows.append(f"<tr><td>{e(first.date[:16].replace('T', ' '))}</td>{''.join(tds)}</tr>")
            reqs_html.append(
                f"<h4>{'✔' if rr.met else '✘'} {e(req.scenario)} "
                f"(≥ {e(req.min_intensity)}, {req.min_passes}/{req.window})</h4>"
                f"<table><tr><th>{e(t['labels']['date'])}</th>"
                + "".join(f"<th>{e(items_t.get(i.item, i.item))} ({i.passes}/{i.needed})</th>" for i in rr.items)
                + f"</tr>{''.join(ev_rows)}</table>"
            )
        missing = "".join(f"<li>{e(m)}</li>" for m in res.missing())
        details.append(
            f'<section class="trainee" id="t-{e(res.trainee)}"><h3>{e(res.trainee)}: {e(status)}</h3>'
            + (f"<p><b>{e(rt['missing'])}</b></p><ul>{missing}</ul>" if missing else "")
            + f"<p><b>{e(rt['evidence'])}</b> (* = trainer override)</p>{''.join(reqs_html)}</section>"
        )
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="{e(rules.language)}"><head><meta charset="utf-8"><title>{e(title or rt["title"])}</title>
<style>{CSS} tr.ready th{{color:#2a7d45}} tr.not-ready th{{color:#b52b27}}
td svg{{vertical-align:middle}}</style></head><body>
<h1>{e(title or rt["title"])}</h1><p>{e(rules.name)} · {e(when)}</p>
<section id="overview"><table id="readiness-table">
<tr><th>{e(t["labels"]["trainee"])}</th><th></th>{head}<th>trend</th></tr>
{"".join(body)}</table></section>
<section id="details">{"".join(details)}</section>
{agreement_html(agreement(rows), rules.language)}
</body></html>
"""


def texts_title(rules: Rules) -> str:
    return texts(rules.language)["readiness"]["title"]
