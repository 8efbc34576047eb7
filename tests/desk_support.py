"""Helpers for the operator desk's tests: a started bot with customers, an operator and a
stranger."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import discord
import discord.ext.test as dpytest

from tests.conftest import Harness, eventually
from tests.dpytest_ext import Interactions, make_operator, stored_components
from tests.fake_claude import last_user_text, text, tool_calls


def ask_then_wait(request: dict[str, Any]) -> Any:
    """Claude that asks our team about every customer message, then tells the customer it asked."""
    last = request["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("I've asked our team.")
    return tool_calls(("ask_human", {"question": f"About: {last_user_text(request)}"}))


class Desk:
    """A started bot with customers 0 and 1, an operator (2) and a member without the role (3)."""

    def __init__(self, harness: Harness, interactions: Interactions) -> None:
        self.h = harness
        self.i = interactions

    @property
    def operator(self) -> discord.Member:
        return self.h.members[2]

    @property
    def stranger(self) -> discord.Member:
        return self.h.members[3]

    async def ticket(self, number: int) -> Any:
        [row] = await self.h.fetch("SELECT * FROM tickets WHERE id = ?", (number,))
        return row

    async def thread(self, number: int) -> discord.Thread:
        row = await self.ticket(number)
        thread = self.h.bot.get_channel(row["thread_id"])
        assert isinstance(thread, discord.Thread)
        return thread

    async def staff_message(self, number: int) -> discord.Message:
        row = await self.ticket(number)
        staff = self.h.bot.get_channel(self.h.bot.settings.staff_channel_id)
        return await staff.fetch_message(row["staff_message_id"])

    async def write(self, number: int, content: str, member: discord.Member | None = None) -> None:
        """Someone writes in the ticket's thread."""
        await dpytest.message(
            content, channel=await self.thread(number), member=member or self.operator
        )
        await self.h.settle()

    async def click(
        self,
        number: int,
        action: str,
        member: discord.Member | None = None,
        seen: list[dict[str, Any]] | None = None,
    ) -> None:
        """A click on the ticket's button; ``seen``: the buttons as the clicker's screen still shows
        them."""
        self.i.click(
            f"ticket:{action}:{number}",
            member=member or self.operator,
            channel=self.h.bot.get_channel(self.h.bot.settings.staff_channel_id),
            message=await self.staff_message(number),
            components=seen,
        )

    async def screen(self, number: int) -> list[dict[str, Any]]:
        return stored_components(await self.staff_message(number))

    async def slash(
        self, name: str, number: int | None, /, member: discord.Member | None = None, **options: Any
    ) -> None:
        channel = (
            await self.thread(number)
            if number
            else self.h.bot.get_channel(self.h.bot.settings.staff_channel_id)
        )
        self.i.slash(name, member=member or self.operator, channel=channel, **options)

    async def told(self, count: int = 1) -> list[tuple[str, bool]]:
        """Wait for ``count`` more interaction answers; return all so far."""
        await eventually(
            lambda: len(self.i.texts()) >= count, what=f"{count} interaction answer(s)"
        )
        await self.h.settle()
        return self.i.texts()


async def buttons(desk: Desk, number: int) -> list[str]:
    message = await desk.staff_message(number)
    return [c.custom_id for row in message.components for c in row.children if not c.disabled]


async def open_question(desk: Desk, who: int = 0) -> None:
    """Customer ``who`` asks a question Claude sends to our team (ticket, card and thread); the DMs
    and staff posts so far are taken."""
    desk.h.fake.default = ask_then_wait
    await desk.h.dm(who, "is the mug dishwasher safe?")
    desk.h.sent(), desk.h.staff()


@contextlib.asynccontextmanager
async def desk_with(harness: Harness, policy: Any) -> AsyncIterator[Desk]:
    """Like the ``desk`` fixture, with this policy."""
    await harness.start(members=4, policy=policy)
    harness.members[2] = make_operator(harness.bot, harness.members[2])
    desk = Desk(harness, Interactions(harness.bot))
    try:
        yield desk
    finally:
        desk.i.close()


async def uploaded(
    sent: Callable[[], list[discord.Message]], what: str
) -> tuple[discord.Message, str]:
    """The one message with a file among what ``sent()`` returns (waited for), and the file's
    text."""
    found: list[discord.Message] = []
    await eventually(lambda: found.extend(m for m in sent() if m.attachments) or found, what=what)
    [message] = found
    # dpytest keeps an upload as a local file
    saved = Path(urlparse(message.attachments[0].url).path)
    return message, saved.read_text(encoding="utf-8")  # noqa: ASYNC240 - a small local file, in a test


async def start_again(desk: Desk, **kwargs: Any) -> None:
    desk.i.close()
    await desk.h.restart(members=4, **kwargs)
    desk.h.members[2] = make_operator(desk.h.bot, desk.h.members[2])
    desk.i = Interactions(desk.h.bot)


async def refund_ticket(desk: Desk, amount: float = 10, order_id: int = 1) -> None:
    desk.h.fake.then(
        tool_calls(
            ("issue_refund", {"order_id": order_id, "amount": amount, "reason": "arrived broken"})
        ),
        text("I've sent your refund request to our team."),
    )
    await desk.h.dm(0, "my grinder arrived broken, refund 10 please")


async def refunded_cents(h: Harness) -> int:
    return (await h.fetch("SELECT COALESCE(SUM(refunded_cents), 0) FROM shop_orders"))[0][0]
