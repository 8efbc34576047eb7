"""Deployment settings from the environment (``.env`` via python-dotenv).

Secrets and Discord IDs live here; business rules live in the policy file. One typed
``Settings`` object is built at start and passed in; nothing reads the environment later.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.postgres import is_postgres_url, redacted

DEFAULT_MODEL = "claude-sonnet-4-5"


# Discord ids (snowflakes) written in decimal: 17 digits for the oldest accounts (2015), 19 today,
# 20 at most.
SNOWFLAKE_DIGITS = (17, 20)


class ConfigError(ValueError):
    """Settings are missing or malformed. The message names each variable and its fix, one per
    line."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class Settings:
    discord_token: str
    guild_id: int
    staff_channel_id: int
    operator_role_id: int
    operator_user_id: int | None
    anthropic_api_key: str | None
    anthropic_model: str
    anthropic_base_url: str | None
    # a SQLite file, or a postgresql:// URL (kept as text: a Path would fold its //)
    db_path: Path | str
    policy_path: Path
    llm_concurrency: int
    llm_max_retries: int
    llm_timeout_seconds: float
    log_level: str
    secret_key: str | None = None  # HANDOFF_SECRET_KEY: encrypts TOTP secrets at rest (Fernet)
    # DISCORD_API_BASE: another REST endpoint (a proxy, a local stand-in)
    discord_api_base: str | None = None
    # HANDOFF_MCP_TOKENS: agent name -> token
    mcp_tokens: dict[str, str] = field(default_factory=dict)
    mcp_host: str = "127.0.0.1"
    mcp_port: int = 8765
    # HANDOFF_MCP_PUBLIC_URL: where agents reach a non-loopback endpoint
    mcp_public_url: str | None = None
    # HANDOFF_MCP_WEBHOOKS: agent name -> where its outcomes are POSTed (unless a call gives a URL)
    mcp_webhooks: dict[str, str] = field(default_factory=dict)
    # HANDOFF_KNOWLEDGE: the folder of Markdown/text files the assistant answers from
    knowledge_dir: Path = Path("knowledge")

    @property
    def mcp_enabled(self) -> bool:
        return bool(self.mcp_tokens)

    @property
    def ai_enabled(self) -> bool:
        return bool(self.anthropic_api_key)

    def describe(self) -> list[str]:
        """The effective setup, secrets masked, for ``bot.py --check`` and the start-up log."""
        mcp = f"{self.mcp_host}:{self.mcp_port}"
        if self.mcp_enabled:
            mcp += f" (agents connect to {self.mcp_url})"
        shown = [
            ("DISCORD_TOKEN", _mask(self.discord_token)),
            ("DISCORD_GUILD_ID", self.guild_id),
            ("DISCORD_STAFF_CHANNEL_ID", self.staff_channel_id),
            ("DISCORD_OPERATOR_ROLE_ID", self.operator_role_id),
            ("DISCORD_USER_ID", self.operator_user_id or "(none: only the role is mentioned)"),
            (
                "ANTHROPIC_API_KEY",
                _mask(self.anthropic_api_key)
                if self.anthropic_api_key
                else "(none: human relay mode)",
            ),
            ("ANTHROPIC_MODEL", self.anthropic_model),
            ("ANTHROPIC_BASE_URL", self.anthropic_base_url or "(default)"),
            ("HANDOFF_DB", shown_db(self.db_path)),
            ("HANDOFF_POLICY", self.policy_path),
            ("HANDOFF_KNOWLEDGE", self.knowledge_dir),
            ("HANDOFF_LLM_CONCURRENCY", self.llm_concurrency),
            ("HANDOFF_LLM_MAX_RETRIES", self.llm_max_retries),
            ("HANDOFF_LLM_TIMEOUT", f"{self.llm_timeout_seconds:g} s"),
            (
                "HANDOFF_SECRET_KEY",
                "(set)" if self.secret_key else "(none: one-time codes are off)",
            ),
            (
                "DISCORD_API_BASE",
                self.discord_api_base or "(default: https://discord.com/api/v10)",
            ),
            ("HANDOFF_MCP_TOKENS", ", ".join(sorted(self.mcp_tokens)) or "(none: MCP is off)"),
            ("HANDOFF_MCP_HOST/PORT", mcp),
        ]
        return [f"{name:<24} {value}" for name, value in shown]

    @property
    def mcp_url(self) -> str:
        return self.mcp_public_url or f"http://{self.mcp_host}:{self.mcp_port}/mcp"


def db_target(raw: str) -> Path | str:
    """HANDOFF_DB: a ``postgresql://`` URL selects PostgreSQL; anything else is a SQLite file."""
    raw = raw.strip()
    return raw if is_postgres_url(raw) else Path(raw or "data/handoff.db")


def shown_db(target: Path | str) -> str:
    """HANDOFF_DB as it may be shown and logged: a URL without its password."""
    return redacted(target) if isinstance(target, str) else str(target)


def _mask(secret: str | None) -> str:
    """Whether a secret is set; no character of it (its end identifies it in a log or a
    screenshot)."""
    if not secret:
        return "(unset)"
    return f"set ({len(secret)} chars)"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine reaches it."""
    if host.strip("[]").casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Problems:
    """Collects every configuration problem, so a deployer fixes them all in one go (not one per
    run)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, problem: str) -> None:
        self.found.append(problem)

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError("\n".join(self.found), problems=self.found)


def _snowflake(
    env: Mapping[str, str], name: str, problems: _Problems, *, required: bool, fix: str
) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        if required:
            problems.add(f"{name} is not set. {fix}")
        return None
    if not raw.isdigit() or not (SNOWFLAKE_DIGITS[0] <= len(raw) <= SNOWFLAKE_DIGITS[1]):
        problems.add(
            f"{name}={raw!r} is not a Discord ID (a number of"
            f" {SNOWFLAKE_DIGITS[0]}-{SNOWFLAKE_DIGITS[1]} digits). {fix}"
        )
        return None
    return int(raw)


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    problems: _Problems,
    *,
    lo: float,
    hi: float,
    integer: bool,
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        problems.add(f"{name}={raw!r} is not {kind}; set it between {lo:g} and {hi:g}")
        return default
    if not lo <= value <= hi:
        problems.add(f"{name}={raw!r} is out of range; set it between {lo:g} and {hi:g}")
        return default
    return value


_ID_FIX = (
    "In Discord, turn on Developer Mode (User Settings > Advanced), right-click the {what} and"
    " Copy ID."
)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: ``os.environ``). Raises ConfigError naming every bad
    variable."""
    env = os.environ if env is None else env
    problems = _Problems()
    discord = _discord_settings(env, problems)
    claude = _claude_settings(env, problems)
    secret_key = _secret_key(env, problems)
    mcp = _mcp_settings(env, problems)
    level = env.get("HANDOFF_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.add(f"HANDOFF_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR")
    problems.raise_any()
    return Settings(
        **discord,
        **claude,
        **mcp,
        db_path=db_target(env.get("HANDOFF_DB", "")),
        policy_path=Path(env.get("HANDOFF_POLICY", "").strip() or "policy.toml"),
        knowledge_dir=Path(env.get("HANDOFF_KNOWLEDGE", "").strip() or "knowledge"),
        log_level=level,
        secret_key=secret_key,
    )


def _discord_settings(env: Mapping[str, str], problems: _Problems) -> dict[str, Any]:
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        problems.add(
            "DISCORD_TOKEN is not set. Copy the bot token from the Developer Portal "
            "(your application > Bot > Reset Token) into .env; see DISCORD_BOT.md step 2."
        )
    elif any(c.isspace() for c in token) or token.lower().startswith("bot "):
        problems.add(
            "DISCORD_TOKEN contains spaces or a 'Bot ' prefix; paste only the token itself."
        )

    guild = _snowflake(
        env, "DISCORD_GUILD_ID", problems, required=True, fix=_ID_FIX.format(what="server icon")
    )
    staff_name = (
        "DISCORD_STAFF_CHANNEL_ID"
        if env.get("DISCORD_STAFF_CHANNEL_ID", "").strip()
        else "DISCORD_CHANNEL_ID"
    )
    if not env.get(staff_name, "").strip():
        problems.add(
            "DISCORD_STAFF_CHANNEL_ID is not set (DISCORD_CHANNEL_ID is accepted too). "
            + _ID_FIX.format(what="staff channel")
        )
    staff = _snowflake(
        env, staff_name, problems, required=False, fix=_ID_FIX.format(what="staff channel")
    )
    role = _snowflake(
        env,
        "DISCORD_OPERATOR_ROLE_ID",
        problems,
        required=True,
        fix=(
            "Server Settings > Roles, right-click the operators' role and Copy Role ID "
            "(Developer Mode must be on)."
        ),
    )
    operator = _snowflake(
        env, "DISCORD_USER_ID", problems, required=False, fix=_ID_FIX.format(what="operator")
    )

    api_base = env.get("DISCORD_API_BASE", "").strip().rstrip("/") or None
    if api_base and not api_base.startswith(("http://", "https://")):
        problems.add(
            f"DISCORD_API_BASE={api_base!r} must start with http:// or https:// (e.g. a proxy's"
            " https://host/api/v10); leave it empty for Discord itself"
        )
    elif (
        api_base
        and api_base.startswith("http://")
        and not is_loopback(urlsplit(api_base).hostname or "")
    ):
        problems.add(
            f"DISCORD_API_BASE={api_base!r} would send the bot token in clear over the network: use"
            " https:// (plain http:// only to this machine: 127.0.0.1 or localhost)"
        )
    # Required IDs missing are problems already (raised before Settings is built); 0 only stands in
    # for them.
    return {
        "discord_token": token,
        "guild_id": guild or 0,
        "staff_channel_id": staff or 0,
        "operator_role_id": role or 0,
        "operator_user_id": operator,
        "discord_api_base": api_base,
    }


def _claude_settings(env: Mapping[str, str], problems: _Problems) -> dict[str, Any]:
    model = env.get("ANTHROPIC_MODEL", "").strip() or DEFAULT_MODEL
    if any(c.isspace() for c in model):
        problems.add(
            f"ANTHROPIC_MODEL={model!r} contains spaces; use a model id such as {DEFAULT_MODEL}"
        )
    base_url = env.get("ANTHROPIC_BASE_URL", "").strip() or None
    if base_url and not base_url.startswith(("http://", "https://")):
        problems.add(f"ANTHROPIC_BASE_URL={base_url!r} must start with http:// or https://")
    concurrency = _number(
        env, "HANDOFF_LLM_CONCURRENCY", 256, problems, lo=1, hi=1000, integer=True
    )
    retries = _number(env, "HANDOFF_LLM_MAX_RETRIES", 2, problems, lo=0, hi=10, integer=True)
    timeout = _number(env, "HANDOFF_LLM_TIMEOUT", 60, problems, lo=1, hi=600, integer=False)
    return {
        "anthropic_api_key": env.get("ANTHROPIC_API_KEY", "").strip() or None,
        "anthropic_model": model,
        "anthropic_base_url": base_url,
        "llm_concurrency": int(concurrency),
        "llm_max_retries": int(retries),
        "llm_timeout_seconds": timeout,
    }


def _secret_key(env: Mapping[str, str], problems: _Problems) -> str | None:
    secret_key = env.get("HANDOFF_SECRET_KEY", "").strip() or None
    if secret_key is not None:
        from core.codes import SecretBox

        try:
            SecretBox(secret_key)
        except ValueError:
            problems.add(
                "HANDOFF_SECRET_KEY is not a valid key (44 characters of URL-safe base64). Make one"
                " with `python bot.py --generate-secret-key` and put it in .env. Changing it makes"
                " existing authenticator setups unreadable: customers then enrol again."
            )
    return secret_key


def _mcp_settings(env: Mapping[str, str], problems: _Problems) -> dict[str, Any]:
    mcp_tokens = _mcp_tokens(env.get("HANDOFF_MCP_TOKENS", ""), problems)
    mcp_host = env.get("HANDOFF_MCP_HOST", "").strip() or "127.0.0.1"
    if any(c.isspace() or c == "/" for c in mcp_host):
        problems.add(
            f"HANDOFF_MCP_HOST={mcp_host!r} is not a host; use an address such as 127.0.0.1 or"
            " 0.0.0.0"
        )
    mcp_port = _number(env, "HANDOFF_MCP_PORT", 8765, problems, lo=1, hi=65535, integer=True)
    mcp_public_url = env.get("HANDOFF_MCP_PUBLIC_URL", "").strip() or None
    if mcp_public_url and (
        urlsplit(mcp_public_url).scheme not in ("http", "https")
        or not urlsplit(mcp_public_url).netloc
    ):
        problems.add(
            f"HANDOFF_MCP_PUBLIC_URL={mcp_public_url!r} is not a URL; use the address agents call,"
            " e.g. https://desk.example.com/mcp"
        )
    elif mcp_tokens and not mcp_public_url and not is_loopback(mcp_host):
        problems.add(
            f"HANDOFF_MCP_HOST={mcp_host} listens beyond this machine: set HANDOFF_MCP_PUBLIC_URL"
            " to the address agents call (e.g. https://desk.example.com/mcp), so that requests"
            " naming any other host or web origin are refused (DNS rebinding)"
        )
    return {
        "mcp_tokens": mcp_tokens,
        "mcp_host": mcp_host,
        "mcp_port": int(mcp_port),
        "mcp_public_url": mcp_public_url,
        "mcp_webhooks": _mcp_webhooks(env.get("HANDOFF_MCP_WEBHOOKS", ""), mcp_tokens, problems),
    }


def _mcp_webhooks(raw: str, tokens: Mapping[str, str], problems: _Problems) -> dict[str, str]:
    """``name=https://...,name=https://...`` -> {agent: URL}; each agent must have a token (its
    webhook secret is derived from it)."""
    from core.webhooks import notify_url_problem

    urls: dict[str, str] = {}
    for i, pair in enumerate(p.strip() for p in raw.split(",")):
        if not pair:
            continue
        name, sep, url = (part.strip() for part in pair.partition("="))
        where = f"HANDOFF_MCP_WEBHOOKS entry {i + 1}"
        if not sep or not url:
            problems.add(
                f"{where} ({name or '?'}): write name=https://... pairs separated by commas"
            )
        elif name not in tokens:
            problems.add(f"{where}: {name!r} has no token in HANDOFF_MCP_TOKENS")
        elif (problem := notify_url_problem(url)) is not None:
            problems.add(f"{where} ({name}): {problem}")
        else:
            urls[name] = url
    return urls


AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MIN_TOKEN = 24


def _mcp_tokens(raw: str, problems: _Problems) -> dict[str, str]:
    """``name:token,name:token`` -> {name: token}; every problem named (never the token itself)."""
    tokens: dict[str, str] = {}
    for i, pair in enumerate(p.strip() for p in raw.split(",")):
        if not pair:
            continue
        name, sep, token = pair.partition(":")
        name, token = name.strip(), token.strip()
        where = f"HANDOFF_MCP_TOKENS entry {i + 1}"
        if not sep or not token:
            problems.add(
                f"{where} ({name or '?'}) has no token: write name:token pairs separated by commas;"
                " make one with `python bot.py --generate-mcp-token NAME`"
            )
        elif not AGENT_NAME.match(name):
            problems.add(
                f"{where}: the agent name {name!r} must be 1-40 letters, digits, '.', '_' or '-'"
            )
        elif len(token) < MIN_TOKEN or any(c.isspace() or c == "," for c in token):
            problems.add(
                f"{where} ({name}): the token is too short or has spaces; use at least {MIN_TOKEN}"
                " characters, e.g. from `python bot.py --generate-mcp-token NAME`"
            )
        elif name in tokens:
            problems.add(
                f"{where}: the agent name {name!r} appears twice; give each agent its own name"
            )
        elif token in tokens.values():
            problems.add(
                f"{where} ({name}): the same token is given to two agents; each needs its own"
            )
        else:
            tokens[name] = token
    return tokens
