"""Running the bot as a process: the database opened (and, on SQLite, held by this process alone),
leadership among several processes on PostgreSQL, signals for a graceful stop, Discord's API base,
open-file limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from core.actions import ActionRegistry
from core.policy import Policy
from core.settings import Settings, shown_db

if TYPE_CHECKING:
    import signal

    from cogs.discord.handoff_bot import HandoffBot
    from core.leadership import Leadership
    from storage.db import Store

from startup import key_problem

log = logging.getLogger("handoff")


async def run(
    settings: Settings, policy: Policy, actions_module: ModuleType, registry: ActionRegistry
) -> int:
    from storage import PostgresDatabase, StorageError, database_for

    # a proxy, or a local stand-in for Discord's API (the chaos benchmark)
    if settings.discord_api_base:
        if (problem := await use_discord_api(settings.discord_api_base)) is not None:
            log.error("DISCORD_API_BASE=%r: %s", settings.discord_api_base, problem)
            return 2
    if (
        isinstance(settings.db_path, Path)
        and (other := hold_sqlite_file(settings.db_path)) is not None
    ):
        log.error(
            "HANDOFF_DB=%r: another bot.py (%s) already runs on this file; two would both answer"
            " every message. Stop it first, or for a standby that takes over use PostgreSQL"
            " (README: running past one machine).",
            str(settings.db_path),
            other,
        )
        return 2
    from core.leadership import Leadership, LeaseTimes, new_holder
    from storage.lease import session_name

    times = LeaseTimes(policy.ha.takeover_seconds)
    holder = new_holder()  # this process in the lease, and in its database sessions' names
    try:
        # A leader cut off in a write transaction holds the write lock: the server ends that session
        # once it has waited a lease's length, so the next leader is not held up past its takeover.
        db = await database_for(
            settings.db_path, idle_in_transaction=times.ttl, session_name=session_name(holder)
        ).open()
    except StorageError as exc:
        log.error("HANDOFF_DB=%r: %s", shown_db(settings.db_path), exc)
        return 2
    # Imported before standing by: a standby that takes over connects at once instead of loading
    # them then.
    import cogs.discord.handoff_bot  # noqa: F401
    import core.assistant  # noqa: F401

    leadership = None
    stop = SignalStop()
    try:
        if (
            settings.secret_key
            and (problem := await key_problem(db, settings.secret_key)) is not None
        ):
            log.error(problem)
            return 2
        if hasattr(actions_module, "install"):
            await actions_module.install(db)
        # several processes may share it: one leads, the others stand by
        if isinstance(db, PostgresDatabase):
            from storage.lease import LeaseStore

            leadership = Leadership(LeaseStore(db), times, holder=holder)
        while True:
            if leadership is not None and not await stop.unless_stopped(
                leadership.wait_until_leader()
            ):
                break
            code = await lead(settings, policy, registry, db, leadership, stop)
            if code is not None:
                return code
            if leadership is None or stop.received or leadership.lost_because is None:
                break
            log.info("leadership: standing by again")
            stop.report = "it was standing by"
    finally:
        if leadership is not None:
            await leadership.release()
        await db.close()
    if stop.received:
        log.info("Handoff stopped (%s): %s; database closed.", stop.received[0], stop.report)
    return 0


_held_files: list[Any] = []  # open for the process's life: the lock goes with it (also on kill -9)


def hold_sqlite_file(path: Path) -> str | None:
    """Lock ``<db>.lock`` for this process; None when it worked, else who holds it ("pid N")."""
    import fcntl

    lock = path.with_name(path.name + ".lock")
    try:
        if not lock.parent.exists():
            lock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = os.fdopen(os.open(lock, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
    except OSError:
        return None  # the database's own open names what is wrong with the folder
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown pid"
        handle.close()
        return holder
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    _held_files.append(handle)
    return None


async def lead(
    settings: Settings,
    policy: Policy,
    registry: ActionRegistry,
    db: Store,
    leadership: Leadership | None,
    stop: SignalStop,
) -> int | None:
    """Run the bot (connected to Discord) until it stops; an exit code when the process should end
    with it."""
    import aiohttp
    import discord
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from cogs.discord.handoff_bot import HandoffBot
    from core.assistant import Claude, claude_client
    from storage import PostgresDatabase

    claude = None
    if settings.anthropic_api_key:  # AI enabled
        client = claude_client(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_seconds,
        )
        claude = Claude(client, settings.anthropic_model, settings.llm_concurrency)
    scheduler = AsyncIOScheduler(timezone="UTC")
    bot = HandoffBot(
        settings=settings,
        policy=policy,
        db=db,
        claude=claude,
        registry=registry,
        scheduler=scheduler,
        leadership=leadership,
    )
    keeping = None
    fenced = db if isinstance(db, PostgresDatabase) and leadership is not None else None
    if fenced is not None and leadership is not None:
        # fencing: every write checks that this process still leads
        fenced.write_guard = leadership.guard
        keeping = asyncio.create_task(leadership.keep(), name="lease")
    stop.bot = bot
    try:
        async with bot:
            await bot.start(settings.discord_token)
    except discord.LoginFailure:
        log.error(
            "DISCORD_TOKEN was refused by Discord. Reset the token in the Developer Portal "
            "(Bot > Reset Token) and paste the new one into .env."
        )
        return 2
    except discord.PrivilegedIntentsRequired:
        log.error(
            "The Message Content intent is off. Developer Portal > your application > Bot > "
            "Privileged Gateway Intents: turn on MESSAGE CONTENT INTENT, then start again."
        )
        return 2
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        # Nothing was lost: stored messages and deadlines are picked up at the next start.
        log.error(
            "Cannot reach Discord (%s: %s). Check this machine's network and DNS, then start"
            " again.",
            type(exc).__name__,
            exc,
        )
        return 3
    finally:
        stop.bot = None
        stop.report = bot.shutdown_report
        if keeping is not None:
            keeping.cancel()
        if fenced is not None:
            fenced.write_guard = None
    return None


class SignalStop:
    """SIGTERM (systemd, docker stop) and SIGINT (Ctrl-C) stop the process gracefully: a standby
    stops waiting; a running bot takes no new work, in-flight answers and sends get a few seconds,
    then the database is closed. A second signal while stopping is ignored (the grace period is
    short)."""

    def __init__(self, bot: HandoffBot | None = None) -> None:
        import signal

        self.bot = bot
        self.received: list[str] = []
        self.report = "it was standing by"  # or what the bot said when it stopped
        self._stopped = asyncio.Event()
        # a reference, so the task is not collected mid-way
        self._closing: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            # not on the main thread, or Windows: default handling
            except (NotImplementedError, RuntimeError):
                pass

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received:
            return
        self.received.append(sig.name)
        self._stopped.set()
        if self.bot is not None:
            log.info(
                "%s received: finishing answers in flight (up to %g s), then stopping",
                sig.name,
                self.bot.shutdown_grace_seconds,
            )
            self._closing.append(asyncio.get_running_loop().create_task(self.bot.close()))
        else:
            log.info("%s received: stopping", sig.name)

    async def unless_stopped(self, waiting: Awaitable[Any]) -> bool:
        """Await ``waiting`` unless a signal comes first; True when it finished."""
        task = asyncio.ensure_future(waiting)
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
        return True


async def use_discord_api(base: str) -> str | None:
    """Send REST requests to ``base`` and connect to the gateway it names (GET /gateway, as Discord
    answers it); discord.py otherwise always connects to gateway.discord.gg. None when it works,
    else why not."""
    import aiohttp
    import discord
    import yarl

    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/gateway") as response:
            url = (await response.json(content_type=None))["url"]
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        return f"GET {base}/gateway did not name a gateway ({type(exc).__name__}: {exc})"
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    return None


def raise_open_file_limit() -> None:
    """The soft limit on open files up to the hard one: sockets to Discord, Claude, the database and
    the MCP port's clients all count (a 1024 soft limit is the default on many systems)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("open files: could not raise the soft limit %d to %d (%s)", soft, hard, exc)
        return
    log.info("open files: soft limit raised from %d to %d", soft, hard)
