"""PostgreSQL: an asyncpg pool behind the same interface as ``storage.db.Database``.

The repositories are written once, as plain functions of a connection (``Database.run``): on SQLite they run in
aiosqlite's thread on a sqlite3 connection; here they run in a greenlet on the event loop's thread with a
``SyncConnection``, whose every statement is awaited on the pool's asyncpg connection (``_run_sync``). Their
SQL is the subset both engines speak; ``?`` placeholders become ``$1, $2, ...``.

The guarantees match SQLite's: a write transaction (``run``, ``transaction``) first takes one advisory lock, so
write transactions follow each other as SQLite's ``BEGIN IMMEDIATE`` makes them, and a read-then-write in a
repository cannot interleave with another. Reads (``read``, ``fetchall``) don't take it. Migrations are numbered
per engine (``storage/migrations_postgresql/``) and tracked in the ``schema_migrations`` table; a second process
starting at the same time waits for the first one's migration instead of applying it again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import greenlet

from storage.db import StorageError, Store, migration_files

log = logging.getLogger(__name__)

T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).with_name("migrations_postgresql")
WRITE_LOCK = 0x48616E64  # "Hand": the advisory lock every write transaction takes first
MIGRATION_LOCK = WRITE_LOCK + 1
_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders (outside quotes) as PostgreSQL's ``$1, $2, ...``."""
    out, n, quoted = [], 0, False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        elif ch == "?" and not quoted:
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


class Cursor:
    """What ``sqlite3.Connection.execute`` returns, as far as the repositories use it."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[asyncpg.Record], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> asyncpg.Record | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[asyncpg.Record]:
        return list(self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)


def _count(status: str) -> int:
    """Rows a command touched, from its status ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


async def _statement(conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> Cursor:
    query = translate(sql)
    # Both forms use asyncpg's statement cache: one round trip each.
    if _RETURNS_ROWS.search(query):
        rows = await conn.fetch(query, *args)
        return Cursor(rows, len(rows))
    return Cursor([], _count(await conn.execute(query, *args)))


class _Repository(greenlet.greenlet):
    """A repository function running on PostgreSQL (see ``_run_sync``)."""


def _wait(coro: Any) -> Any:
    """Inside a repository function: hand ``coro`` to the event loop's side and get its result back."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Repository):
        coro.close()
        raise RuntimeError("a PostgreSQL statement outside PostgresDatabase.run/read")
    return current.parent.switch(coro)


async def _run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Run the plain function ``fn`` on the event loop's thread; each time it needs the database it hands a
    coroutine over (``_wait``), which is awaited here and its result handed back. A greenlet switch, not a
    thread: no hop between threads per statement (SQLAlchemy's asyncio layer works the same way)."""
    worker = _Repository(fn, parent=greenlet.getcurrent())
    step = worker.switch(*args)
    while not worker.dead:
        try:
            value = await step
        except BaseException as exc:  # handed to the function (it may catch it), cancellation included
            step = worker.throw(exc)
        else:
            step = worker.switch(value)
    return step


class SyncConnection:
    """A repository function's connection on PostgreSQL: ``execute``/``executemany`` like sqlite3's; each
    statement runs on the pool's asyncpg connection, inside ``run``'s transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Cursor:
        return _wait(_statement(self._conn, sql, tuple(params)))

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> None:
        args = [tuple(p) for p in seq]
        if args:
            _wait(self._conn.executemany(translate(sql), args))


class PostgresDatabase(Store):
    """A pool of asyncpg connections; the interface of ``storage.db.Database``."""

    engine = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self.min_size, self.max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        # Fencing: a check run first in every write transaction (``storage.lease`` sets it when leading).
        self.write_guard: Callable[[asyncpg.Connection], Any] | None = None

    def __str__(self) -> str:
        return f"PostgreSQL {redacted(self.url)}"

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("database is not open")
        return self._pool

    async def open(self) -> PostgresDatabase:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=self.min_size, max_size=self.max_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StorageError(f"cannot connect to {redacted(self.url)}: {exc}") from None
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> PostgresDatabase:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- migrations ---------------------------------------------------------------------------

    async def user_version(self) -> int:
        return await self._version("handoff")

    async def _version(self, module: str) -> int:
        async with self.pool.acquire() as conn:
            await self._migrations_table(conn)
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE module = $1",
                                           module))

    @staticmethod
    async def _migrations_table(conn: asyncpg.Connection) -> None:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version INTEGER NOT"
                           " NULL, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                           " PRIMARY KEY (module, version))")

    async def migrate(self) -> None:
        await self._migrate_set("handoff", MIGRATIONS_DIR, "this code")

    async def migrate_module(self, name: str, folder: Path) -> int:
        """A module's own numbered migrations: ``folder/postgresql/`` where its SQL differs, else ``folder``."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise StorageError(f"migration set name {name!r}: use lower-case letters, digits and _")
        own = folder / "postgresql"
        return await self._migrate_set(name, own if own.is_dir() else folder, f"its code ({folder})")

    async def _migrate_set(self, module: str, folder: Path, code: str) -> int:
        files = migration_files(folder)
        applied = 0
        async with self.pool.acquire() as conn:
            try:
                await self._migrations_table(conn)
            except asyncpg.UniqueViolationError:  # two processes created it at once: it exists now
                pass
            for number, path in files:
                async with conn.transaction():
                    # One process migrates at a time; the other then finds the versions applied.
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                    current = await conn.fetchval(
                        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE module = $1", module)
                    if current > len(files):
                        raise StorageError(f"{module} in {redacted(self.url)} is at version {current}, newer than"
                                           f" {code} ({len(files)}); upgrade Handoff or use another HANDOFF_DB")
                    if number <= current:
                        continue
                    log.info("applying migration %s (PostgreSQL)", path.name)
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute("INSERT INTO schema_migrations (module, version, name) VALUES ($1, $2, $3)",
                                       module, number, path.name)
                    applied += 1
        return applied

    # -- statements -------------------------------------------------------------------------


    async def _begin_write(self, conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
        if self.write_guard is not None:
            await self.write_guard(conn)

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` as one write transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._begin_write(conn)
            return await _run_sync(fn, SyncConnection(conn))

    async def read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(connection)`` in one consistent snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            return await _run_sync(fn, SyncConnection(conn))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with db.transaction() as tx:`` - one write transaction, committed at the end, rolled back on
        error."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._begin_write(conn)
            yield Transaction(conn)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self.pool.acquire() as conn:
            return (await _statement(conn, sql, tuple(params))).rows


class Transaction:
    """Statements inside ``PostgresDatabase.transaction()``, with ``?`` placeholders as on SQLite."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        return (await _statement(self._conn, sql, tuple(params))).rowcount

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Insert one row; returns its ``id`` (``RETURNING id`` is added when the SQL has no RETURNING)."""
        if not re.search(r"\bRETURNING\b", sql, re.IGNORECASE):
            sql += " RETURNING id"
        return int((await _statement(self._conn, sql, tuple(params))).rows[0][0])

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = (await _statement(self._conn, sql, tuple(params))).rows
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return (await _statement(self._conn, sql, tuple(params))).rows
