"""A call's analysis and report after the drill, as a job on a queue, so that drills never wait for
each other's analyses and more worker machines can be added without code changes.

Two queues, chosen by the history's database:

- PostgreSQL: procrastinate on the same database (its own `procrastinate_*` tables). The server
  defers a job; `roleplay worker` processes on any machine run it. A worker that dies mid-job
  (killed, machine off) stops sending heartbeats; any other worker sees the job stalled after
  `stalled_after_s` and puts it back in the queue.
- SQLite (one machine): one worker thread in the server process (`LocalQueue`). A job lives in
  memory only: if the server stops first, `roleplay report CALL_DIR` analyses the call later.

Either way the job is idempotent: the files are written atomically (core.files), the history
row is keyed by the call directory (an update, never a second row), and a job whose outputs are
already complete returns at once. Jobs name their call by its directory name under the calls
directory, which every worker reaches (shared storage mounted at the same path everywhere, since
the history keeps that path).

Workers run their analyses at a lower CPU priority (`nice`), so that on a machine that also runs
drills the drills' live recognition comes first and queued analyses wait rather than slow them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue as queue_module
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from roleplay.core.errors import InputError, RoleplayError
from roleplay.history.store import History, is_url

QUEUE_NAME = "roleplay-analysis"
TASK_NAME = "roleplay.analyse_call"
WORKER_NICE = 10  # below the drills (nice 0) on a shared machine
HEARTBEAT_S = 10.0
STALLED_AFTER_S = 60.0  # no heartbeat for this long: the worker is gone, its job goes back in the queue
MAX_ATTEMPTS = 3  # a call that kills its worker every time (out of memory) is failed after this

State = Literal["queued", "running", "done", "failed"]


class JobError(RoleplayError):
    """A job that cannot be queued or names no call directory the worker may read."""


@dataclass(frozen=True)
class Queued:
    """A deferred analysis: which call, and the queue's id for it."""

    call_dir: Path
    job_id: str


class AnalysisQueue(Protocol):
    def enqueue(self, call_dir: Path, language: str) -> Queued: ...

    def state(self, ticket: Queued) -> State: ...


# --------------------------------------------------------------------------- the job itself


def call_name(calls_dir: Path, call_dir: Path) -> str:
    """The call's directory name under `calls_dir` (what a job carries); JobError outside it."""
    call_dir, calls_dir = Path(call_dir).resolve(), Path(calls_dir).resolve()
    if call_dir.parent != calls_dir:
        raise JobError(f"{call_dir}: not a call directory directly under the calls directory {calls_dir}")
    return call_dir.name


def call_path(calls_dir: Path, name: str) -> Path:
    """The directory a job names, refused when the name would leave the calls directory."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise JobError(f"{name!r}: not a call directory name")
    return Path(calls_dir) / name


def _complete(call_dir: Path, history: History) -> int | None:
    """The call's history row when analysis.json and report.html are there and newer than the audio."""
    from roleplay.app.analyse import _newest_audio_mtime

    outputs = [call_dir / "analysis.json", call_dir / "report.html"]
    if not all(p.is_file() for p in outputs):
        return None
    if min(p.stat().st_mtime for p in outputs) < _newest_audio_mtime(call_dir):
        return None
    return history.call_id_for(call_dir=call_dir)


_TRANSCRIBER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _transcriber() -> Any:
    """The analyses' own recognizer: with the process's shared model (the drills') a check's long
    transcriptions would queue the drills' live recognition behind them, at the drills' priority."""
    from roleplay.speech.asr import FasterWhisperTranscriber
    from roleplay.speech.models import choose_model

    return FasterWhisperTranscriber(choose_model(None).path, own_model=True)


def analyse_job(call_dir: Path, language: str, db: str | Path | None) -> int:
    """The job's body: analyse the call, write analysis.json and report.html, record it in the
    history; a call already complete is left as it is. Returns the call's history row id."""
    from roleplay.app.analyse import analyse_call_dir, check_language

    call_dir = Path(call_dir)
    if not (call_dir / "meta.json").is_file():
        raise InputError(f"{call_dir}: no call there (no meta.json); is the calls directory shared?")
    with History(db) as history:
        done = _complete(call_dir, history)
        if done is not None:
            return done
        with _TRANSCRIBER_LOCK:  # one model per process, one analysis at a time with it
            analyse_call_dir(call_dir, check_language(language, None), _transcriber(), db=history)
        call_id = history.call_id_for(call_dir=call_dir)
    if call_id is None:
        raise JobError(f"{call_dir}: analysed, but the history did not take the call")
    return call_id


def lower_priority(nice: int) -> None:
    """Run this thread (Linux: each thread has its own nice value; threads it starts inherit it),
    or elsewhere the process, at a lower CPU priority."""
    if nice <= 0:
        return
    # no permission or no setpriority: run at the normal priority
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id() if sys.platform == "linux" else 0, nice)


# --------------------------------------------------------------------------- SQLite: a thread in the server


class LocalQueue:
    """One machine: the jobs in memory, one worker thread (started on the first job) at a lower
    priority, one analysis at a time."""

    def __init__(self, db: str | Path | None, *, nice: int = WORKER_NICE,
                 work: Callable[[Path, str, str | Path | None], int] = analyse_job) -> None:
        self.db, self.nice, self.work = db, nice, work
        self._jobs: queue_module.Queue[tuple[str, Path, str]] = queue_module.Queue()
        self._states: dict[str, State] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next = 0

    def enqueue(self, call_dir: Path, language: str) -> Queued:
        with self._lock:
            self._next += 1
            job_id = str(self._next)
            self._states[job_id] = "queued"
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="roleplay-analysis", daemon=True)
                self._thread.start()
        self._jobs.put((job_id, Path(call_dir), language))
        return Queued(Path(call_dir), job_id)

    def state(self, ticket: Queued) -> State:
        with self._lock:
            return self._states.get(ticket.job_id, "failed")

    def _set(self, job_id: str, state: State) -> None:
        with self._lock:
            self._states[job_id] = state

    def _run(self) -> None:
        import logging

        lower_priority(self.nice)
        while True:
            job_id, call_dir, language = self._jobs.get()
            self._set(job_id, "running")
            try:
                self.work(call_dir, language, self.db)
            except Exception:  # the page says it could not be checked; the details go to the log
                logging.getLogger(__name__).exception("analysis of %s failed", call_dir)
                self._set(job_id, "failed")
            else:
                self._set(job_id, "done")


# --------------------------------------------------------------------------- PostgreSQL: procrastinate


def _need_procrastinate() -> Any:
    try:
        import procrastinate
    except ImportError:
        raise JobError("jobs on PostgreSQL need procrastinate: pip install -e '.[postgres]'") from None
    return procrastinate


def procrastinate_app(url: str, calls_dir: Path, *, pool_size: int = 2) -> Any:
    """procrastinate on the history's PostgreSQL, with the analysis task (run by the workers)."""
    procrastinate = _need_procrastinate()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=url, min_size=1, max_size=pool_size))

    @app.task(name=TASK_NAME, queue=QUEUE_NAME)
    def analyse_call(call: str, language: str) -> int:
        directory = call_path(calls_dir, call)
        print(f"roleplay worker {os.getpid()}: analysing {call}", file=sys.stderr, flush=True)
        call_id = analyse_job(directory, language, url)
        print(f"roleplay worker {os.getpid()}: {call} done (history row {call_id})", file=sys.stderr, flush=True)
        return call_id

    return app


def ensure_schema(url: str) -> None:
    """procrastinate's tables in the history's database, made once (behind the migration lock)."""
    import psycopg

    from roleplay.history.store import BUSY_TIMEOUT_S

    schema = _need_procrastinate().schema.SchemaManager.get_schema()
    with psycopg.connect(url, autocommit=False, connect_timeout=int(BUSY_TIMEOUT_S)) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(7231978)")
        exists = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if exists is None or exists[0] is None:
            conn.execute(schema)  # procrastinate's own DDL script
        conn.commit()


class PostgresQueue:
    """The server's side of procrastinate: defer jobs and read their state."""

    _STATES: ClassVar[dict[str, State]] = {"todo": "queued", "doing": "running", "succeeded": "done"}

    def __init__(self, url: str, calls_dir: Path) -> None:
        ensure_schema(url)
        self.calls_dir = Path(calls_dir)
        self.app = procrastinate_app(url, self.calls_dir).open()

    def enqueue(self, call_dir: Path, language: str) -> Queued:
        name = call_name(self.calls_dir, call_dir)
        # queueing_lock: the same call is never waiting twice
        job_id = self.app.configure_task(TASK_NAME, queueing_lock=name).defer(call=name, language=language)
        return Queued(Path(call_dir), str(job_id))

    def state(self, ticket: Queued) -> State:
        jobs = self.app.job_manager.list_jobs(id=int(ticket.job_id))
        return self._STATES.get(str(jobs[0].status), "failed") if jobs else "failed"


@lru_cache(maxsize=8)
def analysis_queue(db: str | Path | None, calls_dir: Path) -> LocalQueue | PostgresQueue:
    """The process's queue for a history: procrastinate on PostgreSQL, else a worker thread here."""
    target = db or os.environ.get("ROLEPLAY_DB")
    if target is not None and is_url(str(target)):
        return PostgresQueue(str(target), Path(calls_dir))
    return LocalQueue(db)


def wait_for(queue: AnalysisQueue, ticket: Queued, *, every_s: float = 0.5, timeout_s: float | None = None
             ) -> State:
    """Poll until the job is done or failed (or `timeout_s` passed: its state then)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        state = queue.state(ticket)
        if state in ("done", "failed") or (deadline is not None and time.monotonic() > deadline):
            return state
        time.sleep(every_s)


# --------------------------------------------------------------------------- `roleplay worker`


async def _retry_stalled(app: Any, *, stalled_after_s: float, every_s: float) -> None:
    """Put the jobs of workers that stopped sending heartbeats back in the queue (or fail them
    after MAX_ATTEMPTS); every worker does this, the database decides who wins."""
    import datetime as dt

    procrastinate = _need_procrastinate()
    while True:
        for job in await app.job_manager.get_stalled_jobs(queue=QUEUE_NAME, seconds_since_heartbeat=stalled_after_s):
            try:
                if job.attempts + 1 >= MAX_ATTEMPTS:
                    await app.job_manager.finish_job(job, status=procrastinate.jobs.Status.FAILED, delete_job=False)
                else:
                    await app.job_manager.retry_job(job, retry_at=dt.datetime.now(dt.UTC))
                print(f"roleplay worker {os.getpid()}: job {job.id} ({job.task_kwargs.get('call')}) of a stopped "
                      "worker put back in the queue", file=sys.stderr, flush=True)
            except procrastinate.exceptions.ProcrastinateException:
                pass  # another worker took care of it first
        await asyncio.sleep(every_s)


def run_worker(url: str, calls_dir: Path, *, concurrency: int = 1, nice: int = WORKER_NICE,
               heartbeat_s: float = HEARTBEAT_S, stalled_after_s: float = STALLED_AFTER_S) -> None:
    """`roleplay worker`: run queued analyses until SIGINT/SIGTERM (the running job finishes first)."""
    if not is_url(url):
        raise JobError("roleplay worker needs the PostgreSQL history (--db postgresql://... or ROLEPLAY_DB); "
                       "with a SQLite history the server analyses the calls itself")
    if not Path(calls_dir).is_dir():
        raise JobError(f"{calls_dir}: the calls directory is not there (mount the shared storage first)")
    os.nice(max(0, nice))  # the whole worker, and the model's threads, below the drills
    ensure_schema(url)
    app = procrastinate_app(url, Path(calls_dir))

    async def main() -> None:
        async with app.open_async():
            retrier = asyncio.create_task(_retry_stalled(app, stalled_after_s=stalled_after_s,
                                                         every_s=max(1.0, stalled_after_s / 4)))
            try:
                await app.run_worker_async(queues=[QUEUE_NAME], concurrency=concurrency, name=f"roleplay-{os.getpid()}",
                                           update_heartbeat_interval=heartbeat_s,
                                           stalled_worker_timeout=stalled_after_s)
            finally:
                retrier.cancel()

    print(f"roleplay worker {os.getpid()}: waiting for calls to analyse in {calls_dir}", file=sys.stderr, flush=True)
    asyncio.run(main())
