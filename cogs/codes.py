"""One-time codes in Discord: customers enrol with /enrol in their DM (or by typing "enrol");
operators reset or unlock a customer's codes with /mfa-reset and /mfa-unlock."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly, answer, operator_of

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)
CODES_OFF = "One-time codes are switched off here; our team handles such requests instead."
REPLACE_NEEDS_CODE = (
    "You already have an authenticator: send the code it shows now in this chat first, and I'll"
    " send the new setup. Lost it? Ask for a person."
)


class Enrolment(commands.Cog):
    """The customer's side: a command in DMs with the bot."""

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @app_commands.command(description="Set up an authenticator app for one-time codes.")
    @app_commands.allowed_contexts(guilds=False, dms=True, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def enrol(self, interaction: discord.Interaction) -> None:
        if self.bot.codes is None:
            await answer(interaction, CODES_OFF)
            return
        user = interaction.user
        # a new secret is sealed and stored
        await interaction.response.defer(ephemeral=True, thinking=True)
        customer_id = await self.bot.codes.customer_id_for(user.id, user.display_name)
        setup = await self.bot.codes.ask_to_enrol(
            customer_id, account=user.display_name or str(user.id)
        )
        if setup is None:  # they have one: told in the DM to send its current code first
            await interaction.followup.send(REPLACE_NEEDS_CODE, ephemeral=True)
            return
        # Ephemeral: the key is shown to this user only, and never stays in the DM's history.
        await interaction.followup.send(
            setup.text,
            file=discord.File(io.BytesIO(setup.png), filename="authenticator.png"),
            ephemeral=True,
        )


class Codes(OperatorsOnly, commands.Cog):
    """The operators' side, in the staff guild."""

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    async def _change(
        self, interaction: discord.Interaction, what: str, customer: discord.User
    ) -> None:
        operator = operator_of(interaction)
        if self.bot.codes is None:
            await answer(interaction, CODES_OFF)
            return
        change = self.bot.codes.reset if what == "mfa-reset" else self.bot.codes.unlock
        await answer(interaction, await change(customer.id, operator.actor))

    @app_commands.command(
        name="mfa-reset", description="Remove a customer's authenticator setup (they enrol again)."
    )
    @app_commands.describe(customer="the customer (their user)")
    async def mfa_reset(self, interaction: discord.Interaction, customer: discord.User) -> None:
        await self._change(interaction, "mfa-reset", customer)

    @app_commands.command(
        name="mfa-unlock", description="Unlock codes for a customer after too many wrong codes."
    )
    @app_commands.describe(customer="the customer (their user)")
    async def mfa_unlock(self, interaction: discord.Interaction, customer: discord.User) -> None:
        await self._change(interaction, "mfa-unlock", customer)


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Enrolment(bot))
    await bot.add_cog(Codes(bot), guild=discord.Object(bot.settings.guild_id))
