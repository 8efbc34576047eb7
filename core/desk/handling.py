"""Handling a ticket: claim, take over, hand back, close, and writing to a customer first
(contact)."""

from __future__ import annotations

from collections.abc import Callable

from core.desk.base import Changed, DeskBase, DeskReply, Operator
from storage.conversations import NewTurn
from storage.records import DeskOp, Kind, Priority, Source, Status, Ticket
from storage.tickets import DeskTx, NewTicket


class Handling(DeskBase):
    """Who handles a ticket, and closing it."""

    async def _update(
        self,
        ticket_id: int,
        operator: Operator,
        audit_action: str,
        fn: Callable[[DeskTx, Ticket], DeskReply],
    ) -> DeskReply:
        """Run ``fn(tx, ticket) -> DeskReply`` in a transaction with the ticket's current row."""
        now = self.clock.now()

        def write(tx: DeskTx) -> Changed:
            ticket = tx.ticket(ticket_id)
            if ticket is None:
                return Changed(DeskReply(False, f"Ticket #{ticket_id} does not exist."))
            reply = fn(tx, ticket)
            if not reply.ok:
                return Changed(reply)
            tx.audit(operator.actor, audit_action, f"ticket:{ticket_id}", {"name": operator.name})
            tx.post(ticket_id, DeskOp.REFRESH)
            return Changed(reply, ticket.customer_id)

        changed = await self.tickets.run(write, now)
        if changed.reply.ok:
            self._kick(ticket_id, changed.customer_id)
        return changed.reply

    async def claim(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if ticket.status == Status.CLOSED:
                return DeskReply(False, f"Ticket #{ticket_id} is closed.")
            if ticket.claimed_by == operator.id:
                return DeskReply(False, f"You already have ticket #{ticket_id}.")
            if not tx.claim(ticket_id, operator.id, operator.name):
                return DeskReply(
                    False, f"Ticket #{ticket_id} is already claimed by {ticket.claimed_by_name}."
                )
            tx.post(ticket_id, DeskOp.POST, f"🙋 **{operator.name}** is handling this ticket.")
            return DeskReply(True, f"Ticket #{ticket_id} is yours.")

        return await self._update(ticket_id, operator, "claimed", fn)

    async def takeover(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if ticket.status == Status.CLOSED:
                return DeskReply(False, f"Ticket #{ticket_id} is closed.")
            if ticket.takeover_by == operator.id:
                return DeskReply(
                    False, f"You are already talking with the customer on ticket #{ticket_id}."
                )
            other = tx.other_takeover(ticket.customer_id, ticket_id)
            if other is not None:
                return DeskReply(
                    False,
                    f"{other[1]} is already talking with this customer on ticket #{other[0]}.",
                )
            if not tx.take_over(ticket_id, operator.id, operator.name):
                return DeskReply(
                    False, f"{ticket.takeover_by_name} has already taken over ticket #{ticket_id}."
                )
            tx.tell(
                ticket,
                self.policy.message("takeover", operator=operator.name),
                NewTurn("system", f"{operator.name} from our team took over the conversation."),
            )
            tx.post(
                ticket_id,
                DeskOp.POST,
                f"🎧 **{operator.name}** took over: the customer's messages now come here, and your"
                f" messages here go to the customer (start with `{self.policy.desk.note_prefix}`"
                " for a note). `/handback` returns them to the assistant.",
            )
            return DeskReply(
                True, f"You're talking with {ticket.customer_name} now. `/handback` when done."
            )

        return await self._update(ticket_id, operator, "took_over", fn)

    async def handback(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if not self.ai_enabled:
                return DeskReply(
                    False,
                    "No AI is configured, so there is nothing to hand back to; use `/close` "
                    "when the conversation is done.",
                )
            if not ticket.in_takeover:
                return DeskReply(False, f"Nobody has taken over ticket #{ticket_id}.")
            tx.hand_back(ticket_id)
            tx.tell(
                ticket,
                self.policy.message("handback"),
                NewTurn(
                    "system",
                    f"{operator.name} handed the conversation back to you (the assistant). The"
                    " messages above between the customer and our team are what was said"
                    " meanwhile.",
                ),
            )
            tx.post(
                ticket_id,
                DeskOp.POST,
                f"↩ **{operator.name}** handed the customer back to the assistant.",
            )
            return DeskReply(True, f"{ticket.customer_name} is back with the assistant.")

        return await self._update(ticket_id, operator, "handed_back", fn)

    async def close(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        reply = await self._close(ticket_id, operator, reason)
        if reply.ok and self.policy.desk.transcript_to_customer:
            ticket = await self.tickets.get(ticket_id)
            made = (
                await self.transcript(ticket_id, for_customer=True)
                if ticket and not ticket.agent_name
                else None
            )
            if ticket is not None and made is not None:
                await self.conversations.owe_file(
                    ticket.customer_id,
                    f"Your copy of ticket #{ticket_id}:",
                    *made,
                    self.clock.now(),
                    reason="transcript",
                )
                self.outbox.kick(ticket.customer_id)
        return reply

    async def _close(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        reason = reason.strip() or "resolved"

        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if not tx.close(ticket_id, reason):
                return DeskReply(False, f"Ticket #{ticket_id} is already closed.")
            undecided = ticket.awaits_decision
            note = f"{operator.name} closed ticket #{ticket_id}: {reason}"
            if undecided:
                note += f". The proposed {ticket.action_name} was not done."
            # Held messages (no AI, or Claude gave up) are settled by the operator now.
            tx.settle_held(ticket.customer_id)
            told = self.policy.message("closed", number=str(ticket_id), reason=reason)
            tx.tell(ticket, told, NewTurn("system", note))
            if self.policy.feedback.ask_after_close and not ticket.agent_name:
                tx.owe(
                    ticket.customer_id,
                    None,
                    [self.policy.message("rate", number=str(ticket_id))],
                    buttons=[{"kind": "rating", "subject": f"t{ticket_id}"}],
                )
            tx.post(ticket_id, DeskOp.POST, f"🔒 Closed by **{operator.name}**: {reason}")
            tx.post(ticket_id, DeskOp.TRANSCRIPT)
            tx.post(ticket_id, DeskOp.ARCHIVE)
            return DeskReply(True, f"Ticket #{ticket_id} closed; the customer has been told.")

        return await self._update(ticket_id, operator, "closed", fn)

    async def contact(
        self, discord_id: int, display_name: str, operator: Operator, text: str
    ) -> DeskReply:
        """An operator writes to someone first: a ticket (its thread shows the conversation; the
        person's DMs come to it, as in a take-over) and the message owed to their DMs, in one
        transaction."""
        text = text.strip()
        if not text:
            return DeskReply(False, "Nothing to send: the message is empty.")
        now = self.clock.now()
        idle = self.policy.conversation.idle_minutes * 60

        def write(tx: DeskTx) -> tuple[DeskReply, int | None, int | None]:
            customer_id, conversation_id, row = tx.person(discord_id, display_name, idle)
            if row["blocked_until"] is not None and row["blocked_until"] > now:
                return (
                    DeskReply(False, f"{display_name} is blocked: `/unblock` them first."),
                    None,
                    None,
                )
            if row["dm_status"] == "closed" and row["dm_closed_at"] is not None:
                return (
                    DeskReply(
                        False,
                        f"{display_name}'s DMs are closed: Discord refused our last message to"
                        " them. Nothing was sent; reach them another way.",
                    ),
                    None,
                    None,
                )
            if (open_ := tx.other_takeover(customer_id, 0)) is not None:
                return (
                    DeskReply(
                        False,
                        f"{open_[1]} is already talking with {display_name} on ticket "
                        f"#{open_[0]}: write there.",
                    ),
                    None,
                    None,
                )
            ticket_id = tx.open_ticket(
                NewTicket(
                    customer_id,
                    conversation_id,
                    Kind.HANDOVER,
                    Source.OPERATOR,
                    Priority.NORMAL,
                    f"{operator.name} contacted {display_name}: {text}",
                    "",
                    takeover_by=operator.id,
                    takeover_by_name=operator.name,
                )
            )
            tx.responded(ticket_id, "open")
            ticket = tx.ticket(ticket_id)
            assert ticket is not None
            tx.tell(
                ticket,
                self.policy.message("operator_says", operator=operator.name, text=text),
                NewTurn(
                    "operator",
                    text,
                    {
                        "operator_name": operator.name,
                        "operator_id": operator.id,
                        "ticket": ticket_id,
                    },
                ),
            )
            tx.audit(
                operator.actor,
                "contacted",
                f"ticket:{ticket_id}",
                {"user": discord_id, "chars": len(text)},
            )
            return (
                DeskReply(
                    True,
                    f"Sent to {display_name} as ticket #{ticket_id}: their replies come to its "
                    "thread (`/handback` gives them to the assistant, `/close` ends it). If their "
                    "DMs are closed, the thread will say so.",
                ),
                ticket_id,
                customer_id,
            )

        reply, ticket_id, customer_id = await self.tickets.run(write, now)
        if ticket_id is not None:
            self._kick(ticket_id, customer_id)
        return reply
