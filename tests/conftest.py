"""Shared fixtures: a real SQLite file, the real anthropic client against a scripted server,
dpytest."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from actions import shop
from cogs.discord.handoff_bot import HandoffBot
from core.actions import ActionRegistry
from core.assistant import Claude, claude_client
from core.policy import Policy
from storage import AnyDatabase, database_for
from tests import dpytest_ext
from tests.fake_claude import FakeClaude

# Plain helpers (no fixtures) live in tests/support.py, so benches use them without conftest.
from tests.support import POSTGRES_SKIP, FakeClock, postgres_schema, test_policy, test_settings

# Tests that run real bot.py processes against each other (leases, kills, partitions) measure time;
# under pytest-xdist they share one worker (--dist loadgroup in .ci/run), so two of them never
# compete for the cores.
PROCESS_TESTS = (
    "test_failover.py",
    "test_real_bot_process.py",
    "test_simulate.py",
    "test_rehearsal.py",
    "test_rehearsal_browser.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in PROCESS_TESTS:
            item.add_marker(pytest.mark.xdist_group("bot-processes"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not os.environ.get("HANDOFF_TEST_POSTGRES_URL"):
        terminalreporter.write_line(POSTGRES_SKIP)
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        terminalreporter.write_line(
            "Browser test skipped: Debian's chromium and chromium-driver are not installed (the"
            " README's test command installs them where apt-get may run)"
        )


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """A non-daemon thread left running (an unclosed aiosqlite connection) keeps
    pytest from exiting after the last test; CI then hangs until its time limit."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test left non-daemon threads running: {[t.name for t in leaked]}"


@pytest.fixture
async def fake_claude() -> AsyncIterator[FakeClaude]:
    server = FakeClaude()
    await server.start()
    yield server
    await server.stop()


class Harness:
    """Builds bots on one database file, as a deployment would across restarts."""

    def __init__(
        self, tmp_path: Path, fake: FakeClaude, db_target: str | Path | None = None
    ) -> None:
        self.db_path = db_target or tmp_path / "handoff.db"  # a file, or a PostgreSQL URL
        self.knowledge_dir = tmp_path / "knowledge"  # HANDOFF_KNOWLEDGE: absent until a test writes
        self.fake = fake
        self.clock = FakeClock()
        self.bot: HandoffBot | None = None
        self.db: AnyDatabase | None = None
        self.members: list[discord.Member] = []
        self._dms: list[discord.Message] = []
        self._world: dpytest_ext.World | None = None
        self._staff: list[discord.Message] = []

    async def start(
        self,
        *,
        ai: bool = True,
        policy: Policy | None = None,
        members: int = 3,
        concurrency: int = 32,
        llm_timeout: float = 10,
    ) -> HandoffBot:
        self.db = await database_for(self.db_path).open()
        await shop.install(self.db)
        policy = policy or test_policy()
        claude = None
        if ai:
            client = claude_client(
                api_key="test-key", base_url=self.fake.url, max_retries=2, timeout=llm_timeout
            )
            claude = Claude(client, "claude-test", concurrency)
        # A real scheduler: deadlines are armed as in production. They are at FakeClock times
        # (2027), so nothing fires by itself; tests move the clock and call bot.deadlines.run_due(),
        # what a job runs.
        bot = HandoffBot(
            settings=dataclasses.replace(
                test_settings(self.db_path, api_key="k" if ai else None),
                knowledge_dir=self.knowledge_dir,
            ),
            policy=policy,
            db=self.db,
            claude=claude,
            clock=self.clock,
            registry=ActionRegistry().extend(shop.ACTIONS),
            scheduler=AsyncIOScheduler(timezone="UTC"),
        )
        # a restart in tests is abrupt, like a crash; graceful stops are tested apart
        bot.shutdown_grace_seconds = 0
        # dpytest's queue is global: start each bot with it empty. Before it attaches, not after:
        # what the new bot sends while starting (owed messages it resumes) belongs to this test.
        self.sent(), self.staff()
        await dpytest_ext.attach(bot, members=members, world=self._world)
        self.bot = bot
        self.members = self._same_people(dpytest.get_config())
        return bot

    def _same_people(self, config: Any) -> list[discord.Member]:
        """After a restart dpytest builds a new world; bring back the customers of the last one,
        same ids."""
        from discord.ext.test import backend

        if not self.members:
            return list(config.members)
        guild = config.guilds[0]
        members = []
        for old in self.members:
            if guild.get_member(old.id) is None:
                user = backend.make_user(old.name, old.discriminator, id_num=old.id)
                backend.make_member(user, guild)
            members.append(guild.get_member(old.id))
        return members

    async def stop(self) -> None:
        if self.bot is not None:
            self._world = dpytest_ext.capture_world(self.bot)
            await dpytest_ext.detach(self.bot)
            self.bot = None
        if self.db is not None:
            await self.db.close()
            self.db = None
        await dpytest.empty_queue()

    async def restart(self, **kwargs: Any) -> HandoffBot:
        await self.stop()
        return await self.start(**kwargs)

    async def dm(
        self,
        member: discord.Member | int,
        content: str,
        *,
        attachments: list[str] | None = None,
        settle: bool = True,
    ) -> discord.Message:
        if isinstance(member, int):
            member = self.members[member]
        channel = member.dm_channel or await member.create_dm()
        message = await dpytest.message(
            content, channel=channel, member=member, attachments=attachments
        )
        if settle:
            await self.settle()
        return message

    async def settle(self, within: float = 20.0) -> None:
        """Wait for every answer and delivery; a bot that never goes quiet fails the test instead of
        hanging CI."""
        assert self.bot is not None and self.bot.engine is not None
        async with asyncio.timeout(within):
            await self.bot.engine.drain()

    def _drain(self) -> None:
        while not dpytest.sent_queue.empty():
            message = dpytest.sent_queue.get_nowait()
            (self._staff if message.guild is not None else self._dms).append(message)

    def sent(self) -> list[discord.Message]:
        """The DMs the bot sent since the last call, oldest first."""
        self._drain()
        out, self._dms = self._dms, []
        return out

    def staff(self) -> list[discord.Message]:
        """What the bot posted in the staff channel and its threads since the last call, oldest
        first."""
        self._drain()
        out, self._staff = self._staff, []
        return out

    async def fetch(self, sql: str, params: tuple = ()) -> list[Any]:
        assert self.db is not None
        return await self.db.fetchall(sql, params)


@pytest.fixture(scope="session", autouse=True)
def own_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test process works in a folder of its own: dpytest saves uploads as ./dpytest_N.dat,
    numbered per process, so two pytest-xdist workers in one folder would overwrite (and clean up)
    each other's files."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)


# every test that runs a bot runs on both (PostgreSQL: where a server answers)
ENGINES = ["sqlite", "postgresql"]


@contextlib.asynccontextmanager
async def bot_database(tmp_path: Path, engine: str) -> AsyncIterator[str | Path]:
    """Where a test's bot keeps its data: a SQLite file, or a new schema on the PostgreSQL server
    that HANDOFF_TEST_POSTGRES_URL names (skipped with one line when it is not set)."""
    if engine == "sqlite":
        yield tmp_path / "handoff.db"
        return
    base = os.environ.get("HANDOFF_TEST_POSTGRES_URL")
    if not base:
        pytest.skip(POSTGRES_SKIP)
    async with postgres_schema(base) as url:
        yield url


@pytest.fixture
async def pg_url(tmp_path: Path) -> AsyncIterator[str | Path]:
    """A new schema on the test PostgreSQL server, for tests of PostgreSQL's own concerns."""
    async with bot_database(tmp_path, "postgresql") as url:
        yield url


@pytest.fixture(params=ENGINES)
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, fake_claude: FakeClaude
) -> AsyncIterator[Harness]:
    async with bot_database(tmp_path, request.param) as target:
        h = Harness(tmp_path, fake_claude, target)
        yield h
        with contextlib.suppress(Exception):
            await h.stop()
    for leftover in Path(".").glob("dpytest_*.dat"):  # noqa: ASYNC240 - test clean-up of dpytest's files
        leftover.unlink()


async def eventually(
    predicate: Callable[[], object], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll until ``predicate()`` is true; fail the test (instead of hanging) after ``within``
    seconds."""
    step = 0.005
    for _ in range(int(within / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


async def eventually_async(
    read: Callable[[], Awaitable[Any]], ok: Callable[[Any], object], what: str, within: float = 5.0
) -> None:
    """``eventually`` for what must be read with an await (a database row)."""
    for _ in range(int(within / 0.05)):
        if ok(await read()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def http_error(status: int, code: int = 0) -> discord.HTTPException:
    from discord.ext.test.backend import FakeRequest

    response = FakeRequest(status, "scripted")
    body = {"code": code, "message": f"scripted {status}"}
    if status == 403:
        return discord.Forbidden(response, body)
    if status == 404:
        return discord.NotFound(response, body)
    if status >= 500:
        return discord.DiscordServerError(response, body)
    return discord.HTTPException(response, body)


class SendRecorder:
    """Wraps dpytest's send_message: records every attempt's payload and raises scripted Discord
    errors."""

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot
        self.failures: list[discord.HTTPException | None] = []
        self.attempts: list[dict[str, Any]] = []
        self._original = bot.http.send_message
        bot.http.send_message = self._send  # type: ignore[method-assign]

    def fail_next(self, *errors: discord.HTTPException | None) -> None:
        """The next sends fail with these errors in turn; None lets that send through."""
        self.failures.extend(errors)

    async def _send(self, channel_id: int, *, params: Any) -> Any:
        self.attempts.append(dict(dpytest_ext.json_of(params.payload, params.multipart) or {}))
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        # dpytest reads the target channel from its caller's local variable named `channel`.
        dm = self.bot._connection._get_private_channel(channel_id)
        channel = dm or self.bot.get_channel(channel_id)  # noqa: F841
        return await self._original(channel_id, params=params)


@pytest.fixture
async def desk(harness: Harness) -> AsyncIterator[Any]:
    """A started bot with customers 0 and 1, an operator (2) and a member without the role (3)."""
    from tests.desk_support import Desk

    await harness.start(members=4)
    harness.members[2] = dpytest_ext.make_operator(harness.bot, harness.members[2])
    interactions = dpytest_ext.Interactions(harness.bot)
    yield Desk(harness, interactions)
    interactions.close()


@pytest.fixture
async def agents(desk: Any) -> AsyncIterator[Any]:
    """The desk with its MCP endpoint served on 127.0.0.1 (tests.test_agents.Agents)."""
    from tests.test_agents import Agents

    world = Agents(desk)
    await world.serve()
    yield world
    await world.stop()
