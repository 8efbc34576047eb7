"""Everything that waits has a deadline in the database; APScheduler only fires them.

A deadline is a column (a ticket's ``timeout_due_at``, a confirmation's ``expires_at``...). Each
one gets a job with a deterministic id (``ticket-timeout:12``), so arming twice, or again after a
restart, replaces rather than doubles it. A job does not carry state: it runs ``run_due()``, which
finds in the database everything due by ``clock.now()`` and settles it with conditional updates,
so each deadline takes effect once however many times it is fired. On start, ``start()`` settles
what fell due while the bot was down and arms the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from core.clock import Clock
from core.policy import Policy, escalation_steps
from core.text import for_people
from storage.conversations import close_idle_conversations
from storage.db import Store
from storage.tickets import TicketStore

log = logging.getLogger(__name__)


class CustomerSteps(Protocol):
    """A kind of step waiting for the customer, as the deadlines see it."""

    async def expire_due(self) -> int:
        """End every step of this kind past its expiry (the customer is told); returns how many."""

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        """(job id, due) of each step of this kind still waiting."""


class Deadlines:
    def __init__(
        self,
        *,
        db: Store,
        policy: Policy,
        clock: Clock,
        scheduler: Any | None,
        steps: Sequence[CustomerSteps],
        kick_desk: Callable[[int], None],
        kick_customer: Callable[[int], None],
        housekeeping: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        # apscheduler AsyncIOScheduler, or None (tests drive run_due themselves)
        self.scheduler = scheduler
        self.tickets = TicketStore(db)
        # confirmations and code requests: they expire, and list what is still to come
        self.steps = list(steps)
        self.kick_desk = kick_desk  # deliver what a deadline owes the staff desk
        self.kick_customer = kick_customer  # ... and the customer
        # checks by time, not by a deadline column (quiet tickets)
        self.housekeeping = list(housekeeping)
        # [desk] escalation: (seconds after a ticket opened, role to mention); checked at load
        self.escalation = escalation_steps(policy.desk.escalation)

    # -- arming -----------------------------------------------------------------------------

    def arm(self, job_id: str, due: float) -> None:
        """Fire ``run_due`` at ``due`` (epoch seconds). The same id replaces an earlier job."""
        if self.scheduler is None:
            return
        from apscheduler.triggers.date import DateTrigger

        run_date = dt.datetime.fromtimestamp(max(due, self.clock.now()), dt.UTC)
        self.scheduler.add_job(
            self.run_due,
            DateTrigger(run_date=run_date),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def arm_ticket(
        self, ticket_id: int, reminder_due: float | None, timeout_due: float | None
    ) -> None:
        if reminder_due is not None:
            self.arm(f"ticket-reminder:{ticket_id}", reminder_due)
        if timeout_due is not None:
            self.arm(f"ticket-timeout:{ticket_id}", timeout_due)

    def arm_escalation(self, ticket_id: int) -> None:
        """A new ticket's first escalation step (its later ones are armed as each fires)."""
        if self.escalation:
            self.arm(f"ticket-escalation:{ticket_id}", self.clock.now() + self.escalation[0][0])

    async def start(self) -> None:
        """After a start: settle what fell due while the bot was down, then arm every future
        deadline."""
        await self.run_due()
        now = self.clock.now()
        rows = await self.tickets.pending_deadlines()
        rows += await self.tickets.escalation_deadlines(self.escalation)
        for steps in self.steps:
            rows += await steps.pending_deadlines()
        for job_id, due in rows:
            self.arm(job_id, due)
        if self.scheduler is not None:
            from apscheduler.triggers.interval import IntervalTrigger

            self.scheduler.add_job(
                self.tidy,
                IntervalTrigger(seconds=self.policy.timeouts.idle_check_seconds),
                id="idle-conversations",
                replace_existing=True,
                coalesce=True,
            )
        log.info(
            "deadlines: %d armed after start (those already due were settled: reminders, timeouts,"
            " expiry)",
            sum(1 for _, due in rows if due > now),
        )

    # -- firing -----------------------------------------------------------------------------

    async def run_due(self) -> None:
        """Settle everything due by now. Safe to call any number of times: each deadline acts
        once."""
        await self.remind_and_time_out()
        await self.escalate()
        for steps in self.steps:
            await steps.expire_due()
        await self.tidy()

    async def escalate(self) -> int:
        """Mention the next role on each ticket that reached an escalation step unanswered."""
        if not self.escalation:
            return 0
        steps = self.escalation

        def text(ticket_id: int, level: int) -> str:
            waited = for_people(steps[level - 1][0])
            return (
                f"🔺 Escalated (level {level} of {len(steps)}): ticket #{ticket_id} has waited"
                f" {waited} without an answer or a decision."
            )

        escalated = await self.tickets.escalate_due(self.clock.now(), steps, text)
        for ticket_id, following in escalated:
            self.kick_desk(ticket_id)
            if following is not None:
                self.arm(f"ticket-escalation:{ticket_id}", following)
        return len(escalated)

    async def tidy(self) -> None:
        """What is checked every few minutes rather than at a deadline: idle conversations, quiet
        tickets."""
        await self.close_idle_conversations()
        for check in self.housekeeping:
            await check()

    async def remind_and_time_out(self) -> tuple[int, int]:
        now = self.clock.now()
        timeout_seconds = self.policy.timeouts.ticket_answer_seconds

        def reminder(ticket_id: int, left: float) -> str:
            return (
                f"⏰ Reminder: ticket #{ticket_id} still waits for a person; the customer is told"
                f" in about {for_people(left)} that no one has answered yet."
            )

        reminded = await self.tickets.remind_due(now, reminder)
        timed_out = await self.tickets.time_out_due(
            now,
            lambda ticket_id: self.policy.message("ticket_timeout", number=str(ticket_id)),
            f"⌛ No answer within {for_people(timeout_seconds)}: the customer was told. The ticket"
            " stays open; a late answer still reaches them.",
        )
        for ticket_id in reminded:
            self.kick_desk(ticket_id)
        for ticket_id, customer_id in timed_out:
            self.kick_desk(ticket_id)
            self.kick_customer(customer_id)
        return len(reminded), len(timed_out)

    async def close_idle_conversations(self) -> int:
        """End conversations silent for ``[conversation] idle_minutes`` (the next message starts a
        new one); with ``[feedback] ask_after_ai``, an AI-only one ends with a request for a
        rating."""
        ask = self.policy.feedback.ask_after_ai
        prompt = (lambda _: self.policy.message("rate_ai")) if ask else None
        closed, owed = await close_idle_conversations(
            self.db,
            self.clock.now(),
            self.policy.conversation.idle_minutes * 60,
            rate_prompt=prompt,
        )
        for customer_id in set(owed):
            self.kick_customer(customer_id)
        return closed
