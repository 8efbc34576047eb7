"""The dpytest extensions the operator desk relies on: threads, slash commands, persistent buttons,
modals.

These drive discord.py's own dispatch (CommandTree, ViewStore) with raw payloads, as the gateway
would.
"""

from __future__ import annotations

import discord
import discord.ext.test as dpytest
import pytest

from tests.conftest import eventually
from tests.dpytest_ext import Interactions, created_threads


class Echo(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicks: list[int] = []

    @discord.ui.button(label="Approve", custom_id="test:approve:1")
    async def approve(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.clicks.append(interaction.user.id)
        await interaction.response.send_message("approved", ephemeral=True)


class Reason(discord.ui.Modal, title="Reason"):
    reason = discord.ui.TextInput(label="Reason", custom_id="reason")

    def __init__(self, sink: list[str]) -> None:
        super().__init__(custom_id="test:deny:1", timeout=None)
        self.sink = sink

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.sink.append(self.reason.value)
        await interaction.response.send_message("denied", ephemeral=True)


@pytest.fixture
async def bot(harness):
    bot = await harness.start(ai=False)
    yield bot


async def test_thread_on_a_staff_message_and_a_message_in_it(bot, harness):
    staff = dpytest.get_config().channels[0]
    post = await staff.send("ticket #1")
    thread = await post.create_thread(name="#1 refund question")
    cached = bot.get_channel(thread.id)
    assert isinstance(cached, discord.Thread) and cached.parent_id == staff.id, (
        "THREAD_CREATE cached it"
    )
    await thread.send("details")
    sent = harness.staff()
    assert [m.content for m in sent] == ["ticket #1", "details"] and sent[1].channel.id == thread.id
    assert created_threads[-1]["message_id"] == post.id
    with pytest.raises(discord.HTTPException, match="1-100 characters"):
        await post.create_thread(name="x" * 101)


async def test_slash_command_button_and_modal_go_through_discord_py(bot, harness):
    interactions = Interactions(bot)
    seen: list[str] = []

    @bot.tree.command(name="ping", description="test")
    async def ping(interaction: discord.Interaction, text: str) -> None:
        seen.append(text)
        await interaction.response.send_message(f"pong {text}", ephemeral=True)

    view = Echo()
    bot.add_view(view)
    reasons: list[str] = []
    staff = dpytest.get_config().channels[0]
    member = harness.members[0]
    try:
        interactions.slash("ping", member=member, channel=staff, text="hi", guild_command=False)
        await dpytest.run_all_events()
        post = await staff.send("ticket", view=view)
        interactions.click("test:approve:1", member=member, channel=staff, message=post)
        bot._connection._view_store.add_view(Reason(reasons))
        interactions.submit_modal(
            "test:deny:1", {"reason": "too much"}, member=member, channel=staff
        )
        await eventually(
            lambda: len(interactions.responses) == 3, what="three interaction responses"
        )
    finally:
        interactions.close()
    assert seen == ["hi"] and view.clicks == [member.id] and reasons == ["too much"]
    contents = [(r["data"]["content"], r["data"]["flags"]) for r in interactions.responses]
    assert contents == [("pong hi", 64), ("approved", 64), ("denied", 64)]
