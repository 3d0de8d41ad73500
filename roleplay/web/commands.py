"""The `roleplay users` and `roleplay serve` commands."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path

from roleplay.core.errors import InputError
from roleplay.history.accounts import Accounts
from roleplay.history.store import History


def _new_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: standard input held no password")
        return password
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password; pass it on standard input with --password-stdin")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("The same password again: ") != first:
        raise InputError("the two passwords differ; nothing was changed")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    with History(args.db) as history:
        accounts = Accounts(history)
        if args.users_command == "add":
            user = accounts.add_user(args.name, args.role, _new_password(args))
            print(f"roleplay: {user.role} {user.name} added; they sign in at the app's /login page")
            return 0
        users = accounts.users()
        if not users:
            print("No users yet. The first admin: roleplay users add NAME --role admin")
        for u in users:
            print(f"{u.name:<24} {u.role:<8} {u.language}  since {u.created_utc[:10]}"
                  f"{'  (disabled)' if u.disabled else ''}")
        return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from roleplay.web.server import serve
    from roleplay.web.settings import WebSettings

    settings = WebSettings(db=args.db, secure_cookies=bool(args.certfile))
    if args.calls_dir:
        settings = dataclasses.replace(settings, calls_dir=Path(args.calls_dir).expanduser())
    serve(settings, host=args.host, port=args.port, open_browser=args.open, certfile=args.certfile,
          keyfile=args.keyfile)
    return 0
