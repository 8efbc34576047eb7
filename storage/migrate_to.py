"""``python bot.py --migrate-to postgresql://...``: copy a SQLite database into an empty PostgreSQL
one.

Both are first brought to the newest schema (each engine's own migrations, and the actions
module's), then every table both have is copied, parents before children, in one PostgreSQL
transaction: a failure leaves the target as empty as it was. Values are copied as stored (MFA
secrets stay encrypted with HANDOFF_SECRET_KEY; the same key must go with them). Identity counters
continue after the copied ids. Row counts are compared table by table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.db import Database, StorageError
from storage.postgres import PostgresDatabase, translate

log = logging.getLogger(__name__)

BATCH = 5000
# Bookkeeping that each engine keeps its own way: SQLite's module versions live in `kept`,
# PostgreSQL's in schema_migrations.
SKIPPED_KEPT = "migrations:%"


@dataclass(frozen=True)
class Copied:
    table: str
    source_rows: int
    target_rows: int


def _convert(pg_type: str) -> Callable[[Any], Any]:
    """SQLite keeps what it was given; PostgreSQL's COPY wants the column's own type."""
    if pg_type in ("bigint", "integer", "smallint"):
        return int
    if pg_type in ("double precision", "real", "numeric"):
        return float
    if pg_type == "bytea":
        return lambda v: v if isinstance(v, bytes) else str(v).encode()
    return str


async def _tables_in_order(conn: Any) -> list[str]:
    """The current schema's tables, each after the tables it references."""
    names = [
        r[0]
        for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
    ]
    refs: dict[str, set[str]] = {name: set() for name in names}
    for child, parent in await conn.fetch(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c JOIN"
        " pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname ="
        " current_schema()"
    ):
        if child in refs and parent != child:
            refs[child].add(parent)
    ordered: list[str] = []
    while refs:
        ready = sorted(name for name, parents in refs.items() if not parents - set(ordered))
        if not ready:
            raise StorageError(f"tables reference each other in a cycle: {sorted(refs)}")
        ordered.extend(ready)
        for name in ready:
            del refs[name]
    return ordered


async def copy_database(source: Database, target: PostgresDatabase) -> list[Copied]:
    """Copy every table ``source`` and ``target`` share; both open and migrated. Refuses a target
    with rows."""
    sqlite_tables = {
        r[0]
        for r in await source.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    copied: list[Copied] = []
    async with target.pool.acquire() as conn, conn.transaction():
        tables = [t for t in await _tables_in_order(conn) if t in sqlite_tables]
        for table in tables:
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                raise StorageError(
                    f"{target} already holds rows in {table}; --migrate-to copies into an empty"
                    " database only (nothing was copied)"
                )
        for table in tables:
            columns = await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND table_name = $1 ORDER BY ordinal_position",
                table,
            )
            source_columns = {r[1] for r in await source.fetchall(f'PRAGMA table_info("{table}")')}
            shared = [(name, _convert(kind)) for name, kind in columns if name in source_columns]
            names = [name for name, _ in shared]
            only, params = (" AND key NOT LIKE ?", (SKIPPED_KEPT,)) if table == "kept" else ("", ())
            [[expected]] = await source.fetchall(
                f'SELECT COUNT(*) FROM "{table}" WHERE 1 = 1{only}', params
            )
            quoted = ", ".join(f'"{name}"' for name in names)
            last = -1
            while rows := await source.fetchall(
                f'SELECT rowid, {quoted} FROM "{table}" WHERE rowid > ?{only}'
                f" ORDER BY rowid LIMIT {BATCH}",
                (last, *params),
            ):
                last = rows[-1][0]
                records = [
                    tuple(
                        None if value is None else convert(value)
                        for value, (_, convert) in zip(row[1:], shared, strict=True)
                    )
                    for row in rows
                ]
                await conn.copy_records_to_table(table, records=records, columns=names)
            count = await conn.fetchval(
                translate(f'SELECT COUNT(*) FROM "{table}" WHERE 1 = 1{only}'), *params
            )
            copied.append(Copied(table, expected, count))
            if "id" in names:  # identity columns continue after the copied ids
                await conn.execute(
                    f'SELECT setval(s, COALESCE((SELECT MAX(id) FROM "{table}"), 1), EXISTS (SELECT'
                    f" 1 FROM \"{table}\")) FROM pg_get_serial_sequence($1, 'id') AS s WHERE s IS"
                    " NOT NULL",
                    table,
                )
        wrong = [c for c in copied if c.source_rows != c.target_rows]
        if wrong:
            raise StorageError(
                "row counts differ after the copy (nothing was kept): "
                + ", ".join(f"{c.table} {c.source_rows} -> {c.target_rows}" for c in wrong)
            )
    return copied
