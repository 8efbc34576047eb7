"""The business's knowledge: the folder's files and the operators' saved answers, searched for
every answer the assistant writes.

Files (Markdown or text) are re-indexed at start and by ``/kb reload`` when their content changed
(by SHA-256); a file that cannot be read is one log line naming it, and what was indexed from it
before stays. Operators' passages (saved answers, ``/kb add``) are searchable the moment they are
saved. Knowledge only informs what Claude writes: it reaches Claude as quoted data, and every
action still goes through the risk policy and its step.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.clock import Clock
from core.knowledge_text import (
    Found,
    KnowledgeFileError,
    Synonyms,
    TermStats,
    split_document,
)
from core.policy_sections import KnowledgeSection
from storage.db import Store
from storage.knowledge import FileIndex, KnowledgeStore, NewPassage, PassageRow

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".markdown", ".txt")
MAX_FILE_BYTES = 1_000_000
CANDIDATES = 30  # passages the engine ranks before coverage re-scores them


@dataclass(frozen=True)
class Reindexed:
    files: int  # files read and indexed (changed or new)
    unchanged: int
    removed: int  # files gone from the folder
    broken: list[str]  # "name: why", each logged
    passages: int  # passages searchable now

    def summary(self) -> str:
        parts = [
            f"{self.passages} passage(s) searchable",
            f"{self.files} file(s) indexed",
            f"{self.unchanged} unchanged",
        ]
        if self.removed:
            parts.append(f"{self.removed} removed")
        text = ", ".join(parts) + "."
        if self.broken:
            text += " Not read (the rest of the file's old passages stay): " + "; ".join(
                self.broken
            )
        return text


def _read_folder(folder: Path) -> tuple[dict[str, tuple[str, bytes]], list[str]]:
    """{relative path: (sha256, bytes)} of the folder's knowledge files, and what could not be
    read. Runs in a thread: a folder of a thousand files is read without holding up the loop."""
    found: dict[str, tuple[str, bytes]] = {}
    broken: list[str] = []
    if not folder.is_dir():
        return found, broken
    inside = folder.resolve()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            continue
        name = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in Path(name).parts):
            continue
        if not path.resolve().is_relative_to(inside):
            # a link out of the folder (to .env, say) would hand that file to Claude
            broken.append(f"{name}: a link to a file outside the knowledge folder")
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                broken.append(f"{name}: larger than {MAX_FILE_BYTES // 1000} kB")
                continue
            raw = path.read_bytes()
        except OSError as exc:
            broken.append(f"{name}: {exc.strerror or exc}")
            continue
        found[name] = (hashlib.sha256(raw).hexdigest(), raw)
    return found, broken


class Knowledge:
    def __init__(
        self, *, db: Store, policy: KnowledgeSection, clock: Clock, folder: Path | None
    ) -> None:
        self.store = KnowledgeStore(db)
        self.policy = policy
        self.clock = clock
        self.folder = folder
        self.stats = TermStats()
        self.synonyms = Synonyms(policy.synonyms)
        self._lock = asyncio.Lock()  # one re-index at a time

    # -- indexing ----------------------------------------------------------------------------------

    async def reindex(self) -> Reindexed:
        """Files whose content changed are indexed again, files gone are dropped; then the
        in-memory term weights are rebuilt from every passage."""
        async with self._lock:
            found, broken = (
                await asyncio.to_thread(_read_folder, self.folder) if self.folder else ({}, [])
            )
            known = await self.store.file_hashes()
            changed: list[FileIndex] = []
            for name, (digest, raw) in found.items():
                if known.get(name) == digest:
                    continue
                try:
                    passages = split_document(name, raw.decode("utf-8"))
                except UnicodeDecodeError:
                    broken.append(f"{name}: not UTF-8 text")
                    continue
                except KnowledgeFileError as exc:
                    broken.append(str(exc))
                    continue
                changed.append(
                    FileIndex(
                        name,
                        digest,
                        [
                            NewPassage("file", p.title, p.body, p.url, name, None, p.valid_until)
                            for p in passages
                        ],
                    )
                )
            gone = [name for name in known if name not in found]
            if changed or gone:
                await self.store.replace_files(changed, gone, self.clock.now())
            for problem in broken:
                log.warning("knowledge: a file was not read: %s", problem)
            if self.folder and not self.folder.is_dir():
                log.info(
                    "knowledge: HANDOFF_KNOWLEDGE=%s is not a folder; only the passages operators"
                    " save or add are searched",
                    self.folder,
                )
            await self._load_weights()
            done = Reindexed(
                len(changed), len(found) - len(changed), len(gone), broken, len(self.stats.terms)
            )
            log.info("knowledge (%s): %s", self.folder or "no folder", done.summary())
            return done

    async def _load_weights(self) -> None:
        stats = TermStats()
        for passage in await self.store.all():
            stats.add(passage.id, passage.title, passage.body)
        self.stats = stats

    # -- operators' passages -----------------------------------------------------------------------

    async def add(self, passage: NewPassage, actor: str) -> int:
        passage_id = await self.store.add(passage, actor, self.clock.now())
        self.stats.add(passage_id, passage.title, passage.body)
        return passage_id

    async def remove(self, passage_id: int, actor: str) -> PassageRow | None:
        removed = await self.store.remove(passage_id, actor, self.clock.now())
        if removed is not None and removed.origin != "file":
            self.stats.remove(passage_id)
        return removed

    # -- search ------------------------------------------------------------------------------------

    async def search(self, text: str, *, limit: int | None = None) -> list[Found]:
        """The passages that best cover ``text`` and score at least ``[knowledge] min_score``,
        best first; none past their ``valid_until``."""
        if not self.stats.terms:
            # no passage in this process's index (it is the leader's: the start, a reload and
            # every passage saved here fill it): no query on each customer's message
            return []
        words = self.stats.selective(self.synonyms.query_words(text))
        if not words:
            return []
        terms = self.synonyms.terms(text)
        ranked = await self.store.candidates(words, self.clock.now(), CANDIDATES)
        for row, _ in ranked:
            if row.id not in self.stats.terms:  # saved by another process since the last index
                self.stats.add(row.id, row.title, row.body)
        scored = [(self.stats.coverage(terms, row.id), rank, row) for row, rank in ranked]
        scored.sort(key=lambda s: (-s[0], -s[1], s[2].id))
        floor = self.policy.min_score
        return [
            Found(row.id, row.title, row.body, row.url, round(score, 3), row.origin)
            for score, _, row in scored
            if score >= floor
        ][: limit or self.policy.passages]

    async def note_miss(
        self, question: str, ticket_id: int | None, conversation_id: int | None
    ) -> bool:
        """A question that went to a person: noted for the summary's "write these next" when no
        passage covers it. Returns whether it was noted."""
        if await self.search(question, limit=1):
            return False
        await self.store.note_miss(question, ticket_id, conversation_id, self.clock.now())
        return True

    async def passages(self) -> Sequence[PassageRow]:
        return await self.store.all()

    async def get(self, passage_id: int) -> PassageRow | None:
        return await self.store.get(passage_id)
