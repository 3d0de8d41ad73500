"""The history of analysed calls: a local SQLite database, one row per call.

Where it lives (first that applies): `--db FILE` on the command line, `ROLEPLAY_DB`, then the
platform's user-data directory: `$XDG_DATA_HOME/roleplay/history.sqlite3` (default
`~/.local/share/roleplay/...`) on Linux and other Unixes, `~/Library/Application Support/roleplay/`
on macOS, `%APPDATA%\\roleplay\\` on Windows. The file is created readable by its owner only (0600;
SQLite gives its -wal and -shm files the same mode), in a 0700 directory.

The schema is versioned with `PRAGMA user_version` and migrated forward in one transaction, after a
copy of the old file is kept beside it (`history.sqlite3.v1.bak`). A database made by a newer
roleplay is refused, never rewritten. Several processes may write at once: WAL journal, a 30 s busy
timeout and `BEGIN IMMEDIATE` around every write, so no row is lost or half-written.

    calls        one row per analysed call (call_key is unique: re-recording a call updates it)
    verdicts     automatic verdict per advice item
    figures      key figures per call (name -> number)
    reviews      trainer overrides (v2): item, verdict, note, reviewer, time; the newest counts
    group_members  which trainees form a group (v2)
    users, web_sessions, login_failures, access_log, training_groups, trainer_groups,
    readiness_marks, settings   the browser app's accounts (v3; see history/accounts.py)
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

from roleplay.core.advice import ADVICE_IDS
from roleplay.core.errors import RoleplayError
from roleplay.core.files import write_atomic
from roleplay.core.paths import make_private_dir, user_data_dir

SCHEMA_VERSION = 3
DB_ENV = "ROLEPLAY_DB"
BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "ROLEPLAY_DB_TIMEOUT_S"  # how long to wait for another process's write lock
INTENSITY_ORDER = {"mild": 0, "realistic": 1, "severe": 2}

# Figures stored per call: name -> (advice item, figure name in the analysis JSON) or a call field.
_ADVICE_FIGURES = {
    "rate_change_pct": ("slower-softer", "rate_change_pct"),
    "loudness_change_db": ("slower-softer", "loudness_change_db"),
    "pitch_change_st": ("breathe", "pitch_change_st"),
    "interruptions": ("no-interrupt", "count"),
    "caller_share_pct": ("let-vent", "caller_share_pct"),
    "long_pauses": ("silence", "long_pauses"),
    "max_latency_s": ("silence", "max_latency_s"),
    "time_to_answer_s": ("greeting", "time_to_answer_s"),
    "arguments": ("no-discussion", "count"),
    "negative_phrases": ("positive", "negative"),
    "concrete_offers": ("concrete", "concrete"),
}
KEY_FIGURES = ("duration_s", "anger_start", "anger_peak", "anger_end", "time_to_calm_s", *_ADVICE_FIGURES)


class HistoryError(RoleplayError):
    """The history database cannot be used (newer schema, not a database, bad value)."""


def _now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def busy_timeout_s() -> float:
    """BUSY_TIMEOUT_S, or `ROLEPLAY_DB_TIMEOUT_S` seconds (e.g. shorter on a machine with no other writers)."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if not raw:
        return BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise HistoryError(f"{BUSY_TIMEOUT_ENV}={raw!r}: expected seconds from 0 to 3600")
    return value


def default_db_path() -> Path:
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    return user_data_dir() / "history.sqlite3"


# --------------------------------------------------------------------------- schema and migrations

_V1 = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    call_key TEXT NOT NULL UNIQUE,
    trainee TEXT NOT NULL,
    scenario TEXT NOT NULL,
    language TEXT,
    mode TEXT,
    started_utc TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    duration_s REAL,
    outcome TEXT,
    call_dir TEXT
);
CREATE INDEX calls_by_trainee ON calls (trainee, scenario, started_utc);
CREATE TABLE verdicts (
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    item TEXT NOT NULL,
    verdict TEXT NOT NULL,
    PRIMARY KEY (call_id, item)
);
CREATE TABLE figures (
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (call_id, name)
);
"""

_V2 = """
ALTER TABLE calls ADD COLUMN intensity TEXT;
ALTER TABLE calls ADD COLUMN outcome_expected INTEGER;
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    item TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail')),
    note TEXT NOT NULL,
    reviewer TEXT,
    created_utc TEXT NOT NULL
);
CREATE INDEX reviews_by_call ON reviews (call_id, item, id);
CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    trainee TEXT NOT NULL,
    PRIMARY KEY (group_name, trainee)
);
"""


# The browser app's accounts (roleplay/history/accounts.py). A user's name is the trainee name in
# calls.trainee and group_members, so groups, trainers and marks refer to users by name.
# Foreign keys to users.id are BIGINT: _pg_ddl makes users.id a BIGINT identity on PostgreSQL.
_V3 = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('trainee', 'trainer', 'admin')),
    password_hash TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT 'nl' CHECK (language IN ('nl', 'en')),
    created_utc TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE web_sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_utc TEXT NOT NULL,
    expires_utc TEXT NOT NULL,
    csrf_token TEXT NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    at_utc TEXT NOT NULL
);
CREATE INDEX login_failures_by_name ON login_failures (name, at_utc);
CREATE INDEX login_failures_by_address ON login_failures (address, at_utc);
CREATE TABLE access_log (
    id INTEGER PRIMARY KEY,
    who TEXT NOT NULL,
    at_utc TEXT NOT NULL,
    action TEXT NOT NULL,
    call_id BIGINT,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE training_groups (
    group_name TEXT PRIMARY KEY,
    created_utc TEXT NOT NULL
);
CREATE TABLE trainer_groups (
    trainer TEXT NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (trainer, group_name)
);
CREATE TABLE readiness_marks (
    id INTEGER PRIMARY KEY,
    trainee TEXT NOT NULL,
    ready INTEGER NOT NULL,
    marked_by TEXT NOT NULL,
    marked_utc TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX readiness_marks_by_trainee ON readiness_marks (trainee, id);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _backfill_v2(conn: Any) -> None:
    """Calls recorded by v1 get their scenario's intensity and whether the outcome was a good one."""
    rows = conn.execute("SELECT id, scenario, outcome FROM calls").fetchall()
    for call_id, scenario_id, outcome in rows:
        info = scenario_info(scenario_id)
        expected = None if info is None or outcome is None else int(outcome in info["expected"])
        conn.execute(
            "UPDATE calls SET intensity = ?, outcome_expected = ? WHERE id = ?",
            (info["intensity"] if info else None, expected, call_id),
        )


# version reached -> (SQL, Python step run after it)
MIGRATIONS: dict[int, tuple[str, Callable[[Any], None] | None]] = {
    1: (_V1, None),
    2: (_V2, _backfill_v2),
    3: (_V3, None),
}
assert max(MIGRATIONS) == SCHEMA_VERSION


@lru_cache(maxsize=64)
def scenario_info(scenario_id: str | None) -> dict[str, Any] | None:
    """Intensity, expected outcomes and `calmed_below` of a shipped scenario (None when unknown)."""
    if not scenario_id:
        return None
    from roleplay.caller.scenario import load_scenario
    from roleplay.core.errors import InputError

    try:
        s = load_scenario(scenario_id) if "/" not in scenario_id else None
    except InputError:
        return None
    if s is None:
        return None
    return {
        "intensity": s.intensity,
        "expected": tuple(s.ending.expected),
        "calmed_below": s.anger.calmed_below,
        "debrief": s.debrief,
        "title": s.title,
        "needs": tuple(s.needs),
        "language": s.language,
    }


# --------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class CallRow:
    id: int
    call_key: str
    trainee: str
    scenario: str
    language: str | None
    mode: str | None
    started_utc: str
    duration_s: float | None
    outcome: str | None
    outcome_expected: bool | None
    intensity: str | None
    call_dir: str | None
    verdicts: dict[str, str] = field(default_factory=dict)  # automatic
    figures: dict[str, float | None] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)  # newest override per item

    def verdict(self, item: str) -> str | None:
        """The verdict that counts: a trainer's override, else the automatic one."""
        if item == "outcome":
            return None if self.outcome_expected is None else ("pass" if self.outcome_expected else "fail")
        if item in self.reviews:
            return self.reviews[item]["verdict"]
        return self.verdicts.get(item)


def is_url(target: str | Path | None) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class _PgConn:
    """psycopg 3 behind the sqlite3 calls this module uses: `?` placeholders, execute, executemany."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.raw = psycopg.connect(url, autocommit=True, connect_timeout=int(BUSY_TIMEOUT_S))

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    def close(self) -> None:
        self.raw.close()


def _pg_ddl(statement: str) -> str:
    return (
        statement.replace("id INTEGER PRIMARY KEY", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        .replace("call_id INTEGER NOT NULL", "call_id BIGINT NOT NULL")
        .replace(" REAL", " DOUBLE PRECISION")
    )


class History:
    """One open history database. Use as a context manager or call `close()`.

    `path`: a SQLite file (the default: see `default_db_path`), or a PostgreSQL URL
    (`postgresql://user@host/dbname`, needs `psycopg`) so that several posts share one history."""

    url: str | None  # None for SQLite
    conn: sqlite3.Connection | _PgConn

    def __init__(self, path: str | Path | None = None) -> None:
        target: str | Path = path if path else (os.environ.get(DB_ENV) or default_db_path())
        if is_url(target):
            self._open_postgres(str(target))
            return
        self.path = Path(target).expanduser()
        self.url = None
        self.timeout_s = busy_timeout_s()
        self._create_private(self.path)
        try:
            self.conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except HistoryError:
            raise
        except sqlite3.OperationalError as exc:
            raise self._sqlite_error(exc) from None
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a usable history database ({exc})") from None

    def _sqlite_error(self, exc: sqlite3.OperationalError) -> HistoryError:
        if "locked" in str(exc) or "busy" in str(exc):
            return HistoryError(
                f"{self.path}: locked by another process for more than {self.timeout_s:g} s "
                f"({BUSY_TIMEOUT_ENV} sets the wait); nothing was changed"
            )
        return HistoryError(f"{self.path}: not a usable history database ({exc})")

    def _open_postgres(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise HistoryError("a PostgreSQL history needs psycopg: pip install 'psycopg[binary]'") from None
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url
        self.path = Path(parts.path.lstrip("/") or "postgres")  # for messages only, no password
        self.timeout_s = busy_timeout_s()
        try:
            self.conn = _PgConn(url)
            self._migrate()
        except psycopg.Error as exc:
            raise HistoryError(
                f"PostgreSQL history {parts.hostname or 'local'}/{self.path}: {str(exc).strip().splitlines()[0]}"
            ) from None

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url else "sqlite"

    @staticmethod
    def _create_private(path: Path) -> None:
        if path.exists():
            return
        make_private_dir(path.parent)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        except FileExistsError:  # another process created it first
            pass
        os.chmod(path, 0o600)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[Any]:
        """One write transaction, taking the write lock up front (waits up to the busy timeout)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        except sqlite3.OperationalError as exc:  # another process kept the write lock past the timeout
            raise self._sqlite_error(exc) from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def schema_version(self) -> int:
        if self.dialect == "sqlite":
            return self.conn.execute("PRAGMA user_version").fetchone()[0]
        if self.conn.execute("SELECT to_regclass('roleplay_schema')").fetchone()[0] is None:
            return 0
        row = self.conn.execute("SELECT max(version) FROM roleplay_schema").fetchone()
        return int(row[0] or 0)

    def _set_version(self, conn: Any, version: int) -> None:
        if self.dialect == "sqlite":
            conn.execute(f"PRAGMA user_version = {version}")
        else:
            conn.execute("INSERT INTO roleplay_schema (version, migrated_utc) VALUES (?, ?)", (version, _now_utc()))

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path}: history schema v{version} was written by a newer roleplay "
                f"(this one knows v{SCHEMA_VERSION}); upgrade roleplay, the file is left as it is"
            )
        if version == SCHEMA_VERSION:
            return
        if version > 0 and self.dialect == "sqlite":  # keep the old file before changing it
            backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
            if not backup.exists():
                if not isinstance(self.conn, sqlite3.Connection):
                    raise TypeError(f"{self.path}: a SQLite history without a sqlite3 connection")
                dest = sqlite3.connect(backup)
                with dest:
                    self.conn.backup(dest)
                dest.close()
                os.chmod(backup, 0o600)
        with self.write() as conn:
            if self.dialect == "postgresql":  # one migrator at a time; the others wait, then see it done
                conn.execute("SELECT pg_advisory_xact_lock(7231977)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS roleplay_schema (version INTEGER NOT NULL, migrated_utc TEXT NOT NULL)"
                )
            current = self.schema_version()  # another process may have won
            for target in range(current + 1, SCHEMA_VERSION + 1):
                sql, step = MIGRATIONS[target]
                for statement in _statements(sql):
                    conn.execute(statement if self.dialect == "sqlite" else _pg_ddl(statement))
                if step is not None:
                    step(conn)
                self._set_version(conn, target)

    # ----------------------------------------------------------------------- writing

    def record(
        self,
        data: dict[str, Any],
        call_dir: Path | None = None,
        *,
        started_utc: str | None = None,
        trainee: str | None = None,
    ) -> int:
        """Insert or update one analysed call; returns its row id."""
        row = call_fields(data, call_dir, started_utc=started_utc, trainee=trainee)
        verdicts = {a["id"]: a["verdict"] for a in data.get("advice", [])}
        figures = key_figures(data)
        with self.write() as conn:
            cols = [k for k in row if k != "call_key"]
            conn.execute(
                f"INSERT INTO calls (call_key, {', '.join(cols)}) VALUES (?{', ?' * len(cols)}) "
                f"ON CONFLICT (call_key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols)}",
                [row["call_key"], *(row[c] for c in cols)],
            )
            call_id = conn.execute("SELECT id FROM calls WHERE call_key = ?", (row["call_key"],)).fetchone()[0]
            conn.execute("DELETE FROM verdicts WHERE call_id = ?", (call_id,))
            conn.executemany("INSERT INTO verdicts VALUES (?, ?, ?)", [(call_id, k, v) for k, v in verdicts.items()])
            conn.execute("DELETE FROM figures WHERE call_id = ?", (call_id,))
            conn.executemany("INSERT INTO figures VALUES (?, ?, ?)", [(call_id, k, v) for k, v in figures.items()])
        return call_id

    def add_review(self, call_id: int, *, item: str, verdict: str, note: str, by: str | None) -> None:
        if item not in ADVICE_IDS and item != "outcome":
            raise HistoryError(f"unknown advice item {item!r}; expected one of: {', '.join(ADVICE_IDS)}")
        if verdict not in ("pass", "fail"):
            raise HistoryError(f"verdict must be pass or fail, got {verdict!r}")
        if not note.strip():
            raise HistoryError("a review needs a note saying why")
        with self.write() as conn:
            conn.execute(
                "INSERT INTO reviews (call_id, item, verdict, note, reviewer, created_utc) VALUES (?, ?, ?, ?, ?, ?)",
                (call_id, item, verdict, note.strip(), by, _now_utc()),
            )

    def set_group(self, group: str, trainees: Iterable[str], *, remove: bool = False) -> None:
        with self.write() as conn:
            for t in trainees:
                if remove:
                    conn.execute("DELETE FROM group_members WHERE group_name = ? AND trainee = ?", (group, t))
                else:
                    conn.execute("INSERT INTO group_members VALUES (?, ?) ON CONFLICT DO NOTHING", (group, t))

    # ----------------------------------------------------------------------- reading

    def group(self, group: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT trainee FROM group_members WHERE group_name = ? ORDER BY trainee", (group,)
            )
        ]

    def trainees(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT trainee FROM calls ORDER BY trainee")]

    def call_id_for(self, *, call_dir: Path | None = None, call_key: str | None = None) -> int | None:
        key = call_key or (_dir_key(call_dir) if call_dir is not None else None)
        row = self.conn.execute("SELECT id FROM calls WHERE call_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def reviews(self, call_id: int) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT item, verdict, note, reviewer, created_utc FROM reviews WHERE call_id = ? ORDER BY id", (call_id,)
        )
        return [dict(zip(("item", "verdict", "note", "by", "created_utc"), r, strict=True)) for r in cur]

    def calls(
        self, *, trainee: str | None = None, scenario: str | None = None, trainees: Iterable[str] | None = None
    ) -> list[CallRow]:
        where, args = [], []
        if trainee:
            where.append("trainee = ?")
            args.append(trainee)
        if trainees is not None:
            names = list(trainees)
            where.append(f"trainee IN ({', '.join('?' * len(names)) or 'NULL'})")
            args.extend(names)
        if scenario:
            where.append("scenario = ?")
            args.append(scenario)
        sql = (
            "SELECT id, call_key, trainee, scenario, language, mode, started_utc, duration_s, outcome, "
            "outcome_expected, intensity, call_dir FROM calls"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_utc, id"
        rows = self.conn.execute(sql, args).fetchall()
        ids = [r[0] for r in rows]
        verdicts: dict[int, dict[str, str]] = {i: {} for i in ids}
        figures: dict[int, dict[str, float | None]] = {i: {} for i in ids}
        reviews: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in ids}
        if ids:
            marks = ", ".join("?" * len(ids))
            for cid, item, verdict in self.conn.execute(
                f"SELECT call_id, item, verdict FROM verdicts WHERE call_id IN ({marks})", ids
            ):
                verdicts[cid][item] = verdict
            for cid, name, value in self.conn.execute(
                f"SELECT call_id, name, value FROM figures WHERE call_id IN ({marks})", ids
            ):
                figures[cid][name] = value
            for cid, item, verdict, note, by, when in self.conn.execute(
                f"SELECT call_id, item, verdict, note, reviewer, created_utc FROM reviews "
                f"WHERE call_id IN ({marks}) ORDER BY id",
                ids,
            ):
                reviews[cid][item] = {"verdict": verdict, "note": note, "by": by, "created_utc": when}
        return [
            CallRow(
                id=r[0],
                call_key=r[1],
                trainee=r[2],
                scenario=r[3],
                language=r[4],
                mode=r[5],
                started_utc=r[6],
                duration_s=r[7],
                outcome=r[8],
                outcome_expected=None if r[9] is None else bool(r[9]),
                intensity=r[10],
                call_dir=r[11],
                verdicts=verdicts[r[0]],
                figures=figures[r[0]],
                reviews=reviews[r[0]],
            )
            for r in rows
        ]


def open_history(db: str | Path | History | None = None) -> History:
    return db if isinstance(db, History) else History(db)


# --------------------------------------------------------------------------- from an analysis


def _dir_key(call_dir: Path) -> str:
    return "dir:" + str(Path(call_dir).resolve())


def _read_meta(call_dir: Path | None) -> dict[str, Any]:
    if call_dir is None:
        return {}
    from roleplay.core.errors import InputError
    from roleplay.recording.calldir import read_meta

    try:
        return read_meta(call_dir).to_dict()
    except InputError:  # gone or damaged: the analysis alone still makes the row
        return {}


def call_fields(
    data: dict[str, Any], call_dir: Path | None, *, started_utc: str | None = None, trainee: str | None = None
) -> dict[str, Any]:
    if data.get("schema") != "roleplay-analysis":
        raise HistoryError("not a roleplay analysis (expected `schema: roleplay-analysis`)")
    call = data.get("call") or {}
    if call_dir is None and isinstance(data.get("source"), dict) and data["source"].get("call_dir"):
        candidate = Path(data["source"]["call_dir"])
        call_dir = candidate if (candidate / "meta.json").is_file() else None
    meta = _read_meta(call_dir)
    scenario = call.get("scenario") or meta.get("scenario") or "unscripted"
    info = scenario_info(scenario)
    outcome = call.get("outcome") or meta.get("outcome")
    expected = meta.get("expected_outcomes") or (info["expected"] if info else None)
    if call.get("call_id"):
        key = f"id:{call['call_id']}"
    elif call_dir is not None:
        key = _dir_key(call_dir)
    else:
        key = "src:" + json.dumps(data.get("source"), sort_keys=True)
    return {
        "call_key": key,
        "trainee": trainee or call.get("trainee") or meta.get("trainee") or "unknown",
        "scenario": scenario,
        "language": data.get("language"),
        "mode": call.get("mode") or meta.get("mode"),
        "started_utc": started_utc or meta.get("created_utc") or _now_utc(),
        "recorded_utc": _now_utc(),
        "duration_s": data.get("duration_s"),
        "outcome": outcome,
        "outcome_expected": None if outcome is None or expected is None else int(outcome in expected),
        "intensity": call.get("intensity") or meta.get("intensity") or (info["intensity"] if info else None),
        "call_dir": str(Path(call_dir).resolve()) if call_dir is not None else None,
    }


def time_to_calm_s(data: dict[str, Any]) -> float | None:
    """Seconds until the caller's anger first fell below the scenario's `calmed_below`."""
    info = scenario_info((data.get("call") or {}).get("scenario"))
    threshold = info["calmed_below"] if info else 3.0
    for point in data.get("anger") or []:
        if point["anger"] < threshold:
            return round(float(point["t_s"]), 2)
    return None


def key_figures(data: dict[str, Any]) -> dict[str, float | None]:
    call = data.get("call") or {}
    advice = {a["id"]: a.get("figures") or {} for a in data.get("advice", [])}
    out: dict[str, float | None] = {
        "duration_s": data.get("duration_s"),
        "anger_start": call.get("anger_start"),
        "anger_peak": call.get("anger_peak"),
        "anger_end": call.get("anger_end"),
        "time_to_calm_s": time_to_calm_s(data),
    }
    for name, (item, fig) in _ADVICE_FIGURES.items():
        value = advice.get(item, {}).get(fig)
        out[name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return out


def record_call(
    analysis_json: dict[str, Any],
    call_dir: Path | None,
    db: str | Path | History | None = None,
    *,
    started_utc: str | None = None,
) -> int:
    """Record one analysed call in the history (insert, or update when it is already there).

    `db`: a path, an open `History`, or None for the default location (`ROLEPLAY_DB`, else the
    platform's user-data directory). Returns the call's row id.
    """
    history = open_history(db)
    try:
        return history.record(analysis_json, Path(call_dir) if call_dir is not None else None, started_utc=started_utc)
    finally:
        if history is not db:
            history.close()


def record_quietly(
    analysis_json: dict[str, Any], call_dir: Path | None, db: str | Path | History | None = None
) -> int | None:
    """`record_call` for the commands that analyse: a history that cannot be written is one warning
    on stderr, never a failed analysis. Returns the row id, or None."""
    try:
        return record_call(analysis_json, call_dir, db)
    except (RoleplayError, OSError, sqlite3.Error) as exc:
        later = f"; add it later with `roleplay history --add {call_dir}`" if call_dir is not None else ""
        print(f"roleplay: warning: the call was not recorded in the history: {exc}{later}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------- commands

_CSV_ITEMS = tuple(a for a in ADVICE_IDS if a != "debrief")  # debrief is never scored
_SHORT = {"pass": "✔", "fail": "✘", "no-evidence": "?", "not-applicable": "–", None: " "}


def history_table(rows: list[CallRow]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        line: dict[str, Any] = {
            "date": r.started_utc,
            "trainee": r.trainee,
            "scenario": r.scenario,
            "intensity": r.intensity,
            "mode": r.mode,
            "duration_s": r.duration_s,
            "outcome": r.outcome,
            "outcome_expected": r.outcome_expected,
            "call_dir": r.call_dir,
        }
        for item in _CSV_ITEMS:
            line[item] = r.verdict(item)
            line[f"{item}_automatic"] = r.verdicts.get(item)
        for name in KEY_FIGURES:
            line[name] = r.figures.get(name)
        out.append(line)
    return out


def write_csv(path: Path, rows: list[CallRow]) -> None:
    import io


    table = history_table(rows)
    buf = io.StringIO()
    fields = list(table[0]) if table else ["date", "trainee", "scenario"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    write_atomic(path, buf.getvalue())


def print_history(rows: list[CallRow], out: TextIO) -> None:
    if not rows:
        print("No calls recorded yet.", file=out)
        return
    items = " ".join(i[:2] for i in _CSV_ITEMS)
    print(f"{'date':<16} {'trainee':<12} {'scenario':<26} {'int.':<5} {'dur':>5} {'outcome':<17} {items}", file=out)
    for r in rows:
        marks = " ".join(_SHORT.get(r.verdict(i), "?") + ("*" if i in r.reviews else " ") for i in _CSV_ITEMS)
        print(
            f"{r.started_utc[:16].replace('T', ' '):<16} {r.trainee[:12]:<12} {r.scenario[:26]:<26} "
            f"{(r.intensity or '-')[:5]:<5} {r.duration_s or 0:>5.0f} {(r.outcome or '-')[:17]:<17} {marks}",
            file=out,
        )
    print(f"\n{len(rows)} call(s). Columns: {', '.join(_CSV_ITEMS)}; * = trainer override.", file=out)
