"""The SQLite database: one connection, WAL, a busy timeout, numbered SQL migrations.

Migrations live in ``storage/migrations/NNNN_reason.sql``; the applied version is
``PRAGMA user_version``. Each migration runs in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


class StorageError(RuntimeError):
    """The database cannot be opened or migrated."""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found = []
    for path in directory.iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(
            f"migrations must be numbered 0001, 0002, ... without gaps; found {numbers}"
        )
    return found


class Rows(Protocol):
    """What a statement gives back, on either engine (sqlite3's cursor, or
    ``storage.postgres.Cursor``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a repository function is given inside a transaction: sqlite3's connection on SQLite,
    ``storage.postgres.SyncConnection`` on PostgreSQL. Repositories use only this."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


class Store:
    """What every engine offers on top of its ``run``, ``read`` and ``fetchall``: the same for
    SQLite and PostgreSQL (``storage/postgres.py``). Code outside storage is typed against this,
    never an engine."""

    engine = ""

    async def open(self) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)`` as one write transaction (``storage.sql.TX_RULE`` says what ``fn`` may
        do)."""
        raise NotImplementedError

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)`` in one read snapshot (no write lock)."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """``async with db.transaction() as tx``: statements awaited one by one (an action's own
        writes)."""
        raise NotImplementedError

    async def migrate_module(self, name: str, folder: Path) -> int:
        """Apply a module's own numbered migrations (a deployer's actions' tables); returns how
        many."""
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return next(iter(await self.fetchall(sql, params)), None)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the row count."""
        return await self.run(lambda c: c.execute(sql, tuple(params)).rowcount)

    # -- small facts kept between starts --------------------------------------------------

    async def kept(self, key: str) -> str | None:
        row = await self.fetchone("SELECT value FROM kept WHERE key = ?", (key,))
        return row[0] if row else None

    async def keep(self, key: str, value: str, now: float) -> None:
        await self.execute(
            "INSERT INTO kept (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, now),
        )

    async def keep_first(self, key: str, value: str, now: float) -> str:
        """Keep ``value`` unless the key holds one already; returns the one kept (two processes at
        once: the first one's)."""
        await self.execute(
            "INSERT INTO kept (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO"
            " NOTHING",
            (key, value, now),
        )
        kept = await self.kept(key)
        assert kept is not None
        return kept


def create_private(path: Path) -> None:
    """The database file (and a folder made for it) readable by this user only: it holds customers'
    words and the sealed secrets. SQLite gives its -wal and -shm files the database file's
    permissions."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class Database(Store):
    """One aiosqlite connection shared by the whole process.

    aiosqlite runs every call in its one thread, in the order the calls are made. The hot
    paths use ``run``: a whole transaction as one plain function, one round trip, so calls
    from many customers queue back to back in that thread instead of waiting on each other.
    ``transaction()`` (used by deployers' actions) spans several round trips; while one is
    open, an asyncio lock holds every other call back so none lands inside it.
    """

    engine = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __str__(self) -> str:
        return f"SQLite {self.path}"

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("database is not open")
        return self._conn

    async def open(self) -> Database:
        if str(self.path) != ":memory:":
            if self.path.is_dir():
                raise StorageError(
                    f"{self.path} is a folder; point it at a file in it, e.g."
                    f" {self.path}/handoff.db"
                )
            try:
                create_private(self.path)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the folder {self.path.parent} ({exc.strerror or exc}); choose a"
                    " path this user can write to"
                ) from None
        try:
            self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        except Exception as exc:  # sqlite3.OperationalError carries the reason
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc
        self._conn.row_factory = aiosqlite.Row
        try:
            await self._conn.execute("PRAGMA journal_mode = WAL")
            await self._conn.execute("PRAGMA synchronous = NORMAL")
            await self._conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            await self._conn.execute("PRAGMA foreign_keys = ON")
            await self.migrate()
        except sqlite3.DatabaseError as exc:
            await self.close()
            raise StorageError(
                f"{self.path} is not a Handoff database (SQLite: {exc}); point it at a new file"
                " or at the database Handoff created"
            ) from None
        except BaseException:
            # aiosqlite's worker is a non-daemon thread: a connection left open
            # after a failed start keeps the process alive forever.
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def user_version(self) -> int:
        rows = await self.conn.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    async def migrate(self) -> None:
        current = await self.user_version()
        files = migration_files()
        if current > len(files):
            raise StorageError(
                f"database {self.path} is at version {current}, newer than this code"
                f" ({len(files)}); upgrade Handoff or use another HANDOFF_DB"
            )
        for number, path in files[current:]:
            await self._apply(path, f"PRAGMA user_version = {number};")

    async def migrate_module(self, name: str, folder: Path) -> int:
        """Apply a module's own numbered migrations (``folder/NNNN_reason.sql``), e.g. a deployer's
        actions' tables. Its version is kept as ``migrations:<name>`` in the ``kept`` table, beside
        Handoff's own ``PRAGMA user_version``. Returns how many were applied."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise StorageError(f"migration set name {name!r}: use lower-case letters, digits and _")
        key = f"migrations:{name}"
        current = int(await self.kept(key) or 0)
        files = migration_files(folder)
        if current > len(files):
            raise StorageError(
                f"{name}'s tables in {self.path} are at version {current}, newer than its code"
                f" ({len(files)} migrations in {folder})"
            )
        for number, path in files[current:]:
            await self._apply(
                path,
                f"INSERT INTO kept (key, value, updated_at) VALUES ('{key}', '{number}',"
                " strftime('%s')) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at;",
            )
        return len(files) - current

    async def _apply(self, path: Path, bump: str) -> None:
        """One migration, its reference check and its version bump in one transaction."""
        log.info("applying migration %s", path.name)
        script = path.read_text(encoding="utf-8")  # noqa: ASYNC240 - a small file, once per migration
        # Foreign keys off while a migration runs (SQLite's way to rebuild a referenced table), and
        # checked before its transaction commits: a migration that breaks a reference is rolled
        # back.
        await self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            # executescript commits on its own; wrap the migration, the check and the version bump
            # together.
            try:
                await self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n{bump}")
            except sqlite3.Error:
                # a failed statement leaves the script's transaction open
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                raise
            broken = await self.conn.execute_fetchall("PRAGMA foreign_key_check")
            if broken:
                await self.conn.execute("ROLLBACK")
                raise StorageError(
                    f"migration {path.name} would break {len(list(broken))} reference(s); "
                    "nothing was changed"
                )
            await self.conn.execute("COMMIT")
        finally:
            await self.conn.execute("PRAGMA foreign_keys = ON")

    # -- statements -------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite has no public "run this function in the connection's thread"; _execute is what
        # all its public methods use. Kept to this one place.
        if self._lock.locked():
            async with self._lock:
                return await self.conn._execute(fn, *args)
        return await self.conn._execute(fn, *args)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` as one transaction (BEGIN IMMEDIATE ... COMMIT) in one round
        trip."""

        def in_transaction() -> T:
            raw: sqlite3.Connection = self.conn._conn
            raw.execute("BEGIN IMMEDIATE")
            try:
                result = fn(raw)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return result

        return await self._call(in_transaction)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` as one read transaction (a consistent snapshot, no write lock),
        one round trip."""

        def in_snapshot() -> T:
            raw: sqlite3.Connection = self.conn._conn
            raw.execute("BEGIN")
            try:
                return fn(raw)
            finally:
                raw.execute("COMMIT")

        return await self._call(in_snapshot)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with db.transaction() as tx:`` - BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on
        error.

        Inside it, use only ``tx``: calling ``db.fetchone``/``db.run`` there waits for this very
        transaction to end, which never happens (a deadlock).
        """
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self.conn)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        def query() -> list[sqlite3.Row]:
            return self.conn._conn.execute(sql, tuple(params)).fetchall()

        return await self._call(query)


class Transaction:
    """Statements inside ``Database.transaction()``; the caller already holds the lock.

    Each statement is one round trip to aiosqlite's thread (execute_fetchall / execute_insert, no
    cursor to fetch from and close): while the lock is held, every round trip delays everyone.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        return cursor.rowcount

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        row = await self._conn.execute_insert(sql, tuple(params))
        if row is None:
            raise StorageError(f"an insert returned no row id: {sql[:60]}")
        return int(row[0])

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._conn.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._conn.execute_fetchall(sql, tuple(params)))
