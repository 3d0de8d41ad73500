"""`roleplay worker`: run the calls' analyses queued by the app (roleplay.app.jobs)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def add_parsers(sub: Any) -> None:
    w = sub.add_parser(
        "worker", help="run the analyses of calls made in the app (PostgreSQL history; start one per core to spare)",
        description="Take the calls the app queued after each drill from the PostgreSQL history, analyse them, "
                    "write their reports and record them. Start as many as the machines have cores to spare, on "
                    "any machine that reaches the database and the calls directory. Stops on Ctrl-C or SIGTERM "
                    "after the running analysis.")
    w.add_argument("--db", metavar="URL", help="the PostgreSQL history (default: ROLEPLAY_DB)")
    w.add_argument("--calls-dir", metavar="DIR", help="the calls directory the app writes to, on storage every "
                   "worker reaches at the same path (default: the user-data dir's calls/)")
    w.add_argument("--concurrency", type=int, default=1, metavar="N", help="analyses at once in this process "
                   "(default 1; more processes are better than more here)")
    w.add_argument("--nice", type=int, default=10, metavar="N", help="CPU priority below the drills (default 10)")
    w.add_argument("--stalled-after", type=float, default=60.0, metavar="S",
                   help="a worker silent for S seconds is gone: its job goes back in the queue (default 60)")


def cmd_worker(args: argparse.Namespace) -> int:
    from roleplay.app.jobs import run_worker
    from roleplay.core.errors import InputError
    from roleplay.core.paths import user_data_dir

    url = args.db or os.environ.get("ROLEPLAY_DB") or ""
    if args.concurrency < 1 or args.stalled_after < 2:
        raise InputError("--concurrency needs 1 or more and --stalled-after 2 s or more")
    calls_dir = Path(args.calls_dir).expanduser() if args.calls_dir else user_data_dir() / "calls"
    run_worker(url, calls_dir, concurrency=args.concurrency, nice=args.nice,
               heartbeat_s=max(0.5, args.stalled_after / 6), stalled_after_s=args.stalled_after)
    return 0


COMMANDS = {"worker": cmd_worker}
