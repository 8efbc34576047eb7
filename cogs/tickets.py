"""The operator desk in Discord: slash commands in the guild and operators' messages in ticket
threads.

Commands work inside a ticket's thread without a ticket number (or anywhere with ``ticket:``).
Every command checks that the user is an operator; the desk checks the ticket's state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.attachments import downloaded, max_file_bytes
from cogs.discord.draft_views import on_draft_form_submit
from cogs.discord.ticket_views import (
    OperatorsOnly,
    answer,
    is_operator,
    on_form_submit,
    operator_of,
)
from cogs.snippets import snippet_choices
from core.desk import DeskReply, Operator
from core.snippets import fill
from core.tickets import pending_lines

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)

TICKET_OPTION = "the ticket number (not needed inside its thread)"


class Tickets(OperatorsOnly, commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    async def _ticket(self, interaction: discord.Interaction, ticket: int | None) -> int | None:
        """The ticket given, or the one whose thread this is."""
        if ticket is None and interaction.channel_id is not None:
            in_thread = await self.bot.desk.ticket_for_thread(interaction.channel_id)
            return in_thread.id if in_thread else None
        return ticket

    async def ticket_in_question(self, interaction: discord.Interaction) -> int | None:
        return await self._ticket(interaction, getattr(interaction.namespace, "ticket", None))

    async def _target(
        self, interaction: discord.Interaction, what: str, ticket: int | None
    ) -> tuple[Operator, int] | None:
        """The operator and the ticket this command is about, or None after telling them why not."""
        found = await self._ticket(interaction, ticket)
        operator = operator_of(interaction)
        if found is None:
            await answer(
                interaction, f"Use `/{what}` inside a ticket's thread, or give the ticket number."
            )
            return None
        return operator, found

    @app_commands.command(description="Approve the action proposed on this ticket (it runs once).")
    @app_commands.describe(
        ticket=TICKET_OPTION, code="your one-time code (needed for large amounts)"
    )
    async def approve(
        self,
        interaction: discord.Interaction,
        ticket: int | None = None,
        code: app_commands.Range[str, 6, 6] | None = None,
    ) -> None:
        if target := await self._target(interaction, "approve", ticket):
            # the action may take a while
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, await self.bot.desk.approve(target[1], target[0], code=code))

    @app_commands.command(
        description="Deny the action proposed on this ticket; the customer is told the reason."
    )
    @app_commands.describe(reason="told to the customer", ticket=TICKET_OPTION)
    async def deny(
        self,
        interaction: discord.Interaction,
        reason: app_commands.Range[str, 1, 1000],
        ticket: int | None = None,
    ) -> None:
        if target := await self._target(interaction, "deny", ticket):
            await answer(interaction, await self.bot.desk.deny(target[1], target[0], reason))

    @app_commands.command(
        description="Send a message to this ticket's customer (typed, or a saved snippet)."
    )
    @app_commands.describe(
        text="what the customer receives",
        ticket=TICKET_OPTION,
        snippet="a saved reply (/snippet list); text, if given, follows it",
        attachment="a file for the customer (a return label, an invoice)",
    )
    async def reply(
        self,
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, 1900] | None = None,
        ticket: int | None = None,
        snippet: str | None = None,
        attachment: discord.Attachment | None = None,
    ) -> None:
        target = await self._target(interaction, "reply", ticket)
        if target is None:
            return
        operator, number = target
        if snippet:
            saved = await self.bot.app.snippets.get(snippet.strip().lower())
            found = await self.bot.desk.ticket(number)
            if saved is None or found is None:
                await answer(
                    interaction,
                    f"There is no snippet named `{snippet}` (`/snippet list`)."
                    if saved is None
                    else f"Ticket #{number} does not exist.",
                )
                return
            filled = fill(
                saved, customer=found.customer_name, ticket=number, operator=operator.name
            )
            text = f"{filled}\n{text}" if text else filled
        if attachment is not None:  # reading it may take longer than an answer may wait
            await interaction.response.defer(ephemeral=True, thinking=True)
        files, too_big = await operator_files(self.bot, [attachment] if attachment else [])
        if too_big:
            await answer(interaction, too_big)
            return
        if not text and not files:
            await answer(interaction, "Give the text to send, a `snippet:` or an `attachment:`.")
            return
        await answer(
            interaction, await self.bot.desk.reply(number, operator, text or "", files=files)
        )

    @reply.autocomplete("snippet")
    async def _snippet_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await snippet_choices(self.bot, interaction, current)

    @app_commands.command(
        description="Write to someone first: opens a ticket and DMs them your message."
    )
    @app_commands.describe(user="who to write to", message="what they receive")
    async def contact(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        message: app_commands.Range[str, 1, 1900],
    ) -> None:
        if user.bot:
            await answer(interaction, "Bots can't be contacted.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await answer(
            interaction,
            await self.bot.desk.contact(
                user.id, user.display_name, operator_of(interaction), message
            ),
        )

    @app_commands.command(description="Mark this ticket as yours.")
    @app_commands.describe(ticket=TICKET_OPTION)
    async def claim(self, interaction: discord.Interaction, ticket: int | None = None) -> None:
        if target := await self._target(interaction, "claim", ticket):
            await answer(interaction, await self.bot.desk.claim(target[1], target[0]))

    @app_commands.command(description="Talk with the customer directly until /handback.")
    @app_commands.describe(ticket=TICKET_OPTION)
    async def takeover(self, interaction: discord.Interaction, ticket: int | None = None) -> None:
        if target := await self._target(interaction, "takeover", ticket):
            await answer(interaction, await self.bot.desk.takeover(target[1], target[0]))

    @app_commands.command(
        description="Return the customer to the assistant, with what was said in its history."
    )
    @app_commands.describe(ticket=TICKET_OPTION)
    async def handback(self, interaction: discord.Interaction, ticket: int | None = None) -> None:
        if target := await self._target(interaction, "handback", ticket):
            await answer(interaction, await self.bot.desk.handback(target[1], target[0]))

    @app_commands.command(
        description="Close this ticket; the customer is told, the thread archived."
    )
    @app_commands.describe(reason="told to the customer", ticket=TICKET_OPTION)
    async def close(
        self,
        interaction: discord.Interaction,
        reason: app_commands.Range[str, 1, 500],
        ticket: int | None = None,
    ) -> None:
        if target := await self._target(interaction, "close", ticket):
            await answer(interaction, await self.bot.desk.close(target[1], target[0], reason))

    @app_commands.command(description="A new suggested answer for this ticket (sent only by you).")
    @app_commands.describe(
        instructions='what to change, e.g. "shorter" or "offer 10% instead"', ticket=TICKET_OPTION
    )
    async def draft(
        self,
        interaction: discord.Interaction,
        instructions: app_commands.Range[str, 1, 300] | None = None,
        ticket: int | None = None,
    ) -> None:
        if self.bot.copilot is None:
            await answer(
                interaction,
                "The copilot is off (no ANTHROPIC_API_KEY, or `[copilot] enabled = false`).",
            )
            return
        if target := await self._target(interaction, "draft", ticket):
            reply = await self.bot.copilot.request(target[1], target[0], instructions)
            await answer(interaction, reply)

    @app_commands.command(description="The open tickets, oldest first.")
    async def pending(self, interaction: discord.Interaction) -> None:
        tickets = await self.bot.desk.pending()
        await answer(interaction, DeskReply(True, pending_lines(tickets, self.bot.clock.now())))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.modal_submit:
            await on_form_submit(interaction)
            await on_draft_form_submit(interaction)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Operators writing in a ticket's thread: the first answer, or a take-over conversation."""
        channel = message.channel
        if message.author.bot or not isinstance(channel, discord.Thread):
            return
        if channel.parent_id != self.bot.settings.staff_channel_id or not is_operator(
            self.bot, message.author
        ):
            return  # only operators, only in the staff channel's threads
        operator = Operator(message.author.id, message.author.display_name)
        files, too_big = await operator_files(self.bot, message.attachments)
        if too_big:
            await channel.send(too_big, allowed_mentions=discord.AllowedMentions.none())
            if not files and not message.content.strip():
                return
        reply = await self.bot.desk.operator_message(
            channel.id, operator, message.content, message.id, files
        )
        if reply is not None and not reply.ok:
            await channel.send(reply.text, allowed_mentions=discord.AllowedMentions.none())


def _in_a_ticket_thread(bot: HandoffBot, channel_id: int, guild_id: int | None) -> bool:
    channel = bot.get_channel(channel_id)
    return (
        guild_id is not None
        and isinstance(channel, discord.Thread)
        and channel.parent_id == bot.settings.staff_channel_id
    )


async def operator_files(
    bot: HandoffBot, attachments: list[discord.Attachment]
) -> tuple[list[tuple[str, bytes]], str]:
    """An operator's files for the customer, read now (their links expire), within [attachments]
    max_file_mb; and what to say of those left out."""
    limit = max_file_bytes(bot.policy)
    files, left = [], []
    for a in attachments:
        data, why = await downloaded(a, limit)
        if data is not None and len(data) > limit:  # larger than Discord announced
            why = f"{len(data) // 1024} KB"
            data = None
        if data is None:
            left.append(f"{a.filename} ({why})")
        else:
            files.append((a.filename, data))
    said = (
        f"Not sent to the customer: {', '.join(left)}: files can be up to"
        f" {bot.policy.attachments.max_file_mb:g} MB ([attachments] max_file_mb)."
        if left
        else ""
    )
    return files, said


class RelayedEdits(commands.Cog):
    """An operator editing or deleting a message the desk relayed: the customer's copy follows."""

    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        author = payload.data.get("author") or {}
        if author.get("bot") or "content" not in payload.data:
            return
        if _in_a_ticket_thread(self.bot, payload.channel_id, payload.guild_id):
            await self.bot.desk.operator_edited(payload.message_id, str(payload.data["content"]))

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if _in_a_ticket_thread(self.bot, payload.channel_id, payload.guild_id):
            await self.bot.desk.operator_edited(payload.message_id, None)


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Tickets(bot), guild=discord.Object(bot.settings.guild_id))
    await bot.add_cog(RelayedEdits(bot))
