"""The engine's StaffDesk port: ticket messages with persistent buttons in the staff channel, one
thread each."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Literal

import discord

from cogs.discord.discord_channel import TRANSIENT_ERRORS, delivery_failure
from cogs.discord.draft_views import draft_view
from cogs.discord.ticket_views import ticket_view
from core.pacer import Priority, request_priority
from core.ports import DeliveryFailed
from core.settings import Settings
from core.tickets import Card

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)

THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080  # a week: tickets can wait over a weekend
THREAD_ALREADY_EXISTS = 160004  # Discord: "A thread has already been created for this message"


def embed_for(card: Card) -> discord.Embed:
    embed = discord.Embed(title=card.title, description=card.description, colour=card.colour)
    for name, value in card.fields:
        embed.add_field(name=name, value=value, inline=name in ("Status", "Customer"))
    return embed


class DiscordStaffDesk:
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @property
    def settings(self) -> Settings:
        return self.bot.settings

    def _mentions(self) -> tuple[str, discord.AllowedMentions]:
        """The operators, or outside [desk] hours the on-call role (when one is set)."""
        on_call = self.bot.policy.desk.on_call_role_id
        if on_call and not self.bot.desk.hours.is_open(self.bot.clock.now()):
            return f"<@&{on_call}>", discord.AllowedMentions(
                everyone=False, users=False, roles=[discord.Object(on_call)], replied_user=False
            )
        role = discord.Object(self.settings.operator_role_id)
        users = (
            [discord.Object(self.settings.operator_user_id)]
            if self.settings.operator_user_id
            else []
        )
        text = f"<@&{self.settings.operator_role_id}>" + "".join(f" <@{u.id}>" for u in users)
        return text, discord.AllowedMentions(
            everyone=False, users=users, roles=[role], replied_user=False
        )

    async def _channel(self, channel_id: int) -> discord.TextChannel | discord.Thread:
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except discord.HTTPException as exc:
                raise delivery_failure(exc) from exc
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            raise DeliveryFailed(
                f"channel {channel_id} is not a text channel or thread", permanent=True
            )
        return channel

    async def post_ticket(self, card: Card, *, nonce: str) -> int:
        channel = await self._channel(self.settings.staff_channel_id)
        mention, allowed = self._mentions()
        try:
            # enforce_nonce: Discord returns the message it already has for this nonce instead of a
            # second card. a new ticket goes out with the customers' answers
            with request_priority(Priority.ANSWER):
                message = await channel.send(
                    mention,
                    embed=embed_for(card),
                    view=ticket_view(card),
                    allowed_mentions=allowed,
                    nonce=nonce,
                )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc
        return message.id

    async def open_thread(self, message_id: int, name: str) -> int:
        channel = await self._channel(self.settings.staff_channel_id)
        try:
            thread = await channel.get_partial_message(message_id).create_thread(
                name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_EXISTS:
                return await self._existing_thread(message_id)
            raise delivery_failure(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc
        return thread.id

    async def _existing_thread(self, message_id: int) -> int:
        """The thread made for this card before a restart (its id was never saved): adopt it.

        Discord gives a thread started from a message that message's id."""
        try:
            thread = self.bot.get_channel(message_id) or await self.bot.fetch_channel(message_id)
        # it exists (160004 said so): retry, never give up
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise DeliveryFailed(
                f"thread {message_id} exists but could not be read: {exc}"
            ) from exc
        log.info(
            "adopted the existing thread %s of ticket message %s (made before a restart)",
            thread.id,
            message_id,
        )
        return thread.id

    async def post(
        self,
        thread_id: int,
        text: str,
        *,
        nonce: str,
        ping: bool = False,
        mention_role: int | None = None,
    ) -> None:
        """Write in a thread; ``ping`` mentions the operators (or the on-call role),
        ``mention_role`` that role alone (an escalation step)."""
        thread = await self._channel(thread_id)
        allowed = discord.AllowedMentions.none()
        if ping:
            mention, allowed = self._mentions()
            text = f"{mention} {text}"
        elif mention_role is not None:
            text = f"<@&{mention_role}> {text}"
            allowed = discord.AllowedMentions(
                everyone=False, users=False, roles=[discord.Object(mention_role)]
            )
        try:
            await thread.send(text, allowed_mentions=allowed, nonce=nonce)
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc

    async def post_file(
        self, thread_id: int, text: str, data: bytes, filename: str, *, nonce: str
    ) -> None:
        thread = await self._channel(thread_id)
        try:
            await thread.send(
                text,
                file=discord.File(io.BytesIO(data), filename=filename),
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=nonce,
            )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc

    async def refresh(self, message_id: int, card: Card) -> None:
        channel = await self._channel(self.settings.staff_channel_id)
        try:
            with request_priority(Priority.EDIT):
                await channel.get_partial_message(message_id).edit(
                    embed=embed_for(card), view=ticket_view(card)
                )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc

    async def archive(self, thread_id: int) -> None:
        thread = await self._channel(thread_id)
        if isinstance(thread, discord.Thread):
            try:
                with request_priority(Priority.EDIT):
                    # closed: nobody writes there by mistake
                    await thread.edit(archived=True, locked=True)
            except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
                raise delivery_failure(exc) from exc

    async def post_draft(self, thread_id: int, draft_id: int, text: str, *, nonce: str) -> int:
        thread = await self._channel(thread_id)
        try:
            message = await thread.send(
                text,
                view=draft_view(draft_id),
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=nonce,
            )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc
        return message.id

    async def end_draft(self, thread_id: int, message_id: int, text: str) -> None:
        thread = await self._channel(thread_id)
        try:
            with request_priority(Priority.EDIT):
                await thread.get_partial_message(message_id).edit(
                    content=text, view=None, allowed_mentions=discord.AllowedMentions.none()
                )
        except (discord.HTTPException, *TRANSIENT_ERRORS) as exc:
            raise delivery_failure(exc) from exc
