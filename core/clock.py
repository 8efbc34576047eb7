"""Time as an injectable dependency, so deadlines can be tested without waiting."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""


class SystemClock:
    def now(self) -> float:
        return time.time()


def utc_day_start(now: float) -> float:
    """Midnight UTC of the day ``now`` is in (per-day allowances and budgets count from it)."""
    return now - now % 86400
