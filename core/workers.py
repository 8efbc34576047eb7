"""One worker per key (a customer): work for a key runs in order, different keys run
concurrently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class KeyedWorkers(Generic[K]):
    """``wake(key)`` makes sure ``work(key)`` runs after the wake, once per key at a time.

    ``work`` handles everything stored for the key and returns. A wake that arrives while
    it runs makes it run once more, so nothing stored just after a database read is missed.
    """

    def __init__(self, work: Callable[[K], Awaitable[None]], name: str) -> None:
        self._work = work
        self._name = name
        self._wanted: set[K] = set()
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._closed = False

    def wake(self, key: K) -> None:
        if self._closed:
            return
        self._wanted.add(key)
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._run(key), name=f"{self._name}:{key}"
            )

    def wake_later(self, key: K, delay: float) -> None:
        """Wake ``key`` after ``delay`` seconds (one pending timer per key; the earliest wins)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        if existing is not None and existing.when() <= loop.time() + delay:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_later(delay, self._timer_fired, key)

    def _timer_fired(self, key: K) -> None:
        self._timers.pop(key, None)
        self.wake(key)

    async def _run(self, key: K) -> None:
        try:
            while key in self._wanted:
                self._wanted.discard(key)
                try:
                    await self._work(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "%s worker for %s failed; it runs again on the next wake", self._name, key
                    )
        finally:
            self._tasks.pop(key, None)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait until no work is running (timers may still be pending)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def stop_accepting(self) -> None:
        """No new work from now on (wakes are ignored); what runs may finish (a graceful stop)."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def close(self) -> None:
        self.stop_accepting()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class DeliveryQueue(Generic[K]):
    """What the two outboxes share: one in-order delivery worker per key, woken after each commit.

    Subclasses say which keys have rows waiting (``_pending_keys``) and how to deliver them
    (``_deliver``).
    """

    def __init__(self, name: str) -> None:
        self._workers: KeyedWorkers[K] = KeyedWorkers(self._deliver, name)

    async def _pending_keys(self) -> list[K]:
        raise NotImplementedError

    async def _deliver(self, key: K) -> None:
        raise NotImplementedError

    def kick(self, key: K) -> None:
        """Deliver what is waiting for this key (call after committing new rows)."""
        self._workers.wake(key)

    async def resume(self) -> int:
        """After a start: deliver everything still waiting. Returns how many keys had rows."""
        keys = await self._pending_keys()
        for key in keys:
            self.kick(key)
        return len(keys)

    @property
    def busy(self) -> bool:
        return self._workers.busy

    async def drain(self) -> None:
        await self._workers.drain()

    def stop_accepting(self) -> None:
        self._workers.stop_accepting()

    async def close(self) -> None:
        await self._workers.close()
