"""Two-person approval: how many distinct operators must approve a ticket (pure).

An agent's ticket keeps the count it was opened with (its ``approvers``, at least ``[agents]
approvers`` for the action). A customer's action needs two when its money (as the risk rules read
it, edits included) is above ``[risk] approvers_above``.
"""

from __future__ import annotations

from typing import Any

from core.policy import Policy
from core.risk import amounts, money_names
from storage.records import Ticket

MAX_APPROVERS = 5


def approvers_needed(ticket: Ticket, params: dict[str, Any] | None, policy: Policy) -> int:
    needed = ticket.approvers_needed
    above = policy.risk.approvers_above
    if above and not ticket.agent_name:
        names = money_names(policy.risk)
        if any(abs(number) > above for _, _, number in amounts(params or {}, names)):
            needed = max(needed, 2)
    return needed


def approvals_line(names: list[str], needed: int) -> str:
    """What the card says while approvals gather, e.g. "1 of 2: Ana"."""
    so_far = f"{len(names)} of {needed}"
    return f"{so_far}: {', '.join(names)}" if names else f"{so_far} so far"
