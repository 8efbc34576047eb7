"""Opening tickets: escalations from the assistant, messages held for a person, priority and due
times."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.actions import ActionContext
from core.desk.base import DeskBase, Escalated, Escalation
from core.text import split_message
from core.tickets import classify_priority
from storage.records import DeskOp, Kind, Priority, Source
from storage.tickets import DeskTx, NewTicket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """Messages kept for a person: the ticket they went to, and whether this made it."""

    ticket_id: int
    created: bool


class Opening(DeskBase):
    """Opening tickets (see the module)."""

    async def _priority(self, conversation_id: int, escalation: Escalation) -> tuple[Priority, str]:
        recent = await self.conversations.history(conversation_id, limit=6, kinds=("customer",))
        texts = [escalation.question, escalation.reason, *(t.content for t in recent)]
        return classify_priority(
            texts=texts,
            decision_type=escalation.decision_type,
            desk_policy=self.policy.desk,
            floor=escalation.priority_hint,
        )

    async def escalate(
        self, ctx: ActionContext, escalation: Escalation, *, into: int | None = None
    ) -> Escalated:
        """Open a ticket from the LLM loop (its number owed to the customer). Never waits.

        A question or hand-over goes into ``into`` (the ticket this answer already opened) while it
        is open, and into the customer's newest open ticket once they have ``[abuse]
        max_open_tickets``: one answer never opens a row of tickets, each pinging the operators. An
        approval past that cap is not sent."""
        assert ctx.conversation_id is not None
        priority, rule = await self._priority(ctx.conversation_id, escalation)
        now = self.clock.now()
        reminder, timeout = self._due(now)
        new = NewTicket(
            ctx.customer_id,
            ctx.conversation_id,
            escalation.kind,
            escalation.source,
            priority,
            escalation.question,
            escalation.reason,
            escalation.action_name,
            escalation.action_params,
            escalation.tool_use_id,
            reminder_due_at=reminder,
            timeout_due_at=timeout,
        )

        message = {
            Kind.QUESTION: "ticket_question",
            Kind.APPROVAL: "ticket_approval",
            Kind.HANDOVER: "ticket_handover",
        }[escalation.kind]

        cap = self.policy.abuse.max_open_tickets

        def write(tx: DeskTx) -> tuple[int | None, bool]:
            existing = (
                tx.same_open_approval(
                    ctx.customer_id, escalation.action_name, escalation.action_params or {}
                )
                if escalation.action_name
                else None
            )
            if existing is None:
                crowded = tx.open_count(ctx.customer_id) >= cap
                if escalation.kind is Kind.APPROVAL:
                    if crowded:
                        tx.audit(
                            "agent",
                            "ticket_refused",
                            f"customer:{ctx.customer_id}",
                            {"why": f"{cap} tickets open", "action": escalation.action_name},
                        )
                        return None, False
                else:
                    target = into if into is not None and tx.is_open(into) else None
                    if target is None and crowded:
                        target = tx.newest_open(ctx.customer_id)
                    if target is not None:
                        tx.post(
                            target,
                            DeskOp.POST,
                            f"**Also asked by the assistant:** {escalation.question}",
                        )
                        tx.audit(
                            "agent",
                            "ticket_question_added",
                            f"ticket:{target}",
                            {"reason": escalation.reason[:500]},
                        )
                        return target, False
            ticket_id = existing if existing is not None else tx.open_ticket(new)
            if existing is None:
                tx.audit(
                    "agent",
                    "ticket_opened",
                    f"ticket:{ticket_id}",
                    {
                        "kind": new.kind,
                        "source": new.source,
                        "priority": new.priority,
                        "priority_rule": rule,
                        "action": new.action_name,
                        "reason": new.reason[:500],
                    },
                )
            # The ticket number is owed in the same transaction: a crash after this never hides it.
            notice = self.policy.message(
                message, number=str(ticket_id), action=escalation.action_summary
            )
            notice += self._after_hours(now)
            tx.owe(ctx.customer_id, None, split_message(notice))
            return ticket_id, existing is None

        ticket_id, created = await self.tickets.run(write, now)
        if ticket_id is None:
            log.warning(
                "customer %s has %d tickets open: a new approval was not sent", ctx.customer_id, cap
            )
            return Escalated(None, False)
        if created:
            self._arm(ticket_id, reminder, timeout)
            log.info("ticket #%d opened (%s, %s: %s)", ticket_id, new.kind, priority.value, rule)
        self._kick(ticket_id, ctx.customer_id)
        if created:
            self.opened(ticket_id)
        return Escalated(ticket_id, created)

    async def hold_for_person(
        self,
        customer_id: int,
        turns: Sequence[Any],
        *,
        source: Source,
        notice: str | None,
        reason: str = "",
    ) -> int | None:
        """Messages no AI will answer (no AI configured, Claude gave up, a legal or medical
        question): keep them for a person and open a ticket (or add them to the open one of the same
        source).

        ``notice`` is what the customer is told; ``{number}`` in it becomes the ticket number. In
        no-AI mode the ticket is a relay: the customer's next DMs go to its thread and the
        operators' messages in it go to the customer, until it is closed; the notice is sent once
        per conversation.
        """
        first = turns[0]
        question = "\n".join(t.content for t in turns if t.content.strip()) or "(no text)"
        kind = Kind.QUESTION if source == Source.SPECIALIST else Kind.HANDOVER
        escalation = Escalation(
            kind,
            source,
            question,
            reason,
            priority_hint=Priority.HIGH if source == Source.SPECIALIST else Priority.NORMAL,
        )
        priority, rule = await self._priority(first.conversation_id, escalation)
        now = self.clock.now()
        relay = source == Source.RELAY
        reminder, timeout = self._due(now)

        def write(tx: DeskTx) -> Held:
            tx.hold([t.id for t in turns])
            existing = tx.open_of_source(first.customer_id, source)
            if existing is not None:  # the same trouble again: add to the open ticket
                ticket_id = existing
                tx.post(ticket_id, DeskOp.POST, f"**Customer:** {question}")
            else:  # a new ticket: its reminder and timeout are armed after the commit
                ticket_id = tx.open_ticket(
                    NewTicket(
                        first.customer_id,
                        first.conversation_id,
                        kind,
                        source,
                        priority,
                        question,
                        reason,
                        takeover_by=0 if relay else None,
                        takeover_by_name="relay" if relay else None,
                        reminder_due_at=reminder,
                        timeout_due_at=timeout,
                    )
                )
                tx.audit(
                    "system",
                    "ticket_opened",
                    f"ticket:{ticket_id}",
                    {
                        "kind": kind.value,
                        "source": source,
                        "priority": priority.value,
                        "priority_rule": rule,
                    },
                )
            if notice is not None and relay:
                if tx.notice_once(first.conversation_id):
                    text = f"{notice}\n{self.policy.message('ticket_relay', number=str(ticket_id))}"
                    tx.owe(first.customer_id, turns[-1].id, [text])
            elif notice is not None:
                tx.owe(
                    first.customer_id,
                    turns[-1].id,
                    split_message(
                        notice.replace("{number}", str(ticket_id)) + self._after_hours(now)
                    ),
                )
            return Held(ticket_id, created=existing is None)

        held = await self.tickets.run(write, now)
        if held.created:
            self._arm(held.ticket_id, reminder, timeout)
        self._kick(held.ticket_id, first.customer_id)
        if held.created:
            self.opened(held.ticket_id)
        return held.ticket_id
