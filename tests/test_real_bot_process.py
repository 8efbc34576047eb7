"""The real ``python bot.py`` as a process, against local stand-ins for Discord (REST + gateway) and Claude."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.conftest import eventually
from tests.fake_claude import FakeClaude
from tests.fake_discord import FakeDiscord
from tests.support import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
CUSTOMER = 600000000000000001


async def test_the_real_bot_answers_a_dm_and_stops_gracefully_on_sigterm(tmp_path):
    discord = await FakeDiscord().start()
    claude = FakeClaude()
    await claude.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ANTHROPIC_", "HANDOFF_"))}
    env.update({"DISCORD_TOKEN": "fake.token.value", "DISCORD_GUILD_ID": str(discord.guild_id),
                "DISCORD_STAFF_CHANNEL_ID": str(discord.staff_channel_id),
                "DISCORD_OPERATOR_ROLE_ID": str(discord.operator_role_id), "ANTHROPIC_API_KEY": "k",
                "ANTHROPIC_BASE_URL": claude.url, "HANDOFF_DB": str(tmp_path / "h.db"),
                "HANDOFF_SECRET_KEY": TEST_SECRET_KEY, "DISCORD_API_BASE": discord.url})
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        bot = await asyncio.create_subprocess_exec(sys.executable, "bot.py", cwd=ROOT, env=env, stdout=out,
                                                   stderr=out)
    try:
        await asyncio.wait_for(discord.identified.wait(), 30)
        _, delivered = await discord.customer_writes(CUSTOMER, "hello there")
        assert delivered
        await eventually(lambda: discord.messages.get(CUSTOMER + 1), within=15, what="the answer")
        assert [m["content"] for m in discord.messages[CUSTOMER + 1]] == ["You said: hello there"]
        # discord.py says "ready" about 2 s after the guilds arrived; the set-up check runs then.
        await eventually(lambda: "staff desk set-up" in log.read_text(), within=15, what="the set-up check")
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 20) == 0
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()
        await claude.stop()
        await discord.stop()
    printed = log.read_text()
    assert "Handoff stopped (SIGTERM): in-flight work finished; database closed." in printed
    assert "staff desk set-up: channel, threads and operator pings all work" in printed
