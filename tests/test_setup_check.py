"""The start-up check of the staff desk: channel visible and writable, threads, an operator role
that pings."""

from __future__ import annotations

import logging

import discord
from discord.ext.test import backend

from cogs.discord.setup_check import STAFF_PERMISSIONS, staff_setup_problems
from tests.conftest import eventually

EVERYTHING = discord.Permissions(**dict.fromkeys((flag for flag, _ in STAFF_PERMISSIONS), True))


def world(bot: discord.Client) -> tuple[discord.Guild, discord.TextChannel, discord.Role]:
    guild = bot.get_guild(bot.settings.guild_id)
    return (
        guild,
        guild.get_channel(bot.settings.staff_channel_id),
        guild.get_role(bot.settings.operator_role_id),
    )


async def test_a_well_set_up_server_has_no_problems_and_each_gap_names_its_fix(desk, caplog):
    bot = desk.h.bot
    guild, channel, role = world(bot)
    backend.update_role(guild.default_role, permissions=EVERYTHING.value)
    backend.update_role(role, mentionable=True)
    assert staff_setup_problems(bot) == []

    backend.update_role(role, mentionable=False)
    [ping] = staff_setup_problems(bot)
    assert "Operators are never pinged" in ping and "Allow anyone to @mention this role" in ping
    backend.update_role(
        guild.default_role,
        permissions=EVERYTHING.value | discord.Permissions(mention_everyone=True).value,
    )
    assert staff_setup_problems(bot) == [], "the bot may ping any role"

    backend.update_text_channel(
        channel,
        guild.default_role,
        discord.PermissionOverwrite(create_public_threads=False, send_messages=False),
    )
    perms, ping = staff_setup_problems(bot)
    # Discord (and discord.py) deny embeds, files and mentions where a bot cannot send messages.
    assert perms.startswith(
        f"In #{channel.name} the bot lacks: Send Messages, Embed Links, Attach Files, "
        "Create Public Threads"
    )
    assert "Operators are never pinged" in ping

    backend.update_text_channel(
        channel, guild.default_role, discord.PermissionOverwrite(view_channel=False)
    )
    with caplog.at_level(logging.ERROR):
        bot.dispatch("ready")  # discord.py's own dispatch, as after a login
        await eventually(
            lambda: any("staff desk set-up" in r.getMessage() for r in caplog.records),
            what="the set-up check",
        )
    assert any(
        "staff desk set-up: In #" in r.getMessage() and "View Channel" in r.getMessage()
        for r in caplog.records
    ), "each problem is a log line"

    await desk.slash("policy", None)
    [(shown, ephemeral)] = await desk.told(1)
    assert (
        ephemeral
        and shown.startswith("**Set-up problems** (fix these first):")
        and "View Channel" in shown
    )


async def test_a_wrong_role_or_channel_id_is_named(desk):
    import dataclasses

    bot = desk.h.bot
    good = bot.settings
    bot.settings = dataclasses.replace(
        good, operator_role_id=123456789012345678, staff_channel_id=223456789012345678
    )
    problems = staff_setup_problems(bot)
    assert any("DISCORD_STAFF_CHANNEL_ID=223456789012345678" in p for p in problems)
    assert any("DISCORD_OPERATOR_ROLE_ID=123456789012345678 is not a role" in p for p in problems)
    bot.settings = dataclasses.replace(good, guild_id=323456789012345678)
    assert staff_setup_problems(bot)[0].startswith("The bot is not in the server DISCORD_GUILD_ID=")
    bot.settings = good
