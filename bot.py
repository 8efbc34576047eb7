"""Handoff: run the bot, or check its configuration.

    python bot.py            run the bot
    python bot.py --check    validate .env and the policy file, print the effective setup, don't connect
    python bot.py --generate-secret-key    print a new HANDOFF_SECRET_KEY
    python bot.py --generate-mcp-token NAME    print a new agent-name:token pair for HANDOFF_MCP_TOKENS
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dotenv import find_dotenv, load_dotenv

from actions import load_actions_module
from core.actions import ActionRegistry
from core.policy import Policy, PolicyError, load_policy
from core.settings import ConfigError, Settings, load_settings, shown_db

if TYPE_CHECKING:
    import signal

    from cogs.discord.handoff_bot import HandoffBot
    from core.leadership import Leadership
    from storage.db import Store

log = logging.getLogger("handoff")

DEFAULT_ACTIONS_MODULE = "actions.shop"


def load_configuration() -> tuple[Settings, Policy, ModuleType, ActionRegistry]:
    """Everything the bot needs before it connects. Raises ConfigError listing every problem with its fix
    (in .env and in the policy file at once, so a deployer fixes them all in one go)."""
    import os

    problems: list[str] = []
    settings = policy = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems.extend(exc.problems)
    policy_path = settings.policy_path if settings else Path(os.environ.get("HANDOFF_POLICY", "").strip()
                                                               or "policy.toml")
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        problems.extend(exc.problems)
    module_name = os.environ.get("HANDOFF_ACTIONS", "").strip() or DEFAULT_ACTIONS_MODULE
    module = registry = None
    try:
        module = load_actions_module(module_name)
        registry = ActionRegistry().extend(module.ACTIONS)
    except (ImportError, ValueError) as exc:
        problems.append(f"HANDOFF_ACTIONS={module_name!r}: {exc}")
    secret_key = os.environ.get("HANDOFF_SECRET_KEY", "").strip()
    if _codes_on(policy, policy_path) and not secret_key:
        problems.append(
            "HANDOFF_SECRET_KEY is not set, but one-time codes are on ([mfa] enabled = true in "
            f"{policy_path}). Run `python bot.py --generate-secret-key`, put the key it prints in .env "
            "as HANDOFF_SECRET_KEY (it encrypts customers' authenticator secrets; keep it safe), or set "
            "[mfa] enabled = false to send destructive actions to the operators instead."
        )
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    assert settings is not None and policy is not None and module is not None and registry is not None
    return settings, policy, module, registry


def _codes_on(policy: Policy | None, path: Path) -> bool:
    """[mfa] enabled, read from the raw file when the policy has other problems (to report them all)."""
    if policy is not None:
        return bool(policy["mfa"]["enabled"])
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the file's own problem is reported; don't guess about codes
    mfa = raw.get("mfa")
    return not isinstance(mfa, dict) or mfa.get("enabled", True) is not False


async def check_database(target: Path | str, secret_key: str | None = None) -> tuple[str | None, str]:
    """Open (and create, migrate) the database as the bot will: (None, what it says about leadership) when it
    works, else (one line naming HANDOFF_DB or HANDOFF_SECRET_KEY and the fix, "")."""
    from storage import StorageError, database_for

    try:
        db = await database_for(target).open()
    except StorageError as exc:
        return f"HANDOFF_DB={shown_db(target)!r}: {exc}", ""
    try:
        if secret_key and (problem := await key_problem(db, secret_key, remember=False)) is not None:
            return problem, ""
        return None, await leadership_line(db)
    finally:
        await db.close()


async def key_problem(db: Store, secret_key: str, *, remember: bool = True) -> str | None:
    import time

    from core.codes import SecretBox, secret_key_problem
    from storage.codes import CodeStore

    return await secret_key_problem(SecretBox(secret_key), db, CodeStore(db), time.time(), remember=remember)


async def leadership_line(db: Store) -> str:
    """For --check: which role this process would take, and who holds the lease."""
    from storage import PostgresDatabase

    if not isinstance(db, PostgresDatabase):
        return "Leadership: SQLite: one process, no standby (HANDOFF_DB=postgresql://... for a standby)"
    from storage.lease import LeaseStore

    state = await LeaseStore(db).current()
    if state is None or state.expires_in <= 0:
        before = f" (the last, {state.holder}, epoch {state.epoch}, stopped {-state.expires_in:.0f} s ago)" if state \
            else ""
        return f"Leadership: nobody leads{before}; started now, this process would lead"
    return (f"Leadership: {state.holder} leads (epoch {state.epoch}, lease renewed {state.renewed_ago:.1f} s ago);"
            " started now, this process would stand by and take over if it stops")


async def migrate_to(settings: Settings, actions_module: ModuleType, url: str) -> int:
    """``--migrate-to``: copy HANDOFF_DB (SQLite) into the empty PostgreSQL database ``url``; say what to change."""
    from storage import Database, PostgresDatabase, StorageError
    from storage.migrate_to import copy_database
    from storage.postgres import is_postgres_url, redacted

    if not is_postgres_url(url):
        print(f"--migrate-to {url!r}: give a PostgreSQL URL, e.g. postgresql://handoff:password@db-host:5432/handoff",
              file=sys.stderr)
        return 2
    if not isinstance(settings.db_path, Path):
        print(f"--migrate-to copies a SQLite database, but HANDOFF_DB is already {shown_db(settings.db_path)}",
              file=sys.stderr)
        return 2
    if not settings.db_path.is_file():
        print(f"--migrate-to: HANDOFF_DB={str(settings.db_path)!r} does not exist; nothing to copy", file=sys.stderr)
        return 2
    if (other := hold_sqlite_file(settings.db_path)) is not None:
        print(f"--migrate-to: a bot.py ({other}) runs on {settings.db_path}; stop it first, so that nothing is"
              " written while the copy is made", file=sys.stderr)
        return 2
    try:
        async with Database(settings.db_path) as source, PostgresDatabase(url) as target:
            if hasattr(actions_module, "install"):  # the actions' own tables, on both sides
                await actions_module.install(source)
                await actions_module.install(target)
            copied = await copy_database(source, target)
    except StorageError as exc:
        print(f"--migrate-to: {exc}", file=sys.stderr)
        return 2
    width = max(len(c.table) for c in copied)
    print(f"Copied {settings.db_path} into {redacted(url)}; row counts match:")
    for c in copied:
        print(f"  {c.table:<{width}}  {c.target_rows:>9} rows")
    print("\nTo run on PostgreSQL from now on, set in .env:\n"
          f"  HANDOFF_DB={redacted(url)}   (with the password you gave)\n"
          "and keep HANDOFF_SECRET_KEY as it is: the authenticator secrets were copied still encrypted with it.\n"
          f"Then start the bot; keep {settings.db_path} as a backup (the bot no longer writes to it).")
    return 0


async def run(settings: Settings, policy: Policy, actions_module: ModuleType, registry: ActionRegistry) -> int:
    from storage import PostgresDatabase, StorageError, database_for

    if settings.discord_api_base:  # a proxy, or a local stand-in for Discord's API (the chaos benchmark)
        if (problem := await use_discord_api(settings.discord_api_base)) is not None:
            log.error("DISCORD_API_BASE=%r: %s", settings.discord_api_base, problem)
            return 2
    if isinstance(settings.db_path, Path) and (other := hold_sqlite_file(settings.db_path)) is not None:
        log.error("HANDOFF_DB=%r: another bot.py (%s) already runs on this file; two would both answer every"
                  " message. Stop it first, or for a standby that takes over use PostgreSQL (README: running past"
                  " one machine).", str(settings.db_path), other)
        return 2
    from core.leadership import Leadership, LeaseTimes

    times = LeaseTimes(policy["ha"]["takeover_seconds"])
    try:
        # A leader cut off in a write transaction holds the write lock: the server ends that session once it
        # has waited a lease's length, so the next leader is not held up past its takeover.
        db = await database_for(settings.db_path, idle_in_transaction=times.ttl).open()
    except StorageError as exc:
        log.error("HANDOFF_DB=%r: %s", shown_db(settings.db_path), exc)
        return 2
    # Imported before standing by: a standby that takes over connects at once instead of loading them then.
    import cogs.discord.handoff_bot  # noqa: F401
    import core.assistant  # noqa: F401

    leadership = None
    stop = SignalStop()
    try:
        if settings.secret_key and (problem := await key_problem(db, settings.secret_key)) is not None:
            log.error(problem)
            return 2
        if hasattr(actions_module, "install"):
            await actions_module.install(db)
        if isinstance(db, PostgresDatabase):  # several processes may share it: one leads, the others stand by
            from storage.lease import LeaseStore

            leadership = Leadership(LeaseStore(db), times)
        while True:
            if leadership is not None and not await stop.unless_stopped(leadership.wait_until_leader()):
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


async def lead(settings: Settings, policy: Policy, registry: ActionRegistry, db: Store, leadership: Leadership | None,
               stop: SignalStop) -> int | None:
    """Run the bot (connected to Discord) until it stops; an exit code when the process should end with it."""
    import aiohttp
    import discord
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from cogs.discord.handoff_bot import HandoffBot
    from core.assistant import Claude, claude_client
    from storage import PostgresDatabase

    claude = None
    if settings.anthropic_api_key:  # AI enabled
        client = claude_client(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url,
                               max_retries=settings.llm_max_retries, timeout=settings.llm_timeout_seconds)
        claude = Claude(client, settings.anthropic_model, settings.llm_concurrency)
    scheduler = AsyncIOScheduler(timezone="UTC")
    bot = HandoffBot(settings=settings, policy=policy, db=db, claude=claude, registry=registry, scheduler=scheduler,
                     leadership=leadership)
    keeping = None
    fenced = db if isinstance(db, PostgresDatabase) and leadership is not None else None
    if fenced is not None and leadership is not None:
        fenced.write_guard = leadership.guard  # fencing: every write checks that this process still leads
        keeping = asyncio.create_task(leadership.keep(), name="lease")
    stop.bot = bot
    try:
        async with bot:
            await bot.start(settings.discord_token)
    except discord.LoginFailure:
        log.error("DISCORD_TOKEN was refused by Discord. Reset the token in the Developer Portal "
                  "(Bot > Reset Token) and paste the new one into .env.")
        return 2
    except discord.PrivilegedIntentsRequired:
        log.error("The Message Content intent is off. Developer Portal > your application > Bot > "
                  "Privileged Gateway Intents: turn on MESSAGE CONTENT INTENT, then start again.")
        return 2
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        # Nothing was lost: stored messages and deadlines are picked up at the next start.
        log.error("Cannot reach Discord (%s: %s). Check this machine's network and DNS, then start again.",
                  type(exc).__name__, exc)
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
    """SIGTERM (systemd, docker stop) and SIGINT (Ctrl-C) stop the process gracefully: a standby stops
    waiting; a running bot takes no new work, in-flight answers and sends get a few seconds, then the database
    is closed. A second signal while stopping is ignored (the grace period is short)."""

    def __init__(self, bot: HandoffBot | None = None) -> None:
        import signal

        self.bot = bot
        self.received: list[str] = []
        self.report = "it was standing by"  # or what the bot said when it stopped
        self._stopped = asyncio.Event()
        self._closing: list[asyncio.Task[None]] = []  # a reference, so the task is not collected mid-way
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError):  # not on the main thread, or Windows: default handling
                pass

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received:
            return
        self.received.append(sig.name)
        self._stopped.set()
        if self.bot is not None:
            log.info("%s received: finishing answers in flight (up to %g s), then stopping", sig.name,
                     self.bot.shutdown_grace_seconds)
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
    """Send REST requests to ``base`` and connect to the gateway it names (GET /gateway, as Discord answers
    it); discord.py otherwise always connects to gateway.discord.gg. None when it works, else why not."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Handoff: a human-in-the-loop AI customer agent for Discord")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument("--generate-secret-key", action="store_true",
                        help="print a new HANDOFF_SECRET_KEY (encrypts authenticator secrets) and exit")
    parser.add_argument("--generate-mcp-token", metavar="NAME",
                        help="print a new agent-name:token pair for HANDOFF_MCP_TOKENS and exit")
    parser.add_argument("--migrate-to", metavar="POSTGRESQL_URL",
                        help="copy the SQLite database HANDOFF_DB names into an empty PostgreSQL database and exit")
    args = parser.parse_args(argv)
    if args.generate_secret_key:
        from core.codes import generate_key

        print(generate_key())
        return 0
    if args.generate_mcp_token is not None:
        import secrets

        from core.settings import AGENT_NAME

        if not AGENT_NAME.match(args.generate_mcp_token):
            print(f"--generate-mcp-token {args.generate_mcp_token!r}: an agent name is 1-40 letters, digits, '.',"
                  " '_' or '-'", file=sys.stderr)
            return 2
        print(f"{args.generate_mcp_token}:{secrets.token_urlsafe(32)}")
        return 0

    # .env from the directory the bot is started in; values already in the environment win over it.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        settings, policy, module, registry = load_configuration()
    except ConfigError as exc:
        count = len(exc.problems)
        print(f"Configuration error{'s' if count > 1 else ''} ({count}; fix them all, then start again):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"- {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))

    if args.migrate_to is not None:
        return asyncio.run(migrate_to(settings, module, args.migrate_to))
    if args.check:
        trouble, leadership = asyncio.run(check_database(settings.db_path, settings.secret_key))
        if trouble is not None:
            print(f"Configuration error: {trouble}", file=sys.stderr)
            return 2
        print("Configuration OK\n")
        print("\n".join(settings.describe()))
        print(leadership)
        print()
        print("\n".join(policy.describe()))
        print(f"\n{len(registry)} actions: " + ", ".join(
            f"{a.name} ({a.decision_type.value})" for a in registry.actions.values()))
        if not settings.ai_enabled:
            print("\nNo ANTHROPIC_API_KEY: the bot runs as a human relay; customers are told a person will answer.")
        return 0
    raise_open_file_limit()
    try:
        return asyncio.run(run(settings, policy, module, registry))
    except KeyboardInterrupt:
        return 0


def raise_open_file_limit() -> None:
    """The soft limit on open files up to the hard one: sockets to Discord, Claude, the database and the MCP
    port's clients all count (a 1024 soft limit is the default on many systems)."""
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


if __name__ == "__main__":
    sys.exit(main())
