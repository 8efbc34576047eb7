"""The copilot's draft in a ticket's thread: Send, Edit & send (a form prefilled with the draft),
Discard. DynamicItems: the draft id is in the custom_id (``draft:send:7``), so the buttons work
after a restart; the database decides who sent it first, and nothing is sent without a click."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

import discord

from cogs.discord.ticket_views import (
    _form,
    answer,
    answer_failures,
    client_of,
    interaction_data,
    operator_or_refuse,
    submitted_values,
)
from core.drafts import DRAFT_TEXT_LIMIT

log = logging.getLogger(__name__)

EDIT_FORM = re.compile(r"^draft:edit-send:(?P<id>[0-9]+)$")


class DraftButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"draft:(?P<action>send|edit|discard):(?P<id>[0-9]+)",
):
    LABELS: ClassVar[dict[str, tuple[str, discord.ButtonStyle]]] = {
        "send": ("Send", discord.ButtonStyle.success),
        "edit": ("Edit & send", discord.ButtonStyle.primary),
        "discard": ("Discard", discord.ButtonStyle.secondary),
    }

    def __init__(self, action: str, draft_id: int) -> None:
        label, style = self.LABELS[action]
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=f"draft:{action}:{draft_id}")
        )
        self.action = action
        self.draft_id = draft_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> DraftButton:
        return cls(match["action"], int(match["id"]))

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        bot = client_of(interaction)
        draft = await bot.desk.drafts.get(self.draft_id)
        ticket_id = draft.ticket_id if draft else None
        operator = await operator_or_refuse(interaction, f"draft {self.action}", ticket_id)
        if operator is None:
            return
        if self.action == "send":
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, await bot.desk.send_draft(self.draft_id, operator))
        elif self.action == "discard":
            await answer(interaction, await bot.desk.discard_draft(self.draft_id, operator))
        elif draft is None or draft.status != "suggested":
            await answer(interaction, "This draft is no longer offered.")
        else:
            await interaction.response.send_modal(edit_form(self.draft_id, draft.text))


def draft_view(draft_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in ("send", "edit", "discard"):
        view.add_item(DraftButton(action, draft_id))
    return view


def edit_form(draft_id: int, text: str) -> discord.ui.Modal:
    return _form(
        "Edit & send",
        f"draft:edit-send:{draft_id}",
        [
            discord.ui.TextInput(
                label="Answer (sent to the customer as you leave it)",
                style=discord.TextStyle.paragraph,
                default=text[:DRAFT_TEXT_LIMIT],
                max_length=2000,
                custom_id="answer",
            )
        ],
    )


@answer_failures
async def on_draft_form_submit(interaction: discord.Interaction) -> None:
    """An edited draft, submitted (before or after a restart); other forms are not ours."""
    match = EDIT_FORM.match(str(interaction_data(interaction).get("custom_id", "")))
    if match is None:
        return
    bot = client_of(interaction)
    draft_id = int(match["id"])
    draft = await bot.desk.drafts.get(draft_id)
    operator = await operator_or_refuse(
        interaction, "draft edit & send", draft.ticket_id if draft else None
    )
    if operator is None:
        return
    text = submitted_values(interaction).get("answer", "")
    await interaction.response.defer(ephemeral=True, thinking=True)
    await answer(interaction, await bot.desk.send_draft(draft_id, operator, edited=text))
