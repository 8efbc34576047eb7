"""PostgreSQL's own concerns: start-up checks, migrations per engine, the schema both engines share,
and ``bot.py --migrate-to`` on a database built by the current code. (Everything else runs on both
engines through the ``harness`` and the storage contract suite.) Skipped with one line without
HANDOFF_TEST_POSTGRES_URL."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import asyncpg
import pytest

from storage import Database, PostgresDatabase, StorageError
from storage.db import migration_files
from storage.postgres import MIGRATIONS_DIR, redacted, translate
from tests.conftest import Harness
from tests.fake_claude import text
from tests.test_codes import ask_to_cancel_subscription, code, enrol, subscription
from tests.test_core_config import GOOD, run_bot_py


def with_password(url: str, password: str) -> str:
    """The same server with a password in the URL (trust authentication ignores it): to see it is
    never shown."""
    scheme, rest = url.split("://", 1)
    user_host = rest.split("@", 1)
    user, host = (user_host[0], user_host[1]) if len(user_host) == 2 else ("root", user_host[0])
    return f"{scheme}://{user}:{password}@{host}"


def bot_py(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_bot_py(args, {**GOOD, **env}, cwd)


def test_placeholders_become_numbered_outside_quotes():
    assert (
        translate("SELECT ? FROM t WHERE a = '?' AND b IN (?, ?)")
        == "SELECT $1 FROM t WHERE a = '?' AND b IN ($2, $3)"
    )
    assert redacted("postgresql://u:hunter2@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redacted("postgresql://h/db") == "postgresql://h/db"


async def test_check_opens_postgresql_and_never_shows_the_password(tmp_path, pg_url):
    (tmp_path / "policy.toml").write_text("")
    url = with_password(pg_url, "pw-never-shown")
    result = await asyncio.to_thread(bot_py, ["--check"], {"HANDOFF_DB": url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HANDOFF_DB               postgresql://" in result.stdout and ":***@" in result.stdout
    assert "pw-never-shown" not in result.stdout + result.stderr

    down = "postgresql://handoff:pw-never-shown@127.0.0.1:1/handoff"
    result = await asyncio.to_thread(bot_py, ["--check"], {"HANDOFF_DB": down}, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "Configuration error: HANDOFF_DB='postgresql://handoff:***@127.0.0.1:1/handoff'"
    )
    assert "cannot connect" in line and "pw-never-shown" not in line


async def test_two_processes_starting_together_migrate_once(pg_url):
    first, second = PostgresDatabase(pg_url), PostgresDatabase(pg_url)
    await asyncio.gather(first.open(), second.open())
    try:
        rows = await first.fetchall(
            "SELECT module, version FROM schema_migrations ORDER BY version"
        )
        newest = len(migration_files(MIGRATIONS_DIR))
        assert [tuple(r) for r in rows] == [("handoff", n) for n in range(1, newest + 1)]
        assert await second.user_version() == newest
    finally:
        await first.close()
        await second.close()


async def test_a_database_newer_than_the_code_is_refused(pg_url):
    async with PostgresDatabase(pg_url) as db:
        await db.execute(
            "INSERT INTO schema_migrations (module, version, name) VALUES ('handoff', 99, 'future')"
        )
    with pytest.raises(StorageError, match="at version 99, newer than this code"):
        await PostgresDatabase(pg_url).open()


async def test_both_engines_have_the_same_tables_and_columns(tmp_path, pg_url):
    """A migration written for one engine only fails here."""
    async with Database(tmp_path / "s.db") as lite:
        # each engine's own search index: SQLite's FTS5 tables, PostgreSQL's tsvector column
        tables = [
            r[0]
            for r in await lite.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'knowledge_fts%'"
            )
        ]
        sqlite_columns = {
            t: sorted(r[1] for r in await lite.fetchall(f'PRAGMA table_info("{t}")'))
            for t in tables
        }
    async with PostgresDatabase(pg_url) as pg:
        # PostgreSQL's own: its migration record, and the standby's lease (one SQLite file has one
        # process).
        rows = await pg.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
            " AND table_name NOT IN ('schema_migrations', 'leader_lease')"
            " AND NOT (table_name = 'knowledge_passages' AND column_name = 'search')"
        )
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        pg_columns.setdefault(table, []).append(column)
    assert {t: sorted(c) for t, c in pg_columns.items()} == sqlite_columns


async def test_the_audit_log_is_append_only(pg_url):
    async with PostgresDatabase(pg_url) as db:
        await db.execute("INSERT INTO audit (at, actor, action) VALUES (1, 'test', 'x')")
        for change in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await db.execute(change)
        assert len(await db.fetchall("SELECT id FROM audit")) == 1


async def test_migrate_to_copies_a_live_database_and_the_bot_carries_on(
    tmp_path, fake_claude, pg_url
):
    # A database built by the current code: an enrolled customer waiting to give a code, a
    # conversation, the shop's tables, the outbox and the audit log.
    h = Harness(tmp_path, fake_claude)
    await h.start()
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    h.fake.then(text("We open at nine."))
    await h.dm(1, "when do you open?")
    h.sent()
    await h.stop()
    with sqlite3.connect(tmp_path / "handoff.db") as raw:
        counts = {
            t: raw.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("customers", "turns", "outbox", "audit", "mfa_secrets", "mfa_challenges")
        }
        [install] = raw.execute("SELECT value FROM kept WHERE key = 'install_id'").fetchone()
    (tmp_path / "policy.toml").write_text("")
    url = with_password(pg_url, "pw-never-shown")

    result = await asyncio.to_thread(
        bot_py, ["--migrate-to", url], {"HANDOFF_DB": str(h.db_path)}, tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "row counts match" in out and "pw-never-shown" not in out
    for table, count in counts.items():
        assert (
            f"  {table} " in out and f" {count} rows" in out.split(f"  {table} ")[1].splitlines()[0]
        )
    assert "HANDOFF_DB=postgresql://" in out and "keep HANDOFF_SECRET_KEY" in out

    # The bot on PostgreSQL: the code challenge waits with its encrypted secret; new rows get new
    # ids, under the same install id (the nonces of rows owed before the move stay what Discord may
    # have seen).
    h.db_path = pg_url
    await h.start()
    assert await h.db.kept("install_id") == install
    await h.dm(0, code(secret, h))
    assert h.sent()[0].content == "Code accepted. Done: Cancel a subscription."
    assert await subscription(h) == "cancelled"
    h.fake.then(text("Yes, on Sundays too."))
    await h.dm(1, "and on Sundays?")
    assert [m.content for m in h.sent()] == ["Yes, on Sundays too."]
    turns = await h.fetch(
        "SELECT content FROM turns WHERE customer_id = (SELECT id FROM customers"
        " WHERE discord_id = ?) ORDER BY id",
        (h.members[1].id,),
    )
    assert [t[0] for t in turns] == [
        "when do you open?",
        "We open at nine.",
        "and on Sundays?",
        "Yes, on Sundays too.",
    ]
    await h.stop()

    again = await asyncio.to_thread(
        bot_py, ["--migrate-to", pg_url], {"HANDOFF_DB": str(tmp_path / "handoff.db")}, tmp_path
    )
    assert (
        again.returncode == 2
        and "already holds rows" in again.stderr
        and "nothing was copied" in again.stderr
    )


async def test_migrate_to_names_what_is_wrong(tmp_path):
    (tmp_path / "policy.toml").write_text("")
    missing = await asyncio.to_thread(
        bot_py,
        ["--migrate-to", "postgresql://127.0.0.1:1/x"],
        {"HANDOFF_DB": str(tmp_path / "none.db")},
        tmp_path,
    )
    assert missing.returncode == 2 and "does not exist; nothing to copy" in missing.stderr
    not_a_url = await asyncio.to_thread(bot_py, ["--migrate-to", "handoff.db"], {}, tmp_path)
    assert not_a_url.returncode == 2 and "give a PostgreSQL URL" in not_a_url.stderr


async def test_an_actions_modules_sqlite_migrations_run_on_postgresql(tmp_path, pg_url):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "0001_things.sql").write_text(
        "CREATE TABLE things (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, at REAL NOT NULL,"
        " data BLOB);"
    )
    async with PostgresDatabase(pg_url) as db:
        assert await db.migrate_module("mine", folder) == 1
        # SQLite numbers new rows itself; so does the identity column
        async with db.transaction() as tx:
            first = await tx.insert(
                "INSERT INTO things (owner, at, data) VALUES (?, ?, ?)",
                (900000000000000001, 1800000000.123456, b"\x00\x01"),
            )
            second = await tx.insert("INSERT INTO things (owner, at) VALUES (?, ?)", (1, 0))
        assert second == first + 1
        row = await db.fetchone("SELECT owner, at, data FROM things WHERE id = ?", (first,))
        assert tuple(row) == (
            900000000000000001,
            1800000000.123456,
            b"\x00\x01",
        ), "64-bit ids, double times"
        assert await db.migrate_module("mine", folder) == 0

        (folder / "0002_broken.sql").write_text(
            "ALTER TABLE things ADD COLUMN note TEXT; SELECT * FROM nowhere;"
        )
        with pytest.raises(
            StorageError, match=r"0002_broken\.sql failed on PostgreSQL.*nothing of it was applied"
        ):
            await db.migrate_module("mine", folder)
        assert [
            r[0]
            for r in await db.fetchall(
                "SELECT column_name FROM information_schema.columns WHERE"
                " table_schema = current_schema() AND table_name = 'things'"
                " AND column_name = 'note'"
            )
        ] == []

        # where PostgreSQL's SQL must differ, the module brings its own folder
        own = folder / "postgresql"
        own.mkdir()
        (own / "0001_things.sql").write_text("SELECT 1;")
        (own / "0002_note.sql").write_text(
            "ALTER TABLE things ADD COLUMN note TEXT NOT NULL DEFAULT '';"
        )
        assert await db.migrate_module("mine", folder) == 1
        assert (await db.fetchone("SELECT note FROM things WHERE id = ?", (first,)))[0] == ""


async def test_the_bot_carries_on_when_the_database_drops_its_connections(
    tmp_path, fake_claude, pg_url
):
    """PostgreSQL restarted, or failed over to a replica: every pooled connection is dead at
    once."""
    h = Harness(tmp_path, fake_claude, pg_url)
    await h.start()
    await h.dm(0, "hello")
    assert [m.content for m in h.sent()] == ["You said: hello"]
    session = pg_url.split("application_name=")[1]
    admin = await asyncpg.connect(pg_url)
    try:
        ended = await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND pid != pg_backend_pid()",
            session,
        )
    finally:
        await admin.close()
    assert ended >= 1
    await h.dm(0, "still there?")
    assert [m.content for m in h.sent()] == ["You said: still there?"], (
        "stored and answered, not 'send it again'"
    )
    await h.stop()


async def test_a_user_who_may_not_create_tables_is_told_what_to_grant(tmp_path, pg_url):
    schema = pg_url.split("search_path=")[1].split("&")[0]
    role = f"{schema}_reader"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        scheme, rest = pg_url.split("://", 1)
        as_reader = f"{scheme}://{role}@{rest.split('@', 1)[-1]}"
        with pytest.raises(
            StorageError, match=r"needs CREATE on the schema.*GRANT CREATE ON SCHEMA"
        ):
            await PostgresDatabase(as_reader).open()
        (tmp_path / "policy.toml").write_text("")
        result = await asyncio.to_thread(bot_py, ["--check"], {"HANDOFF_DB": as_reader}, tmp_path)
        assert (
            result.returncode == 2
            and "Traceback" not in result.stderr
            and "GRANT CREATE" in result.stderr
        )
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
