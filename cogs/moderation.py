"""Blocking abusive customers: /block and /unblock, for operators, audited.

A blocked customer's DMs are still stored (nothing is lost, the operators can read them) but reach
neither Claude nor the desk; the customer is told once, politely. Operators can't be blocked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly, answer, is_operator, operator_of
from core.text import for_people

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)

FOREVER = 1e18  # blocked with no end (until /unblock)


class Moderation(OperatorsOnly, commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @app_commands.command(
        description="Block a customer: their DMs are kept but get no answer and no ticket."
    )
    @app_commands.describe(
        customer="the customer (their user)",
        reason="why (kept in the audit; not sent to them)",
        hours="for how long (leave empty: until /unblock)",
    )
    async def block(
        self,
        interaction: discord.Interaction,
        customer: discord.User,
        reason: str,
        hours: app_commands.Range[float, 0.1, 8760.0] | None = None,
    ) -> None:
        operator = operator_of(interaction)
        member = interaction.guild.get_member(customer.id) if interaction.guild else None
        if customer.bot or is_operator(self.bot, member or customer):
            await answer(
                interaction,
                f"{customer.display_name} is an operator or a bot and can't be blocked.",
            )
            return
        now = self.bot.clock.now()
        until = now + hours * 3600 if hours else FOREVER
        store = self.bot.engine.store
        await store.block(
            customer.id,
            customer.display_name,
            until,
            reason.strip() or "no reason given",
            operator.actor,
            now,
        )
        log.info(
            "%s blocked customer %s (%s)",
            operator.name,
            customer.id,
            f"{hours:g} h" if hours else "until unblocked",
        )
        how_long = f" for {for_people(hours * 3600)}" if hours else " until someone runs `/unblock`"
        await answer(
            interaction,
            f"{customer.display_name} is blocked{how_long}. Their DMs are kept but get no"
            " answer; they are told once, politely, when they write next.",
        )

    @app_commands.command(description="Unblock a customer: their next DMs are answered again.")
    @app_commands.describe(customer="the customer (their user)")
    async def unblock(self, interaction: discord.Interaction, customer: discord.User) -> None:
        operator = operator_of(interaction)
        store = self.bot.engine.store
        now = self.bot.clock.now()
        until = await store.blocked_until(customer.id)
        if until is None or until <= now:
            await answer(interaction, f"{customer.display_name} is not blocked.")
            return
        await store.block(customer.id, customer.display_name, None, "", operator.actor, now)
        await answer(
            interaction, f"{customer.display_name} is unblocked; their next DMs are answered again."
        )


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Moderation(bot), guild=discord.Object(bot.settings.guild_id))
