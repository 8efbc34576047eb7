"""Support hours: open or not, and when people are back, across midnight and daylight-saving
changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.hours import SupportHours, parse_hours
from core.policy import PolicyError, parse_policy

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-12-07 08:59", False),  # Monday before opening
        ("2026-12-07 09:00", True),
        ("2026-12-07 17:29", True),
        ("2026-12-07 17:30", False),
        ("2026-12-12 11:00", True),  # Saturday
        ("2026-12-13 23:30", True),  # Sunday night window...
        ("2026-12-14 01:59", True),  # ...runs past midnight into Monday
        ("2026-12-14 02:00", False),
        ("2026-12-13 12:00", False),  # Sunday noon
    ],
)
def test_is_open(moment, open_):
    hours = SupportHours(
        ["mon-fri 09:00-17:30", "sat 10:00-14:00", "sun 22:00-02:00"], "Europe/Paris"
    )
    assert hours.is_open(at(moment)) is open_


def test_next_open_over_a_weekend_and_a_dst_change():
    hours = SupportHours(["mon-fri 09:00-17:00"], "Europe/Paris")
    # Friday evening before the spring change (Sunday 2027-03-28): back Monday 09:00 local, whatever
    # the offset.
    back = hours.next_open(at("2027-03-26 18:00"))
    assert back.isoformat() == "2027-03-29T09:00:00+02:00"
    assert hours.describe_next(at("2027-03-26 18:00")) == "Monday at 09:00 (Europe/Paris)"
    assert hours.next_open(at("2027-03-29 10:00")).hour == 10  # open now: now


def test_always_open_without_hours():
    hours = SupportHours([], "UTC")
    assert hours.is_open(0) and hours.next_open(0) is None


@pytest.mark.parametrize(
    "bad", ["weekdays 9-5", "mon 9:00", "mon-fri 25:00-26:00", "funday 09:00-10:00"]
)
def test_a_typo_is_named_with_the_fix(bad):
    with pytest.raises(ValueError, match='is not "days HH:MM-HH:MM"'):
        parse_hours([bad])


def test_the_policy_file_names_the_line_of_bad_hours_and_time_zone():
    with pytest.raises(PolicyError) as caught:
        parse_policy('[desk]\nhours = ["mon-fri 9-5"]\ntimezone = "Mars/Olympus"\n', "policy.toml")
    text = str(caught.value)
    assert "policy.toml:2: [desk] hours:" in text
    parse_policy(
        '[desk]\nhours = ["mon-fri 09:00-17:00"]\ntimezone = "Europe/Paris"\n', "policy.toml"
    )
    with pytest.raises(PolicyError, match="is not a time zone"):
        parse_policy('[desk]\ntimezone = "Mars/Olympus"\n', "policy.toml")


async def test_outside_hours_the_customer_is_told_when_people_are_back_and_on_call_is_mentioned(
    harness,
):
    from tests.desk_support import ask_then_wait
    from tests.support import test_policy

    on_call = 123456789012345678
    # The tests' clock starts on Friday 2027-01-15 08:00 UTC: outside Monday-Thursday.
    policy = test_policy(
        desk={"hours": ["mon-thu 09:00-17:00"], "timezone": "UTC", "on_call_role_id": on_call}
    )
    await harness.start(policy=policy)
    harness.fake.default = ask_then_wait
    await harness.dm(0, "is the mug dishwasher safe?")
    dms = " ".join(m.content for m in harness.sent())
    assert "people are back Monday at 09:00 (UTC)" in dms
    card = next(m for m in harness.staff() if m.embeds)
    assert card.content.startswith(f"<@&{on_call}>")
    assert f"<@&{harness.bot.settings.operator_role_id}>" not in card.content
