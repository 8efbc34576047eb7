"""Delivery of ticket posts to the staff desk, from the desk_outbox table, in order per ticket.

A ticket's first item creates its staff message and thread; later items write in the
thread, re-render the message, or archive the thread. Rows are written in the same
transaction as the ticket change, so a restart or a Discord outage delays a post but
never loses it. Ids are saved as soon as Discord returns them, so a retry after a
half-done 'open' does not post the ticket twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from core.clock import Clock
from core.drafts import ended_text, suggested_text
from core.files import size_text
from core.outbox import backoff_delay, chunk_nonce
from core.ports import DeliveryFailed, StaffDesk
from core.text import split_message
from core.tickets import Card
from core.workers import DeliveryQueue
from storage.drafts import SUGGESTED, DraftStore
from storage.files import FileStore
from storage.records import DeskOp, Ticket
from storage.tickets import DeskItem, TicketStore

log = logging.getLogger(__name__)

THREAD_POST_LIMIT = 1900  # room for a reminder's role mention in front
# a longer post goes as a file (a long question read whole, not in pieces)
FILE_ABOVE = 3 * THREAD_POST_LIMIT
CardRenderer = Callable[[int], Awaitable[tuple[Card, str, Ticket]]]
TranscriptRenderer = Callable[[int], Awaitable[tuple[str, bytes] | None]]


class DeskOutbox(DeliveryQueue[int]):
    def __init__(
        self,
        store: TicketStore,
        desk: StaffDesk,
        render: CardRenderer,
        transcript: TranscriptRenderer,
        clock: Clock,
        *,
        retry_base: float,
        retry_max: float,
        install: str,
    ) -> None:
        super().__init__("desk")
        self.nonce_prefix = f"hod{install}"  # see core.outbox.install_id
        self.store = store
        self.desk = desk
        self.render = render
        self.transcript = transcript
        self.clock = clock
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.drafts = DraftStore(store.db)
        self.files = FileStore(store.db)

    async def _pending_keys(self) -> list[int]:
        return await self.store.tickets_with_desk_items()

    async def _deliver(self, ticket_id: int) -> None:
        while (item := await self.store.next_desk_item(ticket_id)) is not None:
            try:
                await self._apply(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # DeliveryFailed, or anything unexpected
                error = f"{type(exc).__name__}: {exc}"
                if getattr(exc, "permanent", False):
                    await self.store.desk_failed(item, error, self.clock.now())
                    log.error(
                        "ticket #%d: Discord refused the %s post for good: %s. Check the bot's"
                        " permissions in the staff channel (see DISCORD_BOT.md).",
                        ticket_id,
                        item.op,
                        error,
                    )
                    continue
                delay = backoff_delay(item.attempts + 1, self.retry_base, self.retry_max)
                await self.store.desk_retry(item.id, error, self.clock.now() + delay)
                log.warning(
                    "ticket #%d: %s post failed (%s); retrying in %.1fs",
                    ticket_id,
                    item.op,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            await self.store.desk_done(item.id)

    async def _apply(self, item: DeskItem) -> None:
        """One row, by its op: the card and thread first; everything else needs them."""
        if item.op is DeskOp.OPEN:
            await self._open(item)
            return
        if item.op is DeskOp.REFRESH:
            await self._refresh(item)
            return
        # a post or an archive needs the thread, not the card
        ticket = await self.store.get(item.ticket_id)
        if ticket is None:
            raise DeliveryFailed(f"ticket #{item.ticket_id} does not exist", permanent=True)
        if ticket.thread_id is None or ticket.staff_message_id is None:
            # its 'open' failed for good; retry later
            raise RuntimeError(f"ticket #{ticket.id} has no thread yet")
        handlers = {
            DeskOp.POST: self._post,
            DeskOp.PING: self._post,
            DeskOp.ESCALATE: self._escalate,
            DeskOp.FILE: self._file,
            DeskOp.TRANSCRIPT: self._transcript,
            DeskOp.ARCHIVE: self._archive,
            DeskOp.DRAFT: self._draft,
            DeskOp.DRAFT_END: self._draft_end,
        }
        await handlers[item.op](item, ticket, ticket.thread_id)

    async def _open(self, item: DeskItem) -> None:
        card, name, ticket = await self.render(item.ticket_id)
        message_id = ticket.staff_message_id
        if message_id is None:
            message_id = await self.desk.post_ticket(
                card, nonce=chunk_nonce(self.nonce_prefix, item.id, 0)
            )
            await self.store.set_posted(ticket.id, message_id=message_id)
        if ticket.thread_id is None:
            await self.store.set_posted(
                ticket.id, thread_id=await self.desk.open_thread(message_id, name)
            )

    async def _post(self, item: DeskItem, ticket: Ticket, thread_id: int) -> None:
        if item.op is DeskOp.POST and len(item.content) > FILE_ABOVE:
            lead = item.content.split("\n", 1)[0][: THREAD_POST_LIMIT - 60]
            await self.desk.post_file(
                thread_id,
                f"{lead} (the whole text is attached)",
                item.content.encode(),
                f"ticket-{ticket.id}-text.txt",
                nonce=chunk_nonce(self.nonce_prefix, item.id, 0),
            )
            return
        # Rows hold whole texts; split here, each chunk with its own nonce (a retry posts only what
        # is missing).
        for i, chunk in enumerate(
            split_message(item.content, limit=THREAD_POST_LIMIT) or [item.content]
        ):
            await self.desk.post(
                thread_id,
                chunk,
                nonce=chunk_nonce(self.nonce_prefix, item.id, i),
                ping=item.op is DeskOp.PING and i == 0,
            )

    async def _file(self, item: DeskItem, ticket: Ticket, thread_id: int) -> None:
        """A kept file re-posted in the thread as a file (Discord's links would expire)."""
        found = (await self.files.get([int(item.content)])).get(int(item.content))
        if found is None:
            raise DeliveryFailed(f"file {item.content} is no longer kept", permanent=True)
        await self.desk.post_file(
            thread_id,
            f"📎 {ticket.customer_name}: {found.filename} ({size_text(found.size)})",
            found.data,
            found.filename,
            nonce=chunk_nonce(self.nonce_prefix, item.id, 0),
        )

    async def _escalate(self, item: DeskItem, ticket: Ticket, thread_id: int) -> None:
        role, _, text = item.content.partition("\n")
        await self.desk.post(
            thread_id,
            text,
            nonce=chunk_nonce(self.nonce_prefix, item.id, 0),
            mention_role=int(role),
        )

    async def _refresh(self, item: DeskItem) -> None:
        # the card's read brings the ticket: one query
        card, _, ticket = await self.render(item.ticket_id)
        if ticket.thread_id is None or ticket.staff_message_id is None:
            # its 'open' failed for good; retry later
            raise RuntimeError(f"ticket #{ticket.id} has no thread yet")
        await self.desk.refresh(ticket.staff_message_id, card)

    async def _transcript(self, item: DeskItem, ticket: Ticket, thread_id: int) -> None:
        made = await self.transcript(ticket.id)
        if made is not None:
            name, page = made
            await self.desk.post_file(
                thread_id,
                f"📄 Transcript of ticket #{ticket.id}",
                page,
                name,
                nonce=chunk_nonce(self.nonce_prefix, item.id, 0),
            )

    async def _archive(self, _item: DeskItem, _ticket: Ticket, thread_id: int) -> None:
        await self.desk.archive(thread_id)

    async def _draft(self, item: DeskItem, _ticket: Ticket, thread_id: int) -> None:
        """The copilot's draft, with its buttons; already used or dropped: as it ended."""
        draft = await self.drafts.get(int(item.content))
        if draft is None:
            raise DeliveryFailed(f"draft {item.content} does not exist", permanent=True)
        if draft.message_id is not None:
            return  # posted before a restart
        if draft.status != SUGGESTED:
            text = ended_text(draft)
            await self.desk.post(thread_id, text, nonce=chunk_nonce(self.nonce_prefix, item.id, 0))
            return
        message_id = await self.desk.post_draft(
            thread_id,
            draft.id,
            suggested_text(draft),
            nonce=chunk_nonce(self.nonce_prefix, item.id, 0),
        )
        await self.drafts.set_message(draft.id, message_id)

    async def _draft_end(self, item: DeskItem, _ticket: Ticket, thread_id: int) -> None:
        draft = await self.drafts.get(int(item.content))
        if draft is None or draft.message_id is None:
            return  # never posted: its post shows how it ended
        await self.desk.end_draft(thread_id, draft.message_id, ended_text(draft))
