"""The summary's desk figures: overrides of the assistant per action, busiest hours, response by
hour."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from core.summary import compute, compute_from, render_text
from storage.summary import PeriodFigures
from storage.tickets import NewTicket, TicketStore

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


def test_busiest_hours_and_response_by_hour_in_the_summary_time_zone():
    figures = PeriodFigures(
        0,
        1e10,
        created=[
            (at("2027-01-11 09:10"), 120.0),
            (at("2027-01-11 09:40"), 240.0),
            (at("2027-01-12 14:05"), None),
            (at("2027-01-12 09:20"), 60.0),
        ],
    )
    lines = compute_from(figures).hours_lines(PARIS)
    assert lines == [
        "Busiest hours (Europe/Paris): 09:00 (3 tickets), 14:00 (1 tickets)",
        "First response median by hour: 09h 2 min · 14h —",
    ]


async def test_overrides_are_counted_per_action(harness):
    await harness.start()
    db, now = harness.db, harness.clock.now()
    await harness.dm(0, "hello")
    [(customer, conversation)] = await harness.fetch(
        "SELECT customer_id, conversation_id FROM turns LIMIT 1"
    )
    tickets = TicketStore(db)

    async def approval(action: str, how: str) -> None:
        ticket_id = await tickets.run(
            lambda tx: tx.open_ticket(
                NewTicket(
                    customer,
                    conversation,
                    "approval",
                    "approval",
                    "normal",
                    action,
                    action_name=action,
                    action_params={"amount": 5},
                )
            ),
            now,
        )
        if how == "denied":
            await tickets.run(lambda tx: tx.deny(ticket_id, 1, "Op", "no"), now)
        else:
            await tickets.run(
                lambda tx: tx.approve(
                    ticket_id, 1, "Op", {"amount": 4}, "edited" if how == "edited" else None
                ),
                now,
            )

    for action, how in [
        ("issue_refund", "denied"),
        ("issue_refund", "edited"),
        ("issue_refund", "approved"),
        ("apply_discount", "approved"),
    ]:
        await approval(action, how)
    summary = await compute(db, now - 3600, now + 3600)
    assert summary.overrides == {"issue_refund": (3, 1, 1), "apply_discount": (1, 0, 0)}
    text, _ = render_text(summary, alert_percent=15, days=1)
    assert (
        "Operators overrode the assistant: issue_refund 2 of 3 (1 denied, 1 edited) ·"
        " apply_discount 0 of 1 (0 denied, 0 edited)" in text
    )
