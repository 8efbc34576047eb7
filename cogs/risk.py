"""Operators inspect the risk policy: /policy shows it, /classify dry-runs a sentence or an
action."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.discord.setup_check import staff_setup_problems
from cogs.discord.ticket_views import OperatorsOnly, answer
from core.actions import ActionContext
from core.risk import MODEL_VIEWS, RiskPolicy
from core.tickets import clip
from core.tool_runner import RISK_VIEW, assess

if TYPE_CHECKING:
    from cogs.discord.handoff_bot import HandoffBot


class Risk(OperatorsOnly, commands.Cog):
    def __init__(self, bot: HandoffBot) -> None:
        self.bot = bot
        self.risk = RiskPolicy(bot.policy)

    @app_commands.command(name="policy", description="The effective risk policy (only you see it).")
    async def show_policy(self, interaction: discord.Interaction) -> None:
        lines = [
            f"**Risk policy** ({self.bot.policy.source})",
            *(f"- {line}" for line in self.risk.describe()),
            f"- confirmations expire after {self.bot.policy.risk.confirmation_minutes:g} minutes",
            f"- legal/medical words: {', '.join(self.bot.policy.risk.legal_medical_keywords)}",
        ]
        problems = staff_setup_problems(self.bot)
        if problems:  # first: these keep the desk from working at all
            lines = [
                "**Set-up problems** (fix these first):",
                *(f"- ⚠ {p}" for p in problems),
                "",
                *lines,
            ]
        await answer(interaction, clip("\n".join(lines), 1990))

    @app_commands.command(
        description="Dry-run the risk policy on a customer sentence and/or an action."
    )
    @app_commands.describe(
        message="what a customer might write",
        action="an action name",
        params='the action\'s parameters as JSON, e.g. {"amount": 250}',
        model_view="the assistant's own view of the risk",
    )
    @app_commands.choices(model_view=[app_commands.Choice(name=v, value=v) for v in MODEL_VIEWS])
    async def classify(
        self,
        interaction: discord.Interaction,
        message: str = "",
        action: str = "",
        params: str = "",
        model_view: str = "",
    ) -> None:
        lines = []
        if message:
            topic = self.risk.message_topic(message)
            verdict = (
                f"critical: mentions {topic!r}, a person answers"
                if topic
                else "no legal/medical rule fired; the assistant answers"
            )
            lines.append(f"Message: {verdict}")
        if action:
            found = self.bot.registry.get(action)
            if found is None:
                names = ", ".join(self.bot.registry.actions)
                await answer(interaction, f"There is no action {action!r}. Actions: {names}")
                return
            try:
                values = json.loads(params) if params.strip() else {}
            except json.JSONDecodeError as exc:
                await answer(
                    interaction, f'params is not valid JSON ({exc.msg}); e.g. {{"amount": 250}}'
                )
                return
            if not isinstance(values, dict):
                await answer(interaction, 'params must be a JSON object, e.g. {"amount": 250}')
                return
            # The tool runner's own classification (schema, preview, rules), so the dry run never
            # disagrees.
            ctx = ActionContext(0, interaction.user.id, self.bot.db, self.bot.clock.now())
            raw = {**values, RISK_VIEW: model_view} if model_view else values
            assessment = await assess(self.risk, found, raw, ctx, customer_text=message)
            decision = assessment.decision
            if decision is None:
                lines.append(
                    f"Action {action}: refused before classification: {assessment.problem}"
                )
            else:
                lines.append(
                    f"Action {action}: **{decision.decision_type} · {decision.level} · "
                    f"{decision.strategy}**"
                )
                if assessment.preview:
                    lines.append(
                        "- preview: "
                        + json.dumps(assessment.preview, ensure_ascii=False, default=str)
                    )
                lines.extend(f"- {rule}" for rule in decision.rules)
        if not lines:
            lines.append("Give a `message`, an `action` (with `params`), or both.")
        await answer(interaction, clip("\n".join(lines), 1990))


async def setup(bot: HandoffBot) -> None:
    await bot.add_cog(Risk(bot), guild=discord.Object(bot.settings.guild_id))
