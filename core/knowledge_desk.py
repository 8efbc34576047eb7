"""What operators do with the knowledge: save a ticket's answer, add, list, show, search, remove,
reload. Every command answers with a ``DeskReply`` (what the operator is told) and never touches
Discord; ``cogs/knowledge.py`` and the ticket's **Save as knowledge** form call these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from core.clock import Clock
from core.desk import DeskReply, Operator, TicketDesk
from core.knowledge import Knowledge
from core.knowledge_text import KnowledgeFileError, check_url, one_line, parse_date
from core.tickets import clip
from storage.knowledge import NewPassage, PassageRow

LIST_LIMIT = 1900  # one Discord message


def _shown_date(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat() if at else ""


def describe(p: PassageRow, now: float) -> str:
    """One line of ``/kb list``."""
    origin = {"file": f"file {p.path}", "saved": f"saved by {p.saved_by_name}"}.get(
        p.origin, f"added by {p.saved_by_name}"
    )
    expired = p.valid_until is not None and p.valid_until <= now
    until = f", valid until {_shown_date(p.valid_until)}" if p.valid_until else ""
    mark = " **(expired: not given to the assistant)**" if expired else ""
    return f"`K{p.id}` {one_line(p.title, 80)} ({origin}{until}){mark}"


class KnowledgeDesk:
    def __init__(self, *, knowledge: Knowledge, desk: TicketDesk, clock: Clock) -> None:
        self.knowledge = knowledge
        self.desk = desk
        self.clock = clock

    def _valid_until(self, raw: str) -> tuple[float | None, str | None]:
        """(the end of that day, or None) or (None, why it is refused)."""
        if not raw.strip():
            return None, None
        try:
            until = parse_date(raw, "valid until")
        except KnowledgeFileError as exc:
            return None, str(exc)
        if until <= self.clock.now():
            return None, f"valid until {raw.strip()} is already past"
        return until, None

    async def save_answer(
        self, ticket_id: int, operator: Operator, values: Mapping[str, str]
    ) -> DeskReply:
        """The **Save as knowledge** form: an answered question becomes a passage at once."""
        ticket = await self.desk.ticket(ticket_id)
        if ticket is None or not ticket.kind.asks_a_question or not ticket.answer:
            return DeskReply(False, f"Ticket #{ticket_id} has no answered question to save.")
        question = " ".join(values.get("question", "").split())
        answer = values.get("answer", "").strip()
        if not question or not answer:
            return DeskReply(False, "Not saved: the question and the answer are both needed.")
        until, problem = self._valid_until(values.get("valid_until", ""))
        if problem:
            return DeskReply(False, f"Not saved: {problem}. Nothing was changed.")
        title = " ".join(values.get("title", "").split()) or clip(question, 100)
        passage = NewPassage(
            "saved",
            title,
            f"Question: {question}\nAnswer: {answer}",
            question=question,
            valid_until=until,
            ticket_id=ticket_id,
            saved_by=operator.id,
            saved_by_name=operator.name,
        )
        passage_id = await self.knowledge.add(passage, operator.actor)
        await self.desk.note_in_thread(
            ticket_id, f"📚 {operator.name} saved this answer as knowledge `K{passage_id}`."
        )
        return DeskReply(
            True,
            f"Saved as `K{passage_id}`: the assistant answers from it from now on"
            + (f" until {_shown_date(until)}." if until else "."),
        )

    async def add(
        self, operator: Operator, title: str, text: str, url: str | None, valid_until: str = ""
    ) -> DeskReply:
        title, text = " ".join(title.split()), text.strip()
        if not title or not text:
            return DeskReply(False, "Not added: a title and a text are both needed.")
        try:
            link = check_url(url, "url") if url and url.strip() else None
        except KnowledgeFileError as exc:
            return DeskReply(False, f"Not added: {exc}.")
        until, problem = self._valid_until(valid_until)
        if problem:
            return DeskReply(False, f"Not added: {problem}.")
        passage = NewPassage(
            "added",
            clip(title, 200),
            text,
            url=link,
            valid_until=until,
            saved_by=operator.id,
            saved_by_name=operator.name,
        )
        passage_id = await self.knowledge.add(passage, operator.actor)
        return DeskReply(True, f"Added `K{passage_id}` {one_line(title, 80)}.")

    async def remove(self, operator: Operator, passage_id: int) -> DeskReply:
        removed = await self.knowledge.remove(passage_id, operator.actor)
        if removed is None:
            return DeskReply(False, f"There is no passage `K{passage_id}`.")
        if removed.origin == "file":
            return DeskReply(
                False,
                f"`K{passage_id}` comes from the file `{removed.path}`: edit or delete the file,"
                " then `/kb reload`.",
            )
        return DeskReply(True, f"Removed `K{passage_id}` {one_line(removed.title, 80)}.")

    async def listing(self) -> str:
        passages = await self.knowledge.passages()
        if not passages:
            return (
                "No knowledge yet: put Markdown files in the knowledge folder and `/kb reload`,"
                " save an operator's answer, or `/kb add`."
            )
        now = self.clock.now()
        lines = [describe(p, now) for p in passages]
        head = f"{len(lines)} passage(s):"
        shown: list[str] = []
        size = len(head)
        for line in lines:
            if size + len(line) + 1 > LIST_LIMIT - 40:
                shown.append(f"… and {len(lines) - len(shown)} more (`/kb search` finds them)")
                break
            shown.append(line)
            size += len(line) + 1
        return "\n".join([head, *shown])

    async def show(self, passage_id: int) -> str:
        p = await self.knowledge.get(passage_id)
        if p is None:
            return f"There is no passage `K{passage_id}`."
        lines = [describe(p, self.clock.now())]
        if p.url:
            lines.append(f"Link: <{p.url}>")
        if p.ticket_id:
            lines.append(f"From ticket #{p.ticket_id}")
        lines.append(clip(p.body, 1500))
        return "\n".join(lines)

    async def search(self, query: str) -> str:
        found = await self.knowledge.search(query, limit=5)
        if not found:
            return (
                "No passage covers this well enough to be given to the assistant"
                " (`[knowledge] min_score`): a customer asking it goes to a person."
            )
        return "\n".join(
            f"`K{p.id}` {one_line(p.title, 80)} (covers {p.score:.0%}): {one_line(p.body, 160)}"
            for p in found
        )

    async def reload(self) -> str:
        return (await self.knowledge.reindex()).summary()
