"""Crontab expressions as a deployer means them, for APScheduler 3.

APScheduler 3's ``CronTrigger.from_crontab`` counts weekdays from Monday = 0, so ``0 9 * * 1``
would fire on Tuesdays, ``1-5`` would mean Tuesday to Saturday and ``7`` would be refused. In
crontab, 0 and 7 are Sunday and 1 is Monday. The weekday field is therefore rewritten as day
names (which APScheduler reads unambiguously) before the trigger is built.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    token = token.strip().casefold()
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(f"weekday {token} is out of range (0-7, 0 and 7 are Sunday)")
        return number
    if token[:3] in DAY_NAMES:
        return DAY_NAMES.index(token[:3])
    raise ValueError(f"unknown weekday {token!r}")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field as APScheduler day names: "1-5" -> "mon,tue,wed,thu,fri"; "*"
    stays."""
    if field.strip() in ("*", "?"):
        return "*"
    days: list[str] = []
    for part in field.split(","):
        base, _, step = part.partition("/")
        every = int(step) if step else 1
        if every < 1:
            raise ValueError(f"step {step} must be at least 1")
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            lo, hi = _day(first), _day(last)
            if lo > hi:
                raise ValueError(f"weekday range {base} runs backwards")
        else:
            lo = _day(base)
            hi = 6 if step else lo  # "1/2": from Monday, every second day
        days.extend(DAY_NAMES[d % 7] for d in range(lo, hi + 1, every))
    return ",".join(dict.fromkeys(days))


def crontab_trigger(expression: str, timezone: tzinfo) -> CronTrigger:
    """A trigger for a five-field crontab expression (minute hour day month weekday). Raises
    ValueError."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=timezone,
    )
