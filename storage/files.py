"""Files kept as bytes: what customers send (Claude and the operators read them) and what operators
send customers. A file is written in the transaction that stores its message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store


@dataclass(frozen=True)
class StoredFile:
    id: int
    filename: str
    media_type: str
    size: int
    readable: bool
    data: bytes

    @classmethod
    def from_row(cls, row: Any) -> StoredFile:
        return cls(
            row["id"],
            row["filename"],
            row["media_type"],
            row["size"],
            bool(row["readable"]),
            bytes(row["data"]),
        )


def insert_file_sql(
    c: Connection,
    customer_id: int,
    origin: str,
    filename: str,
    media_type: str,
    size: int,
    readable: bool,
    data: bytes,
    now: float,
    turn_id: int | None = None,
) -> int:
    row = c.execute(
        "INSERT INTO files (customer_id, turn_id, origin, filename, media_type, size, readable,"
        " data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (customer_id, turn_id, origin, filename, media_type, size, int(readable), data, now),
    ).fetchone()
    return int(row[0])


class FileStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def get(self, ids: Iterable[int]) -> dict[int, StoredFile]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        rows = await self.db.fetchall(f"SELECT * FROM files WHERE id IN ({marks})", wanted)
        return {r["id"]: StoredFile.from_row(r) for r in rows}

    async def not_readable(self, ids: Iterable[int]) -> None:
        """Files the Messages API refused: kept for the operators, never shown to Claude again."""
        wanted = sorted(set(ids))
        if wanted:
            marks = ", ".join("?" for _ in wanted)
            await self.db.execute(f"UPDATE files SET readable = 0 WHERE id IN ({marks})", wanted)

    async def bytes_since(self, discord_id: int, since: float) -> int:
        """What this customer's files took since ``since`` (their daily allowance)."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN customers c ON c.id ="
            " f.customer_id WHERE c.discord_id = ? AND f.origin = 'customer' AND f.created_at >= ?",
            (discord_id, since),
        )
        return int(row[0]) if row else 0

    async def forget(self, before: float) -> int:
        """Delete the files kept since before ``before`` ([attachments] keep_days): their
        messages stay, and say the file is no longer kept."""
        return await self.db.execute("DELETE FROM files WHERE created_at < ?", (before,))

    async def of_customer(self, customer_id: int) -> list[tuple[int, int]]:
        """(files, bytes) kept for a customer (the bench's figure)."""
        row = await self.db.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE customer_id = ?",
            (customer_id,),
        )
        return [(int(row[0]), int(row[1]))] if row else [(0, 0)]
