"""Support hours: when people are at the desk, in the desk's time zone (DST-safe, across midnight).

``[desk] hours`` is a list such as ``["mon-fri 09:00-17:30", "sat 10:00-14:00", "sun
22:00-02:00"]``: days (mon..sun, a range or a comma list) and a time range; an end at or before the
start runs past midnight into the next day. An empty list means always open.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(
    r"^\s*(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class Window:
    weekday: int  # 0 = Monday, the day the window starts
    start: dt.time
    end: dt.time  # at or before start: the next day

    def span(self, day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        begin = dt.datetime.combine(day, self.start, tz)
        finish_day = day + dt.timedelta(days=1) if self.end <= self.start else day
        return begin, dt.datetime.combine(finish_day, self.end, tz)


def _time(text: str) -> dt.time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        return dt.time(23, 59, 59)
    return dt.time(hours, minutes)


def _days(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return out


def parse_hours(specs: Sequence[str]) -> list[Window]:
    """The windows; ValueError naming the entry and the fix for a typo."""
    windows: list[Window] = []
    for spec in specs:
        match = _SPEC.match(spec.lower())
        try:
            if match is None:
                raise ValueError
            days = _days(match["days"])
            start, end = _time(match["start"]), _time(match["end"])
        except ValueError:
            raise ValueError(
                f'{spec!r} is not "days HH:MM-HH:MM"; e.g. "mon-fri 09:00-17:30" or'
                ' "sat,sun 10:00-14:00" (days: mon tue wed thu fri sat sun)'
            ) from None
        windows.extend(Window(day, start, end) for day in days)
    return windows


class SupportHours:
    def __init__(self, specs: Sequence[str], timezone: str) -> None:
        self.windows = parse_hours(specs)
        self.tz = ZoneInfo(timezone)

    @property
    def always(self) -> bool:
        return not self.windows

    def is_open(self, now: float) -> bool:
        if self.always:
            return True
        moment = dt.datetime.fromtimestamp(now, self.tz)
        for back in (0, 1):  # a window that started yesterday may run past midnight
            day = moment.date() - dt.timedelta(days=back)
            for window in self.windows:
                if window.weekday == day.weekday():
                    begin, finish = window.span(day, self.tz)
                    if begin <= moment < finish:
                        return True
        return False

    def next_open(self, now: float) -> dt.datetime | None:
        """When people are next at the desk (now, if open); None when always open."""
        if self.always:
            return None
        moment = dt.datetime.fromtimestamp(now, self.tz)
        if self.is_open(now):
            return moment
        starts = []
        for ahead in range(0, 8):
            day = moment.date() + dt.timedelta(days=ahead)
            for window in self.windows:
                if window.weekday == day.weekday():
                    begin, _ = window.span(day, self.tz)
                    if begin > moment:
                        starts.append(begin)
        return min(starts) if starts else None

    def describe_next(self, now: float) -> str:
        """For a customer: "Monday at 09:00 (Europe/Paris)"."""
        when = self.next_open(now)
        if when is None:
            return "soon"
        return f"{when.strftime('%A')} at {when.strftime('%H:%M')} ({self.tz.key})"
