"""The accounts (history schema v3) on a real PostgreSQL server, started as in
test_history_postgres.py (same fixture)."""

from __future__ import annotations

import pytest
from test_history_postgres import server  # noqa: F401  (the fixture: a throw-away PostgreSQL server)

from roleplay.history.accounts import Accounts
from roleplay.history.store import SCHEMA_VERSION, History

pytestmark = pytest.mark.slow


def test_accounts_on_postgres(server):  # noqa: F811
    with History(server.format(db="roleplay_test")) as history:
        assert history.schema_version() == SCHEMA_VERSION
        acc = Accounts(history)
        ada = acc.add_user("ada", "admin", "long-enough")
        tom = acc.add_user("tom", "trainer", "long-enough", language="en")
        acc.add_user("anna", "trainee", "long-enough")
        token, session = acc.start_session(ada)
        assert acc.session(token) == session
        acc.set_disabled("ada", True)  # ends her sessions (the foreign key and the delete work)
        assert acc.session(token) is None
        for _ in range(5):
            acc.login("anna", "wrong", "10.0.0.1")
        assert acc.login("anna", "long-enough", "10.0.0.1").wait_s > 0
        acc.create_group("avond")
        acc.create_group("avond")
        acc.set_group_trainee("avond", "anna", member=True)
        acc.set_group_trainer("avond", "tom", member=True)
        assert acc.visible_trainees(tom) == {"anna"} and acc.groups() == ["avond"]
        acc.log_access("tom", "report", call_id=3)
        assert acc.access_log()[0].call_id == 3
        acc.mark_ready("anna", by="tom", note="ok")
        assert acc.readiness_mark("anna").ready
        acc.set_setting("retention_days", "90")
        acc.set_setting("retention_days", "60")
        assert acc.setting("retention_days") == "60"
