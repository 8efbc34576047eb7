"""How many Claude calls run at once: as many as the API key allows, found from the API's own
rate-limit headers, never more than ``HANDOFF_LLM_CONCURRENCY``.

After each answer the limit doubles while the API says there is plenty of room, grows by half
while there is some
(``anthropic-ratelimit-requests-remaining`` and the tokens remaining well above what the calls in
flight could use), and halves on a 429 or 529 (or an answer the SDK only got by retrying). A
call waits for a slot in order of its priority, then of its arrival: customers' answers before
the copilot's drafts and summaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anthropic

CUSTOMER = 0  # an answer a customer waits for
BACKGROUND = 1  # a draft, a case reading, a summary

REMAINING_REQUESTS = "anthropic-ratelimit-requests-remaining"
REMAINING_TOKENS = (
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-tokens-remaining",
)
TOKENS_PER_CALL = 4000  # what one call may use, to judge the tokens remaining


def _number(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class ClaudePace:
    def __init__(self, maximum: int, start: int = 16) -> None:
        self.maximum = max(1, maximum)
        self.limit = min(start, self.maximum)
        self.active = 0
        self.shrunk = 0  # times the limit was halved (for /stats and tests)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = CUSTOMER) -> AsyncIterator[None]:
        """Hold one of the limit's slots for the duration of a call."""
        if self.active >= self.limit or self._waiting:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self.active -= 1  # it was handed a slot as it was cancelled
                    self._wake()
                raise
        else:
            self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._wake()

    def _wake(self) -> None:
        while self._waiting and self.active < self.limit:
            _, _, future = heapq.heappop(self._waiting)
            if future.cancelled():
                continue
            self.active += 1
            future.set_result(None)

    def observe(self, headers: Mapping[str, str] | None, *, limited: bool = False) -> None:
        """What an answer (or a refusal) said about the room left."""
        if limited:
            self.limit = max(1, self.limit // 2)
            self.shrunk += 1
            return
        if headers is None:
            return
        requests = _number(headers, REMAINING_REQUESTS)
        tokens = next(
            (n for name in REMAINING_TOKENS if (n := _number(headers, name)) is not None), None
        )
        if requests is None and tokens is None:
            return
        left = min(
            n
            for n in (requests, tokens // TOKENS_PER_CALL if tokens is not None else None)
            if n is not None
        )
        if left > 4 * self.limit:  # plenty: double (a crowd should not wait for the growth)
            self.limit = min(self.maximum, self.limit * 2)
        elif left > 2 * self.limit:
            self.limit = min(self.maximum, self.limit + max(1, self.limit // 2))
        elif left < self.limit:
            self.limit = max(1, left)
        self._wake()


async def paced(pace: ClaudePace, priority: int, call: Callable[[], Awaitable[Any]]) -> Any:
    """One Messages API call in a slot of ``pace``; what it says of the room left is noted (a
    429 or 529, or an answer that needed the SDK's retries, halves the limit)."""
    async with pace.slot(priority):
        try:
            raw = await call()
        except anthropic.APIStatusError as exc:
            pace.observe(None, limited=exc.status_code in (429, 529))
            raise
    pace.observe(raw.headers, limited=getattr(raw, "retries_taken", 0) > 0)
    return raw
