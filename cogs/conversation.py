"""Customers' DMs into the conversation engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from cogs.discord.attachments import downloaded, max_file_bytes
from cogs.discord.confirm_views import on_rating_comment
from cogs.discord.discord_channel import NO_PINGS
from core.engine import InboundMessage

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)

_CONVERSATION_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class Conversation(commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if (
            message.author.bot
            or message.guild is not None
            or message.type not in _CONVERSATION_TYPES
        ):
            # guild channels belong to the operator desk; bots (ourselves included) are ignored
            return
        inbound = InboundMessage(
            discord_user_id=message.author.id,
            display_name=message.author.display_name,
            content=message.content,
            discord_message_id=message.id,
            dm_channel_id=message.channel.id,
            sent_at=message.created_at.timestamp(),
            account_created_at=message.author.created_at.timestamp(),
            attachments=await self._fetched(message),
        )
        try:
            await self.bot.engine.receive(inbound)
        except Exception:
            # The message could not even be stored: say so rather than stay silent.
            log.exception("could not store DM %s from %s", message.id, message.author.id)
            try:
                await message.channel.send(
                    "Sorry, something went wrong on our side and I couldn't save your message. "
                    "Please send it again in a minute.",
                    allowed_mentions=NO_PINGS,
                )
            except discord.HTTPException:
                log.warning("could not tell %s about the failure either", message.author.id)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """A customer edited a DM (Discord sends the new content)."""
        author = payload.data.get("author") or {}
        if payload.guild_id is not None or author.get("bot") or "content" not in payload.data:
            return
        await self.bot.engine.customer_edited(payload.message_id, str(payload.data["content"]))

    async def _fetched(self, message: discord.Message) -> list[dict[str, Any]]:
        """The message's files with their bytes, read now. A file announced over the cap (or one
        too many) is not downloaded; a failed download is kept as such (the customer is told)."""
        caps = self.bot.policy.attachments
        limit = max_file_bytes(self.bot.policy)
        files = []
        for i, a in enumerate(message.attachments):
            data = (await downloaded(a, limit))[0] if i < caps.files_per_message else None
            files.append(
                {
                    "filename": a.filename,
                    "size": a.size,
                    "content_type": a.content_type,
                    "data": data,
                }
            )
        return files

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A rating's comment form, submitted (before or after a restart: it is read from its
        custom_id)."""
        if interaction.type is discord.InteractionType.modal_submit:
            await on_rating_comment(interaction)


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Conversation(bot))
