"""Typed answers: an agent's answer_schema becomes a Discord form on the ticket; what an operator
submits is checked before it counts, and the agent gets answer_data beside the words."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.answer_forms import SchemaError, as_text, parse_answer, read_schema
from tests.conftest import eventually
from tests.desk_support import buttons
from tests.test_agents import Agents

SCHEMA = {
    "type": "object",
    "properties": {
        "percent": {"type": "integer", "minimum": 0, "maximum": 30, "title": "Discount (%)"},
        "offer": {"enum": ["discount", "free shipping", "nothing"]},
        "tell_customer": {"type": "boolean", "description": "Say it is a one-off"},
        "note": {"type": "string", "maxLength": 200},
    },
    "required": ["percent", "offer"],
}


# -- the schema and the checks (pure) ----------------------------------------------------------


def test_a_schema_becomes_form_fields_in_order():
    fields = read_schema(SCHEMA)
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("percent", "integer", True),
        ("offer", "enum", True),
        ("tell_customer", "boolean", False),
        ("note", "string", False),
    ]
    assert fields[0].label == "Discount (%)" and fields[0].hint == "a whole number from 0 to 30"
    assert fields[2].options == ("yes", "no")


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "array"}, "type 'object'"),
        ({"properties": {f"f{i}": {"type": "string"} for i in range(6)}}, "at most 5"),
        ({"properties": {"items": {"type": "array"}}}, "field 'items'"),
        ({"properties": {"who": {"type": "object"}}}, "field 'who'"),
        ({"properties": {"text": {"type": "string", "maxLength": 5000}}}, "field 'text'"),
        ({"properties": {"pick": {"enum": [str(i) for i in range(26)]}}}, "field 'pick'"),
        ({"properties": {"pick": {"enum": ["a", 3]}}}, "field 'pick'"),
        ({"properties": {"n": {"type": "number", "minimum": 5, "maximum": 1}}}, "field 'n'"),
        ({"properties": {"bad name": {"type": "string"}}}, "field 'bad name'"),
        ({"properties": {"a": {"type": "string"}}, "required": ["b"]}, "required"),
    ],
)
def test_a_schema_discord_cannot_show_is_refused_naming_the_field(schema, named):
    with pytest.raises(SchemaError, match=named):
        read_schema(schema)


def test_submissions_are_checked_field_by_field():
    fields = read_schema(SCHEMA)
    ok, problem = parse_answer(
        fields, {"percent": "12", "offer": "discount", "tell_customer": "yes", "note": ""}
    )
    assert problem == "" and ok == {"percent": 12, "offer": "discount", "tell_customer": True}
    assert as_text(fields, ok) == "Discount (%): 12\nOffer: discount\nTell customer: yes"
    for raw, why in [
        ({"percent": "45", "offer": "nothing"}, "Discount (%): 45 is above the maximum 30"),
        ({"percent": "-1", "offer": "nothing"}, "Discount (%): -1 is below the minimum 0"),
        ({"percent": "ten", "offer": "nothing"}, "'ten' is not a whole number"),
        ({"percent": "5", "offer": "cash"}, "Offer: choose one of discount, free shipping"),
        ({"offer": "nothing"}, "Discount (%) is required"),
        ({"percent": "5", "offer": "nothing", "note": "x" * 201}, "Note: at most 200 characters"),
    ]:
        data, problem = parse_answer(fields, raw)
        assert data is None and why in problem, (raw, problem)


# -- through the real bot ---------------------------------------------------------------------


async def the_form(agents: Agents) -> dict[str, Any]:
    def modals() -> list[dict[str, Any]]:
        return [r for r in agents.desk.i.responses if r.get("type") == 9]

    await eventually(lambda: bool(modals()), what="the form")
    [modal] = modals()
    agents.desk.i.responses.clear()
    return modal["data"]


async def submit(agents: Agents, number: int, values: dict[str, Any]) -> None:
    agents.desk.i.submit_modal(
        f"ticket:answer-form:{number}",
        values,
        member=agents.desk.operator,
        channel=agents.desk.h.bot.get_channel(agents.desk.h.bot.settings.staff_channel_id),
    )


async def test_a_typed_answer_round_trip(agents):
    call = asyncio.create_task(
        agents.call(
            "ask_human",
            question="Ada wants 20% off order 4411; what do we offer?",
            answer_schema=SCHEMA,
            wait_seconds=30,
        )
    )
    await agents.posted(1)
    assert "ticket:answer:1" in await buttons(agents.desk, 1)
    await agents.desk.click(1, "answer")
    form = await the_form(agents)
    assert form["custom_id"] == "ticket:answer-form:1" and len(form["components"]) == 4
    percent, offer, tell, note = form["components"]
    assert percent["components"][0]["placeholder"] == "a whole number from 0 to 30"
    assert offer["type"] == 18 and offer["label"] == "Offer"
    assert [o["value"] for o in offer["component"]["options"]] == [
        "discount",
        "free shipping",
        "nothing",
    ]
    assert tell["component"]["required"] is False and tell["description"] == "Say it is a one-off"
    assert note["components"][0]["max_length"] == 200
    # out of range: refused in the form's reply, nothing recorded
    await submit(agents, 1, {"percent": "45", "offer": ["discount"], "note": ""})
    [(told, ephemeral)] = await agents.desk.told()
    assert ephemeral and "45 is above the maximum 30" in told and "Nothing was recorded" in told
    assert not call.done()
    # words in the thread do not answer a question that wants a form
    await agents.desk.write(1, "15% is fine")
    thread = await agents.desk.thread(1)
    said = [m.content async for m in thread.history(limit=10)]
    assert any("asked for a typed answer" in m and "**Answer**" in m for m in said), said
    assert not call.done()
    await submit(
        agents, 1, {"percent": "15", "offer": ["discount"], "tell_customer": ["yes"], "note": ""}
    )
    result = (await asyncio.wait_for(call, 10)).structured_content
    assert result == {
        "ticket": 1,
        "status": "answered",
        "answer": "Discount (%): 15\nOffer: discount\nTell customer: yes",
        "answered_by": agents.desk.operator.display_name,
        "answer_data": {"percent": 15, "offer": "discount", "tell_customer": True},
    }
    assert "ticket:answer:1" not in await buttons(agents.desk, 1), "answered: the button goes"
    again = (await agents.call("get_result", ticket=1)).structured_content
    assert again == result


async def test_a_schema_a_form_cannot_show_is_a_tool_error_and_opens_nothing(agents):
    result = await agents.call(
        "ask_human",
        question="Which items?",
        answer_schema={"properties": {"items": {"type": "array"}}},
        wait_seconds=0,
    )
    assert result.is_error and "field 'items'" in result.content[0].text
    huge = await agents.call(
        "ask_human",
        question="Which?",
        answer_schema={"properties": {"a": {"type": "string", "description": "x" * 9000}}},
        wait_seconds=0,
    )
    assert huge.is_error and "longer than 8000" in huge.content[0].text
    assert await agents.desk.h.fetch("SELECT id FROM tickets") == []
