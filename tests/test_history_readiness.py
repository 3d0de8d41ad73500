"""The history database (location, permissions, schema migration, concurrent writers) and readiness
decisions checked against hand-worked expectations. No audio, no model: rows are built directly."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from pathlib import Path

import pytest

from roleplay.cli.main import main as cli_main
from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import InputError
from roleplay.history.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    History,
    HistoryError,
    default_db_path,
    record_call,
)
from roleplay.report.readiness import evaluate, load_rules, render_readiness_html

ITEMS = ADVICE_IDS


def analysis(
    *, trainee: str, scenario: str, call_id: str, outcome: str = "calmed", intensity: str | None = None, **verdicts: str
) -> dict:
    """A minimal analysis JSON: every item passes unless given (use underscores for dashes)."""
    given = {k.replace("_", "-"): v for k, v in verdicts.items()}
    call = {
        "call_id": call_id,
        "scenario": scenario,
        "trainee": trainee,
        "outcome": outcome,
        "mode": "test",
        "anger_start": 7.0,
        "anger_peak": 8.0,
        "anger_end": 3.0,
    }
    if intensity:
        call["intensity"] = intensity
    return {
        "schema": "roleplay-analysis",
        "schema_version": 1,
        "language": "nl",
        "duration_s": 60.0,
        "source": {"test": call_id},
        "turns": [],
        "backchannels": [],
        "interruptions": [],
        "warnings": [],
        "baseline": {"source": "none"},
        "call": call,
        "anger": [{"t_s": 0.0, "anger": 7.0}, {"t_s": 30.0, "anger": 3.0}],
        "advice": [
            {
                "id": i,
                "verdict": given.get(
                    i,
                    "not-applicable"
                    if i in ("warm-transfer", "address-behaviour", "announce-end", "debrief")
                    else "pass",
                ),
                "figures": {"count": 0} if i == "no-interrupt" else {},
                "turns": [],
                "feedback": "",
                "proxy": False,
            }
            for i in ITEMS
        ],
    }


def add(h: History, day: int, **kw) -> int:
    return h.record(analysis(**kw), None, started_utc=f"2026-11-{day:02d}T09:00:00+00:00")


# --------------------------------------------------------------------------- the database


def test_default_location_follows_xdg_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ROLEPLAY_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "roleplay" / "history.sqlite3"
    monkeypatch.setenv("ROLEPLAY_DB", str(tmp_path / "elsewhere.db"))
    assert default_db_path() == tmp_path / "elsewhere.db"


def test_database_is_private_versioned_and_in_wal_mode(tmp_path):
    path = tmp_path / "roleplay" / "history.sqlite3"
    with History(path) as h:
        add(h, 1, trainee="a", scenario="nl-visite-derde-keer", call_id="c1")
        assert h.schema_version() == SCHEMA_VERSION
        assert h.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for p in path.parent.iterdir():  # the database and its -wal/-shm files
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with History(path) as h:  # re-recording a call updates it, never duplicates it
        add(h, 1, trainee="a", scenario="nl-visite-derde-keer", call_id="c1", outcome="caller-hung-up")
        (row,) = h.calls()
        assert row.outcome == "caller-hung-up" and row.outcome_expected is False and row.intensity == "realistic"


def test_record_call_for_others_to_use(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLEPLAY_DB", str(tmp_path / "env.db"))
    call_id = record_call(analysis(trainee="b", scenario="nl-bezorgde-moeder", call_id="x"), None)
    assert call_id == 1
    with History(tmp_path / "env.db") as h:
        (row,) = h.calls(trainee="b")
        assert row.figures["anger_end"] == 3.0 and row.figures["interruptions"] == 0.0
        assert row.figures["time_to_calm_s"] == 30.0  # nl-bezorgde-moeder calms below its calmed_below


def test_migration_from_a_v1_database_keeps_every_row(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[1][0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO calls (call_key, trainee, scenario, language, mode, started_utc, recorded_utc, "
        "duration_s, outcome, call_dir) VALUES ('id:old', 'anna', 'nl-scheldende-beller', 'nl', 'live', "
        "'2026-10-01T10:00:00+00:00', '2026-10-01T10:05:00+00:00', 80.5, 'calmed', NULL)"
    )
    conn.execute("INSERT INTO verdicts VALUES (1, 'no-interrupt', 'fail')")
    conn.execute("INSERT INTO figures VALUES (1, 'rate_change_pct', -12.5)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    with History(path) as h:
        assert h.schema_version() == SCHEMA_VERSION
        (row,) = h.calls()
        assert (row.trainee, row.duration_s, row.verdicts, row.figures) == (
            "anna",
            80.5,
            {"no-interrupt": "fail"},
            {"rate_change_pct": -12.5},
        )
        assert row.intensity == "severe" and row.outcome_expected is True  # backfilled from the scenario
        h.add_review(row.id, item="no-interrupt", verdict="pass", note="backchannel", by="t")
        assert h.calls()[0].verdict("no-interrupt") == "pass"
    backup = tmp_path / "old.sqlite3.v1.bak"
    assert backup.is_file() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    old = sqlite3.connect(backup)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    assert old.execute("SELECT count(*) FROM calls").fetchone()[0] == 1
    old.close()


def test_a_newer_schema_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "new.sqlite3"
    with History(path) as h:
        add(h, 1, trainee="a", scenario="nl-visite-derde-keer", call_id="c1")
        h.conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="newer roleplay"):
        History(path)
    assert path.read_bytes() == before


def test_not_a_database_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite3"
    bad.write_text("this is not sqlite" * 100)
    assert cli_main(["history", "--db", str(bad)]) == 2
    assert "not a usable history database" in capsys.readouterr().err


def _writer(path: str, worker: int, count: int) -> None:
    with History(path) as h:
        for n in range(count):
            call_id = add(h, 1 + n % 28, trainee=f"t{worker}", scenario="nl-visite-derde-keer", call_id=f"{worker}-{n}")
            if n % 5 == 0:
                h.add_review(call_id, item="slower-softer", verdict="fail", note=f"w{worker} n{n}", by="x")


def test_several_processes_write_at_once_without_losing_rows(tmp_path):
    path = tmp_path / "shared.sqlite3"
    # no database yet: the writers race to create and migrate it too
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 100)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with History(path) as h:
        assert h.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert h.conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 400
        assert h.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 400 * len(ITEMS)
        assert h.conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 4 * 20
        assert sorted(h.trainees()) == ["t0", "t1", "t2", "t3"]


# --------------------------------------------------------------------------- readiness, hand-worked


RULES = """
version: 1
language: en
name: test rules
defaults: {min_intensity: realistic, window: 4, min_passes: 3, items: [outcome, no-interrupt, slower-softer]}
not_applicable_counts_as_pass: [announce-end]
requirements:
  - scenario: nl-visite-derde-keer
  - scenario: nl-scheldende-beller
    items: [no-interrupt, announce-end]
"""


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return load_rules(path)


def test_readiness_three_of_the_last_four(tmp_path, rules):
    with History(tmp_path / "h.db") as h:
        # anna, nl-visite-derde-keer, days 1-5. no-interrupt F F P P P, slower-softer F P F P P.
        # The last four (days 2-5): no-interrupt 3/4, slower-softer 3/4, outcome 4/4 -> met.
        for day, (ni, ss) in enumerate(
            [("fail", "fail"), ("fail", "pass"), ("pass", "fail"), ("pass", "pass"), ("pass", "pass")], start=1
        ):
            add(
                h,
                day,
                trainee="anna",
                scenario="nl-visite-derde-keer",
                call_id=f"a{day}",
                no_interrupt=ni,
                slower_softer=ss,
            )
        # scheldende-beller, days 6-8: announce-end not applicable twice (counts as pass), passed once -> 3/3.
        for day, ae in [(6, "not-applicable"), (7, "pass"), (8, "not-applicable")]:
            add(h, day, trainee="anna", scenario="nl-scheldende-beller", call_id=f"as{day}", announce_end=ae)
        # bram: same visits but slower-softer P F F P in the last four -> 2/4, not met ...
        for day, ss in enumerate(["pass", "pass", "fail", "fail", "pass"], start=1):
            add(h, day, trainee="bram", scenario="nl-visite-derde-keer", call_id=f"b{day}", slower_softer=ss)
        for day in (6, 7, 8):
            add(h, day, trainee="bram", scenario="nl-scheldende-beller", call_id=f"bs{day}")
        # cas: two perfect attempts only -> too few.  dirk: four perfect attempts but at mild -> none count.
        for day in (1, 2):
            add(h, day, trainee="cas", scenario="nl-visite-derde-keer", call_id=f"c{day}")
        for day in (1, 2, 3, 4):
            add(h, day, trainee="dirk", scenario="nl-visite-derde-keer", call_id=f"d{day}", intensity="mild")
            add(h, day, trainee="dirk", scenario="nl-scheldende-beller", call_id=f"ds{day}")
        # erik: outcome bad in 2 of the last 4 (the caller hung up)
        for day, outcome in enumerate(["calmed", "caller-hung-up", "calmed", "caller-hung-up"], start=1):
            add(h, day, trainee="erik", scenario="nl-visite-derde-keer", call_id=f"e{day}", outcome=outcome)
            add(h, day, trainee="erik", scenario="nl-scheldende-beller", call_id=f"es{day}")
        rows = h.calls()

        anna = evaluate("anna", rows, rules)
        assert anna.ready and anna.missing() == []
        visit = anna.requirements[0]
        assert [(i.item, i.passes) for i in visit.items] == [("outcome", 4), ("no-interrupt", 3), ("slower-softer", 3)]
        assert [e.date[:10] for e in visit.items[0].evidence] == [f"2026-11-0{d}" for d in (2, 3, 4, 5)]

        bram = evaluate("bram", rows, rules)
        assert not bram.ready
        assert bram.missing() == ["nl-visite-derde-keer: slower-softer passed 2 of the last 4 (need 3 of the last 4)"]
        # a trainer overrides day 4's slower-softer -> 3 of 4 -> ready
        h.add_review(
            h.call_id_for(call_key="id:b4"),
            item="slower-softer",
            verdict="pass",
            note="slowed down audibly; the measure missed it",
            by="trainer",
        )
        bram = evaluate("bram", h.calls(), rules)
        assert bram.ready
        ev = bram.requirements[0].items[2].evidence
        assert [e.verdict for e in ev] == ["pass", "fail", "pass", "pass"] and ev[2].automatic == "fail"
        assert ev[2].override_note == "slowed down audibly; the measure missed it"

        cas = evaluate("cas", rows, rules)
        assert not cas.ready
        assert cas.missing()[0] == (
            "nl-visite-derde-keer: 2 attempt(s) at realistic or above; need 3 good ones among the last 4"
        )
        assert (
            cas.missing()[1] == "nl-scheldende-beller: no attempt at realistic or above yet (need 3 good of the last 4)"
        )

        dirk = evaluate("dirk", rows, rules)
        assert not dirk.ready and dirk.requirements[0].attempts == 0 and dirk.requirements[1].met

        erik = evaluate("erik", rows, rules)
        assert erik.missing() == ["nl-visite-derde-keer: outcome passed 2 of the last 4 (need 3 of the last 4)"]

        # an override can also fail an automatic pass
        h.add_review(h.call_id_for(call_key="id:a5"), item="no-interrupt", verdict="fail", note="talked over", by="t")
        assert not evaluate("anna", h.calls(), rules).ready


CORE_DUTCH = {"nl-visite-derde-keer", "nl-bezorgde-moeder", "nl-sociale-media", "nl-scheldende-beller",
              "nl-boos-op-de-organisatie", "nl-doorverbinden"}


def test_default_rules_cover_the_six_core_dutch_scenarios(tmp_path):
    """Readiness rests on six core scenarios; the other shipped ones are extra practice."""
    rules = load_rules()
    shipped = {p.stem for p in (Path(__file__).resolve().parent.parent / "scenarios").glob("nl-*.yaml")}
    assert {r.scenario for r in rules.requirements} == CORE_DUTCH and shipped >= CORE_DUTCH
    with History(tmp_path / "h.db") as h:
        for day in range(1, 5):
            for req in rules.requirements:
                add(
                    h,
                    day,
                    trainee="fleur",
                    scenario=req.scenario,
                    call_id=f"{req.scenario}-{day}",
                    outcome="transferred" if req.scenario == "nl-doorverbinden" else "calmed",
                    warm_transfer="pass" if req.scenario == "nl-doorverbinden" else "not-applicable",
                )
        assert evaluate("fleur", h.calls(), rules).ready
        # one more severe call with a failed announcement and one more with an interruption: 2 of the last 4
        add(h, 5, trainee="fleur", scenario="nl-scheldende-beller", call_id="s5", announce_end="fail")
        add(h, 6, trainee="fleur", scenario="nl-scheldende-beller", call_id="s6", announce_end="fail")
        result = evaluate("fleur", h.calls(), rules)
        assert not result.ready
        assert result.missing() == ["nl-scheldende-beller: announce-end passed 2 of the last 4 (need 3 of the last 4)"]


def test_bad_rules_name_the_file_and_field(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("requirements:\n  - scenario: x\n    items: [no-such-item]\n")
    with pytest.raises(InputError, match=r"r\.yaml: requirements\[0\]\.items: unknown item 'no-such-item'"):
        load_rules(path)
    path.write_text("requirements:\n  - scenario: x\n    window: 2\n    min_passes: 3\n")
    with pytest.raises(InputError, match="min_passes"):
        load_rules(path)


def test_readiness_and_group_commands(tmp_path, capsys, rules):
    db = tmp_path / "h.db"
    with History(db) as h:
        for day in range(1, 5):
            add(h, day, trainee="anna", scenario="nl-visite-derde-keer", call_id=f"a{day}")
            add(h, day, trainee="anna", scenario="nl-scheldende-beller", call_id=f"as{day}")
            add(h, day, trainee="bram", scenario="nl-visite-derde-keer", call_id=f"b{day}", no_interrupt="fail")
    assert cli_main(["group", "avond", "anna", "bram", "--db", str(db)]) == 0
    page = tmp_path / "group.html"
    assert (
        cli_main(["readiness", "--group", "avond", "--rules", str(rules.path), "--html", str(page), "--db", str(db)])
        == 0
    )
    out = capsys.readouterr().out
    assert "anna: READY" in out and "bram: NOT READY" in out
    assert "missing: nl-visite-derde-keer: no-interrupt passed 0 of the last 4" in out
    html = page.read_text(encoding="utf-8")
    assert html.count('<tr class="ready">') == 1 and html.count('<tr class="not-ready">') == 1
    assert 'class="spark"' in html and 'class="strip"' in html and "Ready for the phone?" in html
    assert cli_main(["readiness", "--trainee", "bram", "--rules", str(rules.path), "--exit-code", "--db", str(db)]) == 1
    assert cli_main(["readiness", "--group", "nobody", "--db", str(db)]) == 2
    capsys.readouterr()
    assert cli_main(["readiness", "--trainee", "bran", "--db", str(db)]) == 2  # a typo
    err = capsys.readouterr().err
    assert "no calls recorded for trainee 'bran'; trainees with calls: anna, bram" in err
    assert len(err.strip().splitlines()) == 1
    with History(db) as h:
        assert render_readiness_html([evaluate("anna", h.calls(), rules)], h.calls(), rules).count("<table") >= 3


def test_write_call_outputs_records_and_survives_a_broken_history(tmp_path, capsys):
    import json

    from roleplay.app.analyse import write_call_outputs

    call_dir = tmp_path / "call"
    call_dir.mkdir()
    data = analysis(trainee="gijs", scenario="nl-visite-derde-keer", call_id="w1")
    json_path, html_path = write_call_outputs(call_dir, data, db=tmp_path / "h.db")
    assert json.loads(json_path.read_text()) == data and "<svg" in html_path.read_text()
    with History(tmp_path / "h.db") as h:
        assert [r.trainee for r in h.calls()] == ["gijs"]
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite" * 200)
    write_call_outputs(call_dir, data, db=bad)
    assert "not recorded in the history" in capsys.readouterr().err
