"""Saved replies (snippets): one table, each change audited."""

from __future__ import annotations

from storage.db import Connection, Store
from storage.sql import audit_sql


class SnippetStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def add(self, name: str, text: str, actor: str, now: float) -> bool:
        """False when a snippet of that name exists (it is not replaced)."""

        def write(c: Connection) -> bool:
            added = c.execute(
                "INSERT INTO snippets (name, text, created_by, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, text, actor, now),
            ).rowcount
            if added:
                audit_sql(c, now, actor, "snippet_added", f"snippet:{name}", {"chars": len(text)})
            return bool(added)

        return await self.db.run(write)

    async def remove(self, name: str, actor: str, now: float) -> bool:
        def write(c: Connection) -> bool:
            removed = c.execute("DELETE FROM snippets WHERE name = ?", (name,)).rowcount
            if removed:
                audit_sql(c, now, actor, "snippet_removed", f"snippet:{name}")
            return bool(removed)

        return await self.db.run(write)

    async def get(self, name: str) -> str | None:
        row = await self.db.fetchone("SELECT text FROM snippets WHERE name = ?", (name,))
        return row[0] if row else None

    async def all(self) -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in await self.db.fetchall("SELECT name, text FROM snippets ORDER BY name")
        ]
