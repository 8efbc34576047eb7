"""Shared benchmark plumbing: the scripted Claude server in its own process, a bot on dpytest,
figures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from actions import shop
from cogs.discord.handoff_bot import HandoffBot
from core.actions import ActionRegistry
from core.assistant import Claude, claude_client
from core.policy import Policy
from storage import AnyDatabase, Database, PostgresDatabase
from tests import dpytest_ext
from tests.support import postgres_schema, test_policy, test_settings

ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def claude_server(latency: float) -> AsyncIterator[str]:
    """The scripted Messages API server, in a separate process so its CPU is not counted as the
    bot's."""
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "tests.fake_claude", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        yield url.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def bench_database(tmp: str, postgres: str | None) -> AsyncIterator[AnyDatabase]:
    """A SQLite file in ``tmp``, or a fresh schema on the PostgreSQL server ``postgres`` names."""
    if postgres is None:
        async with Database(Path(tmp) / "bench.db") as db:
            yield db
        return
    async with postgres_schema(postgres) as url, PostgresDatabase(url) as db:
        yield db


@contextlib.asynccontextmanager
async def bench_bot(
    url: str,
    customers: int,
    *,
    concurrency: int,
    postgres: str | None = None,
    knowledge_dir: Path | None = None,
    policy: Policy | None = None,
) -> AsyncIterator[HandoffBot]:
    """A bot on dpytest with the example shop; ``knowledge_dir``: HANDOFF_KNOWLEDGE (default: an
    empty folder, never the checkout's knowledge/)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_database(tmp, postgres) as db:
            await shop.install(db)
            policy = policy or test_policy()
            registry = ActionRegistry().extend(shop.ACTIONS)
            client = claude_client(api_key="bench", base_url=url, max_retries=0, timeout=30)
            claude = Claude(client, "claude-bench", concurrency)
            bot = HandoffBot(
                settings=dataclasses.replace(
                    test_settings(Path(tmp) / "bench.db"),
                    knowledge_dir=knowledge_dir or Path(tmp) / "knowledge",
                ),
                policy=policy,
                db=db,
                claude=claude,
                registry=registry,
            )
            await dpytest_ext.attach(bot, members=customers)
            try:
                yield bot
            finally:
                await dpytest_ext.detach(bot)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:.2f} ms, p99 {percentile(values, 99) * 1000:.2f}"
        f" ms, max {max(values) * 1000:.2f} ms"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
