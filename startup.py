"""Loading and checking the configuration: .env, the policy file, the actions module, the database
(``--check``, ``--migrate-to``); every problem named with the fix."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from actions import load_actions_module
from core.actions import ActionRegistry
from core.policy import Policy, PolicyError, load_policy
from core.settings import ConfigError, Settings, load_settings, shown_db

if TYPE_CHECKING:
    from storage.db import Store

log = logging.getLogger("handoff")

DEFAULT_ACTIONS_MODULE = "actions.shop"


def load_configuration() -> tuple[Settings, Policy, ModuleType, ActionRegistry]:
    """Everything the bot needs before it connects. Raises ConfigError listing every problem with
    its fix (in .env and in the policy file at once, so a deployer fixes them all in one go)."""

    problems: list[str] = []
    settings = policy = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems.extend(exc.problems)
    policy_path = (
        settings.policy_path
        if settings
        else Path(os.environ.get("HANDOFF_POLICY", "").strip() or "policy.toml")
    )
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
            "HANDOFF_SECRET_KEY is not set, but one-time codes are on ([mfa] enabled = true in"
            f" {policy_path}). Run `python bot.py --generate-secret-key`, put the key it prints in"
            " .env as HANDOFF_SECRET_KEY (it encrypts customers' authenticator secrets; keep it"
            " safe), or set [mfa] enabled = false to send destructive actions to the operators"
            " instead."
        )
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    assert (
        settings is not None and policy is not None and module is not None and registry is not None
    )
    return settings, policy, module, registry


def _codes_on(policy: Policy | None, path: Path) -> bool:
    """[mfa] enabled, read from the raw file when the policy has other problems (to report them
    all)."""
    if policy is not None:
        return bool(policy.mfa.enabled)
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the file's own problem is reported; don't guess about codes
    mfa = raw.get("mfa")
    return not isinstance(mfa, dict) or mfa.get("enabled", True) is not False


async def check_database(
    target: Path | str, secret_key: str | None = None
) -> tuple[str | None, str]:
    """Open (and create, migrate) the database as the bot will: (None, what it says about
    leadership) when it works, else (one line naming HANDOFF_DB or HANDOFF_SECRET_KEY and the fix,
    "")."""
    from storage import StorageError, database_for

    try:
        db = await database_for(target).open()
    except StorageError as exc:
        return f"HANDOFF_DB={shown_db(target)!r}: {exc}", ""
    try:
        if (
            secret_key
            and (problem := await key_problem(db, secret_key, remember=False)) is not None
        ):
            return problem, ""
        return None, await leadership_line(db)
    finally:
        await db.close()


async def key_problem(db: Store, secret_key: str, *, remember: bool = True) -> str | None:
    import time

    from core.codes import SecretBox, secret_key_problem
    from storage.codes import CodeStore

    return await secret_key_problem(
        SecretBox(secret_key), db, CodeStore(db), time.time(), remember=remember
    )


async def leadership_line(db: Store) -> str:
    """For --check: which role this process would take, and who holds the lease."""
    from storage import PostgresDatabase

    if not isinstance(db, PostgresDatabase):
        return (
            "Leadership: SQLite: one process, no standby (HANDOFF_DB=postgresql://... for a"
            " standby)"
        )
    from storage.lease import LeaseStore

    state = await LeaseStore(db).current()
    if state is None or state.expires_in <= 0:
        before = (
            f" (the last, {state.holder}, epoch {state.epoch}, stopped {-state.expires_in:.0f} s"
            " ago)"
            if state
            else ""
        )
        return f"Leadership: nobody leads{before}; started now, this process would lead"
    return (
        f"Leadership: {state.holder} leads (epoch {state.epoch}, lease renewed"
        f" {state.renewed_ago:.1f} s ago); started now, this process would stand by and take over"
        " if it stops"
    )


async def migrate_to(settings: Settings, actions_module: ModuleType, url: str) -> int:
    """``--migrate-to``: copy HANDOFF_DB (SQLite) into the empty PostgreSQL database ``url``; say
    what to change."""
    from storage import Database, PostgresDatabase, StorageError
    from storage.migrate_to import copy_database
    from storage.postgres import is_postgres_url, redacted

    if not is_postgres_url(url):
        print(
            f"--migrate-to {url!r}: give a PostgreSQL URL, e.g."
            " postgresql://handoff:password@db-host:5432/handoff",
            file=sys.stderr,
        )
        return 2
    if not isinstance(settings.db_path, Path):
        print(
            "--migrate-to copies a SQLite database, but HANDOFF_DB is already"
            f" {shown_db(settings.db_path)}",
            file=sys.stderr,
        )
        return 2
    if not settings.db_path.is_file():
        print(
            f"--migrate-to: HANDOFF_DB={str(settings.db_path)!r} does not exist; nothing to copy",
            file=sys.stderr,
        )
        return 2
    from runner import hold_sqlite_file  # the same lock as a running bot's

    if (other := hold_sqlite_file(settings.db_path)) is not None:
        print(
            f"--migrate-to: a bot.py ({other}) runs on {settings.db_path}; stop it first, so that"
            " nothing is written while the copy is made",
            file=sys.stderr,
        )
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
    print(
        f"\nTo run on PostgreSQL from now on, set in .env:\n  HANDOFF_DB={redacted(url)}   (with"
        " the password you gave)\nand keep HANDOFF_SECRET_KEY as it is: the authenticator secrets"
        f" were copied still encrypted with it.\nThen start the bot; keep {settings.db_path} as a"
        " backup (the bot no longer writes to it)."
    )
    return 0
