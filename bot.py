"""Handoff: run the bot, or check its configuration.

    python bot.py            run the bot
    python bot.py --check    validate .env and the policy file, print the effective setup, don't connect
    python bot.py --generate-secret-key    print a new HANDOFF_SECRET_KEY
    python bot.py --generate-mcp-token NAME    print a new agent-name:token pair for HANDOFF_MCP_TOKENS
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from dotenv import find_dotenv, load_dotenv

from actions import load_actions_module
from core.actions import ActionRegistry
from core.policy import Policy, PolicyError, load_policy
from core.settings import ConfigError, Settings, load_settings, shown_db

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


async def check_database(target: Path | str) -> str | None:
    """Open (and create, migrate) the database as the bot will; None when it works, else one line naming
    HANDOFF_DB and the fix."""
    from storage import StorageError, database_for

    try:
        db = await database_for(target).open()
    except StorageError as exc:
        return f"HANDOFF_DB={shown_db(target)!r}: {exc}"
    await db.close()
    return None


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
    import aiohttp
    import discord

    from cogs.discord.handoff_bot import HandoffBot
    from core.agent import Claude, claude_client
    from storage import StorageError, database_for

    if settings.discord_api_base:  # a proxy, or a local stand-in for Discord's API (the chaos benchmark)
        if (problem := await use_discord_api(settings.discord_api_base)) is not None:
            log.error("DISCORD_API_BASE=%r: %s", settings.discord_api_base, problem)
            return 2
    try:
        db = await database_for(settings.db_path).open()
    except StorageError as exc:
        log.error("HANDOFF_DB=%r: %s", shown_db(settings.db_path), exc)
        return 2
    try:
        if hasattr(actions_module, "install"):
            await actions_module.install(db)
        claude = None
        if settings.ai_enabled:
            client = claude_client(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url,
                                   max_retries=settings.llm_max_retries, timeout=settings.llm_timeout_seconds)
            claude = Claude(client, settings.anthropic_model, settings.llm_concurrency)
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(timezone="UTC")
        bot = HandoffBot(settings=settings, policy=policy, db=db, claude=claude, registry=registry, scheduler=scheduler)
        stopped_by = stop_on_signals(bot)
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
        await db.close()
    if stopped_by:
        log.info("Handoff stopped (%s): %s; database closed.", stopped_by[0], bot.shutdown_report)
    return 0


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


def stop_on_signals(bot: Any) -> list[str]:
    """SIGTERM (systemd, docker stop) and SIGINT (Ctrl-C) stop the bot gracefully: no new work, in-flight
    answers and sends get a few seconds, then the database is closed. Returns the list the signal's name is
    put in. A second signal while stopping is ignored (the grace period is short)."""
    import signal

    loop = asyncio.get_running_loop()
    received: list[str] = []
    closing: list[asyncio.Task[None]] = []  # a reference, so the task is not collected mid-way

    def on_signal(sig: signal.Signals) -> None:
        if received:
            return
        received.append(sig.name)
        log.info("%s received: finishing answers in flight (up to %g s), then stopping", sig.name,
                 bot.shutdown_grace_seconds)
        closing.append(loop.create_task(bot.close()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # not on the main thread, or Windows: default handling
            pass
    return received


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
        from core.mfa import generate_key

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
        problem = asyncio.run(check_database(settings.db_path))
        if problem is not None:
            print(f"Configuration error: {problem}", file=sys.stderr)
            return 2
        print("Configuration OK\n")
        print("\n".join(settings.describe()))
        print()
        print("\n".join(policy.describe()))
        print(f"\n{len(registry)} actions: " + ", ".join(
            f"{a.name} ({a.decision_type.value})" for a in registry.actions.values()))
        if not settings.ai_enabled:
            print("\nNo ANTHROPIC_API_KEY: the bot runs as a human relay; customers are told a person will answer.")
        return 0
    try:
        return asyncio.run(run(settings, policy, module, registry))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
