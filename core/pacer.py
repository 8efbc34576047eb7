"""One pacer for every request the bot makes on its own initiative, under Discord's budget.

Discord allows a bot 50 requests a second in all, a few messages per channel per few seconds (each
route announces its bucket in ``X-RateLimit-*`` headers), and bans an IP that makes 10,000 invalid
requests (401, 403, 429) in 10 minutes. Sending as fast as the code wants means 429s become the
norm once a crowd writes. So every request waits here for its turn:

- turns are spaced at ``rate`` per second (``[discord] requests_per_second``, 45 by default);
- a request whose route has used up its announced bucket waits for the bucket's reset, and the turn
  goes to the next request instead (a route not announced yet: one request at a time until it is);
- the most urgent goes first: customers' answers and new tickets, then posts, then edits, typing
  last; a request that is no longer wanted when its turn comes (a typing indicator whose answer
  already went) is dropped without spending a turn;
- a global 429 holds everything for its ``retry_after``.

``Schedule`` is the decision alone, on numbers (tests drive it with a fake clock); ``Pacer`` runs it
on the event loop. Interaction answers don't pass here at all: Discord does not count them against
the global limit, and they are due within 3 seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import enum
import itertools
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Lower goes first."""

    ANSWER = 0  # a customer's answer (DMs), a new ticket's card
    POST = 1  # thread posts, thread creation, summaries, anything not marked
    EDIT = 2  # card edits, archiving
    TYPING = 3  # the typing indicator


_priority: ContextVar[Priority] = ContextVar("request_priority", default=Priority.POST)
_wanted: ContextVar[Callable[[], bool] | None] = ContextVar("request_wanted", default=None)


@contextlib.contextmanager
def request_priority(
    priority: Priority, wanted: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Requests started inside this block go at ``priority``; ``wanted()`` False at their turn drops
    them."""
    p, w = _priority.set(priority), _wanted.set(wanted)
    try:
        yield
    finally:
        _priority.reset(p)
        _wanted.reset(w)


def current_request() -> tuple[Priority, Callable[[], bool] | None]:
    return _priority.get(), _wanted.get()


@dataclass
class Bucket:
    limit: int
    remaining: int
    reset_at: float


class RouteBuckets:
    """Each route's bucket as Discord announced it in its last answer, and our requests still in
    flight."""

    # routes remembered; expired ones are forgotten past this (one per DM channel)
    PRUNE_ABOVE = 5000

    def __init__(self) -> None:
        self._known: dict[str, Bucket | None] = {}  # None: the route announced no limit
        self._in_flight: Counter[str] = Counter()

    def available(self, route: str, now: float) -> bool:
        if route not in self._known:
            return self._in_flight[route] == 0  # not announced yet: one at a time until it is
        bucket = self._known[route]
        if bucket is None:
            return True
        remaining = bucket.limit if now >= bucket.reset_at else bucket.remaining
        return remaining - self._in_flight[route] > 0

    def free_at(self, route: str, now: float) -> float:
        """When an unavailable route may take a request again (inf: when one in flight ends)."""
        bucket = self._known.get(route)
        if bucket is None or now >= bucket.reset_at:
            return math.inf
        return bucket.reset_at

    def start(self, route: str) -> None:
        self._in_flight[route] += 1

    def finish(self, route: str) -> None:
        self._in_flight[route] -= 1
        if self._in_flight[route] <= 0:
            del self._in_flight[route]

    def update(self, route: str, headers: Mapping[str, str], now: float) -> None:
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset_after = float(headers["X-RateLimit-Reset-After"])
        except (KeyError, ValueError):
            if route not in self._known:
                self._known[route] = None  # answered without a bucket: not held
            return
        self._known[route] = Bucket(limit, remaining, now + reset_after)
        if len(self._known) > self.PRUNE_ABOVE:
            for key in [
                k
                for k, b in self._known.items()
                if b is not None and b.reset_at < now and k not in self._in_flight
            ]:
                del self._known[key]


@dataclass(order=True)
class Turn:
    priority: int
    seq: int
    route: str = field(compare=False)
    enqueued_at: float = field(compare=False)
    wanted: Callable[[], bool] | None = field(compare=False, default=None)


class Schedule:
    """Who may send next, and when to look again: the pacer's decisions on plain numbers."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.buckets = RouteBuckets()
        self.held_until = 0.0  # a global 429 holds everything until then
        self._next = -math.inf  # the earliest time of the next turn
        self._waiting: list[Turn] = []  # in priority order, then arrival
        self._seq = itertools.count()

    def add(
        self, route: str, priority: Priority, now: float, wanted: Callable[[], bool] | None = None
    ) -> Turn:
        turn = Turn(int(priority), next(self._seq), route, now, wanted)
        bisect.insort(self._waiting, turn)
        return turn

    def cancel(self, turn: Turn) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(turn)

    def hold(self, until: float) -> None:
        self.held_until = max(self.held_until, until)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def backlog_seconds(self) -> float:
        """How long the requests waiting now take to leave at the pace."""
        return len(self._waiting) * self.interval

    def oldest_wait(self, now: float) -> float:
        return max((now - t.enqueued_at for t in self._waiting), default=0.0)

    def release(self, now: float) -> tuple[list[Turn], list[Turn], float | None]:
        """(turns that may send now, turns dropped as no longer wanted, when to call again or
        None)."""
        granted: list[Turn] = []
        dropped: list[Turn] = []
        if now < self.held_until:
            return granted, dropped, self.held_until if self._waiting else None
        while self._waiting:
            if now < self._next:
                return granted, dropped, self._next
            pick, soonest = None, math.inf
            for turn in list(self._waiting):
                if turn.wanted is not None and not turn.wanted():
                    self._waiting.remove(turn)
                    dropped.append(turn)
                    continue
                if self.buckets.available(turn.route, now):
                    pick = turn
                    break
                soonest = min(soonest, self.buckets.free_at(turn.route, now))
            if pick is None:
                return granted, dropped, None if soonest == math.inf else soonest
            self._waiting.remove(pick)
            self.buckets.start(pick.route)
            # Busy: the next turn is one interval after the last one's slot (a late timer does not
            # slow the pace); idle: one interval from now.
            self._next = (self._next if now - self._next < self.interval else now) + self.interval
            granted.append(pick)
        return granted, dropped, None


@dataclass
class DayFigures:
    """What /stats shows of today's requests (UTC day)."""

    day: str
    paced: int = 0
    rate_limited: int = 0  # 429 answers
    dropped_typing: int = 0
    longest_wait: float = 0.0

    def describe(self) -> str:
        share = f" ({100 * self.rate_limited / self.paced:.1f}%)" if self.paced else ""
        return (
            f"Discord requests today ({self.day}, UTC): {self.paced} sent, {self.rate_limited}"
            f" answered 429{share}, longest wait for a turn {self.longest_wait:.1f} s,"
            f" {self.dropped_typing} typing indicator(s) left out"
        )


class RequestDropped(Exception):
    """A request that was no longer wanted when its turn came (a typing indicator); nothing was
    sent."""


class Pacer:
    """The schedule on the event loop: ``acquire`` before a request, ``finish`` after, ``observe``
    each answer."""

    REPORT_EVERY = 60.0

    def __init__(self, rate: float, *, wall: Callable[[], float] = time.time) -> None:
        self.schedule = Schedule(rate)
        self.rate = rate
        self._wall = wall
        self._futures: dict[int, asyncio.Future[bool]] = {}  # turn seq -> its waiter
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.today = DayFigures(self._day())
        self._last_report = -math.inf
        self._worst_since_report = 0.0
        self._recent: deque[float] = deque()  # when the turns of the last second were given

    def _day(self) -> str:
        return dt.datetime.fromtimestamp(self._wall(), dt.UTC).strftime("%Y-%m-%d")

    def figures(self) -> DayFigures:
        if self.today.day != self._day():
            self.today = DayFigures(self._day())
        return self.today

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def acquire(
        self, route: str, priority: Priority, wanted: Callable[[], bool] | None = None
    ) -> None:
        """Wait for this request's turn. Raises RequestDropped when it was no longer wanted at its
        turn."""
        now = self._now()
        turn = self.schedule.add(route, priority, now, wanted)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._futures[turn.seq] = future
        self._pump()
        try:
            sent = await future
        except asyncio.CancelledError:
            self._futures.pop(turn.seq, None)
            if future.done() and not future.cancelled() and future.result():
                self.finish(route)  # granted, then abandoned: give the route its place back
            else:
                self.schedule.cancel(turn)
            raise
        if not sent:
            raise RequestDropped(route)
        waited = self._now() - now
        figures = self.figures()
        figures.paced += 1
        figures.longest_wait = max(figures.longest_wait, waited)
        self._worst_since_report = max(self._worst_since_report, waited)

    def finish(self, route: str) -> None:
        self.schedule.buckets.finish(route)
        self._pump()

    def observe(self, route: str, status: int, headers: Mapping[str, str]) -> None:
        """One answer from Discord (every try, retries included): its bucket, and a 429's hold."""
        now = self._now()
        if status == 429:
            self.figures().rate_limited += 1
            if (
                headers.get("X-RateLimit-Global", "").lower() == "true"
                or headers.get("X-RateLimit-Scope") == "global"
            ):
                with contextlib.suppress(ValueError):
                    self.schedule.hold(now + float(headers.get("Retry-After", "1")))
            return
        self.schedule.buckets.update(route, headers, now)

    def backlog_seconds(self) -> float:
        return self.schedule.backlog_seconds()

    def short_of_budget(self) -> bool:
        """Whether a nicety (a typing indicator) should be left out: more than a second of requests
        waits, or the last second used most of the pace (a crowd is writing; the answers will need
        every turn)."""
        now = self._now()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        return self.schedule.backlog_seconds() > 1.0 or len(self._recent) >= 0.6 * self.rate

    def _pump(self) -> None:
        now = self._now()
        granted, dropped, wake = self.schedule.release(now)
        for turn in granted:
            self._recent.append(now)
            self._resolve(turn, True)
        for turn in dropped:
            self.figures().dropped_typing += 1
            self._resolve(turn, False)
        if wake is not None and wake < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = asyncio.get_running_loop().call_at(wake, self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._pump()

    def _resolve(self, turn: Turn, sent: bool) -> None:
        future = self._futures.pop(turn.seq, None)
        # its waiter was cancelled meanwhile: give the route its turn back
        if future is None or future.done():
            if sent:
                self.schedule.buckets.finish(turn.route)
            return
        future.set_result(sent)

    def report(self) -> str | None:
        """At most once a minute, while requests wait for their turn: one line for the log."""
        now = self._now()
        if now - self._last_report < self.REPORT_EVERY:
            return None
        waiting, oldest = self.schedule.waiting, self.schedule.oldest_wait(now)
        if not waiting and self._worst_since_report < 1.0:
            return None
        self._last_report, worst = now, self._worst_since_report
        self._worst_since_report = 0.0
        return (
            f"Discord request budget: {waiting} request(s) waiting, the oldest for {oldest:.1f} s;"
            f" longest wait in the last minute {worst:.1f} s (pace {self.rate:g}/s, [discord]"
            " requests_per_second)"
        )
