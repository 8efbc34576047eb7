"""Snippets: saved replies operators send with /reply snippet:, placeholders filled in."""

from __future__ import annotations

import pytest

from core.snippets import fill, name_problem, text_problem
from tests.conftest import eventually
from tests.desk_support import open_question


async def choices(
    desk, typed: str, *, member=None, command: str = "reply", option: str = "snippet"
) -> list[str]:
    """What Discord would list under a slash command's option as someone types (an autocomplete
    interaction)."""
    before = len(desk.i.responses)
    staff = desk.h.bot.get_channel(desk.h.bot.settings.staff_channel_id)
    desk.i.autocomplete(command, option, typed, member=member or desk.operator, channel=staff)
    await eventually(
        lambda: [r for r in desk.i.responses[before:] if r.get("type") == 8], what="the choices"
    )
    [answer] = [r for r in desk.i.responses[before:] if r.get("type") == 8]
    return [c["value"] for c in answer["data"]["choices"]]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("refund-policy", True),
        ("a", True),
        ("Refund", False),
        ("two words", False),
        ("-dash", False),
        ("x" * 33, False),
    ],
)
def test_snippet_names(name, ok):
    assert (name_problem(name) is None) is ok


def test_placeholders_are_checked_and_filled():
    assert text_problem("Hi {customer}, about {ticket}: {operator} here.") is None
    assert "unknown placeholder(s) {name}" in text_problem("Hi {name}")
    assert text_problem("   ") == "the snippet's text is empty"
    assert (
        fill("Hi {customer}, ticket {ticket}. {operator}", customer="Ada", ticket=7, operator="Sam")
        == "Hi Ada, ticket #7. Sam"
    )


async def test_operators_save_list_send_and_remove_snippets(desk):
    h = desk.h
    await open_question(desk)
    await desk.slash(
        "snippet add",
        None,
        name="dishwasher",
        text="Hi {customer}, yes: all our mugs are dishwasher safe ({ticket}, {operator}).",
    )
    assert (await desk.told(1))[-1][
        0
    ] == "Saved `dishwasher`. Send it with `/reply snippet:dishwasher`."
    await desk.slash("snippet add", None, name="dishwasher", text="another text")
    assert "exists already" in (await desk.told(2))[-1][0]
    await desk.slash("snippet add", None, name="Bad Name", text="x")
    assert "is not a snippet name" in (await desk.told(3))[-1][0]
    await desk.slash("snippet add", None, name="typo", text="Hello {custmer}")
    assert "unknown placeholder(s) {custmer}" in (await desk.told(4))[-1][0]
    await desk.slash("snippet list", None)
    listed = (await desk.told(5))[-1][0]
    assert listed.startswith("`dishwasher` Hi {customer}") and "typo" not in listed

    await desk.slash("reply", 1, snippet="dishwasher")
    assert (await desk.told(6))[-1][0].startswith("Sent to")
    [dm] = h.sent()
    [(name,)] = await h.fetch("SELECT display_name FROM customers")
    assert (
        f"Hi {name}, yes: all our mugs are dishwasher safe (#1, {desk.operator.display_name})."
        in dm.content
    )
    await desk.slash("reply", 1, snippet="nothing-like-it")
    assert (await desk.told(7))[-1][
        0
    ] == "There is no snippet named `nothing-like-it` (`/snippet list`)."
    assert await choices(desk, "dish") == ["dishwasher"]
    assert await choices(desk, "dish", command="snippet remove", option="name") == ["dishwasher"]
    await desk.slash("snippet remove", None, name="dishwasher")
    assert (await desk.told(8))[-1][0] == "Removed `dishwasher`."
    assert await choices(desk, "") == []
    audit = [
        r[0]
        for r in await h.fetch("SELECT action FROM audit WHERE action LIKE 'snippet_%' ORDER BY id")
    ]
    assert audit == ["snippet_added", "snippet_removed"]


async def test_others_cannot_touch_snippets(desk):
    await desk.slash("snippet add", None, member=desk.stranger, name="spam", text="buy now")
    assert (await desk.told(1))[-1][0].startswith("Only operators")
    assert await desk.h.fetch("SELECT name FROM snippets") == []
    await desk.slash("snippet add", None, name="refund-policy", text="Refunds within 30 days.")
    await desk.told(2)
    assert await choices(desk, "") == ["refund-policy"]
    assert await choices(desk, "", member=desk.stranger) == [], "names are listed to operators only"
    assert (
        await choices(desk, "ref", member=desk.stranger, command="snippet remove", option="name")
        == []
    )
