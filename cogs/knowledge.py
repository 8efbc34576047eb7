"""The knowledge for operators: /kb add|list|show|search|remove|reload. Saving a ticket's answer is
the ticket's **Save as knowledge** button (``cogs/discord/ticket_views.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly, answer, operator_of

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot


def _passage_id(raw: str) -> int | None:
    """``K12``, ``k12`` or ``12``."""
    text = raw.strip().lstrip("Kk")
    return int(text) if text.isdigit() else None


class KnowledgeCommands(OperatorsOnly, commands.Cog):
    kb = app_commands.Group(name="kb", description="The knowledge the assistant answers from")

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @kb.command(name="add", description="Add a passage the assistant answers from, at once.")
    @app_commands.describe(
        title="what it is about, e.g. Gift wrapping",
        text="the passage: what the assistant may tell customers",
        url="a page customers are sent when an answer uses it (optional)",
        valid_until="not given to the assistant after this day, YYYY-MM-DD (optional)",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        title: app_commands.Range[str, 1, 200],
        text: app_commands.Range[str, 1, 4000],
        url: str | None = None,
        valid_until: str | None = None,
    ) -> None:
        reply = await self.bot.kb.add(operator_of(interaction), title, text, url, valid_until or "")
        await answer(interaction, reply)

    @kb.command(name="list", description="Every passage, where it comes from, and what expired.")
    async def list_(self, interaction: discord.Interaction) -> None:
        await answer(interaction, await self.bot.kb.listing())

    @kb.command(name="show", description="One passage in full.")
    @app_commands.describe(id="the passage, e.g. K12")
    async def show(self, interaction: discord.Interaction, id: str) -> None:
        passage_id = _passage_id(id)
        await answer(
            interaction,
            await self.bot.kb.show(passage_id)
            if passage_id is not None
            else f"{id!r} is not a passage id (K12).",
        )

    @kb.command(name="search", description="What the assistant would be given for a question.")
    @app_commands.describe(query="a question, as a customer would ask it")
    async def search(
        self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 500]
    ) -> None:
        await answer(interaction, await self.bot.kb.search(query))

    @kb.command(name="remove", description="Delete a saved or added passage.")
    @app_commands.describe(id="the passage, e.g. K12")
    async def remove(self, interaction: discord.Interaction, id: str) -> None:
        passage_id = _passage_id(id)
        if passage_id is None:
            await answer(interaction, f"{id!r} is not a passage id (K12).")
            return
        await answer(interaction, await self.bot.kb.remove(operator_of(interaction), passage_id))

    @kb.command(name="reload", description="Read the knowledge folder again (changed files only).")
    async def reload(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await answer(interaction, await self.bot.kb.reload())


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(KnowledgeCommands(bot), guild=discord.Object(bot.settings.guild_id))
