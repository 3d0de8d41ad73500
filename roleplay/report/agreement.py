"""Trainer agreement: how often trainers overrode the automatic verdict, per advice item and per
reason, so the rules can be tuned where trainers disagree.

Reads the history's rows (automatic verdicts and the newest review per item) and, for the reasons,
each reviewed call's analysis.json (the history keeps verdicts, not reasons). A call whose analysis
is gone counts under the reason `unknown`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roleplay.analysis.document import read_document
from roleplay.history.store import CallRow
from roleplay.report.text import fmt_num, texts


@dataclass(frozen=True)
class Agreement:
    item: str
    automatic: str  # the automatic verdict the trainers saw
    reason: str  # one reason code of that verdict (a verdict with two reasons counts under both)
    reviewed: int
    overridden: int  # the trainer's verdict differs from the automatic one

    @property
    def overridden_pct(self) -> float:
        return 100.0 * self.overridden / self.reviewed if self.reviewed else 0.0


def _reasons(call_dir: str | None) -> dict[str, list[str]]:
    data = read_document(Path(call_dir) / "analysis.json") if call_dir else None
    out: dict[str, list[str]] = {}
    for a in (data or {}).get("advice") or []:
        out[a["id"]] = [r["code"] for r in a.get("reasons") or []]
    return out


def agreement(rows: Sequence[CallRow]) -> tuple[Agreement, ...]:
    """One line per (item, automatic verdict, reason) that a trainer reviewed, most overridden first."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        if not row.reviews:
            continue
        reasons = _reasons(row.call_dir)
        for item, review in row.reviews.items():
            automatic = row.verdicts.get(item)
            if automatic is None:
                continue  # e.g. the call's outcome: no automatic verdict to agree with
            for code in reasons.get(item) or ["unknown"]:
                c = counts.setdefault((item, automatic, code), [0, 0])
                c[0] += 1
                c[1] += review["verdict"] != automatic
    out = [Agreement(i, v, r, n, o) for (i, v, r), (n, o) in counts.items()]
    return tuple(sorted(out, key=lambda a: (-a.overridden_pct, -a.reviewed, a.item, a.reason)))


def agreement_lines(found: Sequence[Agreement], language: str) -> list[str]:
    """The table as text lines, for the terminal."""
    t = texts(language)["agreement"]
    lines = [t["head"]]
    lines += [t["line"].format(item=a.item, verdict=a.automatic, reason=a.reason, reviewed=a.reviewed,
                               overridden=a.overridden, pct=fmt_num(a.overridden_pct, 0, language))
              for a in found]
    return lines if found else [t["none"]]


def agreement_html(found: Sequence[Agreement], language: str) -> str:
    """The readiness page's section: overrides per item, verdict and reason."""
    e, t = html.escape, texts(language)
    x, items, verdicts = t["agreement"], t["items"], t["verdicts"]
    if not found:
        return f'<section id="agreement"><h2>{e(x["title"])}</h2><p>{e(x["none"])}</p></section>'
    rows = "".join(
        f'<tr data-item="{e(a.item)}" data-reason="{e(a.reason)}"><td>{e(items.get(a.item, a.item))}</td>'
        f"<td>{e(verdicts.get(a.automatic, a.automatic))}</td><td><code>{e(a.reason)}</code></td>"
        f'<td class="num">{a.reviewed}</td><td class="num">{a.overridden}</td>'
        f'<td class="num">{fmt_num(a.overridden_pct, 0, language)} %</td></tr>'
        for a in found
    )
    head = "".join(f"<th>{e(h)}</th>" for h in x["columns"])
    return (f'<section id="agreement"><h2>{e(x["title"])}</h2><p>{e(x["intro"])}</p>'
            f"<table><tr>{head}</tr>{rows}</table></section>")


def agreement_json(found: Sequence[Agreement]) -> list[dict[str, Any]]:
    return [{"item": a.item, "automatic": a.automatic, "reason": a.reason, "reviewed": a.reviewed,
             "overridden": a.overridden} for a in found]
