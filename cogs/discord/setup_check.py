"""After login, before the first ticket: can the bot work in the staff channel, and can it ping the
operators?

Each problem is one line naming the fix; they are logged at start and shown to operators in /policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

# What the bot needs in the staff channel, and where to turn each on.
STAFF_PERMISSIONS = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
    ("attach_files", "Attach Files"),
    ("read_message_history", "Read Message History"),
    ("create_public_threads", "Create Public Threads"),
    ("send_messages_in_threads", "Send Messages in Threads"),
    ("manage_threads", "Manage Threads"),  # closing a ticket archives and locks its thread
)


def staff_setup_problems(bot: HandoffBot) -> list[str]:
    """What keeps tickets from being posted or operators from being pinged; empty when all is
    well."""
    settings = bot.settings
    guild = bot.get_guild(settings.guild_id)
    if guild is None:
        return [
            f"The bot is not in the server DISCORD_GUILD_ID={settings.guild_id}: invite it with the"
            " link from DISCORD_BOT.md step 4, or fix the id."
        ]
    problems = []
    me = guild.me
    channel = guild.get_channel(settings.staff_channel_id)
    if channel is None:
        problems.append(
            "The bot cannot see the staff channel"
            f" DISCORD_STAFF_CHANNEL_ID={settings.staff_channel_id}: in a private channel, add the"
            " bot (channel settings > Permissions > Add members or roles), or fix the id."
        )
    elif not isinstance(channel, discord.TextChannel):
        problems.append(
            f"DISCORD_STAFF_CHANNEL_ID={settings.staff_channel_id} is a {channel.type} channel; use"
            " a text channel (tickets are messages with threads)."
        )
    perms = channel.permissions_for(me) if channel is not None and me is not None else None
    if perms is not None and channel is not None:
        missing = [label for flag, label in STAFF_PERMISSIONS if not getattr(perms, flag)]
        if missing:
            problems.append(
                f"In #{channel.name} the bot lacks: {', '.join(missing)}. Give its role these in"
                " the channel's permissions (DISCORD_BOT.md step 4 lists them)."
            )
    role = guild.get_role(settings.operator_role_id)
    if role is None:
        problems.append(
            f"DISCORD_OPERATOR_ROLE_ID={settings.operator_role_id} is not a role of this server:"
            " copy the operators' role id (Server Settings > Roles > right-click > Copy Role ID)."
        )
    elif not role.mentionable and not (perms is not None and perms.mention_everyone):
        problems.append(
            f"Operators are never pinged: the role @{role.name} is not mentionable and the bot"
            " lacks 'Mention @everyone, @here, and All Roles'. Turn on Server Settings > Roles >"
            f" {role.name} > 'Allow anyone to @mention this role', or give the bot that permission."
        )
    return problems
