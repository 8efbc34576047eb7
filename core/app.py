"""The composition root: every part of Handoff built once, each with what it needs, in one place.

The Discord side (or a test, or another front end) brings the two ports (``CustomerChannel`` for
DMs, ``StaffDesk`` for the staff channel); everything else is built here with required arguments.
One knot is tied on purpose: the customer steps arm their expiry with the deadlines, and the
deadlines expire the steps; the steps get a function that calls ``deadlines.arm`` once it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.actions import ActionRegistry
from core.agent_desk import AgentDesk, result_of
from core.assistant import Assistant, Claude
from core.claude_pace import ClaudePace
from core.clock import Clock
from core.codes import SecretBox
from core.copilot import Copilot
from core.deadlines import Deadlines
from core.desk import CardRenderer, TicketDesk
from core.desk_outbox import DeskOutbox
from core.engine import ConversationEngine
from core.knowledge import Knowledge
from core.knowledge_desk import KnowledgeDesk
from core.outbox import Outbox
from core.policy import Policy
from core.ports import CustomerChannel, StaffDesk
from core.steps.approval import Approvals
from core.steps.codes import OneTimeCodes, OperatorCodes
from core.steps.confirmation import Confirmations
from core.steps.lifecycle import StepKinds
from core.tool_runner import ToolRunner
from core.webhooks import Webhooks
from storage.codes import CodeStore
from storage.conversations import OutboxStore
from storage.db import Store
from storage.files import FileStore
from storage.ratings import RatingStore
from storage.snippets import SnippetStore
from storage.tickets import TicketStore
from storage.usage import UsageStore


@dataclass(frozen=True)
class Handoff:
    outbox: Outbox
    desk_outbox: DeskOutbox
    desk: TicketDesk
    confirmations: Confirmations
    # None: one-time codes are off (the operators approve destructive actions)
    codes: OneTimeCodes | None
    kinds: StepKinds
    deadlines: Deadlines
    engine: ConversationEngine
    assistant: Assistant | None  # None: no AI configured (a relay to the operators)
    agents: AgentDesk  # other agents' questions and approvals (MCP)
    snippets: SnippetStore  # operators' saved replies
    ratings: RatingStore  # customers' ratings after a ticket closes
    knowledge: Knowledge  # the business's knowledge the assistant answers from
    kb: KnowledgeDesk  # what operators do with it (/kb, Save as knowledge)
    copilot: Copilot | None  # drafted answers for operators; None: no AI, or [copilot] off
    webhooks: Webhooks  # agents' outcomes POSTed to their notify_url


async def forget_old_files(db: Store, policy: Policy, clock: Clock) -> int:
    """[attachments] keep_days: customers' files older than that are deleted (0: kept)."""
    days = policy.attachments.keep_days
    if not days:
        return 0
    return await FileStore(db).forget(clock.now() - days * 86400)


def build(
    *,
    db: Store,
    policy: Policy,
    clock: Clock,
    registry: ActionRegistry,
    claude: Claude | None,
    scheduler: Any | None,
    secret_key: str | None,
    channel: CustomerChannel,
    staff: StaffDesk,
    install: str,
    knowledge_dir: Path | None = None,
    agent_tokens: Mapping[str, str] | None = None,
    agent_webhooks: Mapping[str, str] | None = None,
) -> Handoff:
    """Handoff's parts for one process. ``claude`` None: no AI (a human relay); ``secret_key`` None
    or ``[mfa] enabled = false``: no one-time codes (destructive actions go to the operators)."""
    delivery = policy.delivery
    # install: the database's install id, in every nonce (core.outbox.install_id)
    retry = dict(
        retry_base=float(delivery.retry_base_seconds), retry_max=float(delivery.retry_max_seconds)
    )
    outbox = Outbox(OutboxStore(db), channel, clock, **retry, install=install)
    desk_outbox = DeskOutbox(
        TicketStore(db),
        staff,
        CardRenderer(db=db, policy=policy, registry=registry).card,
        lambda ticket_id: desk.transcript(ticket_id),  # desk: bound below
        clock,
        **retry,
        install=install,
    )

    def schedule(job_id: str, due: float) -> None:
        deadlines.arm(job_id, due)  # bound below: the deadlines need the steps' expiry first

    codes_on = bool(policy.mfa.enabled and secret_key)
    # (secret_key again: for the type checker)
    box = SecretBox(secret_key) if codes_on and secret_key else None
    desk = TicketDesk(
        db=db,
        policy=policy,
        clock=clock,
        registry=registry,
        outbox=outbox,
        desk_outbox=desk_outbox,
        arm_ticket=lambda *due: deadlines.arm_ticket(*due),
        operator_codes=OperatorCodes(policy=policy, clock=clock, codes=CodeStore(db), box=box)
        if box
        else None,
        ai_enabled=claude is not None,
    )
    outbox.on_unreachable.append(desk.customer_unreachable)
    outbox.on_file_refused.append(desk.file_refused)
    approvals = Approvals(desk=desk, codes_on=codes_on)
    confirmations = Confirmations(
        db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, schedule=schedule
    )
    codes = (
        OneTimeCodes(
            db=db,
            policy=policy,
            clock=clock,
            registry=registry,
            outbox=outbox,
            schedule=schedule,
            box=box,
            unenrolled=approvals,
            channel=channel,
        )
        if box
        else None
    )
    kinds = StepKinds([confirmations, approvals, *([codes] if codes else [])])
    agents = AgentDesk(
        desk=desk, policy=policy, clock=clock, arm=schedule, notify_urls=agent_webhooks
    )
    webhooks = Webhooks(db=db, clock=clock, tokens=agent_tokens or {}, result_of=result_of)
    desk.on_changed.append(webhooks.ticket_changed)
    deadlines = Deadlines(
        db=db,
        policy=policy,
        clock=clock,
        scheduler=scheduler,
        steps=[*kinds, agents],
        kick_desk=desk.kick,  # the staff desk, and whoever waits on the ticket (agents, webhooks)
        kick_customer=outbox.kick,
        housekeeping=[desk.auto_close_due, lambda: forget_old_files(db, policy, clock)],
    )
    desk.on_opened.append(deadlines.arm_escalation)
    knowledge = Knowledge(db=db, policy=policy.knowledge, clock=clock, folder=knowledge_dir)
    tools = ToolRunner(
        registry=registry, policy=policy, desk=desk, kinds=kinds, knowledge=knowledge
    )
    # one pace for every Claude call: customers' answers first, as many at once as the key allows
    pace = ClaudePace(claude.concurrency) if claude is not None else None
    assistant = (
        Assistant(
            claude,
            policy=policy,
            tools=tools,
            usage=UsageStore(db),
            pace=pace,
            files=FileStore(db),
        )
        if claude is not None
        else None
    )
    copilot = (
        Copilot(
            claude=claude, policy=policy, clock=clock, desk=desk, knowledge=knowledge, pace=pace
        )
        if claude is not None and policy.copilot.enabled
        else None
    )
    if copilot is not None:
        desk.on_opened.append(copilot.ticket_opened)
    engine = ConversationEngine(
        db=db,
        policy=policy,
        clock=clock,
        channel=channel,
        outbox=outbox,
        assistant=assistant,
        desk=desk,
        confirmations=confirmations,
        codes=codes,
    )
    return Handoff(
        outbox,
        desk_outbox,
        desk,
        confirmations,
        codes,
        kinds,
        deadlines,
        engine,
        assistant,
        agents,
        SnippetStore(db),
        RatingStore(db),
        knowledge,
        KnowledgeDesk(knowledge=knowledge, desk=desk, clock=clock),
        copilot,
        webhooks,
    )
