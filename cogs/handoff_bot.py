"""The Discord client: receives settings, storage and the agent; loads an explicit tuple of extensions."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from cogs.confirm_views import CodeCancelButton, ConfirmButton
from cogs.discord_channel import NO_PINGS, DiscordCustomerChannel
from cogs.staff_desk import DiscordStaffDesk
from cogs.ticket_views import TicketButton
from cogs.tree import HandoffTree
from core.actions import ActionRegistry
from core.agent import ClaudeAgent
from core.clock import Clock, SystemClock
from core.confirmations import ConfirmationDesk
from core.desk import TicketDesk
from core.desk_outbox import DeskOutbox
from core.engine import ConversationEngine
from core.mfa import SecretBox
from core.mfa_desk import MfaDesk
from core.outbox import Outbox
from core.policy import Policy
from core.settings import Settings
from storage.conversations import OutboxStore
from storage.db import Database

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.conversation", "cogs.tickets", "cogs.risk", "cogs.mfa")
EXPIRY_CHECK_SECONDS = 15  # how often pending confirmations are checked for expiry


def handoff_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True  # the staff channel and its threads
    intents.dm_messages = True  # customers
    intents.guild_messages = True  # operators writing in ticket threads
    intents.message_content = True  # privileged: reading what customers and operators write
    return intents


class HandoffBot(commands.Bot):
    def __init__(self, *, settings: Settings, policy: Policy, db: Database, agent: ClaudeAgent | None,
                 registry: ActionRegistry, clock: Clock | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=handoff_intents(), allowed_mentions=NO_PINGS,
            help_command=None, tree_cls=HandoffTree,
        )
        self.registry = registry
        self.settings = settings
        self.policy = policy
        self.db = db
        self.agent = agent
        self.clock = clock or SystemClock()
        self.engine: ConversationEngine | None = None
        self.outbox: Outbox | None = None
        self.desk: TicketDesk = None  # type: ignore[assignment]  # built in setup_hook
        self.desk_outbox: DeskOutbox | None = None
        self.confirmations: ConfirmationDesk = None  # type: ignore[assignment]  # built in setup_hook
        self._expiry_task: asyncio.Task[None] | None = None
        self.mfa: MfaDesk | None = None

    async def setup_hook(self) -> None:
        channel = DiscordCustomerChannel(self)
        delivery = self.policy["delivery"]
        self.outbox = Outbox(OutboxStore(self.db), channel, self.clock,
                             retry_base=delivery["retry_base_seconds"], retry_max=delivery["retry_max_seconds"])
        self.engine = ConversationEngine(db=self.db, policy=self.policy, clock=self.clock, channel=channel,
                                         outbox=self.outbox, agent=self.agent)
        self.desk = TicketDesk(db=self.db, policy=self.policy, clock=self.clock, registry=self.registry,
                               outbox=self.outbox, ai_enabled=self.agent is not None)
        self.desk_outbox = DeskOutbox(self.desk.tickets, DiscordStaffDesk(self), self.desk.card,
                                      self.clock, retry_base=delivery["retry_base_seconds"],
                                      retry_max=delivery["retry_max_seconds"])
        self.desk.desk_outbox = self.desk_outbox
        self.confirmations = ConfirmationDesk(db=self.db, policy=self.policy, clock=self.clock,
                                              registry=self.registry, outbox=self.outbox)
        if self.policy["mfa"]["enabled"] and self.settings.secret_key:
            self.mfa = MfaDesk(db=self.db, policy=self.policy, clock=self.clock, registry=self.registry,
                               outbox=self.outbox, box=SecretBox(self.settings.secret_key))
        self.desk.mfa = self.mfa
        self.engine.desk = self.desk
        self.engine.confirmations = self.confirmations
        self.engine.mfa = self.mfa
        self.outbox.on_unreachable.append(self.desk.customer_unreachable)
        if self.agent is not None:
            self.agent.attach_desk(self.desk, self.confirmations, self.mfa)
        # Buttons work after a restart: the ticket, confirmation or challenge id is in the custom_id.
        self.add_dynamic_items(TicketButton, ConfirmButton, CodeCancelButton)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self._sync_commands()
        if self.agent is None:
            log.warning("No AI is configured (ANTHROPIC_API_KEY is empty): every conversation goes to the operators"
                        " as a relay ticket.")
        await self.desk.resume()
        await self._expire_due()  # what expired while the bot was down
        self._expiry_task = asyncio.create_task(self._expire_confirmations(), name="confirmation-expiry")
        posts = await self.desk_outbox.resume()
        owed = await self.outbox.resume()
        unanswered = await self.engine.resume()
        log.info("ready to work: %d customer(s) owed messages, %d with unanswered messages, %d ticket(s) with"
                 " posts for the staff channel", owed, unanswered, posts)

    async def _expire_due(self) -> None:
        await self.confirmations.expire_due()
        if self.mfa is not None:
            await self.mfa.expire_due()

    async def _expire_confirmations(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_CHECK_SECONDS)
            try:
                await self._expire_due()
            except Exception:
                log.exception("checking confirmations and code requests for expiry failed; trying again")

    async def _sync_commands(self) -> None:
        """Register the slash commands in the staff guild (guild commands appear at once)."""
        guild = discord.Object(self.settings.guild_id)
        try:
            synced = await self.tree.sync(guild=guild)
            synced += await self.tree.sync()  # /enrol, for customers in DMs
        except discord.HTTPException as exc:
            log.error("could not register slash commands in guild %s (%s). Was the bot invited with the"
                      " applications.commands scope? See DISCORD_BOT.md.", self.settings.guild_id, exc)
            return
        log.info("slash commands registered (guild %s and DMs): %s", self.settings.guild_id,
                 ", ".join(f"/{c.name}" for c in synced))

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: the cogs' listeners handle messages; slash commands are the operator interface."""

    async def close(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        if self.engine is not None:
            await self.engine.close()
        if self.outbox is not None:
            await self.outbox.close()
        if self.desk_outbox is not None:
            await self.desk_outbox.close()
        await super().close()
