"""Ticket rules without Discord: priority, thread names, the card within Discord's limits, edited
parameters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.policy import defaults, parse_policy
from core.tickets import (
    EMBED_FIELD_LIMIT,
    EMBED_TOTAL_LIMIT,
    build_card,
    classify_priority,
    editable_fields,
    parse_edited,
    pending_lines,
    thread_name,
)
from storage.records import Kind, Priority, Ticket

DESK = defaults().desk


def priority(
    *texts: str, decision_type: str | None = None, floor: Priority = Priority.NORMAL
) -> tuple[str, str]:
    level, rule = classify_priority(
        texts=texts, decision_type=decision_type, desk_policy=DESK, floor=floor
    )
    return level.value, rule


def test_priority_rules_payment_and_security_urgent_complaints_high_else_normal():
    assert priority("Where is my parcel?") == ("normal", "no priority rule matched")
    assert priority("I was charged twice, check my card") == ("urgent", "mentions 'charge'")
    assert priority("someone hacked my account") == ("urgent", "mentions 'hacked'")
    assert priority("This is unacceptable!") == ("high", "mentions 'unacceptable'")
    assert priority("terrible service and my payment failed")[0] == "urgent", (
        "the highest rule wins"
    )
    assert priority("Give a discount", decision_type="financial") == ("urgent", "financial action")
    assert priority("hello", floor=Priority.HIGH) == ("high", "at least high as requested")
    assert priority("my card was stolen", floor=Priority.HIGH)[0] == "urgent", (
        "a floor never lowers"
    )
    assert priority("discard this")[0] == "normal", (
        "words match at their start, not inside other words"
    )


def test_priority_keywords_come_from_the_policy_file():
    policy = parse_policy('[desk]\nhigh_keywords = ["late"]\nurgent_keywords = ["lawsuit"]\n')
    level, _ = classify_priority(
        texts=["my order is late"], decision_type=None, desk_policy=policy.desk
    )
    assert level is Priority.HIGH
    level, _ = classify_priority(
        texts=["I'll file a lawsuit"], decision_type=None, desk_policy=policy.desk
    )
    assert level is Priority.URGENT


@given(st.integers(1, 10**9), st.text(max_size=500))
def test_thread_names_never_exceed_discords_limit(number, question):
    name = thread_name(number, question)
    assert 1 <= len(name) <= 100 and name.startswith(f"#{number} ") and "\n" not in name


def ticket(**overrides) -> Ticket:
    base = dict(
        id=7,
        customer_id=1,
        conversation_id=1,
        kind=Kind.APPROVAL,
        source="approval",
        priority=Priority.URGENT,
        status="open",
        question="Refund an order: {}",
        reason="financial",
        action_name="issue_refund",
        action_params={"order_id": 1, "amount": 10},
        claimed_by=None,
        claimed_by_name=None,
        takeover_by=None,
        takeover_by_name=None,
        decided_by_name=None,
        decision_note=None,
        result=None,
        staff_message_id=None,
        thread_id=None,
        created_at=0.0,
        customer_discord_id=42,
        customer_name="Ada",
        dm_closed_at=None,
    )
    base.update(overrides)
    return Ticket(**base)


@given(
    st.text(max_size=5000),
    st.text(max_size=3000),
    st.lists(st.text(max_size=400), max_size=40),
    st.dictionaries(st.text(max_size=30), st.text(max_size=300), max_size=20),
)
def test_the_card_stays_within_embed_limits_whatever_the_input(
    question, reason, transcript, params
):
    card = build_card(
        ticket(question=question, reason=reason, action_params=params, customer_name=reason[:200]),
        transcript,
        "Refund an order",
    )
    assert (
        card.total_length() <= EMBED_TOTAL_LIMIT
        and len(card.title) <= 256
        and len(card.description) <= 4096
    )
    assert all(
        0 < len(value) <= EMBED_FIELD_LIMIT and len(name) <= 256 for name, value in card.fields
    )


def test_the_card_buttons_follow_the_state():
    assert build_card(ticket(), [], None).can_decide and build_card(ticket(), [], None).can_edit
    assert not build_card(ticket(status="approved"), [], None).can_decide
    assert not build_card(ticket(action_params={}), [], None).can_edit
    assert not build_card(
        ticket(kind=Kind.QUESTION, action_name=None, action_params=None), [], None
    ).can_decide


def test_transcript_keeps_the_newest_lines():
    lines = [f"**Customer:** message {i} " + "x" * 100 for i in range(30)]
    card = build_card(ticket(), lines, None)
    shown = dict(card.fields)["Recent conversation"]
    assert "message 29" in shown and "message 0 " not in shown


def test_pending_lists_oldest_first_with_age_kind_priority():
    tickets = [
        ticket(id=2, created_at=900.0, kind=Kind.QUESTION, priority=Priority.NORMAL, thread_id=55),
        ticket(id=1, created_at=0.0, claimed_by_name="Sam"),
    ]
    lines = pending_lines(tickets, now=3600.0).splitlines()
    assert lines[0].startswith("#1 · 1h 0m · approval · urgent · waiting for a person · Sam")
    assert lines[1] == "#2 · 45m · question · normal · waiting for a person · <#55>"
    assert pending_lines([], 0) == "No open tickets. 🎉"
    many = pending_lines([ticket(id=i, created_at=float(i)) for i in range(1, 200)], 500.0)
    assert len(many) <= 1900 and many.endswith("more")


SCHEMA = {
    "type": "object",
    "properties": {
        "percent": {"type": "integer"},
        "amount": {"type": "number"},
        "notify": {"type": "boolean"},
        "reason": {"type": "string"},
    },
}


def test_edited_values_are_typed_by_the_schema():
    assert parse_edited(
        SCHEMA, {"percent": "15", "amount": "9.5", "notify": "yes", "reason": " ok "}
    ) == ({"percent": 15, "amount": 9.5, "notify": True, "reason": "ok"}, "")
    assert parse_edited(SCHEMA, {"percent": "1.5"}) == (
        None,
        "percent: '1.5' is not a valid integer",
    )
    assert parse_edited(SCHEMA, {"notify": "maybe"})[0] is None
    assert parse_edited(SCHEMA, {"reason": ""}) == ({}, ""), "an emptied field is left out"


def test_too_many_or_structured_parameters_are_edited_as_json():
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(6)}}
    assert editable_fields(wide, {"p0": "a"}) == [("params", '{"p0": "a"}')]
    assert editable_fields(SCHEMA, {"percent": 5}) == [
        ("percent", "5"),
        ("amount", ""),
        ("notify", ""),
        ("reason", ""),
    ]
    assert parse_edited(wide, {"params": '{"p0": "b"}'}) == ({"p0": "b"}, "")
    assert parse_edited(wide, {"params": "[1]"}) == (None, "the parameters must be a JSON object")
    assert parse_edited(wide, {"params": "{"})[0] is None
