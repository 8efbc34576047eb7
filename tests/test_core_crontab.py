"""The summary's crontab: numeric weekdays mean what they mean in crontab (0 and 7 are Sunday)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.crontab import crontab_trigger, crontab_weekdays
from core.policy import PolicyError, parse_policy

UTC = ZoneInfo("UTC")
MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday, after 09:00


def next_days(expression: str, count: int = 7) -> list[str]:
    trigger = crontab_trigger(expression, UTC)
    fires, previous, now = [], None, MONDAY
    for _ in range(count):
        at = trigger.get_next_fire_time(previous, now)
        fires.append(at.strftime("%a %H:%M"))
        previous = now = at.replace(second=1)
    return fires


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 9 * * 1", ["Mon 09:00"] * 3),
        ("0 9 * * 0", ["Sun 09:00"] * 3),
        ("0 9 * * 7", ["Sun 09:00"] * 3),
        ("0 9 * * 1-5", ["Tue 09:00", "Wed 09:00", "Thu 09:00", "Fri 09:00", "Mon 09:00"]),
        ("0 9 * * 5-7", ["Fri 09:00", "Sat 09:00", "Sun 09:00", "Fri 09:00"]),
        ("0 9 * * 0,6", ["Sat 09:00", "Sun 09:00", "Sat 09:00"]),
        ("0 9 * * */2", ["Tue 09:00", "Thu 09:00", "Sat 09:00", "Sun 09:00", "Tue 09:00"]),
        ("0 9 * * 1/3", ["Thu 09:00", "Mon 09:00", "Thu 09:00"]),
        ("30 8 * * mon-fri", ["Tue 08:30", "Wed 08:30", "Thu 08:30", "Fri 08:30", "Mon 08:30"]),
        ("0 9 * * MON,3", ["Wed 09:00", "Mon 09:00", "Wed 09:00"]),
        ("0 9 * * *", ["Tue 09:00", "Wed 09:00"]),
        ("0 18 * * 1", ["Mon 18:00", "Mon 18:00"]),
    ],
)
def test_next_fire_times(expression, expected):
    assert next_days(expression, len(expected)) == expected


@pytest.mark.parametrize("field", ["8", "5-1", "*/0", "funday"])
def test_bad_weekdays_are_refused_with_a_reason(field):
    with pytest.raises(ValueError):
        crontab_weekdays(field)
    with pytest.raises(PolicyError, match=r"\[summary\] cron = .* is not a crontab expression"):
        parse_policy(f'[summary]\ncron = "0 9 * * {field}"\n')


def test_the_policy_accepts_sunday_as_seven():
    assert parse_policy('[summary]\ncron = "0 9 * * 7"\n')["summary"]["cron"] == "0 9 * * 7"
