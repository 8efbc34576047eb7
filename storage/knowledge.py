"""The knowledge's passages, files and uses: the same repository on both engines, each searching
with its own full-text index (SQLite: FTS5 ranked by bm25; PostgreSQL: a tsvector column with a
GIN index ranked by ts_rank_cd). Core hands in plain words (``core.knowledge_text.query_words``),
never query syntax."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store
from storage.sql import audit_sql

COLUMNS = (
    "id, origin, path, title, body, url, question, valid_until, ticket_id, saved_by_name,"
    " created_at"
)


@dataclass(frozen=True)
class PassageRow:
    id: int
    origin: str  # 'file', 'saved', 'added'
    path: str | None
    title: str
    body: str
    url: str | None
    question: str | None
    valid_until: float | None
    ticket_id: int | None
    saved_by_name: str | None
    created_at: float

    @classmethod
    def from_row(cls, r: Any) -> PassageRow:
        return cls(*(r[i] for i in range(11)))


@dataclass(frozen=True)
class NewPassage:
    origin: str
    title: str
    body: str
    url: str | None = None
    path: str | None = None
    question: str | None = None
    valid_until: float | None = None
    ticket_id: int | None = None
    saved_by: int | None = None
    saved_by_name: str | None = None


@dataclass(frozen=True)
class FileIndex:
    """A file's passages, to replace what was indexed from it."""

    path: str
    sha256: str
    passages: Sequence[NewPassage]


@dataclass(frozen=True)
class UsageFigures:
    conversations_with_knowledge: int
    of_which_without_ticket: int
    most_used: list[tuple[str, int]]  # (title, uses)
    saved_used: list[tuple[str, int]]  # saved answers of the period's: (title, uses since saved)
    saved_count: int
    misses: list[str]  # questions that went to a person with no passage found


def _insert(c: Connection, p: NewPassage, now: float) -> int:
    [passage_id] = c.execute(
        "INSERT INTO knowledge_passages (origin, path, title, body, url, question, valid_until,"
        " ticket_id, saved_by, saved_by_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (
            p.origin,
            p.path,
            p.title,
            p.body,
            p.url,
            p.question,
            p.valid_until,
            p.ticket_id,
            p.saved_by,
            p.saved_by_name,
            now,
        ),
    ).fetchone()
    return int(passage_id)


class KnowledgeStore:
    def __init__(self, db: Store) -> None:
        self.db = db
        self.sqlite = db.engine == "sqlite"

    def _fts_add(self, c: Connection, passage_id: int, title: str, body: str) -> None:
        if self.sqlite:
            c.execute(
                "INSERT INTO knowledge_fts (rowid, title, body) VALUES (?, ?, ?)",
                (passage_id, title, body),
            )

    def _fts_remove(self, c: Connection, ids: Sequence[int]) -> None:
        if self.sqlite:
            c.executemany("DELETE FROM knowledge_fts WHERE rowid = ?", [(i,) for i in ids])

    async def file_hashes(self) -> dict[str, str]:
        rows = await self.db.fetchall("SELECT path, sha256 FROM knowledge_files")
        return {r[0]: r[1] for r in rows}

    async def replace_files(
        self, changed: Sequence[FileIndex], gone: Sequence[str], now: float
    ) -> list[int]:
        """One transaction: each changed file's passages replaced, each gone file's removed.
        Returns the ids of the passages removed (their terms leave the in-memory weights)."""

        def write(c: Connection) -> list[int]:
            removed: list[int] = []
            for path in [*(f.path for f in changed), *gone]:
                ids = [
                    r[0]
                    for r in c.execute(
                        "SELECT id FROM knowledge_passages WHERE origin = 'file' AND path = ?",
                        (path,),
                    ).fetchall()
                ]
                self._fts_remove(c, ids)
                c.execute(
                    "DELETE FROM knowledge_passages WHERE origin = 'file' AND path = ?", (path,)
                )
                removed += ids
            for path in gone:
                c.execute("DELETE FROM knowledge_files WHERE path = ?", (path,))
            for f in changed:
                for p in f.passages:
                    self._fts_add(c, _insert(c, p, now), p.title, p.body)
                c.execute(
                    "INSERT INTO knowledge_files (path, sha256, passages, indexed_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET sha256 ="
                    " excluded.sha256, passages = excluded.passages, indexed_at ="
                    " excluded.indexed_at",
                    (f.path, f.sha256, len(f.passages), now),
                )
            return removed

        return await self.db.run(write)

    async def add(self, passage: NewPassage, actor: str, now: float) -> int:
        """An operator's passage (a saved answer or /kb add), audited in the same transaction."""

        def write(c: Connection) -> int:
            passage_id = _insert(c, passage, now)
            self._fts_add(c, passage_id, passage.title, passage.body)
            detail = {"title": passage.title, "chars": len(passage.body)}
            if passage.ticket_id is not None:
                detail["ticket"] = passage.ticket_id
            audit_sql(c, now, actor, f"knowledge_{passage.origin}", f"passage:{passage_id}", detail)
            return passage_id

        return await self.db.run(write)

    async def remove(self, passage_id: int, actor: str, now: float) -> PassageRow | None:
        """An operator's passage removed (audited); a file's is not (edit the file). Returns the
        passage as it was, or None when there is none by that id."""

        def write(c: Connection) -> PassageRow | None:
            row = c.execute(
                f"SELECT {COLUMNS} FROM knowledge_passages WHERE id = ?", (passage_id,)
            ).fetchone()
            if row is None:
                return None
            passage = PassageRow.from_row(row)
            if passage.origin == "file":
                return passage
            self._fts_remove(c, [passage_id])
            c.execute("DELETE FROM knowledge_passages WHERE id = ?", (passage_id,))
            audit_sql(
                c,
                now,
                actor,
                "knowledge_removed",
                f"passage:{passage_id}",
                {"title": passage.title},
            )
            return passage

        return await self.db.run(write)

    async def get(self, passage_id: int) -> PassageRow | None:
        row = await self.db.fetchone(
            f"SELECT {COLUMNS} FROM knowledge_passages WHERE id = ?", (passage_id,)
        )
        return PassageRow.from_row(row) if row else None

    async def all(self) -> list[PassageRow]:
        rows = await self.db.fetchall(f"SELECT {COLUMNS} FROM knowledge_passages ORDER BY id")
        return [PassageRow.from_row(r) for r in rows]

    async def candidates(
        self, words: Sequence[str], now: float, limit: int
    ) -> list[tuple[PassageRow, float]]:
        """Passages holding any of ``words`` (plain words only), best first by the engine's own
        rank, none past its ``valid_until``: (passage, rank; higher is better)."""
        if not words:
            return []
        cols = ", ".join(f"p.{c.strip()}" for c in COLUMNS.split(","))
        if self.sqlite:
            query = " OR ".join(f'"{w}"' for w in words)
            # bm25 is lower for better matches; the title weighs twice the body
            rows = await self.db.fetchall(
                f"SELECT {cols}, -bm25(knowledge_fts, 2.0, 1.0) AS relevance FROM knowledge_fts f"
                " JOIN knowledge_passages p ON p.id = f.rowid WHERE knowledge_fts MATCH ?"
                " AND (p.valid_until IS NULL OR p.valid_until > ?) ORDER BY relevance DESC LIMIT ?",
                (query, now, limit),
            )
        else:
            query = " | ".join(words)
            rows = await self.db.fetchall(
                f"SELECT {cols}, ts_rank_cd(p.search, q) AS relevance FROM knowledge_passages p,"
                " to_tsquery('english', ?) q WHERE p.search @@ q AND (p.valid_until IS NULL OR"
                " p.valid_until > ?) ORDER BY relevance DESC LIMIT ?",
                (query, now, limit),
            )
        return [(PassageRow.from_row(r), float(r[11])) for r in rows]

    async def note_miss(
        self, question: str, ticket_id: int | None, conversation_id: int | None, now: float
    ) -> None:
        await self.db.execute(
            "INSERT INTO knowledge_misses (question, ticket_id, conversation_id, at)"
            " VALUES (?, ?, ?, ?)",
            (question, ticket_id, conversation_id, now),
        )

    async def figures(self, since: float, until: float, top: int = 5) -> UsageFigures:
        """What the summary says of the knowledge over a period."""

        def read(c: Connection) -> UsageFigures:
            period = (since, until)
            [with_knowledge, without_ticket] = c.execute(
                "SELECT COUNT(DISTINCT u.conversation_id), COUNT(DISTINCT CASE WHEN NOT EXISTS"
                " (SELECT 1 FROM tickets t WHERE t.conversation_id = u.conversation_id) THEN"
                " u.conversation_id END) FROM knowledge_uses u WHERE u.at >= ? AND u.at <= ?",
                period,
            ).fetchone()
            most_used = c.execute(
                "SELECT title, COUNT(*) AS n FROM knowledge_uses WHERE at >= ? AND at <= ?"
                " GROUP BY title ORDER BY n DESC, title LIMIT ?",
                (*period, top),
            ).fetchall()
            saved = c.execute(
                "SELECT p.title, (SELECT COUNT(*) FROM knowledge_uses u WHERE u.passage_id = p.id)"
                " AS n FROM knowledge_passages p WHERE p.origin = 'saved' AND p.created_at >= ?"
                " AND p.created_at <= ? ORDER BY n DESC, p.id",
                period,
            ).fetchall()
            misses = c.execute(
                "SELECT question FROM knowledge_misses WHERE at >= ? AND at <= ? ORDER BY id",
                period,
            ).fetchall()
            return UsageFigures(
                int(with_knowledge or 0),
                int(without_ticket or 0),
                [(r[0], int(r[1])) for r in most_used],
                [(r[0], int(r[1])) for r in saved[:top]],
                len(saved),
                [r[0] for r in misses],
            )

        return await self.db.read(read)


def record_uses_sql(
    c: Connection,
    conversation_id: int,
    used: Sequence[tuple[int, str, str]],
    now: float,
) -> None:
    """The passages an answer rests on (id, title, origin), in the answer's own transaction."""
    c.executemany(
        "INSERT INTO knowledge_uses (passage_id, title, origin, conversation_id, at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(pid, title, origin, conversation_id, now) for pid, title, origin in used],
    )
