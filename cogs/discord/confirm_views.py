"""Yes / No buttons under a confirmation in a customer's DM. DynamicItems: the confirmation id is in
the custom_id (``confirm:yes:12``), so they work after a restart; the database decides the rest."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from cogs.discord.ticket_views import answer_failures, client_of, interaction_data, submitted_values

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class ConfirmButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"confirm:(?P<answer>yes|no):(?P<id>[0-9]+)"
):
    def __init__(self, answer: str, confirmation_id: int, *, label: str | None = None) -> None:
        yes = answer == "yes"
        super().__init__(
            discord.ui.Button(
                label=label or ("Yes" if yes else "No"),
                custom_id=f"confirm:{answer}:{confirmation_id}",
                style=discord.ButtonStyle.success if yes else discord.ButtonStyle.secondary,
            )
        )
        self.answer = answer
        self.confirmation_id = confirmation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ConfirmButton:
        return cls(match["answer"], int(match["id"]))

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        bot = client_of(interaction)
        changed, text = await bot.confirmations.decide(
            self.confirmation_id,
            self.answer == "yes",
            via="button",
            by_discord_id=interaction.user.id,
        )
        if changed:
            # This confirmation's buttons go (others on the same message stay); the outcome arrives
            # as the next DM (through the outbox, so it is never lost).
            await interaction.response.edit_message(
                view=without_buttons(
                    interaction.message,
                    {f"confirm:yes:{self.confirmation_id}", f"confirm:no:{self.confirmation_id}"},
                )
            )
        else:
            await interaction.response.send_message(text, ephemeral=True)


class CodeCancelButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"mfa:cancel:(?P<id>[0-9]+)"
):
    """Cancel under a request for a one-time code (the code itself is typed)."""

    def __init__(self, challenge_id: int, *, label: str = "Cancel") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                custom_id=f"mfa:cancel:{challenge_id}",
                style=discord.ButtonStyle.secondary,
            )
        )
        self.challenge_id = challenge_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CodeCancelButton:
        return cls(int(match["id"]))

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        bot = client_of(interaction)
        if bot.codes is None:
            await interaction.response.send_message(
                "One-time codes are switched off.", ephemeral=True
            )
            return
        changed, text = await bot.codes.cancel(self.challenge_id, interaction.user.id)
        if changed:
            await interaction.response.edit_message(
                view=without_buttons(interaction.message, {f"mfa:cancel:{self.challenge_id}"})
            )
        else:
            await interaction.response.send_message(text, ephemeral=True)


def without_buttons(
    message: discord.Message | None, custom_ids: set[str]
) -> discord.ui.View | None:
    """The message's buttons less those of one decided step (None when no button is left)."""
    if message is None:
        return None
    view = discord.ui.View.from_message(message, timeout=None)
    for item in list(view.children):
        if getattr(item, "custom_id", None) in custom_ids:
            view.remove_item(item)
    return view if view.children else None


def confirmation_view(buttons: list[dict[str, Any]]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    several = len(buttons) > 1
    for spec in buttons:
        if spec.get("kind") == "rating":
            for score in range(1, 6):
                view.add_item(RatingButton(score, str(spec["subject"])))
            continue
        if spec.get("kind") == "mfa":
            view.add_item(
                CodeCancelButton(
                    int(spec["id"]), label=f"Cancel #{spec['id']}" if several else "Cancel"
                )
            )
            continue
        if spec.get("kind") != "confirm":
            continue
        number = int(spec["id"])
        transactional = spec.get("style") == "confirm_details"
        yes, no = ("Confirm", "Cancel") if transactional else ("Yes", "No")
        view.add_item(ConfirmButton("yes", number, label=f"{yes} #{number}" if several else yes))
        view.add_item(ConfirmButton("no", number, label=f"{no} #{number}" if several else no))
    return view


class RatingButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"rate:(?P<score>[1-5]):(?P<subject>[tc][0-9]+)",
):
    """1-5 under "how did we do?"; the first rating of a ticket (or conversation) counts."""

    def __init__(self, score: int, subject: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=str(score),
                custom_id=f"rate:{score}:{subject}",
                style=discord.ButtonStyle.primary if score >= 4 else discord.ButtonStyle.secondary,
            )
        )
        self.score = score
        self.subject = subject

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> RatingButton:
        return cls(int(match["score"]), match["subject"])

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        bot = client_of(interaction)
        outcome = await bot.app.ratings.rate(
            self.subject, interaction.user.id, self.score, bot.clock.now()
        )
        if outcome == "saved":
            view = discord.ui.View(timeout=None)
            view.add_item(CommentButton(self.subject))
            await interaction.response.edit_message(
                content=bot.policy.message("rated", score=str(self.score)), view=view
            )
        elif outcome == "already":
            await interaction.response.send_message(
                "You rated this already; thank you!", ephemeral=True
            )
        else:
            await interaction.response.send_message(
                "Only the customer who was helped can rate this.", ephemeral=True
            )


class CommentButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"rate:comment:(?P<subject>[tc][0-9]+)"
):
    """An optional comment after a rating, in a form."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Add a comment",
                custom_id=f"rate:comment:{subject}",
                style=discord.ButtonStyle.secondary,
            )
        )
        self.subject = subject

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CommentButton:
        return cls(match["subject"])

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        form = discord.ui.Modal(
            title="Your comment", custom_id=f"rate:comment-form:{self.subject}", timeout=None
        )
        form.add_item(
            discord.ui.TextInput(
                label="What could we do better?",
                style=discord.TextStyle.paragraph,
                max_length=1000,
                custom_id="comment",
            )
        )
        form.stop()  # handled from its custom_id (on_rating_comment), before or after a restart
        await interaction.response.send_modal(form)


COMMENT_FORM = re.compile(r"^rate:comment-form:(?P<subject>[tc][0-9]+)$")


@answer_failures
async def on_rating_comment(interaction: discord.Interaction) -> None:
    match = COMMENT_FORM.match(str(interaction_data(interaction).get("custom_id", "")))
    if match is None:
        return
    text = submitted_values(interaction).get("comment", "").strip()
    bot = client_of(interaction)
    saved = bool(text) and await bot.app.ratings.comment(
        match["subject"], interaction.user.id, text[:1000]
    )
    await interaction.response.send_message(
        "Thank you, we read every comment."
        if saved
        else "Nothing was saved (empty, or a comment was given already).",
        ephemeral=True,
    )
