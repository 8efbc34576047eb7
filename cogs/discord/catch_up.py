"""Catch-up after a start: what Discord holds that this process never received.

Discord replays nothing to a new gateway session: a customer's DM sent while the bot was down, or an
operator's answer written in a ticket thread meanwhile, exists only in Discord. Before the gateway
connects (and again at each disconnect), the bot notes where each channel's reading resumes (the
newest customer message stored per DM channel of customers active within ``[delivery]
catch_up_hours``; the newest operator message handled per open ticket's thread). Once the gateway is
ready, it reads what came after, oldest first, through the paced request budget, and hands each
message to the same listeners as a live one, one after the other. Nothing is handled twice: DMs are
stored once per Discord id, and thread messages are marked as handled in the transaction that
handles them.

A customer whose very first DM came while the bot was down has no DM channel we know of yet (Discord
does not list a bot's DM channels): their message is read at the first start after they write again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)


@dataclass
class ReadingPoints:
    # (DM channel id, after this id / None)
    dms: list[tuple[int, int | None]] = field(default_factory=list)
    since: float = 0.0  # a DM channel never read back is read from this time (catch_up_hours ago)
    # (thread id, read after this message id)
    threads: list[tuple[int, int]] = field(default_factory=list)


class CatchUp:
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot
        self.points: ReadingPoints | None = None
        self.runs = 0  # catch-ups finished (a test waits for one to end, not just to start)

    async def note_where_reading_resumes(self) -> None:
        """Called before the gateway can deliver anything new: a live message must not hide missed
        ones."""
        hours = self.bot.policy.delivery.catch_up_hours
        if not hours:
            self.points = None
            return
        dms, threads = await self.bot.desk.tickets.catch_up_points(
            self.bot.clock.now() - hours * 3600
        )
        # Discord's ids carry Discord's time: a channel never read back is read from its clock's
        # hours ago.
        self.points = ReadingPoints(dms=dms, threads=threads, since=time.time() - hours * 3600)

    async def run(self) -> tuple[int, int]:
        """Read and handle what came after the noted points. Returns (channels checked, messages
        caught up)."""
        points, self.points = self.points, None
        if points is None:
            return 0, 0
        handled = 0
        for channel_id, after in points.dms:
            channel = self.bot.get_partial_messageable(channel_id, type=discord.ChannelType.private)
            # Never read back: from catch_up_hours ago, so a first DM sent while the bot was down
            # (before its channel was known) is found; stored ones are skipped by their Discord id.
            start = (
                after
                if after is not None
                else discord.utils.time_snowflake(dt.datetime.fromtimestamp(points.since, dt.UTC))
            )
            count = await self._read(channel, start)
            if count is not None:
                handled += count
                if after is None:
                    await self.bot.desk.tickets.dm_read_back(channel_id)
        for thread_id, after in points.threads:
            thread = self.bot.get_channel(thread_id)  # discord.py's cache holds guild threads too
            if thread is None:
                try:
                    thread = await self.bot.fetch_channel(thread_id)
                except discord.HTTPException as exc:
                    log.warning("catch-up: thread %s could not be read (%s)", thread_id, exc)
                    continue
            if not isinstance(thread, discord.Thread):
                log.warning("catch-up: channel %s is no longer a ticket thread", thread_id)
                continue
            handled += await self._read(thread, after) or 0
        checked = len(points.dms) + len(points.threads)
        log.info(
            "catch-up: %d channel(s) checked (%d DM, %d ticket thread), %d message(s) caught up",
            checked,
            len(points.dms),
            len(points.threads),
            handled,
        )
        self.runs += 1
        return checked, handled

    async def _read(self, channel: discord.abc.Messageable, after: int) -> int | None:
        """Messages handled; None when the channel could not be read (it is read again at the next
        start)."""
        handled = 0
        tickets = self.bot.desk.tickets
        try:
            missed = [
                m
                async for m in channel.history(
                    after=discord.Object(after), oldest_first=True, limit=None
                )
                if not m.author.bot
            ]
            known = await tickets.known_messages([m.id for m in missed])
            with self.bot.engine.gathering():  # a customer's missed messages answered together
                for message in missed:
                    if message.id in known:
                        continue  # handled before (stored, or relayed): never twice
                    if message.guild is not None and not isinstance(message.author, discord.Member):
                        # operator rights
                        message.author = await self._member(message.guild, message.author)
                    await self._handle(message)
                    # read once, whoever wrote it (a non-operator's is ignored)
                    if message.guild is not None:
                        await tickets.see_thread_message(
                            message.channel.id, message.id, self.bot.clock.now()
                        )
                    handled += 1
        except discord.HTTPException as exc:
            log.warning(
                "catch-up: channel %s could not be read (%s); its messages wait for the next start",
                getattr(channel, "id", "?"),
                exc,
            )
            return None
        return handled

    @staticmethod
    async def _member(
        guild: discord.Guild, user: discord.User | discord.Member
    ) -> discord.User | discord.Member:
        member = guild.get_member(user.id)
        if member is not None:
            return member
        try:
            return await guild.fetch_member(user.id)
        except discord.HTTPException:
            return user  # not (or no longer) in the guild: not an operator

    async def _handle(self, message: discord.Message) -> None:
        """As a live message: the same listeners, awaited in order (a customer's messages keep their
        order)."""
        for listener in self.bot.extra_events.get("on_message", []):
            try:
                await listener(message)
            except Exception:
                log.exception("catch-up: handling message %s failed", message.id)
