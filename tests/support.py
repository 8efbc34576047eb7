"""Plain test helpers without fixtures: a fake clock, settings and a policy for tests.

Benchmarks use them too (bench/_harness.py), which is why they are not in conftest.py.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core.policy import Policy, defaults
from core.settings import Settings

GUILD_ID = 900000000000000001


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


TEST_SECRET_KEY = "bxTD7p4sVxnOJwQyQwM3y7pJmS3F4rVf0S9c6N0m1i8="  # a fixed Fernet key for tests


def test_settings(db_path: Path, *, api_key: str | None = "test-key") -> Settings:
    return Settings(
        discord_token="test.token.value",
        guild_id=GUILD_ID,
        staff_channel_id=900000000000000002,
        operator_role_id=900000000000000003,
        operator_user_id=None,
        anthropic_api_key=api_key,
        anthropic_model="claude-test",
        anthropic_base_url=None,
        db_path=db_path,
        policy_path=Path("policy.toml"),
        llm_concurrency=32,
        llm_max_retries=2,
        llm_timeout_seconds=10,
        log_level="INFO",
        secret_key=TEST_SECRET_KEY,
    )


def test_policy(**overrides: dict[str, Any]) -> Policy:
    policy = defaults()
    values = {section: dict(keys) for section, keys in policy.values.items()}
    values["delivery"].update(retry_base_seconds=0.01, retry_max_seconds=0.05)
    values["llm"].update(retry_after_failure_seconds=3600)  # tests trigger retries themselves
    # the scheduler runs on real time: never post during a test run
    values["summary"].update(cron="0 9 29 2 *")
    # drafts are Claude calls of their own: only the copilot's tests (and benches) script them
    values["copilot"].update(enabled=False)
    for section, keys in overrides.items():
        values[section].update(keys)
    return Policy(values, "tests")


test_settings.__test__ = False  # type: ignore[attr-defined]  # helpers, not tests, where they are imported
test_policy.__test__ = False  # type: ignore[attr-defined]


POSTGRES_SKIP = (
    "PostgreSQL tests skipped: HANDOFF_TEST_POSTGRES_URL is not set (the README's test command sets"
    " it when a server answers on 127.0.0.1:5432)"
)


@contextlib.asynccontextmanager
async def postgres_schema(base_url: str) -> AsyncIterator[str]:
    """A new, empty schema on the test server; yields a URL whose connections use it (dropped
    afterwards)."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        joiner = "&" if "?" in base_url else "?"
        # Every connection to it is named after it: whatever a killed or cut-off bot left open (a
        # transaction holding locks) is ended before the schema is dropped, instead of the drop
        # waiting for it forever.
        yield f"{base_url}{joiner}search_path={name}&application_name={name}"
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1"
            " AND pid != pg_backend_pid()",
            name,
        )
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()
