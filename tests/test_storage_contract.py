"""The repositories' contract, through their public methods only: what core relies on from any
engine.

Every test runs on each of conftest's ``ENGINES``: SQLite, and PostgreSQL where
HANDOFF_TEST_POSTGRES_URL names a server (skipped with one line elsewhere). The guarantees: a
message is stored first and once; what the bot owes is queued in the same transaction as the change
that owes it; a decision happens once; deadlines are listed from data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import AnyDatabase, database_for
from storage.conversations import ConversationStore, NewTurn, OutboxStore
from storage.records import Kind, Priority, Source
from storage.steps import ConfirmationStore, Decided
from storage.summary import SummaryStore
from storage.tickets import NewTicket, TicketStore
from tests.conftest import ENGINES, bot_database

NOW = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture(params=ENGINES)
async def db(request, tmp_path) -> AsyncIterator[AnyDatabase]:
    async with bot_database(tmp_path, request.param) as target, database_for(target) as database:
        yield database


async def inbound(
    db: AnyDatabase,
    text: str,
    *,
    discord_id: int = 100,
    message_id: int | None = None,
    at: float = NOW,
):
    return await ConversationStore(db).record_inbound(
        discord_id=discord_id,
        display_name="Ada",
        content=text,
        data=None,
        discord_message_id=message_id,
        now=at,
        idle_seconds=HOUR,
    )


async def test_a_message_is_stored_once_per_discord_id(db):
    first = await inbound(db, "hello", message_id=1)
    again = await inbound(db, "hello", message_id=1)
    assert not first.duplicate and again.duplicate and again.turn_id == first.turn_id
    work = await ConversationStore(db).pending_turns(first.customer.id)
    assert [t.content for t in work.turns] == ["hello"]


async def test_a_conversation_starts_after_the_idle_time(db):
    first = await inbound(db, "one")
    same = await inbound(db, "two", at=NOW + HOUR - 1)
    later = await inbound(db, "three", at=NOW + 3 * HOUR)
    assert first.conversation_id == same.conversation_id != later.conversation_id


async def test_an_answer_marks_its_batch_and_owes_the_reply_in_one_change(db):
    conversations, outbox = ConversationStore(db), OutboxStore(db)
    a = await inbound(db, "where is my order?")
    work = await conversations.pending_turns(a.customer.id, history_limit=10)
    assert [t.content for t in work.history] == ["where is my order?"]
    await conversations.complete_answer(
        work.turns, NewTurn("assistant", "It shipped."), ["It shipped."], NOW
    )
    assert (await conversations.pending_turns(a.customer.id)).turns == []
    assert await outbox.customers_with_pending() == [a.customer.id]
    item = await outbox.next_pending(a.customer.id)
    assert item is not None and item.content == "It shipped." and item.discord_id == 100
    await outbox.mark_sent(item.id, 555, NOW)
    assert await outbox.next_pending(a.customer.id) is None
    history = await conversations.history(a.conversation_id, limit=10)
    assert [(t.kind, t.content) for t in history] == [
        ("customer", "where is my order?"),
        ("assistant", "It shipped."),
    ]


async def test_owed_messages_leave_in_the_order_they_were_owed(db):
    conversations, outbox = ConversationStore(db), OutboxStore(db)
    a = await inbound(db, "hi")
    await conversations.owe(a.customer.id, ["first", "second"], NOW, reason="test")
    seen = []
    while (item := await outbox.next_pending(a.customer.id)) is not None:
        seen.append(item.content)
        await outbox.mark_sent(item.id, None, NOW)
    assert seen == ["first", "second"]


async def test_a_ticket_is_decided_once(db):
    a = await inbound(db, "refund please")
    tickets = TicketStore(db)
    new = NewTicket(
        a.customer.id,
        a.conversation_id,
        Kind.APPROVAL.value,
        Source.APPROVAL.value,
        Priority.URGENT.value,
        "refund 50",
        action_name="issue_refund",
        action_params={"amount": 50},
        timeout_due_at=NOW + 600,
    )
    ticket_id = await tickets.run(lambda tx: tx.open_ticket(new), NOW)
    assert await tickets.pending_deadlines() == [(f"ticket-timeout:{ticket_id}", NOW + 600)]
    assert await tickets.run(
        lambda tx: tx.approve(ticket_id, 1, "Op", {"amount": 40}, "edited"), NOW
    )
    assert not await tickets.run(lambda tx: tx.deny(ticket_id, 2, "Other", "no"), NOW)
    ticket = await tickets.get(ticket_id)
    assert (
        ticket is not None
        and ticket.status == "approved"
        and ticket.action_params == {"amount": 40}
    )
    assert [t.id for t in await tickets.approved_not_executed()] == [ticket_id]
    assert await tickets.run(lambda tx: tx.executed(ticket_id, {"ok": True}, only_once=True), NOW)
    assert not await tickets.run(
        lambda tx: tx.executed(ticket_id, {"ok": True}, only_once=True), NOW
    )
    assert await tickets.approved_not_executed() == []


async def test_a_ticket_owes_its_card_to_the_desk_in_the_same_change(db):
    a = await inbound(db, "a question")
    tickets = TicketStore(db)
    new = NewTicket(
        a.customer.id,
        a.conversation_id,
        Kind.QUESTION.value,
        Source.ASK_HUMAN.value,
        Priority.NORMAL.value,
        "which discount?",
    )
    ticket_id = await tickets.run(lambda tx: tx.open_ticket(new), NOW)
    assert await tickets.tickets_with_desk_items() == [ticket_id]
    item = await tickets.next_desk_item(ticket_id)
    assert item is not None and item.op == "open"
    await tickets.desk_done(item.id)
    assert await tickets.next_desk_item(ticket_id) is None


async def test_a_confirmation_is_decided_once_and_expires_from_data(db):
    a = await inbound(db, "two mugs")
    store = ConfirmationStore(db)

    def create(expires: float) -> int:
        return store.create(
            customer_id=a.customer.id,
            conversation_id=a.conversation_id,
            action_name="place_order",
            params={"item": "mug"},
            strategy="confirm_details",
            level="medium",
            rules=["r"],
            rule="r",
            details="mug",
            tool_use_id="t1",
            expires_at=expires,
            now=NOW,
            prompt=["Confirm?"],
        )

    def texts(request):
        return "told", "note"

    confirmed = await create(NOW + 600)
    first = await store.decide(
        confirmed,
        True,
        via="button",
        by_discord_id=100,
        answered_turns=[],
        now=NOW,
        on_cancel=texts,
        on_expire=texts,
    )
    second = await store.decide(
        confirmed,
        False,
        via="typed",
        by_discord_id=100,
        answered_turns=[],
        now=NOW,
        on_cancel=texts,
        on_expire=texts,
    )
    assert first.outcome is Decided.CONFIRMED and second.outcome is Decided.ALREADY
    stranger = await store.decide(
        confirmed,
        True,
        via="button",
        by_discord_id=999,
        answered_turns=[],
        now=NOW,
        on_cancel=texts,
        on_expire=texts,
    )
    assert stranger.outcome is Decided.NOT_YOURS

    expiring = await create(NOW + 60)
    assert await store.pending_deadlines() == [(f"confirmation:{expiring}", NOW + 60)]
    assert await store.expire_due(NOW + 30, texts) == []
    assert await store.expire_due(NOW + 61, texts) == [a.customer.id]
    assert await store.expire_due(NOW + 62, texts) == []
    assert await store.pending_deadlines() == []


async def test_the_summary_counts_what_was_stored(db):
    a = await inbound(db, "hi")
    await inbound(db, "hello", discord_id=200)
    new = NewTicket(
        a.customer.id,
        a.conversation_id,
        Kind.HANDOVER.value,
        Source.HANDOVER.value,
        Priority.HIGH.value,
        "a person please",
    )
    await TicketStore(db).run(lambda tx: tx.open_ticket(new), NOW)
    figures = await SummaryStore(db).figures(NOW - HOUR, NOW + HOUR)
    assert figures.conversations == 2
    assert figures.escalated_conversations == 1
    rows = await SummaryStore(db).tickets(NOW - HOUR, NOW + HOUR)
    assert [(r.kind, r.priority) for r in rows] == [("handover", "high")]
