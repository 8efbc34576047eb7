"""The operator desk: tickets opened by the assistant or the engine, and what operators do with
them.

Nothing here waits for a person. A ticket is a row; what operators see is queued in the
desk outbox and what the customer hears is queued in the customer outbox, both in the same
transaction as the state change and its audit row. Every decision is a conditional update,
so two operators (or a click and a slash command) racing for the same ticket decide it once.

The desk is split along its own sections, one module each; ``TicketDesk`` puts them together:

- ``base``: the records it hands out (Operator, DeskReply, Escalation, Escalated), its dependencies,
  reads
- ``cards``: what operators see of a ticket (CardRenderer)
- ``opening``: escalate, hold for a person, priority, due times
- ``relaying``: operators' thread messages and /reply to the customer or agent
- ``decisions``: approve, deny, the agents' approvals, running the action, the operator's own code
- ``handling``: claim, take over, hand back, close, contact
- ``housekeeping``: auto-close, unreachable customers, resume after a start
"""

from __future__ import annotations

from core.desk.base import DeskReply, Escalated, Escalation, Operator
from core.desk.cards import CardRenderer
from core.desk.decisions import Decisions
from core.desk.housekeeping import Housekeeping
from core.desk.opening import Opening
from core.desk.relaying import Relaying

__all__ = ["CardRenderer", "DeskReply", "Escalated", "Escalation", "Operator", "TicketDesk"]


class TicketDesk(Opening, Relaying, Decisions, Housekeeping):
    """The whole desk (``Housekeeping`` brings ``Handling``): what the cogs, the engine and the
    agents' desk call."""
