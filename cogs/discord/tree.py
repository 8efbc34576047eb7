"""One CommandTree for the bot: any failure in a slash command or button reaches the user as a short
ephemeral message, and the details go to the log."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

log = logging.getLogger(__name__)


class HandoffTree(app_commands.CommandTree):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.NoPrivateMessage | app_commands.CheckFailure):
            text = str(error) or "You can't use this command here."
        else:
            name = interaction.command.qualified_name if interaction.command else "this"
            log.error("/%s failed for %s", name, interaction.user, exc_info=error)
            text = (
                "Sorry, that failed on our side and nothing was changed. It has been logged; try"
                " again."
            )
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell %s about the failure", interaction.user)
