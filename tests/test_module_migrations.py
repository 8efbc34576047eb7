"""Actions' own tables come from their own numbered migrations, tracked apart from Handoff's."""

from __future__ import annotations

import sqlite3

import pytest

from actions import shop
from storage.db import Database, StorageError


async def test_the_shop_tables_are_migrated_once_and_tracked(tmp_path):
    async with Database(tmp_path / "h.db") as db:
        await shop.install(db)
        assert await db.kept("migrations:shop") == "1"
        await shop.install(db)  # a second start applies nothing
        rows = await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'shop_%'"
        )
        assert {r[0] for r in rows} == {
            "shop_accounts",
            "shop_orders",
            "shop_subscriptions",
            "shop_advice_requests",
        }


async def test_a_database_whose_shop_tables_came_before_migrations_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    async with Database(path):
        pass
    with sqlite3.connect(path) as raw:  # what the shop's old install() left: tables, no version
        raw.execute(
            "CREATE TABLE shop_accounts (discord_user_id INTEGER PRIMARY KEY, email TEXT NOT NULL,"
            " email_updates INTEGER NOT NULL DEFAULT 1, store_credit_cents INTEGER NOT NULL DEFAULT"
            " 0, discount_percent INTEGER NOT NULL DEFAULT 0, deleted_at REAL, created_at REAL NOT"
            " NULL)"
        )
        raw.execute(
            "INSERT INTO shop_accounts (discord_user_id, email, created_at) VALUES (7, 'a@b.c', 1)"
        )
    async with Database(path) as db:
        await shop.install(db)
        assert await db.kept("migrations:shop") == "1"
        assert (await db.fetchone("SELECT email FROM shop_accounts WHERE discord_user_id = 7"))[
            0
        ] == "a@b.c"


async def test_a_module_migration_that_fails_changes_nothing(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id INTEGER PRIMARY KEY);")
    (folder / "0002_broken.sql").write_text("CREATE TABLE more (id INTEGER PRIMARY KEY);\nNOT SQL;")
    async with Database(tmp_path / "h.db") as db:
        with pytest.raises(sqlite3.OperationalError):
            await db.migrate_module("mine", folder)
        assert not db.conn.in_transaction
        assert await db.kept("migrations:mine") == "1"
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'more'") is None


async def test_a_module_newer_than_its_code_is_refused(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id INTEGER PRIMARY KEY);")
    async with Database(tmp_path / "h.db") as db:
        await db.keep("migrations:mine", "3", 0)
        with pytest.raises(StorageError, match="at version 3, newer than its code"):
            await db.migrate_module("mine", folder)
