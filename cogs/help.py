"""/help for operators: every slash command the bot registered, one line each, generated (never
stale)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly, answer
from core.text import split_message

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot


def command_lines(
    commands_: Sequence[
        app_commands.Command[Any, ..., Any] | app_commands.Group | app_commands.ContextMenu
    ],
) -> list[str]:
    lines = []
    for command in sorted(commands_, key=lambda c: c.name):
        if isinstance(command, app_commands.ContextMenu):
            continue  # a right-click menu, not a slash command
        if isinstance(command, app_commands.Group):  # /snippet add, /snippet list...: one line each
            lines.extend(command_lines(command.commands))
            continue
        options = " ".join(
            f"[{p.display_name}]" if not p.required else f"<{p.display_name}>"
            for p in command.parameters
        )
        lines.append(
            f"`/{command.qualified_name}{' ' + options if options else ''}` {command.description}"
        )
    return lines


class Help(OperatorsOnly, commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="help", description="What the operator commands do (only you see it)."
    )
    async def help(self, interaction: discord.Interaction) -> None:
        guild = discord.Object(self.bot.settings.guild_id)
        staff = command_lines(self.bot.tree.get_commands(guild=guild))
        dms = command_lines(self.bot.tree.get_commands())
        text = "\n".join(
            [
                "**Operator commands** (in the staff channel or a ticket's thread; `<needed>`, "
                "`[optional]`; in a thread the ticket is that thread's):",
                *staff,
                "",
                "**Customers, in DMs with the bot:**",
                *dms,
                "Ticket buttons do the same as the commands. Messages starting with "
                f"`{self.bot.policy.desk.note_prefix}` in a thread stay between operators.",
            ]
        )
        # as many private messages as Discord's 2000 characters need, split between lines
        for part in split_message(text):
            await answer(interaction, part)


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Help(bot), guild=discord.Object(bot.settings.guild_id))
