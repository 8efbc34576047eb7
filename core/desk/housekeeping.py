"""Housekeeping: quiet tickets closed, unreachable customers noted, the desk resumed after a
start."""

from __future__ import annotations

from core.desk.base import Operator
from core.desk.handling import Handling
from core.text import for_people
from storage.conversations import NewTurn
from storage.records import DeskOp, Ticket
from storage.tickets import DeskTx


class Housekeeping(Handling):
    """What runs by time or after a start."""

    async def auto_close_due(self) -> tuple[int, int]:
        """Quiet tickets: "anything else?" after [desk] auto_close_hours, closed after the grace
        time unless someone spoke meanwhile. Safe to run any number of times (also after a restart).
        (warned, closed)."""
        hours = self.policy.desk.auto_close_hours
        if not hours:
            return 0, 0
        now = self.clock.now()
        grace = self.policy.desk.auto_close_grace_hours * 3600
        warned = closed = 0
        for ticket_id, warned_at, active in await self.tickets.quiet_tickets(now - hours * 3600):
            # someone spoke after the notice: start again
            if warned_at is not None and active > warned_at:

                def unwarn(tx: DeskTx, quiet: int = ticket_id) -> None:
                    tx.warn_auto_close(quiet, None)

                await self.tickets.run(unwarn, now)
            elif warned_at is None:
                await self._warn_quiet(ticket_id, now, grace)
                warned += 1
            elif now >= warned_at + grace:
                quiet = for_people(hours * 3600)
                reply = await self.close(
                    ticket_id, Operator(0, "Handoff"), f"no activity for {quiet}"
                )
                closed += reply.ok
        return warned, closed

    async def _warn_quiet(self, ticket_id: int, now: float, grace: float) -> None:
        def write(tx: DeskTx) -> int | None:
            ticket = tx.ticket(ticket_id)
            if ticket is None or ticket.ended:
                return None
            tx.warn_auto_close(ticket_id, now)
            text = self.policy.message(
                "auto_close_soon", number=str(ticket_id), when=for_people(grace)
            )
            tx.tell(
                ticket,
                text,
                NewTurn(
                    "system",
                    f"Ticket #{ticket_id} was quiet; the customer was asked whether "
                    "anything else is needed before it closes.",
                ),
            )
            tx.post(
                ticket_id,
                DeskOp.POST,
                '💤 Quiet ticket: the customer was asked "anything else?"; it closes in '
                f"{for_people(grace)} unless someone writes.",
            )
            tx.audit("system", "auto_close_warned", f"ticket:{ticket_id}")
            return ticket.customer_id

        customer_id = await self.tickets.run(write, now)
        if customer_id is not None:
            self._kick(ticket_id, customer_id)

    async def file_refused(self, customer_id: int, filename: str, error: str) -> None:
        """Discord would not deliver a file to the customer's DM: said in their open tickets'
        threads, so the operator knows it did not arrive."""
        theirs = [t for t in await self.tickets.unclosed() if t.customer_id == customer_id]

        def write(tx: DeskTx) -> None:
            for ticket in theirs:
                tx.post(
                    ticket.id,
                    DeskOp.POST,
                    f"⚠ Discord did not deliver **{filename}** to {ticket.customer_name}: {error}."
                    " Send it another way, or a smaller file.",
                )

        await self.tickets.run(write, self.clock.now())
        for ticket in theirs:
            self.desk_outbox.kick(ticket.id)

    async def customer_unreachable(self, customer_id: int, reason: str) -> None:
        """DMs are closed: record it on the customer's tickets and tell the operators in their
        threads."""
        now = self.clock.now()

        def write(tx: DeskTx) -> list[int]:
            ids = tx.mark_dm_closed(customer_id)
            for ticket_id in ids:
                tx.post(
                    ticket_id,
                    DeskOp.POST,
                    f"⚠ The customer's DMs are closed ({reason}): our last message(s) did not reach"
                    " them and nothing more is sent until they write to us again.",
                )
                tx.post(ticket_id, DeskOp.REFRESH)
            return ids

        for ticket_id in await self.tickets.run(write, now):
            self._kick(ticket_id)

    async def resume(self) -> None:
        """Approvals whose action was running when the process stopped: say so rather than guess."""
        now = self.clock.now()
        for ticket in await self.tickets.approved_not_executed():

            def write(tx: DeskTx, ticket: Ticket = ticket) -> None:
                result = {
                    "status": "interrupted",
                    "error": "the bot stopped while the action was running",
                }
                tx.executed(ticket.id, result, only_once=True)
                tx.audit(
                    "system",
                    "action_interrupted",
                    f"ticket:{ticket.id}",
                    {"action": ticket.action_name},
                )
                tx.post(
                    ticket.id,
                    DeskOp.POST,
                    f"⚠ The bot stopped while running the approved `{ticket.action_name}`. "
                    "It may or may not have been done: check, then tell the customer with "
                    "`/reply`.",
                )

            await self.tickets.run(write, now)
            self._kick(ticket.id)
