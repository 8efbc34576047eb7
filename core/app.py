"""The composition root: every part of Handoff built once, each with what it needs, in one place.

The Discord side (or a test, or another front end) brings the two ports (``CustomerChannel`` for
DMs, ``StaffDesk`` for the staff channel); everything else is built here with required arguments.
One knot is tied on purpose: the customer steps arm their expiry with the deadlines, and the
deadlines expire the steps; the steps get a function that calls ``deadlines.arm`` once it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.actions import ActionRegistry
from core.agent import ClaudeAgent
from core.clock import Clock
from core.confirmations import ConfirmationDesk
from core.deadlines import Deadlines
from core.desk import CardRenderer, TicketDesk
from core.desk_outbox import DeskOutbox
from core.engine import ConversationEngine
from core.mfa import SecretBox
from core.mfa_desk import MfaDesk
from core.outbox import Outbox
from core.policy import Policy
from core.ports import CustomerChannel, StaffDesk
from storage.conversations import OutboxStore
from storage.db import Database
from storage.tickets import TicketStore


@dataclass(frozen=True)
class Handoff:
    outbox: Outbox
    desk_outbox: DeskOutbox
    desk: TicketDesk
    confirmations: ConfirmationDesk
    mfa: MfaDesk | None  # None: one-time codes are off
    deadlines: Deadlines
    engine: ConversationEngine


def build(*, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry, agent: ClaudeAgent | None,
          scheduler: Any | None, secret_key: str | None, channel: CustomerChannel, staff: StaffDesk) -> Handoff:
    """Handoff's parts for one process. ``agent`` None: no AI (a human relay); ``secret_key`` None or
    ``[mfa] enabled = false``: no one-time codes (destructive actions go to the operators)."""
    delivery = policy["delivery"]
    retry = {"retry_base": delivery["retry_base_seconds"], "retry_max": delivery["retry_max_seconds"]}
    outbox = Outbox(OutboxStore(db), channel, clock, **retry)
    desk_outbox = DeskOutbox(TicketStore(db), staff, CardRenderer(db=db, policy=policy, registry=registry).card,
                             clock, **retry)

    def schedule(job_id: str, due: float) -> None:
        deadlines.arm(job_id, due)  # bound below: the deadlines need the steps' expiry first

    confirmations = ConfirmationDesk(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox,
                                     schedule=schedule)
    mfa = (MfaDesk(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, schedule=schedule,
                   box=SecretBox(secret_key)) if policy["mfa"]["enabled"] and secret_key else None)
    deadlines = Deadlines(db=db, policy=policy, clock=clock, scheduler=scheduler,
                          steps=[confirmations, *([mfa] if mfa else [])],
                          kick_desk=desk_outbox.kick, kick_customer=outbox.kick)
    desk = TicketDesk(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, desk_outbox=desk_outbox,
                      arm_ticket=deadlines.arm_ticket, mfa=mfa, ai_enabled=agent is not None)
    outbox.on_unreachable.append(desk.customer_unreachable)
    engine = ConversationEngine(db=db, policy=policy, clock=clock, channel=channel, outbox=outbox, agent=agent,
                                desk=desk, confirmations=confirmations, mfa=mfa)
    if agent is not None:
        agent.attach_desk(desk, confirmations, mfa)
    return Handoff(outbox, desk_outbox, desk, confirmations, mfa, deadlines, engine)
