"""The Discord client: receives settings, storage and the assistant; loads an explicit tuple of
extensions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord.ext import commands

from cogs.discord.catch_up import CatchUp
from cogs.discord.confirm_views import CodeCancelButton, CommentButton, ConfirmButton, RatingButton
from cogs.discord.discord_channel import (
    NO_PINGS,
    DiscordCustomerChannel,
    RequestGuard,
    rate_limit_trace,
)
from cogs.discord.draft_views import DraftButton
from cogs.discord.setup_check import staff_setup_problems
from cogs.discord.staff_desk import DiscordStaffDesk
from cogs.discord.ticket_views import TicketButton
from cogs.discord.tree import HandoffTree
from core.actions import ActionRegistry
from core.app import Handoff, build
from core.assistant import Claude
from core.clock import Clock, SystemClock
from core.leadership import Leadership
from core.outbox import install_id
from core.pacer import Pacer
from core.policy import Policy
from core.settings import Settings
from storage.db import Store
from storage.sql import audit

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (
    "cogs.conversation",
    "cogs.tickets",
    "cogs.risk",
    "cogs.codes",
    "cogs.stats",
    "cogs.help",
    "cogs.moderation",
    "cogs.snippets",
    "cogs.knowledge",
)


def handoff_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True  # the staff channel and its threads
    intents.dm_messages = True  # customers
    intents.guild_messages = True  # operators writing in ticket threads
    intents.message_content = True  # privileged: reading what customers and operators write
    return intents


class HandoffBot(commands.Bot):
    def __init__(
        self,
        *,
        settings: Settings,
        policy: Policy,
        db: Store,
        claude: Claude | None,
        registry: ActionRegistry,
        scheduler: AsyncIOScheduler | None = None,
        clock: Clock | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        """``leadership``: with PostgreSQL, this process's lease (it leads while this bot runs);
        None with SQLite (one process)."""
        # One pacer for every request the bot starts: it learns each route's bucket from the
        # answers.
        self.pacer = Pacer(policy.discord.requests_per_second)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=handoff_intents(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=HandoffTree,
            http_trace=rate_limit_trace(self.pacer),
        )
        self.registry = registry
        self.scheduler = scheduler  # fires deadlines kept in the database, and the summary post
        self.settings = settings
        self.policy = policy
        self.db = db
        self.claude = claude  # None: no AI configured (ANTHROPIC_API_KEY is empty)
        self.clock = clock or SystemClock()
        # Handoff's parts, built by the composition root in setup_hook
        self._app: Handoff | None = None
        # how long a stop (SIGTERM, Ctrl-C) waits for answers being sent
        self.shutdown_grace_seconds = 5.0
        self.shutdown_report = ""
        self._watchdog: asyncio.Task[None] | None = None
        self._request_guard: RequestGuard | None = None  # wraps self.http in setup_hook
        # from the check after login (cogs/discord/setup_check.py)
        self.setup_problems: list[str] | None = None
        self._wound_down = False
        self.mcp: Any = None  # agent_api.server.McpService while agents can reach the desk
        self.catch_up = CatchUp(self)  # reads what was missed while offline, after each new session
        self.leadership = leadership
        if leadership is not None:
            leadership.on_lost(self._lost_leadership)

    @property
    def app(self) -> Handoff:
        if self._app is None:
            raise RuntimeError("Handoff's parts are built in setup_hook (at login)")
        return self._app

    # The parts the cogs and views use, by name.
    engine = property(lambda self: self.app.engine)
    outbox = property(lambda self: self.app.outbox)
    desk = property(lambda self: self.app.desk)
    desk_outbox = property(lambda self: self.app.desk_outbox)
    confirmations = property(lambda self: self.app.confirmations)
    codes = property(lambda self: self.app.codes)
    assistant = property(lambda self: self.app.assistant)
    agents = property(lambda self: self.app.agents)
    deadlines = property(lambda self: self.app.deadlines)
    knowledge = property(lambda self: self.app.knowledge)
    kb = property(lambda self: self.app.kb)
    copilot = property(lambda self: self.app.copilot)

    async def setup_hook(self) -> None:
        self._request_guard = RequestGuard(
            self.http,
            stall_seconds=self.policy.delivery.stall_seconds,
            pacer=self.pacer,
            may_send=self.leadership.may_send if self.leadership else None,
        )
        self._watchdog = asyncio.create_task(self._watch_requests(), name="request-watchdog")
        app = build(
            db=self.db,
            policy=self.policy,
            clock=self.clock,
            registry=self.registry,
            claude=self.claude,
            scheduler=self.scheduler,
            secret_key=self.settings.secret_key,
            channel=DiscordCustomerChannel(self, self.pacer),
            staff=DiscordStaffDesk(self),
            install=await install_id(self.db, self.clock.now()),
            knowledge_dir=self.settings.knowledge_dir,
            agent_tokens=self.settings.mcp_tokens,
            agent_webhooks=self.settings.mcp_webhooks,
        )
        self._app = app
        # Buttons work after a restart: the ticket, confirmation or challenge id is in the
        # custom_id.
        self.add_dynamic_items(
            TicketButton, ConfirmButton, CodeCancelButton, RatingButton, CommentButton, DraftButton
        )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self._sync_commands()
        if self.claude is None:
            log.warning(
                "No AI is configured (ANTHROPIC_API_KEY is empty): every conversation goes to the"
                " operators as a relay ticket."
            )
        await self.desk.resume()
        await self.knowledge.reindex()  # files changed while the bot was down
        if self.scheduler is not None and not self.scheduler.running:
            self.scheduler.start()
        # what fell due while the bot was down, then every future deadline
        await self.deadlines.start()
        self._schedule_summary()
        await self._serve_agents()
        await self.catch_up.note_where_reading_resumes()  # before the gateway delivers anything new
        posts = await self.desk_outbox.resume()
        await self.app.webhooks.resume()
        owed = await self.outbox.resume()
        unanswered = await self.engine.resume()
        log.info(
            "ready to work: %d customer(s) owed messages, %d with unanswered messages, %d ticket(s)"
            " with posts for the staff channel",
            owed,
            unanswered,
            posts,
        )

    async def _serve_agents(self) -> None:
        """The MCP endpoint for other agents (HANDOFF_MCP_TOKENS), on this loop and database."""
        if not self.settings.mcp_enabled:
            return
        from agent_api.server import McpService, PortLimits

        service = McpService(
            self.agents,
            self.settings.mcp_tokens,
            host=self.settings.mcp_host,
            port=self.settings.mcp_port,
            public_url=self.settings.mcp_public_url,
            limits=PortLimits.from_policy(self.policy.agents),
        )
        try:
            await service.start()
        except (OSError, RuntimeError, SystemExit) as exc:
            log.error(
                "HANDOFF_MCP_HOST/PORT=%s:%d: the MCP server for agents could not start (%s):"
                " agents cannot reach the desk; customers are served as usual. Free the port or set"
                " another HANDOFF_MCP_PORT, then restart.",
                self.settings.mcp_host,
                self.settings.mcp_port,
                exc or type(exc).__name__,
            )
            return
        self.mcp = service

    def _schedule_summary(self) -> None:
        if self.scheduler is None:
            return
        from zoneinfo import ZoneInfo

        from core.crontab import crontab_trigger

        summary = self.policy.summary
        from cogs.stats import Stats

        stats = self.get_cog("Stats")
        if not isinstance(stats, Stats):
            raise RuntimeError("the Stats extension is not loaded: the summary cannot be scheduled")
        trigger = crontab_trigger(summary.cron, ZoneInfo(summary.timezone))
        self.scheduler.add_job(
            stats.post_summary,
            trigger,
            id="escalation-summary",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=3600,
        )

    async def _sync_commands(self) -> None:
        """Register the slash commands in the staff guild (guild commands appear at once) and
        globally (/enrol in DMs), only when they changed since the last registration: Discord limits
        how often commands may be replaced, and a restart loop would otherwise spend that budget."""
        guild = discord.Object(self.settings.guild_id)
        payload = {
            "application": self.application_id,
            "guild": self.settings.guild_id,
            "guild_commands": [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)],
            "global_commands": [c.to_dict(self.tree) for c in self.tree.get_commands()],
        }
        digest = hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()
        if await self.db.kept("slash_commands") == digest:
            log.info("slash commands unchanged since the last start; not registered again")
            return
        try:
            synced = await self.tree.sync(guild=guild)
            synced += await self.tree.sync()  # /enrol, for customers in DMs
        except discord.HTTPException as exc:
            log.error(
                "could not register slash commands in guild %s (%s). Was the bot invited with the"
                " applications.commands scope? See DISCORD_BOT.md.",
                self.settings.guild_id,
                exc,
            )
            return
        await self.db.keep("slash_commands", digest, self.clock.now())
        log.info(
            "slash commands registered (guild %s and DMs): %s",
            self.settings.guild_id,
            ", ".join(f"/{c.name}" for c in synced),
        )

    @property
    def request_guard(self) -> RequestGuard:
        """Every Discord request's guard (made in ``setup_hook``, once discord.py has its HTTP
        client)."""
        if self._request_guard is None:
            raise RuntimeError("the request guard is made in setup_hook; the bot has not started")
        return self._request_guard

    async def _watch_requests(self) -> None:
        """Every few seconds: is a Discord request stuck longer than any rate limit explains?"""
        interval = min(5.0, self.request_guard.stall_seconds / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_requests()
                if (line := self.pacer.report()) is not None:
                    log.warning(line)
            except Exception:
                log.exception("the request watchdog failed; it checks again in %.0f s", interval)

    async def check_requests(self) -> bool:
        """Log, recover and count a wedged Discord client. True when one was found."""
        stuck, longest = self.request_guard.stalled()
        if not stuck:
            return False
        released = self.request_guard.recover()
        owed = self.outbox.busy or self.desk_outbox.busy
        log.error(
            "%d Discord request(s) waiting for %.0f s (more than [delivery] stall_seconds); %s."
            " Sends owed: %s.",
            stuck,
            longest,
            (
                "released discord.py's global rate-limit lock, which was left taken"
                if released
                else "no lock was held: Discord or the network is not answering"
            ),
            "yes" if owed else "no",
        )
        now = self.clock.now()
        await audit(
            self.db,
            now,
            "system",
            "delivery_stalled",
            None,
            {
                "requests": stuck,
                "longest_seconds": round(longest, 1),
                "released_global_lock": released,
            },
        )
        return True

    async def _wind_down(self, grace: float) -> str:
        """Stop taking new work, let answers and sends in flight finish for up to ``grace`` seconds.

        Whatever is cut off is safe: messages and owed sends are rows in the database, answered and
        delivered after the next start.
        """
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._app is None:
            return "nothing was running"
        self.engine.stop_accepting()
        # answers being written, and the sends they owe
        drained = asyncio.create_task(self.engine.drain())
        done, _ = await asyncio.wait({drained}, timeout=grace)
        for queue in (self.outbox, self.desk_outbox):
            queue.stop_accepting()
        if done:
            return "in-flight work finished"
        # the workers are closed (cancelled) next; their rows stay for the next start
        drained.cancel()
        return f"work still running after {grace:g} s was stopped; it carries on at the next start"

    async def on_disconnect(self) -> None:
        """A new session after this may not replay what comes meanwhile: note where reading
        resumes."""
        if self._app is not None and not self.is_closed():
            try:
                await self.catch_up.note_where_reading_resumes()
            except Exception:
                log.exception("catch-up: could not note where reading resumes")

    async def on_ready(self) -> None:
        """After login (and every new session): read what Discord holds that we missed; say once
        what keeps the staff desk from working."""
        await self.catch_up.run()
        problems = staff_setup_problems(self)
        if problems == self.setup_problems:
            return
        self.setup_problems = problems
        for problem in problems:
            log.error("staff desk set-up: %s", problem)
        if not problems:
            log.info("staff desk set-up: channel, threads and operator pings all work")

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: the cogs' listeners handle messages; slash commands are the operator
        interface."""

    def _lost_leadership(self, reason: str) -> None:
        """Another process leads now (or may): nothing more is sent (the request guard refuses it);
        disconnect at once. What was owed stays in the database for the new leader."""
        self.shutdown_grace_seconds = 0
        self.shutdown_report = f"leadership lost ({reason})"
        self._closing_for_leadership = asyncio.get_running_loop().create_task(self._leave())

    async def _leave(self) -> None:
        """The gateway first: a process that may no longer write must stop receiving events at once,
        not after its workers wound down (a worker stuck on a cut-off database can take a while to
        give up)."""
        await discord.Client.close(self)
        await self.close()

    async def close(self) -> None:
        if not self._wound_down:
            self._wound_down = True
            self.shutdown_report = await self._wind_down(self.shutdown_grace_seconds)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.mcp is not None:
            await self.mcp.stop()
            self.mcp = None
        if self._app is not None:
            await self.engine.close()
            await self.outbox.close()
            await self.desk_outbox.close()
            await self.app.webhooks.close()
        if self.claude is not None:
            await self.claude.client.close()  # its aiohttp session warns at exit if left open
        await super().close()
