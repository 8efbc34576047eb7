"""Escalation summaries for operators: posted on a schedule in the staff channel, /stats and /export
on demand."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.ticket_views import OperatorsOnly
from core.summary import compute, describe_period, export, period, render_chart, render_text

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)


class Stats(OperatorsOnly, commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    async def summary_message(self, days: int) -> tuple[str, bool, discord.File]:
        since, until = period(self.bot.clock.now(), days)
        summary = await compute(self.bot.db, since, until, self.bot.policy.llm.prices)
        text, alert = render_text(
            summary,
            alert_percent=self.bot.policy.summary.alert_rate_percent,
            days=days,
            tz=ZoneInfo(self.bot.policy.summary.timezone),
        )
        # CPU-bound: off the event loop
        chart = await asyncio.to_thread(render_chart, summary, days=days)
        text += f"\n-# {describe_period(since, until)}"
        return text, alert, discord.File(io.BytesIO(chart), filename="escalations.png")

    async def post_summary(self) -> None:
        """The scheduled post; an alert mentions the operator role."""
        days = self.bot.policy.summary.days
        try:
            text, alert, chart = await self.summary_message(days)
            channel = self.bot.get_channel(
                self.bot.settings.staff_channel_id
            ) or await self.bot.fetch_channel(self.bot.settings.staff_channel_id)
            if not isinstance(channel, discord.TextChannel):
                raise RuntimeError(f"DISCORD_STAFF_CHANNEL_ID {channel.id} is not a text channel")
            role = self.bot.settings.operator_role_id
            allowed = (
                discord.AllowedMentions(roles=[discord.Object(role)])
                if alert
                else discord.AllowedMentions.none()
            )
            await channel.send(
                f"<@&{role}>\n{text}" if alert else text, file=chart, allowed_mentions=allowed
            )
        except Exception:
            log.exception(
                "could not post the escalation summary; it will be tried at the next scheduled time"
            )

    @app_commands.command(description="The escalation summary (only you see it).")
    @app_commands.describe(days="how many days back (default 7)")
    async def stats(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 365] = 7
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # the chart takes a moment
        text, _, chart = await self.summary_message(days)
        text += f"\n-# {self.bot.pacer.figures().describe()}"
        if self.bot.leadership is not None:  # PostgreSQL: which of the processes answers
            text += f"\n-# {self.bot.leadership.describe()}"
        await interaction.followup.send(text, file=chart, ephemeral=True)

    @app_commands.command(description="The tickets of a period as a CSV file (only you see it).")
    @app_commands.describe(days="how many days back (default 7)")
    async def export(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 365] = 7
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        since, until = period(self.bot.clock.now(), days)
        data = await export(self.bot.db, since, until)
        await interaction.followup.send(
            f"Tickets, {describe_period(since, until)}",
            ephemeral=True,
            file=discord.File(io.BytesIO(data), filename=f"tickets-{days}d.csv"),
        )


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Stats(bot), guild=discord.Object(bot.settings.guild_id))
