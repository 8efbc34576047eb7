"""Saved replies for operators: /snippet add|list|remove, sent with /reply snippet:
(autocompleted)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly, answer, is_operator, operator_of
from core.snippets import PLACEHOLDERS, name_problem, text_problem
from core.tickets import clip

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot


class Snippets(OperatorsOnly, commands.Cog):
    snippet = app_commands.Group(name="snippet", description="Saved replies for /reply snippet:")

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @snippet.command(
        name="add", description="Save a reply; {customer}, {ticket} and {operator} are filled in."
    )
    @app_commands.describe(name="a short name, e.g. refund-policy", text="the reply")
    async def add(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 32],
        text: app_commands.Range[str, 1, 1800],
    ) -> None:
        name = name.strip().lower()
        problem = name_problem(name) or text_problem(text)
        if problem:
            await answer(interaction, f"Not saved: {problem}.")
            return
        added = await self.bot.app.snippets.add(
            name, text, operator_of(interaction).actor, self.bot.clock.now()
        )
        await answer(
            interaction,
            (
                f"Saved `{name}`. Send it with `/reply snippet:{name}`."
                if added
                else (
                    f"A snippet named `{name}` exists already: `/snippet remove name:{name}` first,"
                    " or pick another name."
                )
            ),
        )

    @snippet.command(name="list", description="The saved replies.")
    async def list_(self, interaction: discord.Interaction) -> None:
        saved = await self.bot.app.snippets.all()
        if not saved:
            await answer(
                interaction,
                "No snippets yet: `/snippet add name text`. Placeholders: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
            )
            return
        lines = [f"`{name}` {clip(' '.join(text.split()), 120)}" for name, text in saved]
        await answer(interaction, clip("\n".join(lines), 1900))

    @snippet.command(name="remove", description="Delete a saved reply.")
    @app_commands.describe(name="the snippet's name")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        removed = await self.bot.app.snippets.remove(
            name.strip().lower(), operator_of(interaction).actor, self.bot.clock.now()
        )
        await answer(
            interaction, f"Removed `{name}`." if removed else f"There is no snippet named `{name}`."
        )

    @remove.autocomplete("name")
    async def _names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await snippet_choices(self.bot, interaction, current)


async def snippet_choices(
    bot: HandoffBot, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """Up to 25 snippet names starting with (or containing) what was typed, for autocomplete.
    Operators only: discord.py runs no ``interaction_check`` for autocomplete, so the names would be
    anyone's to list."""
    if not is_operator(bot, interaction.user):
        return []
    typed = current.strip().lower()
    names = [name for name, _ in await bot.app.snippets.all()]
    ranked = [n for n in names if n.startswith(typed)] + [
        n for n in names if typed in n and not n.startswith(typed)
    ]
    return [app_commands.Choice(name=n, value=n) for n in ranked[:25]]


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Snippets(bot), guild=discord.Object(bot.settings.guild_id))
