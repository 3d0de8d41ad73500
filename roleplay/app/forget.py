"""`roleplay forget`: remove a trainee's, a call's or old calls' data for good.

What goes: the call directories the history points to (audio, events, transcripts in analysis.json,
report.html), the trainee's calibration (`trainees/NAME/` beside the history, see
`roleplay.session.live.calibration_path`), and the history rows (calls and every table that refers to a
call, plus the trainee's group memberships), also in the `*.bak` copies that schema migrations
keep. SQLite rows are overwritten, not just unlinked (`secure_delete`), and the WAL is
checkpointed and truncated, so the names do not linger in the file.

What stays (and is said so): files outside call directories (your own audio given to `analyse`, a
`--json`/`--html` written elsewhere), and a directory the history names that is not a call
directory. Nothing is removed before the database's write lock is held; a file that cannot be
removed rolls the database back, so running the command again finishes the job.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from roleplay.core.errors import InputError
from roleplay.history.store import DB_ENV, History, default_db_path, is_url

_CHUNK = 500  # ids per IN (...) clause, well under SQLite's variable limit


@dataclass(frozen=True)
class CallToForget:
    row_id: int | None  # None: a call directory that is not in the history
    call_key: str | None
    trainee: str | None
    started_utc: str | None
    directory: Path | None  # a call directory to remove (checked), or None
    note: str | None = None  # why something of this call stays, or "already gone"


@dataclass(frozen=True)
class ForgetPlan:
    what: str  # for messages: "trainee 'anna'", "call /x/y", "calls started more than 30 days ago"
    db: str | None  # the history (path or URL without password), None when there is none
    calls: tuple[CallToForget, ...]
    calibration_dirs: tuple[Path, ...]
    trainee: str | None  # whose group memberships go too (--trainee only)

    @property
    def empty(self) -> bool:
        return not self.calls and not self.calibration_dirs and self.trainee is None

    @property
    def directories(self) -> tuple[Path, ...]:
        return tuple(c.directory for c in self.calls if c.directory is not None) + self.calibration_dirs


@dataclass(frozen=True)
class ForgetResult:
    removed_dirs: tuple[Path, ...]
    removed_files: int
    removed_bytes: int
    rows: dict[str, int]  # table -> rows deleted from the history
    backups: tuple[Path, ...]  # migration backups cleaned the same way
    notes: tuple[str, ...]  # what could not be done completely


# --------------------------------------------------------------------------- finding what to remove


def _history_target(db: str | Path | None) -> str | Path | None:
    """The history to use, or None when the SQLite file does not exist (forget never creates one)."""
    target: str | Path = db if db else (os.environ.get(DB_ENV) or default_db_path())
    if is_url(target):
        return str(target)
    path = Path(target).expanduser()
    return path if path.exists() else None


def is_call_directory(path: Path) -> bool:
    """A directory `roleplay.recording.calldir` wrote: meta.json with `format_version` and `rate_hz`."""
    if path.is_symlink() or not path.is_dir():
        return False
    from roleplay.recording.calldir import read_meta

    try:
        read_meta(path)  # parses only as a call's meta.json (format_version, rate_hz, ...)
    except InputError:
        return False
    return True


def _checked_dir(value: str | None) -> tuple[Path | None, str | None]:
    """(a call directory to remove, None) or (None, why it stays)."""
    if not value:
        return None, None
    path = Path(value)
    if not path.exists() and not path.is_symlink():
        return None, f"{path}: already gone"
    if path.resolve() in (Path("/"), Path.home().resolve()) or not is_call_directory(path):
        return None, f"{path}: not a call directory, left alone"
    return path, None


def _source_note(call_key: str) -> str | None:
    """A call analysed from loose files: name them, they are the user's own and stay."""
    if not call_key.startswith("src:"):
        return None
    try:
        source = json.loads(call_key[4:])
    except ValueError:
        return None
    files = [str(v) for k, v in (source or {}).items() if isinstance(v, str) and k in ("file", "caller", "trainee")]
    return f"{', '.join(files)}: audio outside any call directory, left alone" if files else None


def _rows(history: History, where: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
    return history.conn.execute(
        f"SELECT id, call_key, trainee, started_utc, call_dir FROM calls WHERE {where} ORDER BY started_utc, id",
        list(args),
    ).fetchall()


def _call(row: tuple[Any, ...]) -> CallToForget:
    row_id, key, trainee, started, call_dir = row
    directory, note = _checked_dir(call_dir)
    return CallToForget(row_id, key, trainee, started, directory, note or _source_note(key))


def _known_trainees(history: History | None) -> list[str]:
    if history is None:
        return []
    names = {r[0] for r in history.conn.execute("SELECT DISTINCT trainee FROM calls")}
    names |= {r[0] for r in history.conn.execute("SELECT DISTINCT trainee FROM group_members")}
    return sorted(names)


def _calibration_dir(trainee: str) -> Path | None:
    from roleplay.session.live import calibration_path  # where `roleplay drill` keeps it

    try:
        directory = calibration_path(trainee).parent
    except InputError:  # a name no calibration can have (e.g. with '/')
        return None
    return directory if directory.is_dir() and not directory.is_symlink() else None


def plan_forget(
    *,
    trainee: str | None = None,
    call_dir: str | Path | None = None,
    older_than_days: float | None = None,
    db: str | Path | None = None,
    now: _dt.datetime | None = None,
) -> ForgetPlan:
    """What `forget` would remove; exactly one of trainee, call_dir, older_than_days."""
    if sum(x is not None for x in (trainee, call_dir, older_than_days)) != 1:
        raise InputError("forget needs exactly one of --trainee NAME, --call DIR, --older-than DAYS")
    target = _history_target(db)
    history = History(target) if target is not None else None
    try:
        label = None if history is None else (
            str(history.path) if history.dialect == "sqlite" else f"PostgreSQL database {history.path}")
        if trainee is not None:
            return _plan_trainee(trainee, history, label)
        if call_dir is not None:
            return _plan_call(Path(call_dir), history, label)
        return _plan_older(float(older_than_days), history, label, now)  # type: ignore[arg-type]
    finally:
        if history is not None:
            history.close()


def _plan_trainee(trainee: str, history: History | None, label: str | None) -> ForgetPlan:
    if not trainee.strip():
        raise InputError("--trainee: expected a trainee's name, got an empty one")
    calls = tuple(_call(r) for r in _rows(history, "trainee = ?", [trainee])) if history else ()
    cal = _calibration_dir(trainee)
    in_groups = bool(history and history.conn.execute(
        "SELECT 1 FROM group_members WHERE trainee = ?", (trainee,)).fetchone())
    if not calls and cal is None and not in_groups:
        known = _known_trainees(history)
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise InputError(f"nothing recorded for trainee {trainee!r} (no calls, calibration or group); "
                         f"expected one of: {shown or 'no trainees recorded yet'}")
    return ForgetPlan(f"trainee {trainee!r}", label, calls, (cal,) if cal else (), trainee)


def _plan_call(path: Path, history: History | None, label: str | None) -> ForgetPlan:
    if path.exists() and not is_call_directory(path):
        raise InputError(f"{path}: not a call directory (expected one with a roleplay meta.json); nothing removed")
    resolved = path.resolve()
    keys = ["dir:" + str(resolved)]
    if path.exists():
        from roleplay.recording.calldir import read_meta

        call_id = read_meta(path).call_id
        if call_id:
            keys.append(f"id:{call_id}")
    rows = _rows(history, f"call_dir = ? OR call_key IN ({', '.join('?' * len(keys))})",
                 [str(resolved), *keys]) if history else []
    calls = [_call(r) for r in rows]
    if path.exists() and not any(c.directory is not None and c.directory.resolve() == resolved for c in calls):
        calls.append(CallToForget(None, None, None, None, path))  # on disk but never recorded (or not here)
    if not calls:
        raise InputError(f"{path}: no such call directory, and the history has no call there; nothing to remove")
    return ForgetPlan(f"call {path}", label, tuple(calls), (), None)


def _started(value: str | None) -> _dt.datetime | None:
    try:
        when = _dt.datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.UTC)


def _plan_older(days: float, history: History | None, label: str | None, now: _dt.datetime | None) -> ForgetPlan:
    if not 0 <= days < float("inf"):
        raise InputError(f"--older-than: expected 0 or more days, got {days:g}")
    cutoff = (now or _dt.datetime.now(_dt.UTC)) - _dt.timedelta(days=days)
    rows = _rows(history, "1 = 1", []) if history else []
    calls = tuple(_call(r) for r in rows if (w := _started(r[3])) is not None and w < cutoff)
    return ForgetPlan(f"calls started more than {days:g} days ago", label, calls, (), None)


# --------------------------------------------------------------------------- removing


def _tables_with(conn: Any, dialect: str, column: str) -> list[str]:
    """Every history table with this column: a table added later is cleaned too."""
    if dialect == "sqlite":
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [t for t in tables if any(c[1] == column for c in conn.execute(f'PRAGMA table_info("{t}")'))]
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND column_name = ?", (column,))]


def _delete_rows(conn: Any, dialect: str, *, call_keys: Iterable[str], trainee: str | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    keys = list(dict.fromkeys(call_keys))
    ids: list[int] = []
    for i in range(0, len(keys), _CHUNK):
        part = keys[i:i + _CHUNK]
        ids += [r[0] for r in conn.execute(
            f"SELECT id FROM calls WHERE call_key IN ({', '.join('?' * len(part))})", part)]
    for table in [t for t in _tables_with(conn, dialect, "call_id") if t != "calls"]:
        for i in range(0, len(ids), _CHUNK):
            id_part = ids[i:i + _CHUNK]
            cur = conn.execute(f'DELETE FROM "{table}" WHERE call_id IN ({", ".join("?" * len(id_part))})', id_part)
            counts[table] = counts.get(table, 0) + max(cur.rowcount, 0)
    for i in range(0, len(ids), _CHUNK):
        id_part = ids[i:i + _CHUNK]
        cur = conn.execute(f"DELETE FROM calls WHERE id IN ({', '.join('?' * len(id_part))})", id_part)
        counts["calls"] = counts.get("calls", 0) + max(cur.rowcount, 0)
    if trainee is not None:
        for table in [t for t in _tables_with(conn, dialect, "trainee") if t != "calls"]:
            cur = conn.execute(f'DELETE FROM "{table}" WHERE trainee = ?', (trainee,))
            counts[table] = counts.get(table, 0) + max(cur.rowcount, 0)
    return {t: n for t, n in counts.items() if n}


def _dir_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            with contextlib.suppress(OSError):  # a file removed meanwhile: nothing to count
                size += os.lstat(os.path.join(root, name)).st_size
    return files, size


def _clean_backups(db_path: Path, call_keys: Sequence[str], trainee: str | None) -> tuple[list[Path], list[str]]:
    """The copies `History` keeps before a migration hold the same rows: clean them too."""
    cleaned, notes = [], []
    for backup in sorted(db_path.parent.glob(f"{db_path.name}.v*.bak")):
        try:
            conn = sqlite3.connect(backup, isolation_level=None)
            try:
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("PRAGMA journal_mode = MEMORY")  # no journal file holding the old pages
                conn.execute("BEGIN IMMEDIATE")
                counts = _delete_rows(conn, "sqlite", call_keys=call_keys, trainee=trainee)
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            notes.append(f"{backup}: could not be cleaned ({exc}); delete it yourself")
            continue
        if counts:
            cleaned.append(backup)
    return cleaned, notes


def forget(plan: ForgetPlan, *, db: str | Path | None = None) -> ForgetResult:
    """Remove what `plan` lists. The history's write lock is taken first, the files are removed, then
    the rows; a failure before the commit leaves the history as it was."""
    notes: list[str] = []
    rows: dict[str, int] = {}
    removed: list[Path] = []
    files = size = 0
    keys = [c.call_key for c in plan.calls if c.call_key]
    target = _history_target(db)
    history = History(target) if target is not None else None

    def remove_files() -> None:
        nonlocal files, size
        for directory in plan.directories:
            if not directory.exists():
                continue
            n, b = _dir_size(directory)
            shutil.rmtree(directory)
            removed.append(directory)
            files, size = files + n, size + b

    if history is None:
        remove_files()
        return ForgetResult(tuple(removed), files, size, rows, (), tuple(notes))
    backups: list[Path] = []
    try:
        if history.dialect == "sqlite":
            history.conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left in free pages
        with history.write() as conn:
            remove_files()
            rows = _delete_rows(conn, history.dialect, call_keys=keys, trainee=plan.trainee)
        if history.dialect == "sqlite":
            busy = history.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if busy:
                notes.append(f"{history.path}: another process has the history open; the old copies of the "
                             "rows leave its write-ahead log when that process closes it")
            backups, backup_notes = _clean_backups(history.path, keys, plan.trainee)
            notes += backup_notes
        else:
            notes.append("PostgreSQL keeps deleted rows on disk until its next VACUUM (autovacuum does this)")
    finally:
        history.close()
    return ForgetResult(tuple(removed), files, size, rows, tuple(backups), tuple(notes))


# --------------------------------------------------------------------------- the command


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def describe_plan(plan: ForgetPlan, out: TextIO) -> None:
    out.write(f"roleplay forget: {plan.what}" + (f" (history {plan.db})" if plan.db else " (no history)") + "\n")
    for call in plan.calls:
        if call.directory is not None:
            n, b = _dir_size(call.directory)
            out.write(f"  call directory  {call.directory}  ({_plural(n, 'file')}, {_mb(b)})\n")
        if call.note:
            out.write(f"  kept            {call.note}\n")
    for directory in plan.calibration_dirs:
        n, _b = _dir_size(directory)
        out.write(f"  calibration     {directory}  ({_plural(n, 'file')})\n")
    in_history = sum(c.row_id is not None for c in plan.calls)
    if in_history or plan.trainee is not None:
        extra = "; the trainee's group memberships" if plan.trainee is not None else ""
        out.write(f"  history         {_plural(in_history, 'call')} with their verdicts, figures and reviews{extra}\n")


def describe_result(result: ForgetResult, out: TextIO) -> None:
    parts = [f"{_plural(len(result.removed_dirs), 'directory', 'directories')} "
             f"({_plural(result.removed_files, 'file')}, {_mb(result.removed_bytes)})"]
    if result.rows:
        parts.append("history rows: " + ", ".join(f"{n} {t}" for t, n in sorted(result.rows.items())))
    else:
        parts.append("no history rows")
    if result.backups:
        parts.append("also from " + ", ".join(b.name for b in result.backups))
    out.write("Removed " + "; ".join(parts) + ".\n")
    for note in result.notes:
        out.write(f"Note: {note}\n")


def _confirm(plan: ForgetPlan, *, yes: bool, stdin: TextIO, out: TextIO) -> bool:
    if yes:
        return True
    if not (stdin and stdin.isatty()):
        n = len(plan.directories)
        calls = sum(c.row_id is not None for c in plan.calls)
        raise InputError(f"forget {plan.what}: would remove {_plural(n, 'directory', 'directories')} and "
                         f"{_plural(calls, 'history call')} for good; stdin is not a terminal, so confirm with --yes")
    out.write("Remove these for good? [y/N] ")
    out.flush()
    return stdin.readline().strip().lower() in ("y", "yes", "j", "ja")


def cmd_forget(args: Any, out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """`roleplay forget --trainee NAME | --call DIR | --older-than DAYS [--db FILE|URL] [--yes]`."""
    out = sys.stdout if out is None else out  # looked up now, not at import (tests replace it)
    stdin = sys.stdin if stdin is None else stdin
    plan = plan_forget(trainee=args.trainee, call_dir=args.call, older_than_days=args.older_than, db=args.db)
    if plan.empty:
        out.write(f"Nothing to remove: no {plan.what} in the history{f' ({plan.db})' if plan.db else ''}.\n")
        return 0
    if not args.yes and not (stdin and stdin.isatty()):
        _confirm(plan, yes=False, stdin=stdin, out=out)  # raises: one line, nothing shown or removed
    describe_plan(plan, out)
    if not _confirm(plan, yes=args.yes, stdin=stdin, out=out):
        out.write("Nothing removed.\n")
        return 1
    describe_result(forget(plan, db=args.db), out)
    return 0
