"""Operator approval: the step an operator decides, on a ticket in the staff channel.

Opening it is opening an approval ticket (its number owed to the customer in the same transaction);
deciding it is the desk's Approve / Deny / Edit & approve (``TicketDesk.approve``), once. It also
takes the ``code`` strategy when one-time codes are off, or for customers without an authenticator
when ``[mfa] unenrolled = "ticket"``: an operator then checks it is really the customer.
"""

from __future__ import annotations

import json

from core.desk import Escalation, TicketDesk
from core.steps.lifecycle import Opened, Proposal
from storage.records import Kind, Priority, Source

NEEDS = {
    "approval": "an operator's approval",
    "human": "a person from our team",
    "code": "a one-time code",
}


class Approvals:
    def __init__(self, *, desk: TicketDesk, codes_on: bool) -> None:
        self.desk = desk
        self.codes_on = codes_on
        self.strategies: tuple[str, ...] = (
            ("approval", "human") if codes_on else ("approval", "human", "code")
        )

    async def open(self, proposal: Proposal) -> Opened:
        decision, action = proposal.decision, proposal.action
        reason = f"{decision.level} risk: " + "; ".join(decision.rules)
        if decision.strategy == "code":
            reason += (
                '. The customer has no authenticator set up ([mfa] unenrolled = "ticket")'
                if self.codes_on
                else ". One-time codes are off (no HANDOFF_SECRET_KEY or [mfa] enabled = false)"
            )
            reason += ", so an operator checks it is really the customer."
        escalated = await self.desk.escalate(
            proposal.ctx,
            Escalation(
                Kind.APPROVAL,
                Source.SPECIALIST if decision.strategy == "human" else Source.APPROVAL,
                question=f"{proposal.label}: {json.dumps(proposal.params, ensure_ascii=False)}",
                reason=reason,
                action_name=action.name,
                action_summary=proposal.label,
                action_params=proposal.params,
                decision_type=decision.decision_type,
                tool_use_id=proposal.tool_use_id,
                priority_hint=Priority.HIGH if decision.level == "critical" else Priority.NORMAL,
            ),
        )
        number = escalated.number
        if number is None:
            return Opened(
                f"NOT DONE: {action.name} was not sent to our team: this customer already has the"
                " most requests open that one customer may have. Tell them to wait for the answers"
                " to those; do not say it is done.",
                error=True,
            )
        return Opened(
            f"NOT DONE YET: {action.name} needs {NEEDS[decision.strategy]} and was sent to our team"
            f" as ticket #{number}. The customer is told the ticket number and will hear the"
            " outcome directly. Do not say it is done; you may keep helping with other things."
        )

    async def expire_due(self) -> int:
        # an approval waits on its ticket: the ticket's reminder and timeout are the desk's
        # deadlines
        return 0

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return []
