"""Handoff: run the bot, or check its configuration.

python bot.py            run the bot
python bot.py --check    validate .env and the policy file, print the effective setup, don't connect
python bot.py --rehearse the whole desk on this machine without Discord (a page on 127.0.0.1)
python bot.py --generate-secret-key    print a new HANDOFF_SECRET_KEY
python bot.py --generate-mcp-token NAME    print a new agent-name:token pair for HANDOFF_MCP_TOKENS
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from dotenv import find_dotenv, load_dotenv

from core.settings import ConfigError
from runner import raise_open_file_limit, run
from startup import check_database, load_configuration, migrate_to

log = logging.getLogger("handoff")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Handoff: a human-in-the-loop AI customer agent for Discord"
    )
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--generate-secret-key",
        action="store_true",
        help="print a new HANDOFF_SECRET_KEY (encrypts authenticator secrets) and exit",
    )
    parser.add_argument(
        "--generate-mcp-token",
        metavar="NAME",
        help="print a new agent-name:token pair for HANDOFF_MCP_TOKENS and exit",
    )
    parser.add_argument(
        "--migrate-to",
        metavar="POSTGRESQL_URL",
        help="copy the SQLite database HANDOFF_DB names into an empty PostgreSQL database and exit",
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="run the whole desk on this machine without Discord, with a page on 127.0.0.1",
    )
    parser.add_argument("--rehearse-port", type=int, default=8787, help="the rehearsal page's port")
    parser.add_argument(
        "--rehearse-customers", type=int, default=3, help="customers to switch between"
    )
    args = parser.parse_args(argv)
    if args.rehearse:
        from rehearsal.rehearse import main as rehearse

        load_dotenv(find_dotenv(usecwd=True), override=False)
        return rehearse(args.rehearse_port, max(1, args.rehearse_customers))
    if args.generate_secret_key:
        from core.codes import generate_key

        print(generate_key())
        return 0
    if args.generate_mcp_token is not None:
        import secrets

        from core.settings import AGENT_NAME

        if not AGENT_NAME.match(args.generate_mcp_token):
            print(
                f"--generate-mcp-token {args.generate_mcp_token!r}: an agent name is 1-40 letters,"
                " digits, '.', '_' or '-'",
                file=sys.stderr,
            )
            return 2
        print(f"{args.generate_mcp_token}:{secrets.token_urlsafe(32)}")
        return 0

    # .env from the directory the bot is started in; values already in the environment win over it.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        settings, policy, module, registry = load_configuration()
    except ConfigError as exc:
        count = len(exc.problems)
        print(
            f"Configuration error{'s' if count > 1 else ''} ({count}; fix them all, then start"
            " again):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"- {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    logging.getLogger("discord").setLevel(
        max(logging.INFO, logging.getLevelName(settings.log_level))
    )

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
        print(
            f"\n{len(registry)} actions: "
            + ", ".join(f"{a.name} ({a.decision_type.value})" for a in registry.actions.values())
        )
        if not settings.ai_enabled:
            print(
                "\nNo ANTHROPIC_API_KEY: the bot runs as a human relay; customers are told a person"
                " will answer."
            )
        return 0
    raise_open_file_limit()
    try:
        return asyncio.run(run(settings, policy, module, registry))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
