"""Relaying: operators' messages in a ticket's thread and /reply reach the customer (or the
agent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.answer_forms import as_text, parse_answer, read_schema
from core.desk.base import ALREADY_HANDLED, Changed, DeskBase, DeskReply, Operator
from storage.conversations import NewTurn
from storage.drafts import SUGGESTED, Draft
from storage.records import DeskOp, Kind, Status, Ticket
from storage.tickets import DeskTx


class Relaying(DeskBase):
    """Operators' words to the customer or agent."""

    async def operator_message(
        self,
        thread_id: int,
        operator: Operator,
        text: str,
        message_id: int | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> DeskReply | None:
        """An operator wrote in a thread (live, or read back after a start: ``message_id`` makes it
        count once). Returns a hint to post back, or None when nothing needs saying."""
        ticket_id = self._thread_tickets.get(thread_id)
        if ticket_id is None:
            ticket = await self.tickets.by_thread(thread_id)
            if ticket is None:
                return None  # not a ticket's thread
            ticket_id = self._thread_tickets[thread_id] = ticket.id  # a thread never changes ticket
        between_operators = text.lstrip().startswith(self.policy.desk.note_prefix)
        if between_operators or not (text.strip() or files):
            # a note between operators: kept for the transcript, never relayed
            if message_id is not None:
                note = (ticket_id, operator.name, text.strip()) if text.strip() else None
                await self.tickets.see_thread_message(
                    thread_id, message_id, self.clock.now(), note=note
                )
            return None
        reply = await self.reply(
            ticket_id,
            operator,
            text,
            via="thread",
            seen=(thread_id, message_id) if message_id is not None else None,
            files=files,
        )
        return None if reply is ALREADY_HANDLED else reply

    def _thread_hint(self, ticket: Ticket, operator: Operator) -> DeskReply | None:
        """Whether an operator's message in the thread is relayed: None if so, else why not."""
        if ticket.in_takeover and ticket.takeover_by in (0, operator.id):
            return None
        if ticket.in_takeover:
            return DeskReply(
                False,
                f"Not relayed: {ticket.takeover_by_name} has taken over ticket #{ticket.id}. "
                "Use `/reply` to write to the customer anyway.",
            )
        if ticket.kind is Kind.NOTICE:
            return DeskReply(
                False,
                f"Not relayed: ticket #{ticket.id} is a notice from {ticket.agent_name}; it"
                " expects no answer. `/close` it when it is dealt with.",
            )
        if ticket.status == Status.OPEN and ticket.kind.answered_in_words:
            return None  # the first answer to a question
        if ticket.awaits_decision:
            return DeskReply(
                False,
                f"Not relayed: ticket #{ticket.id} waits for a decision. Use the buttons, "
                "`/approve` or `/deny`; `/reply` writes to the customer.",
            )
        return DeskReply(
            False,
            f"Not relayed: ticket #{ticket.id} is {ticket.status}. Use `/reply` to write to the "
            "customer again, or `/takeover` to talk with them directly.",
        )

    async def reply(
        self,
        ticket_id: int,
        operator: Operator,
        text: str,
        *,
        via: str = "command",
        seen: tuple[int, int] | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> DeskReply:
        """Relay an operator's words to the customer; the first answer to an open question answers
        it.

        ``via="thread"``: a plain message in the ticket's thread, relayed only when it answers an
        open question or during a take-over. Decided in the same transaction as the relay (one round
        trip).
        """
        now = self.clock.now()
        text = text.strip() or ("📎 " + ", ".join(name for name, _ in files) if files else "")
        if not text:
            return DeskReply(False, "Nothing to send: the message is empty.")

        def write(tx: DeskTx) -> Changed:
            if seen is not None and not tx.see_thread_message(*seen):
                # this thread message was handled before (caught up after a start)
                return Changed(ALREADY_HANDLED)
            ticket = tx.ticket(ticket_id)
            if ticket is None:
                return Changed(DeskReply(False, f"Ticket #{ticket_id} does not exist."))
            if ticket.status == Status.CLOSED:
                return Changed(
                    DeskReply(False, f"Ticket #{ticket_id} is closed; nothing was sent.")
                )
            if via == "thread" and (hint := self._thread_hint(ticket, operator)) is not None:
                return Changed(hint)
            thread_message = seen[1] if seen is not None else None
            return self._relay(tx, ticket, operator, text, via, files, thread_message)

        changed = await self.tickets.run(write, now)
        if changed.reply.ok:
            self._kick(ticket_id, changed.customer_id)
        return changed.reply

    def _relay(
        self,
        tx: DeskTx,
        ticket: Ticket,
        operator: Operator,
        text: str,
        via: str,
        files: Sequence[tuple[str, bytes]] = (),
        thread_message: int | None = None,
    ) -> Changed:
        """An operator's words to the customer (or agent), in the caller's transaction: the first
        answer to an open question answers it. Read in the same write transaction as the caller's
        checks, so no other answer can come in between."""
        answered = ticket.status == Status.OPEN and ticket.kind.answered_in_words
        if answered and ticket.answer_schema is not None and via != "form":
            return Changed(self._form_wanted(ticket))
        tx.responded(ticket.id, "answered" if answered else ticket.status)
        if answered:
            tx.answered(ticket.id, text, operator.name)
        turn = NewTurn(
            "operator",
            text,
            {
                "operator_name": operator.name,
                "operator_id": operator.id,
                "ticket": ticket.id,
                "question": ticket.question,
                **({"files": [name for name, _ in files]} if files else {}),
                # the thread message it came from: its edits and deletion follow it to the DM
                **({"thread_message_id": thread_message} if thread_message else {}),
            },
        )
        said = self.policy.message("operator_says", operator=operator.name, text=text)
        tx.tell(ticket, said, turn, files)
        tx.audit(
            operator.actor,
            "answered" if answered else "replied",
            f"ticket:{ticket.id}",
            {"via": via, "chars": len(text), "files": len(files)},
        )
        if answered:
            tx.post(ticket.id, DeskOp.REFRESH)
        if via not in ("thread", "draft"):  # there already; a draft's message says it was sent
            to = ticket.agent_name or "the customer"
            tx.post(ticket.id, DeskOp.POST, f"**{operator.name}** (sent to {to}): {text}")
        sent = DeskReply(True, f"Sent to {ticket.customer_name} (ticket #{ticket.id}).")
        return Changed(sent, ticket.customer_id)

    async def operator_edited(self, message_id: int, content: str | None) -> bool:
        """An operator edited (``content``) or deleted (None) a thread message that was relayed:
        the customer's DM copy is edited or deleted too (modmail's behaviour), and so is what
        Claude reads. The change is owed through the outbox (retried, kept across a restart). A
        deletion deletes every copy (the text and each file's DM); an edit changes the text's DM
        when the text was, and still is, one DM long (a longer one keeps its text). True if
        relayed."""
        relayed = await self.conversations.operator_copies(message_id)
        if relayed is None:
            return False
        if content is not None and content.strip() == relayed.text.strip():
            # Discord also sends an update when it adds a link's preview: nothing to change
            return True
        said = (
            None
            if content is None
            else self.policy.message("operator_says", operator=relayed.operator_name, text=content)
        )
        changes: list[tuple[str, int]] = []
        if said is None:
            sent = [dm for status, dm, _ in relayed.copies if status == "sent" and dm]
            changes = [("delete", dm) for dm in sent]
        elif relayed.copies:
            status, dm, was = relayed.copies[0]  # the text's DM; a file's own DM keeps its name
            if status == "sent" and dm and max(len(said), len(was)) <= 2000:
                changes = [("edit", dm)]
        await self.conversations.operator_changed(relayed, content, said, changes, self.clock.now())
        if changes:
            self.outbox.kick(relayed.customer_id)
        return True

    @staticmethod
    def _form_wanted(ticket: Ticket) -> DeskReply:
        return DeskReply(
            False,
            f"Not sent: {ticket.agent_name or ticket.customer_name} asked for a typed answer on"
            f" ticket #{ticket.id}. Press **Answer** on its card and fill in the form.",
        )

    async def answer_form(
        self, ticket_id: int, operator: Operator, submitted: Mapping[str, str]
    ) -> DeskReply:
        """A typed answer from the ticket's form: checked against the agent's schema (nothing is
        recorded when a field is wrong), then relayed as the answer, its data kept beside it."""
        ticket = await self.tickets.get(ticket_id)
        if ticket is None or ticket.answer_schema is None:
            return DeskReply(False, f"Ticket #{ticket_id} asks for no typed answer.")
        fields = read_schema(ticket.answer_schema)
        data, problem = parse_answer(fields, submitted)
        if data is None:
            return DeskReply(
                False, f"Not answered: {problem}. Nothing was recorded; press **Answer** again."
            )
        text = as_text(fields, data)

        def write(tx: DeskTx) -> Changed:
            now_ticket = tx.ticket(ticket_id)
            if now_ticket is None or now_ticket.status != Status.OPEN or now_ticket.answer:
                by = (
                    f" by {now_ticket.answered_by_name}" if now_ticket and now_ticket.answer else ""
                )
                return Changed(DeskReply(False, f"Ticket #{ticket_id} was already answered{by}."))
            tx.answer_data(ticket_id, data)
            return self._relay(tx, now_ticket, operator, text, via="form")

        changed = await self.tickets.run(write, self.clock.now())
        if changed.reply.ok:
            self._kick(ticket_id, changed.customer_id)
        return changed.reply

    # -- the copilot's drafts ---------------------------------------------------------------------

    @staticmethod
    def _draft_refusal(draft: Draft | None, ticket: Ticket | None) -> str | None:
        """Why this draft cannot be sent now, or None."""
        if draft is None or ticket is None:
            return "That draft does not exist."
        if draft.status != SUGGESTED:
            by = f" by {draft.decided_by_name}" if draft.decided_by_name else ""
            done = {"sent": "sent", "edited": "edited and sent", "discarded": "discarded"}
            return (
                f"This draft was already {done[draft.status]}{by}."
                if draft.status in done
                else f"This draft is no longer offered: ticket #{ticket.id} was answered, closed"
                " or taken over."
            )
        if ticket.status != Status.OPEN or not ticket.kind.answered_in_words:
            return f"Ticket #{ticket.id} is {ticket.status}: the draft was not sent."
        if ticket.in_takeover:
            return f"{ticket.takeover_by_name} is talking with the customer: write in the thread."
        return None

    async def send_draft(
        self, draft_id: int, operator: Operator, edited: str | None = None
    ) -> DeskReply:
        """Relay the copilot's draft (or the operator's edit of it) exactly as the operator's own
        answer, once: two clicks at once send it once and tell the second who did."""

        def write(tx: DeskTx) -> Changed:
            draft = tx.draft(draft_id)
            ticket = tx.ticket(draft.ticket_id) if draft else None
            refusal = self._draft_refusal(draft, ticket)
            if refusal is not None or draft is None or ticket is None:
                return Changed(DeskReply(False, refusal or "That draft does not exist."))
            text = (draft.text if edited is None else edited).strip()
            if not text:
                return Changed(DeskReply(False, "Nothing to send: the answer is empty."))
            status = "sent" if text == draft.text.strip() else "edited"
            if not tx.decide_draft(draft_id, status, operator.id, operator.name, text):
                return Changed(DeskReply(False, "Someone used this draft a moment ago."))
            changed = self._relay(tx, ticket, operator, text, via="draft")
            tx.audit(
                operator.actor,
                "draft_sent" if status == "sent" else "draft_edited_sent",
                f"ticket:{ticket.id}",
                {"draft": draft_id},
            )
            tx.post(ticket.id, DeskOp.DRAFT_END, str(draft_id))
            return changed

        changed = await self.tickets.run(write, self.clock.now())
        draft = await self.drafts.get(draft_id)
        if draft is not None:
            self._kick(draft.ticket_id, changed.customer_id)
        return changed.reply

    async def discard_draft(self, draft_id: int, operator: Operator) -> DeskReply:
        """The draft is not used; the ticket stays as it is (open, for a person's own answer)."""

        def write(tx: DeskTx) -> DeskReply:
            draft = tx.draft(draft_id)
            if draft is None or draft.status != SUGGESTED:
                return DeskReply(
                    False,
                    self._draft_refusal(draft, tx.ticket(draft.ticket_id) if draft else None) or "",
                )
            tx.decide_draft(draft_id, "discarded", operator.id, operator.name, None)
            tx.audit(
                operator.actor, "draft_discarded", f"ticket:{draft.ticket_id}", {"draft": draft_id}
            )
            tx.post(draft.ticket_id, DeskOp.DRAFT_END, str(draft_id))
            return DeskReply(True, "Discarded. The ticket is still open for your own answer.")

        reply = await self.tickets.run(write, self.clock.now())
        draft = await self.drafts.get(draft_id)
        if draft is not None and reply.ok:
            self.desk_outbox.kick(draft.ticket_id)
        return reply

    async def note_in_thread(self, ticket_id: int, text: str) -> None:
        """A line from the desk itself in the ticket's thread (never relayed to the customer)."""

        def write(tx: DeskTx) -> None:
            tx.post(ticket_id, DeskOp.POST, text)

        await self.tickets.run(write, self.clock.now())
        self.desk_outbox.kick(ticket_id)
