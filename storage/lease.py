"""The leader's lease in PostgreSQL: who may connect to Discord and write, and the epoch that fences
the rest.

All times are the database's (``clock_timestamp()``), so hosts with different clocks agree on when a
lease ends. Lease statements never take the write lock: a long write transaction cannot delay a
renewal.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from storage.db import StorageError
from storage.postgres import PostgresDatabase

NAME = "leader"
NOW = "extract(epoch FROM clock_timestamp())"


class NotLeader(StorageError):
    """A write by a process that no longer holds the lease (or whose lease ran out): refused, rolled
    back."""


@dataclass(frozen=True)
class LeaseState:
    holder: str
    epoch: int
    expires_in: float  # seconds from the database's now; negative: lapsed
    renewed_ago: float


def session_name(holder: str) -> str:
    """The PostgreSQL application_name of a process's sessions (at most 63 characters), so that the
    next leader can end the sessions a cut-off leader left behind."""
    return f"handoff {holder}"[:63]


@dataclass(frozen=True)
class Acquired:
    epoch: int
    previous: str | None  # who held the lease before (None: nobody ever did)


class LeaseStore:
    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    async def try_acquire(self, holder: str, ttl: float) -> Acquired | None:
        """Take the lease if nobody holds it or its holder's ran out; the new epoch and who held it
        before, else None."""
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "WITH before AS (SELECT holder FROM leader_lease WHERE name = $1) INSERT INTO"
                " leader_lease (name, holder, epoch, expires_at, acquired_at, renewed_at) VALUES"
                f" ($1, $2, 1, {NOW} + $3, {NOW}, {NOW}) ON CONFLICT (name) DO UPDATE SET holder ="
                " excluded.holder, epoch = leader_lease.epoch + 1, expires_at ="
                " excluded.expires_at, acquired_at = excluded.acquired_at, renewed_at ="
                f" excluded.renewed_at WHERE leader_lease.expires_at < {NOW} RETURNING epoch,"
                " (SELECT holder FROM before)",
                NAME,
                holder,
                float(ttl),
            )
        return Acquired(row[0], row[1]) if row is not None else None

    async def end_sessions_of(self, holder: str) -> int:
        """End the database sessions of a process that no longer leads. One cut off in the middle of
        a statement (between asyncpg's Execute and Sync) is "active", so no idle limit ends it, and
        it may hold the write lock for as long as its TCP connection seems alive; ending it frees
        the lock at once."""
        async with self.db.pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE"
                    " application_name = $1 AND pid <> pg_backend_pid()",
                    session_name(holder),
                )
            )

    async def renew(self, holder: str, epoch: int, ttl: float) -> bool:
        """Extend our lease; False when it is no longer ours (taken over after it ran out)."""
        async with self.db.pool.acquire() as conn:
            status = await conn.execute(
                f"UPDATE leader_lease SET expires_at = {NOW} + $3, renewed_at = {NOW}"
                f" WHERE name = '{NAME}' AND holder = $1 AND epoch = $2",
                holder,
                epoch,
                float(ttl),
            )
        return status.endswith(" 1")

    async def release(self, holder: str, epoch: int) -> None:
        """A leader stopping on purpose lets a standby take over at once."""
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                f"UPDATE leader_lease SET expires_at = {NOW} - 1 WHERE name = '{NAME}'"
                " AND holder = $1 AND epoch = $2",
                holder,
                epoch,
            )

    async def current(self) -> LeaseState | None:
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT holder, epoch, expires_at - {NOW}, {NOW} - renewed_at FROM"
                " leader_lease WHERE name = $1",
                NAME,
            )
        return LeaseState(row[0], row[1], row[2], row[3]) if row else None

    @staticmethod
    async def check(conn: asyncpg.Connection, holder: str, epoch: int) -> None:
        """Inside a write transaction (after its lock): refuse it unless ``holder`` still leads at
        ``epoch``."""
        ours = await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM leader_lease WHERE name = '{NAME}' AND holder = $1"
            f" AND epoch = $2 AND expires_at > {NOW})",
            holder,
            epoch,
        )
        if not ours:
            raise NotLeader(
                f"this process ({holder}) no longer leads (epoch {epoch}): the write was refused"
            )
