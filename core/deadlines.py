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
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from core.clock import Clock
from core.policy import Policy
from core.text import for_people, split_message
from storage.conversations import audit_sql, enqueue_sql
from storage.db import Database
from storage.tickets import desk_post_sql

log = logging.getLogger(__name__)


class Deadlines:
    def __init__(self, *, db: Database, policy: Policy, clock: Clock, scheduler: Any | None) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.scheduler = scheduler  # apscheduler AsyncIOScheduler, or None (tests drive run_due themselves)
        self.expirers: list[Callable[[], Awaitable[int]]] = []  # confirmations, code requests
        self.kick_desk: Callable[[int], None] = lambda ticket_id: None
        self.kick_customer: Callable[[int], None] = lambda customer_id: None

    # -- arming -----------------------------------------------------------------------------

    def arm(self, job_id: str, due: float) -> None:
        """Fire ``run_due`` at ``due`` (epoch seconds). The same id replaces an earlier job."""
        if self.scheduler is None:
            return
        from apscheduler.triggers.date import DateTrigger

        run_date = dt.datetime.fromtimestamp(max(due, self.clock.now()), dt.UTC)
        self.scheduler.add_job(self.run_due, DateTrigger(run_date=run_date), id=job_id, replace_existing=True,
                               misfire_grace_time=None, coalesce=True)

    def arm_ticket(self, ticket_id: int, reminder_due: float | None, timeout_due: float | None) -> None:
        if reminder_due is not None:
            self.arm(f"ticket-reminder:{ticket_id}", reminder_due)
        if timeout_due is not None:
            self.arm(f"ticket-timeout:{ticket_id}", timeout_due)

    async def start(self) -> None:
        """After a start: settle what fell due while the bot was down, then arm every future deadline."""
        await self.run_due()
        now = self.clock.now()
        rows = await self.db.fetchall(
            "SELECT 'ticket-reminder:' || id, reminder_due_at FROM tickets WHERE reminded_at IS NULL"
            " AND reminder_due_at IS NOT NULL AND status != 'closed'"
            " UNION ALL SELECT 'ticket-timeout:' || id, timeout_due_at FROM tickets WHERE timed_out_at IS NULL"
            " AND timeout_due_at IS NOT NULL AND status != 'closed'"
            " UNION ALL SELECT 'confirmation:' || id, expires_at FROM confirmations WHERE status = 'pending'"
            " UNION ALL SELECT 'mfa:' || id, expires_at FROM mfa_challenges WHERE status = 'pending'")
        for job_id, due in rows:
            self.arm(job_id, due)
        if self.scheduler is not None:
            from apscheduler.triggers.interval import IntervalTrigger

            self.scheduler.add_job(self.close_idle_conversations, IntervalTrigger(
                seconds=self.policy["timeouts"]["idle_check_seconds"]), id="idle-conversations",
                replace_existing=True, coalesce=True)
        log.info("deadlines: %d armed after start (those already due were settled: reminders, timeouts, expiry)",
                 sum(1 for _, due in rows if due > now))

    # -- firing -----------------------------------------------------------------------------

    async def run_due(self) -> None:
        """Settle everything due by now. Safe to call any number of times: each deadline acts once."""
        await self.remind_and_time_out()
        for expire in self.expirers:
            await expire()
        await self.close_idle_conversations()

    async def remind_and_time_out(self) -> tuple[int, int]:
        now = self.clock.now()
        timeout_seconds = self.policy["timeouts"]["ticket_answer_seconds"]

        def write(c: sqlite3.Connection) -> tuple[list[int], list[tuple[int, int]]]:
            reminded = []
            for ticket_id, timeout_due_at in c.execute(
                    "SELECT id, timeout_due_at FROM tickets WHERE reminded_at IS NULL AND reminder_due_at <= ?"
                    " AND status = 'open' AND first_response_at IS NULL", (now,)).fetchall():
                if c.execute("UPDATE tickets SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL",
                             (now, ticket_id)).rowcount:
                    left = for_people((timeout_due_at or now) - now)
                    desk_post_sql(c, ticket_id, "ping", now, f"⏰ Reminder: ticket #{ticket_id} still waits for a "
                                                             f"person; the customer is told in about {left} that "
                                                             "no one has answered yet.")
                    audit_sql(c, now, "system", "ticket_reminder", f"ticket:{ticket_id}")
                    reminded.append(ticket_id)
            timed_out = []
            for ticket_id, customer_id in c.execute(
                    "SELECT id, customer_id FROM tickets WHERE timed_out_at IS NULL AND timeout_due_at <= ?"
                    " AND status = 'open' AND first_response_at IS NULL", (now,)).fetchall():
                if c.execute("UPDATE tickets SET timed_out_at = ? WHERE id = ? AND timed_out_at IS NULL",
                             (now, ticket_id)).rowcount:
                    enqueue_sql(c, customer_id, None, split_message(
                        self.policy.message("ticket_timeout", number=str(ticket_id))), now)
                    desk_post_sql(c, ticket_id, "post", now, f"⌛ No answer within {for_people(timeout_seconds)}: "
                                                             "the customer was told. The ticket stays open; a late "
                                                             "answer still reaches them.")
                    audit_sql(c, now, "system", "ticket_timed_out", f"ticket:{ticket_id}")
                    timed_out.append((ticket_id, customer_id))
            return reminded, timed_out

        reminded, timed_out = await self.db.run(write)
        for ticket_id in reminded:
            self.kick_desk(ticket_id)
        for ticket_id, customer_id in timed_out:
            self.kick_desk(ticket_id)
            self.kick_customer(customer_id)
        return len(reminded), len(timed_out)

    async def close_idle_conversations(self) -> int:
        """End conversations silent for ``[conversation] idle_minutes`` (the next message starts a new one)."""
        now = self.clock.now()
        idle = self.policy["conversation"]["idle_minutes"] * 60
        return await self.db.execute(
            "UPDATE conversations SET ended_at = last_activity_at + ? WHERE ended_at IS NULL"
            " AND last_activity_at < ?", (idle, now - idle))
