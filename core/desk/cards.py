"""What operators see of a ticket: its card and its thread's name, rendered from the database."""

from __future__ import annotations

from core.actions import ActionRegistry
from core.approvals import approvals_line, approvers_needed
from core.case import case_lines
from core.policy import Policy, escalation_steps
from core.tickets import Card, build_card, thread_name, transcript_lines
from storage.case import CaseStore
from storage.conversations import ConversationStore
from storage.db import Store
from storage.records import Ticket
from storage.tickets import TicketStore


class CardRenderer:
    """What operators see of a ticket: its card (embed and buttons) and its thread's name."""

    def __init__(self, *, db: Store, policy: Policy, registry: ActionRegistry) -> None:
        self.policy = policy
        self.registry = registry
        self.tickets = TicketStore(db)
        self.conversations = ConversationStore(db)
        self.case = CaseStore(db)

    async def card(self, ticket_id: int) -> tuple[Card, str, Ticket]:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            raise LookupError(f"ticket {ticket_id} does not exist")
        turns = (
            []
            if ticket.agent_name
            else await self.conversations.history(
                ticket.conversation_id,
                limit=self.policy.desk.transcript_turns,
                kinds=("customer", "assistant", "operator"),
            )
        )
        action = self.registry.get(ticket.action_name) if ticket.action_name else None
        case: list[str] = []
        approvals = None
        if ticket.kind.decided and ticket.status == "open":
            so_far = await self.tickets.approvals(ticket.id)
            needed = approvers_needed(ticket, so_far.details or ticket.action_params, self.policy)
            if needed > 1:
                approvals = approvals_line(so_far.names, needed)
        escalated = None
        if ticket.escalation_level:
            steps = escalation_steps(self.policy.desk.escalation)
            level = ticket.escalation_level
            role = f" <@&{steps[level - 1][1]}>" if level <= len(steps) else ""
            escalated = f"level {level} of {len(steps)}{role}"
        if ticket.kind.decided:  # approvals: what the desk knows, beside the proposed action
            facts = await self.case.facts(
                ticket.id, ticket.customer_id, ticket.action_name, ticket.created_at
            )
            case = case_lines(ticket, facts)
        return (
            build_card(
                ticket,
                transcript_lines(turns),
                action.summary if action else None,
                case,
                approvals,
                escalated,
            ),
            thread_name(ticket.id, ticket.question),
            ticket,
        )
