"""The real ``python bot.py`` as a process, against local stand-ins for Discord (REST + gateway) and
Claude."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rehearsal.rehearse import free_port
from tests.conftest import eventually
from tests.fake_claude import FakeClaude
from tests.fake_discord import FakeDiscord
from tests.support import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
CUSTOMER = 600000000000000001


def bot_env(discord: FakeDiscord, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The real bot's environment against the stand-ins: nothing of this machine's Discord or Claude
    settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "ANTHROPIC_", "HANDOFF_"))
    }
    env.update(
        {
            "DISCORD_TOKEN": "fake.token.value",
            "DISCORD_GUILD_ID": str(discord.guild_id),
            "DISCORD_STAFF_CHANNEL_ID": str(discord.staff_channel_id),
            "DISCORD_OPERATOR_ROLE_ID": str(discord.operator_role_id),
            "HANDOFF_DB": str(tmp_path / "h.db"),
            "HANDOFF_SECRET_KEY": TEST_SECRET_KEY,
            "DISCORD_API_BASE": discord.url,
            **extra,
        }
    )
    return env


class RealBot:
    """``python bot.py`` as a child process against the stand-ins, started and stopped as an
    operator would."""

    def __init__(
        self, discord: FakeDiscord, env: dict[str, str], log: Path, open_files: int | None = None
    ) -> None:
        self.discord, self.env, self.log = discord, env, log
        # a hard limit on the process's open files (as a small container has)
        self.open_files = open_files
        self.process: asyncio.subprocess.Process | None = None
        self._log_from = 0  # where this start's lines begin in the log

    def _limit(self) -> None:
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    async def spawn(self) -> None:
        """Start the process without waiting for it to connect (a standby does not)."""
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "bot.py",
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=out,
                preexec_fn=self._limit if self.open_files else None,
            )

    def said(self, words: str) -> bool:
        """The log of this start has ``words``."""
        if not self.log.exists():
            return False
        with self.log.open("rb") as f:
            f.seek(self._log_from)
            return words.encode() in f.read()

    async def start(self) -> None:
        self.discord.identified.clear()
        await self.spawn()
        try:
            await asyncio.wait_for(self.discord.identified.wait(), 30)
        except TimeoutError:
            raise AssertionError(self.log.read_text()[-3000:]) from None

    async def stop(self) -> None:
        """SIGTERM, as systemd or docker stop sends it: a graceful exit with status 0."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.process.wait(), 20) == 0

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def real_bot(
    tmp_path: Path, *, with_claude: bool = True, open_files: int | None = None, **extra: str
) -> AsyncIterator[RealBot]:
    discord = await FakeDiscord().start()
    claude = FakeClaude() if with_claude else None
    if claude is not None:
        await claude.start()
        extra.update(ANTHROPIC_API_KEY="k", ANTHROPIC_BASE_URL=claude.url)
    bot = RealBot(discord, bot_env(discord, tmp_path, **extra), tmp_path / "bot.log", open_files)
    try:
        yield bot
    finally:
        await bot.kill()
        if claude is not None:
            await claude.stop()
        await discord.stop()


AGENT_TOKEN = "t" * 30


@contextlib.asynccontextmanager
async def bot_serving_agents(tmp_path: Path, **extra: str) -> AsyncIterator[tuple[RealBot, str]]:
    """A real bot that serves MCP to the agent fraud-review (AGENT_TOKEN) on a free port, started:
    the bot and its endpoint's URL."""
    port = free_port()  # for the MCP endpoint
    async with real_bot(
        tmp_path,
        with_claude=False,
        HANDOFF_MCP_TOKENS=f"fraud-review:{AGENT_TOKEN}",
        HANDOFF_MCP_PORT=str(port),
        **extra,
    ) as bot:
        await bot.start()
        await eventually(
            lambda: "MCP server for agents at" in bot.log.read_text(),
            within=15,
            what="the MCP server",
        )
        yield bot, f"http://127.0.0.1:{port}/mcp"


@contextlib.asynccontextmanager
async def agent_client(url: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_the_real_bot_answers_a_dm_and_stops_gracefully_on_sigterm(tmp_path):
    async with real_bot(tmp_path) as bot:
        discord, log = bot.discord, bot.log
        await bot.start()
        _, delivered = await discord.customer_writes(CUSTOMER, "hello there")
        assert delivered
        await eventually(lambda: discord.messages.get(CUSTOMER + 1), within=15, what="the answer")
        assert [m["content"] for m in discord.messages[CUSTOMER + 1]] == ["You said: hello there"]
        # discord.py says "ready" about 2 s after the guilds arrived; the set-up check runs then.
        await eventually(
            lambda: "staff desk set-up" in log.read_text(), within=15, what="the set-up check"
        )
        await bot.stop()
    printed = log.read_text()
    assert "Handoff stopped (SIGTERM): in-flight work finished; database closed." in printed
    assert "staff desk set-up: channel, threads and operator pings all work" in printed


async def test_the_real_bot_serves_agents_over_mcp_and_a_click_approves(tmp_path):
    async with bot_serving_agents(tmp_path) as (bot, url):
        discord = bot.discord
        async with agent_client(url) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == {"ask_human", "request_approval", "get_result", "notify_operators"}
            asked = await client.call_tool(
                "request_approval",
                {
                    "action": "block_card",
                    "details": {"card": "…4242"},
                    "wait_seconds": 0,
                    "idempotency_key": "tx-1",
                },
            )
            assert asked.structured_content == {"ticket": 1, "status": "waiting"}

            def card() -> dict[str, Any] | None:
                return staff_card(discord, "ticket:approve:1")

            await eventually(card, within=15, what="the card with its buttons")
            assert await discord.operator_clicks(card(), "ticket:approve:1")
            result = await client.call_tool("get_result", {"ticket": 1, "wait_seconds": 10})
            assert result.structured_content["status"] == "approved"
            assert result.structured_content["decided_by"] == "operator"
        await bot.stop()


def staff_card(discord: FakeDiscord, custom_id: str) -> dict[str, Any] | None:
    """The staff channel's message with this button, if posted."""
    return next(
        (
            m
            for m in discord.messages.get(discord.staff_channel_id, [])
            if any(
                c["custom_id"] == custom_id
                for row in m.get("components") or []
                for c in row["components"]
            )
        ),
        None,
    )


async def test_a_typed_answer_with_choices_as_discord_sends_a_submitted_form(tmp_path):
    """The Answer form's select is submitted the way Discord does it (a label holding a select's
    chosen values), to the real bot process: a value out of range is refused, then the agent gets
    answer_data."""
    schema = {
        "type": "object",
        "properties": {
            "percent": {"type": "integer", "minimum": 0, "maximum": 30},
            "offer": {"enum": ["discount", "free shipping"]},
        },
        "required": ["percent", "offer"],
    }
    async with bot_serving_agents(tmp_path) as (bot, url):
        discord = bot.discord
        async with agent_client(url) as client:
            asked = await client.call_tool(
                "ask_human",
                {"question": "What do we offer Ada?", "answer_schema": schema, "wait_seconds": 0},
            )
            assert asked.structured_content == {"ticket": 1, "status": "waiting"}
            await eventually(
                lambda: staff_card(discord, "ticket:answer:1"), within=15, what="the Answer button"
            )
            assert await discord.operator_clicks(
                staff_card(discord, "ticket:answer:1"), "ticket:answer:1"
            )
            await eventually(
                lambda: discord.form_fields("ticket:answer-form:1"), within=10, what="the form"
            )
            fields = discord.form_fields("ticket:answer-form:1")
            assert fields["offer"]["type"] == 3 and fields["offer"]["labelled"]
            assert fields["offer"]["options"] == ["discount", "free shipping"]
            assert await discord.operator_submits(
                "ticket:answer-form:1", {"percent": "45", "offer": "discount"}
            )
            await eventually(
                lambda: any(
                    "45 is above the maximum 30" in str(body) for body in discord.interactions
                ),
                within=10,
                what="the refusal in the form's reply",
            )
            assert await discord.operator_submits(
                "ticket:answer-form:1", {"percent": "15", "offer": "free shipping"}
            )
            result = await client.call_tool("get_result", {"ticket": 1, "wait_seconds": 10})
            assert result.structured_content["status"] == "answered"
            assert result.structured_content["answer_data"] == {
                "percent": 15,
                "offer": "free shipping",
            }
        await bot.stop()


async def test_the_real_bot_answers_a_dm_sent_while_it_was_stopped(tmp_path):
    async with real_bot(tmp_path) as bot:
        discord, log = bot.discord, bot.log
        answers = lambda: [m["content"] for m in discord.messages.get(CUSTOMER + 1, [])]  # noqa: E731
        await bot.start()
        await discord.customer_writes(CUSTOMER, "hello there")
        await eventually(
            lambda: answers() == ["You said: hello there"], within=15, what="the first answer"
        )
        await bot.stop()
        _, delivered = await discord.customer_writes(CUSTOMER, "are you there?")
        assert not delivered  # no bot is connected: only Discord has it
        await bot.start()
        started = asyncio.get_running_loop().time()
        await eventually(
            lambda: len(answers()) == 2, within=15, what="the answer to the DM sent while stopped"
        )
        took = asyncio.get_running_loop().time() - started
        assert answers()[1] == "You said: are you there?" and took < 10
        await eventually(
            lambda: "message(s) caught up" in log.read_text(), within=5, what="the catch-up line"
        )
        assert (
            "1 channel(s) checked (1 DM, 0 ticket thread), 1 message(s) caught up"
            in log.read_text()
        )
        await bot.stop()


async def test_a_second_bot_on_the_same_sqlite_file_refuses_to_start(tmp_path):
    async with real_bot(tmp_path) as bot:
        await bot.start()
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "bot.py",
            cwd=ROOT,
            env=bot.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 2
        assert f"another bot.py (pid {bot.process.pid}) already runs on this file" in out.decode()
        assert bot.process.returncode is None, "the first one carries on"
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "bot.py",
            "--migrate-to",
            "postgresql://127.0.0.1:1/none",
            cwd=ROOT,
            env=bot.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(migrate.communicate(), 30)
        assert (
            migrate.returncode == 2 and f"a bot.py (pid {bot.process.pid}) runs on" in out.decode()
        )
        assert "stop it first" in out.decode()
        await bot.stop()


async def test_half_open_mcp_connections_do_not_starve_the_bot(tmp_path):
    """300 connections that send a request line and one header, then nothing, against a bot allowed
    256 open files: customers are still answered, agents are served once the half-open ones are
    closed, and the log says so in a line or two, not thousands."""
    port, token = free_port(), "t" * 30
    policy = (
        (ROOT / "policy.toml").read_text().replace("request_seconds = 10", "request_seconds = 2")
    )
    (tmp_path / "policy.toml").write_text(policy)
    async with real_bot(
        tmp_path,
        open_files=256,
        HANDOFF_MCP_TOKENS=f"voice:{token}",
        HANDOFF_MCP_PORT=str(port),
        HANDOFF_POLICY=str(tmp_path / "policy.toml"),
    ) as bot:
        discord, log = bot.discord, bot.log
        await bot.start()
        await eventually(
            lambda: "MCP server for agents at" in log.read_text(), within=15, what="the MCP server"
        )
        held = []
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                break
            writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(writer)
        await discord.customer_writes(CUSTOMER, "hello there")
        await eventually(lambda: discord.messages.get(CUSTOMER + 1), within=15, what="the answer")
        assert [m["content"] for m in discord.messages[CUSTOMER + 1]] == ["You said: hello there"]

        import httpx2

        async def agent_served() -> bool:
            async with httpx2.AsyncClient(timeout=5) as http:
                try:
                    r = await http.post(
                        f"http://127.0.0.1:{port}/mcp",
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Accept": "application/json, text/event-stream",
                        },
                        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    )
                except httpx2.HTTPError:
                    return False
                return r.status_code == 200

        for _ in range(40):
            if await agent_served():
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the agent was never served after the half-open connections")
        for writer in held:
            writer.close()
        await bot.stop()
    printed = log.read_text()
    # hard = soft = 256 here
    assert "open files" not in printed or "soft limit raised" not in printed
    assert printed.count("socket.accept() out of system resource") == 0
    assert 1 <= printed.count("MCP port: refused") <= 3, printed[-2000:]


async def test_a_fresh_database_after_an_old_one_posts_anew_on_the_same_discord(tmp_path):
    """Discord answers a send whose nonce the bot used before with the old message and posts
    nothing: a second database (a reset during set-up, a restored backup) numbers from 1 again, and
    must not reuse nonces."""
    async with real_bot(tmp_path, with_claude=False) as bot:
        discord = bot.discord

        def cards() -> list[dict]:
            return [
                m for m in discord.messages.get(discord.staff_channel_id, []) if m.get("embeds")
            ]

        def notices() -> list[str]:
            return [m["content"] for m in discord.messages.get(CUSTOMER + 1, [])]

        await bot.start()
        await discord.customer_writes(CUSTOMER, "hello, anyone there?")
        await eventually(
            lambda: len(cards()) == 1 and len(discord.threads) == 1 and notices(),
            within=15,
            what="the first database's ticket, thread and notice",
        )
        await bot.stop()

        bot.env["HANDOFF_DB"] = str(tmp_path / "fresh.db")
        await bot.start()
        await discord.customer_writes(CUSTOMER, "hello again")
        await eventually(
            lambda: len(cards()) == 2 and len(discord.threads) == 2 and len(notices()) == 2,
            within=15,
            what="the fresh database's own ticket #1, its thread and notice",
        )
        await bot.stop()
    assert "160004" not in bot.log.read_text()


async def test_escalation_steps_fire_once_each_across_a_kill_9(tmp_path):
    leads, managers = 111111111111111111, 222222222222222222
    policy = tmp_path / "policy.toml"
    policy.write_text(
        "[desk]\nescalation = ["
        f"{{after_minutes = 0.05, mention_role_id = {leads}}}, "
        f"{{after_minutes = 0.1, mention_role_id = {managers}}}]\n"
        "[timeouts]\nticket_answer_seconds = 3600\n"
    )
    async with bot_serving_agents(tmp_path, HANDOFF_POLICY=str(policy)) as (bot, url):
        discord = bot.discord
        async with agent_client(url) as client:
            asked = await client.call_tool(
                "ask_human", {"question": "Is this transfer legitimate?", "wait_seconds": 0}
            )
        assert asked.structured_content == {"ticket": 1, "status": "waiting"}
        await eventually(lambda: discord.threads, within=15, what="the ticket's thread")
        [thread_id] = discord.threads
        await bot.kill()  # kill -9 before either step (3 s and 6 s after the ticket opened)
        await asyncio.sleep(7)
        await bot.start()

        def mentions() -> list[str]:
            posted = [m["content"] for m in discord.messages.get(thread_id, [])]
            return [p.split(" ")[0] for p in posted if "Escalated" in p]

        await eventually(lambda: len(mentions()) == 2, within=15, what="both escalation steps")
        await asyncio.sleep(1.5)  # more deadlines and outbox rounds: nothing again
        assert mentions() == [f"<@&{leads}>", f"<@&{managers}>"]
        await bot.stop()
