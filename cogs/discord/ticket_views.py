"""Ticket buttons and modals. Buttons are DynamicItems: the ticket id lives in the custom_id
(``ticket:approve:12``), so they work after a restart without any view being re-created.

Every click re-checks who is clicking and the ticket's state in the database (the desk does
the latter with conditional updates); nothing is trusted from the message itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import discord
from discord import app_commands

from core.answer_forms import FormField, read_schema
from core.desk import DeskReply, Operator
from core.tickets import Card, editable_fields, parse_edited

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot

log = logging.getLogger(__name__)

ACTIONS = ("approve", "deny", "edit", "claim", "save", "answer")


def is_operator(bot: HandoffBot, user: discord.abc.User) -> bool:
    settings = bot.settings
    if settings.operator_user_id and user.id == settings.operator_user_id:
        return True
    roles = getattr(user, "roles", None) or []
    return any(role.id == settings.operator_role_id for role in roles)


class NotOperator(app_commands.CheckFailure):
    """A slash command for operators used by someone else; the tree tells them this message,
    privately."""


def client_of(interaction: discord.Interaction) -> HandoffBot:
    """The bot a button or form came to: the one HandoffBot of this process (buttons and forms are
    matched by discord.py's view store, whose callbacks take a plain ``discord.Interaction``)."""
    return cast("HandoffBot", interaction.client)


def operator_of(interaction: discord.Interaction) -> Operator:
    user = interaction.user
    return Operator(user.id, getattr(user, "display_name", None) or user.name)


class OperatorsOnly:
    """A cog whose every slash command is for operators: one check before any of them runs
    (discord.py calls a cog's ``interaction_check`` for its app commands). Others are refused
    privately, and it is audited."""

    bot: HandoffBot

    async def ticket_in_question(self, interaction: discord.Interaction) -> int | None:
        """The ticket a refused command was about, for the audit (cogs with ticket commands say
        which)."""
        return None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if is_operator(self.bot, interaction.user):
            return True
        what = interaction.command.name if interaction.command else "a command"
        await _record_refusal(interaction, what, await self.ticket_in_question(interaction))
        raise NotOperator(REFUSAL)


REFUSAL = "Only operators can do that. (This attempt was recorded.)"


async def _record_refusal(
    interaction: discord.Interaction, what: str, ticket_id: int | None
) -> None:
    """Someone without the operator role tried: audited and logged (they are told by the caller)."""
    bot = client_of(interaction)
    await bot.desk.audit_refusal(operator_of(interaction), what, ticket_id)
    log.warning(
        "refused %s on ticket %s to %s (%s): not an operator",
        what,
        ticket_id,
        interaction.user,
        interaction.user.id,
    )


async def operator_or_refuse(
    interaction: discord.Interaction, what: str, ticket_id: int | None
) -> Operator | None:
    """The operator behind this interaction, or None after an ephemeral refusal (audited)."""
    bot = client_of(interaction)
    if is_operator(bot, interaction.user):
        return operator_of(interaction)
    await _record_refusal(interaction, what, ticket_id)
    await answer(interaction, DeskReply(False, REFUSAL))
    return None


async def answer(interaction: discord.Interaction, reply: DeskReply | str) -> None:
    """Tell the person who acted, only them; works whether or not the interaction was deferred."""
    text = reply.text if isinstance(reply, DeskReply) else reply
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


TEMPLATE = r"ticket:(?P<action>[a-z]+):(?P<id>[0-9]+)"


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])


def answer_failures(fn: Handler) -> Handler:
    """A button or form that fails tells the person who clicked, instead of Discord's bare
    'interaction failed'."""

    @functools.wraps(fn)
    async def wrapper(*args: Any) -> None:
        interaction = next(a for a in args if isinstance(a, discord.Interaction))
        try:
            await fn(*args)
        except Exception:
            log.exception("%s failed for %s", getattr(fn, "__qualname__", fn), interaction.user)
            with contextlib.suppress(discord.HTTPException):
                await answer(
                    interaction, "Sorry, that failed on our side. It has been logged; try again."
                )

    return cast(Handler, wrapper)


class TicketButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    LABELS: ClassVar[dict[str, tuple[str, discord.ButtonStyle]]] = {
        "approve": ("Approve", discord.ButtonStyle.success),
        "deny": ("Deny", discord.ButtonStyle.danger),
        "edit": ("Edit & approve", discord.ButtonStyle.primary),
        "claim": ("Claim", discord.ButtonStyle.secondary),
        "save": ("Save as knowledge", discord.ButtonStyle.secondary),
        "answer": ("Answer", discord.ButtonStyle.primary),
    }

    def __init__(self, action: str, ticket_id: int, *, disabled: bool = False) -> None:
        label, style = self.LABELS[action]
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                custom_id=f"ticket:{action}:{ticket_id}",
                disabled=disabled,
            )
        )
        self.action = action
        self.ticket_id = ticket_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> TicketButton:
        action = match["action"]
        if action not in ACTIONS:
            raise ValueError(f"unknown ticket button {match.string!r}")
        return cls(action, int(match["id"]))

    @answer_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        operator = await operator_or_refuse(interaction, self.action, self.ticket_id)
        if operator is None:
            return
        bot = client_of(interaction)
        desk = bot.desk
        if self.action == "approve":
            ticket = await desk.ticket(self.ticket_id)
            if (
                ticket is not None
                and ticket.awaits_decision
                and desk.code_needed(ticket) is not None
            ):
                await interaction.response.send_modal(approve_code_form(self.ticket_id))
                return
            # the action may take a while
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, await desk.approve(self.ticket_id, operator))
        elif self.action == "claim":
            await answer(interaction, await desk.claim(self.ticket_id, operator))
        elif self.action == "deny":
            await interaction.response.send_modal(deny_form(self.ticket_id))
        elif self.action == "save":
            await self._save(interaction)
        elif self.action == "answer":
            await self._answer(interaction)
        else:
            await self._edit(interaction, operator)

    async def _save(self, interaction: discord.Interaction) -> None:
        ticket = await client_of(interaction).desk.ticket(self.ticket_id)
        if ticket is None or not ticket.answer:
            await answer(interaction, f"Ticket #{self.ticket_id} has no answer to save.")
            return
        await interaction.response.send_modal(save_form(ticket.id, ticket.question, ticket.answer))

    async def _answer(self, interaction: discord.Interaction) -> None:
        ticket = await client_of(interaction).desk.ticket(self.ticket_id)
        if ticket is None or ticket.answer_schema is None:
            await answer(interaction, f"Ticket #{self.ticket_id} asks for no typed answer.")
            return
        if ticket.answer is not None or ticket.ended:
            by = f" by {ticket.answered_by_name}" if ticket.answered_by_name else ""
            await answer(interaction, f"Ticket #{ticket.id} was already answered{by}.")
            return
        await interaction.response.send_modal(
            answer_form(ticket.id, read_schema(ticket.answer_schema))
        )

    async def _edit(self, interaction: discord.Interaction, operator: Operator) -> None:
        bot = client_of(interaction)
        ticket = await bot.desk.ticket(self.ticket_id)
        schema = bot.desk.form_schema(ticket) if ticket else None
        if ticket is None or schema is None or not ticket.awaits_decision:
            reply = (
                DeskReply(False, f"Ticket #{self.ticket_id} has nothing to edit.")
                if ticket is None or schema is None
                else DeskReply(
                    False,
                    f"Ticket #{ticket.id} was already {ticket.status}"
                    f" by {ticket.decided_by_name or 'someone'}.",
                )
            )
            await answer(interaction, reply)
            return
        fields = editable_fields(schema, ticket.action_params or {})
        ask_code = (
            bot.desk.operator_codes is not None
            and bool(bot.policy.mfa.operator_code_above)
            and len(fields) < 5
        )
        await interaction.response.send_modal(edit_form(self.ticket_id, fields, ask_code=ask_code))


def ticket_view(card: Card) -> discord.ui.View:
    """The buttons under a ticket message, as its current state allows."""
    view = discord.ui.View(timeout=None)
    if card.can_decide:
        view.add_item(TicketButton("approve", card.ticket_id))
        view.add_item(TicketButton("deny", card.ticket_id))
        if card.can_edit:
            view.add_item(TicketButton("edit", card.ticket_id))
    if card.can_answer_form:
        view.add_item(TicketButton("answer", card.ticket_id))
    if not card.closed:
        view.add_item(TicketButton("claim", card.ticket_id))
    if card.can_save:
        view.add_item(TicketButton("save", card.ticket_id))
    return view


# -- forms (modals) ----------------------------------------------------------------------------
# A form is sent stopped, so discord.py keeps no object waiting for it: every submission, before
# or after a restart, is handled by ``on_form_submit`` from its custom_id, like the buttons.

FORM = re.compile(
    r"^ticket:(?P<form>deny-reason|edit-params|approve-code|save-knowledge|answer-form)"
    r":(?P<id>[0-9]+)$"
)
CODE_FIELD = "__operator_code"


def _form(title: str, custom_id: str, inputs: Sequence[discord.ui.Item[Any]]) -> discord.ui.Modal:
    modal = discord.ui.Modal(title=title, custom_id=custom_id, timeout=None)
    for text_input in inputs:
        modal.add_item(text_input)
    modal.stop()
    return modal


def deny_form(ticket_id: int) -> discord.ui.Modal:
    return _form(
        "Deny the request",
        f"ticket:deny-reason:{ticket_id}",
        [
            discord.ui.TextInput(
                label="Reason (the customer is told)",
                style=discord.TextStyle.paragraph,
                max_length=1000,
                custom_id="reason",
            )
        ],
    )


def _code_input(required: bool) -> discord.ui.TextInput:
    return discord.ui.TextInput(
        label="Your one-time code" + ("" if required else " (large amounts)"),
        min_length=6,
        max_length=6,
        required=required,
        custom_id=CODE_FIELD,
    )


def approve_code_form(ticket_id: int) -> discord.ui.Modal:
    return _form(
        "Approve: your one-time code", f"ticket:approve-code:{ticket_id}", [_code_input(True)]
    )


def edit_form(
    ticket_id: int, fields: list[tuple[str, str]], *, ask_code: bool = False
) -> discord.ui.Modal:
    inputs: list[discord.ui.TextInput[Any]] = [
        discord.ui.TextInput(
            label=name[:45],
            default=value[:4000],
            required=False,
            custom_id=name,
            style=discord.TextStyle.paragraph if name == "params" else discord.TextStyle.short,
        )
        for name, value in fields
    ]
    return _form(
        "Edit & approve",
        f"ticket:edit-params:{ticket_id}",
        inputs + ([_code_input(False)] if ask_code else []),
    )


def save_form(ticket_id: int, question: str, answer_text: str) -> discord.ui.Modal:
    """The answered question as a passage, both editable, before it is saved."""
    return _form(
        "Save as knowledge",
        f"ticket:save-knowledge:{ticket_id}",
        [
            *(
                discord.ui.TextInput(
                    label=label,
                    style=discord.TextStyle.paragraph,
                    default=text[:limit],
                    max_length=limit,
                    custom_id=label.lower(),
                )
                for label, text, limit in (
                    ("Question", question, 1000),
                    ("Answer", answer_text, 4000),
                )
            ),
            discord.ui.TextInput(
                label="Title (optional: the question)",
                max_length=100,
                required=False,
                custom_id="title",
            ),
            discord.ui.TextInput(
                label="Valid until (optional, YYYY-MM-DD)",
                placeholder="2027-01-31",
                max_length=10,
                required=False,
                custom_id="valid_until",
            ),
        ],
    )


def answer_form(ticket_id: int, fields: list[FormField]) -> discord.ui.Modal:
    """The agent's answer_schema as a form: texts and numbers as text inputs (the expected range as
    the placeholder), an enum or a yes/no as a select under its label."""
    items: list[discord.ui.Item[Any]] = []
    for field in fields:
        if field.is_choice:
            choices = discord.ui.Select[Any](
                custom_id=field.name,
                options=[discord.SelectOption(label=o, value=o) for o in field.options],
                required=field.required,
                min_values=1 if field.required else 0,
                max_values=1,
            )
            description = field.description[:100] or None
            items.append(
                discord.ui.Label(text=field.label, component=choices, description=description)
            )
            continue
        items.append(
            discord.ui.TextInput(
                label=field.label,
                custom_id=field.name,
                required=field.required,
                max_length=field.max_length,
                placeholder=field.hint or None,
                style=(
                    discord.TextStyle.paragraph
                    if field.max_length > 200
                    else discord.TextStyle.short
                ),
            )
        )
    return _form("Answer", f"ticket:answer-form:{ticket_id}", items)


def interaction_data(interaction: discord.Interaction) -> dict[str, Any]:
    """The interaction's raw data as Discord sent it (discord.py types it as a union of payload
    shapes)."""
    return cast(dict[str, Any], interaction.data or {})


def submitted_values(interaction: discord.Interaction) -> dict[str, str]:
    """The form's values by field: text inputs in action rows, and components under a label (a
    select's one chosen value)."""
    values = {}
    for row in interaction_data(interaction).get("components", []):
        inner = row.get("components") or [row.get("component", row)]
        for c in inner:
            if "custom_id" in c:
                chosen = c.get("values")
                values[c["custom_id"]] = (
                    (chosen[0] if chosen else "") if chosen is not None else c.get("value", "")
                )
    return values


@answer_failures
async def on_form_submit(interaction: discord.Interaction) -> None:
    """A submitted ticket form (deny reason, edited parameters); other modals are not ours."""
    match = FORM.match(str(interaction_data(interaction).get("custom_id", "")))
    if match is None:
        return
    ticket_id = int(match["id"])
    values = submitted_values(interaction)
    code = values.pop(CODE_FIELD, "").strip() or None
    bot = client_of(interaction)
    if match["form"] == "approve-code":
        operator = await operator_or_refuse(interaction, "approve", ticket_id)
        if operator is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await answer(interaction, await bot.desk.approve(ticket_id, operator, code=code))
        return
    if match["form"] == "save-knowledge":
        operator = await operator_or_refuse(interaction, "save as knowledge", ticket_id)
        if operator is not None:
            await answer(interaction, await bot.kb.save_answer(ticket_id, operator, values))
        return
    if match["form"] == "answer-form":
        operator = await operator_or_refuse(interaction, "answer", ticket_id)
        if operator is not None:
            await answer(interaction, await bot.desk.answer_form(ticket_id, operator, values))
        return
    if match["form"] == "deny-reason":
        operator = await operator_or_refuse(interaction, "deny", ticket_id)
        if operator is not None:
            await answer(
                interaction, await bot.desk.deny(ticket_id, operator, values.get("reason", ""))
            )
        return
    operator = await operator_or_refuse(interaction, "edit & approve", ticket_id)
    if operator is None:
        return
    ticket = await bot.desk.ticket(ticket_id)
    schema = bot.desk.form_schema(ticket) if ticket else None
    if schema is None:
        await answer(interaction, f"Ticket #{ticket_id} has no action to approve.")
        return
    params, problem = parse_edited(schema, values)
    if params is None:
        await answer(
            interaction,
            f"Not approved: {problem}. Nothing was done; click **Edit & approve** again.",
        )
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    await answer(interaction, await bot.desk.approve(ticket_id, operator, params, code=code))
