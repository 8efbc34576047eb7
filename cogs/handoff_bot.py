"""The Discord client: receives settings, storage and the agent; loads an explicit tuple of extensions."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from cogs.discord_channel import NO_PINGS, DiscordCustomerChannel
from core.agent import ClaudeAgent
from core.clock import Clock, SystemClock
from core.engine import ConversationEngine
from core.outbox import Outbox
from core.policy import Policy
from core.settings import Settings
from storage.conversations import OutboxStore
from storage.db import Database

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.conversation",)


def handoff_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True  # the staff channel and its threads
    intents.dm_messages = True  # customers
    intents.guild_messages = True  # operators writing in ticket threads
    intents.message_content = True  # privileged: reading what customers and operators write
    return intents


class HandoffBot(commands.Bot):
    def __init__(self, *, settings: Settings, policy: Policy, db: Database, agent: ClaudeAgent | None,
                 clock: Clock | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=handoff_intents(), allowed_mentions=NO_PINGS,
            help_command=None,
        )
        self.settings = settings
        self.policy = policy
        self.db = db
        self.agent = agent
        self.clock = clock or SystemClock()
        self.engine: ConversationEngine | None = None
        self.outbox: Outbox | None = None

    async def setup_hook(self) -> None:
        channel = DiscordCustomerChannel(self)
        delivery = self.policy["delivery"]
        self.outbox = Outbox(OutboxStore(self.db), channel, self.clock,
                             retry_base=delivery["retry_base_seconds"], retry_max=delivery["retry_max_seconds"])
        self.engine = ConversationEngine(db=self.db, policy=self.policy, clock=self.clock, channel=channel,
                                         outbox=self.outbox, agent=self.agent)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.agent is None:
            log.warning("No AI is configured (ANTHROPIC_API_KEY is empty): customers are told a person will answer.")
        owed = await self.outbox.resume()
        unanswered = await self.engine.resume()
        log.info("ready to work: %d customer(s) owed messages, %d with unanswered messages", owed, unanswered)

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: the cogs' listeners handle messages; slash commands are the operator interface."""

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
        if self.outbox is not None:
            await self.outbox.close()
        await super().close()
