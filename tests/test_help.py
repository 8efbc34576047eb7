"""Help for customers (typed "help" in a DM) and for operators (/help), both generated from what the
bot has."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "DISCORD_BOT.md"


async def test_a_customer_typing_help_learns_what_the_assistant_can_do_and_how_to_reach_a_person(
    desk,
):
    h = desk.h
    await h.dm(0, "Help!")
    [reply] = h.sent()
    assert h.fake.requests == [], "answered by the bot itself"
    text = reply.content
    assert text.startswith("I'm the assistant of Example Shop.")
    assert "- show the account, list orders, look up an order: right away" in text
    assert (
        "- place an order, change a delivery address: after you confirm the exact details" in text
    )
    assert "refund an order, give a discount: once a person on our team approves" in text
    assert "cancel a subscription, delete the account: with a one-time code" in text
    assert "write **talk to a human**" in text
    [(status,)] = await h.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert status == "answered"


async def test_operator_help_lists_every_registered_command_one_line_each(desk):
    h = desk.h
    await desk.slash("help", None)
    parts = await desk.told(2)
    assert all(ephemeral for _, ephemeral in parts) and all(len(t) <= 2000 for t, _ in parts)
    shown = "\n".join(t for t, _ in parts)
    listed = set(re.findall(r"^`/([\w-]+)", shown, flags=re.M))
    guild = h.bot.get_guild(h.bot.settings.guild_id)
    registered = {c.name for c in h.bot.tree.get_commands(guild=guild)} | {
        c.name for c in h.bot.tree.get_commands()
    }
    assert listed == registered and len(listed) == 22
    assert "`/deny <reason> [ticket]` Deny the action proposed on this ticket" in shown
    await desk.slash("help", None, member=desk.stranger)
    assert (await desk.told(3))[-1][0].startswith("Only operators")


async def test_the_setup_guide_lists_every_registered_command(desk):
    guide = GUIDE.read_text(encoding="utf-8")
    bot = desk.h.bot
    guild = bot.get_guild(bot.settings.guild_id)
    for command in [*bot.tree.get_commands(guild=guild), *bot.tree.get_commands()]:
        assert f"`/{command.name}" in guide, f"/{command.name} is missing from DISCORD_BOT.md"


def test_the_docs_stand_on_their_own():
    """A user who clones the project can follow every path the docs name: none leads outside it."""
    root = Path(__file__).resolve().parents[1]
    for name in (
        "README.md",
        "ARCHITECTURE.md",
        "bench/README.md",
        "DISCORD_BOT.md",
        ".env.example",
        "policy.toml",
    ):
        text = (root / name).read_text(encoding="utf-8")
        outside = re.findall(r"(?<![\w.])\.\./[\w./-]+", text)
        assert outside == [], f"{name} points outside the project: {outside}"


def test_the_architecture_map_names_files_that_exist():
    """Every file ARCHITECTURE.md names (``core/engine.py``, ``cogs/discord/catch_up.py`` ...) is
    there."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:core|cogs|storage|agent_api|tests)/[\w/]+\.py)", text))
    assert len(named) >= 15
    # The feature table names files relative to its columns' folders (cogs/, core/, storage/,
    # tests/).
    for row in (
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| feature")
    ):
        cells = row.strip("|").split("|")
        for folder, cell in zip(("cogs", "core", "storage", "tests"), cells[1:5], strict=False):
            for name in re.findall(r"`([\w/]+\.py)", cell):
                named.add(name if (root / name).exists() else f"{folder}/{name}")
    missing = sorted(path for path in named if not (root / path).exists())
    assert missing == [], f"ARCHITECTURE.md names files that are not there: {missing}"
