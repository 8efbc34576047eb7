"""One leader among several ``python bot.py`` on one PostgreSQL database; the others stand by.

Only the leader connects to Discord's gateway (two sessions with one token would both get every
event) and writes. It renews a lease in the database; when it stops renewing (killed, host lost, cut
off from the database), the lease runs out and a standby takes it with the next epoch. A leader that
cannot renew stops sending before its lease could have run out, and every write transaction checks
the epoch (fencing), so a stale leader's late write is refused rather than doubling a new leader's
work.

``LeaseTimes`` holds the timing decisions (plain numbers); ``Leadership`` runs them against a lease
store.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from storage.lease import NotLeader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTimes:
    """From ``[ha] takeover_seconds`` (T): the lease lasts T/2 and is renewed three times in that; a
    standby asks every T/10 (at most each second). After a leader dies a standby holds the lease
    within T/2 + T/10 and the rest of T is for connecting to Discord. The leader stops sending
    ``margin`` before its lease could end, measured from when it asked for the renewal (its own
    clock: no clocks are compared)."""

    takeover_seconds: float

    @property
    def ttl(self) -> float:
        return self.takeover_seconds / 2

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def poll_every(self) -> float:
        return min(1.0, self.takeover_seconds / 10)

    @property
    def margin(self) -> float:
        return max(0.5, self.ttl / 5)

    def valid_until(self, asked_at: float) -> float:
        """Until when (monotonic) a leader whose renewal was asked at ``asked_at`` may send."""
        return asked_at + self.ttl - self.margin


class LeaseStoreLike(Protocol):
    # storage.lease.Acquired | None
    async def try_acquire(self, holder: str, ttl: float) -> Any: ...
    async def end_sessions_of(self, holder: str) -> int: ...
    async def renew(self, holder: str, epoch: int, ttl: float) -> bool: ...
    async def release(self, holder: str, epoch: int) -> None: ...
    async def current(self) -> Any: ...
    @staticmethod
    async def check(conn: Any, holder: str, epoch: int) -> None: ...


async def within(call: Any, seconds: float) -> Any:
    """``call``'s result, or TimeoutError after ``seconds``. Unlike ``asyncio.wait_for`` it does not
    wait for the cancelled call to end: a query on a silent network (a partition: no reset, no
    answer) may never end."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        # retrieved, whenever it ends
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise TimeoutError(f"no answer within {seconds:.1f} s")
    return task.result()


def new_holder() -> str:
    """This process, as the lease names it: host, pid and a random part (a restarted pid is someone
    else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    def __init__(
        self,
        store: LeaseStoreLike,
        times: LeaseTimes,
        *,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.times = times
        self.holder = holder or new_holder()
        self.monotonic = monotonic
        self.epoch: int | None = None
        self.lost_because: str | None = None
        self._valid_until = 0.0
        self._on_lost: Callable[[str], Any] | None = None
        self._said_unreachable = float("-inf")  # when the database's silence was last logged

    @property
    def leading(self) -> bool:
        return self.epoch is not None and self.lost_because is None

    def describe(self) -> str:
        """One line for operators (/stats)."""
        if self.leading:
            return (
                f"This process ({self.holder}) leads, epoch {self.epoch}; standbys take over within"
                f" {self.times.takeover_seconds:g} s if it stops."
            )
        return f"This process ({self.holder}) does not lead" + (
            f": {self.lost_because}." if self.lost_because else "."
        )

    def may_send(self) -> bool:
        """Checked before every request to Discord: only a leader whose lease surely has not run out
        sends."""
        return self.leading and self.monotonic() < self._valid_until

    def on_lost(self, callback: Callable[[str], Any]) -> None:
        """Who is told when leadership is lost: the bot now leading (each new bot replaces the
        last)."""
        self._on_lost = callback

    async def wait_until_leader(self) -> int:
        """Stand by until this process holds the lease; returns the epoch."""
        said: tuple[str, int] | None = None
        while True:
            asked = self.monotonic()
            acquired = await self._try(self.store.try_acquire(self.holder, self.times.ttl))
            if acquired is not None:
                epoch = acquired.epoch
                self.epoch, self.lost_because = epoch, None
                self._valid_until = self.times.valid_until(asked)
                log.info(
                    "leadership: this process (%s) now leads, epoch %d%s",
                    self.holder,
                    epoch,
                    f", after {said[0]}" if said else "",
                )
                if acquired.previous not in (None, self.holder):
                    # The previous leader's sessions may still hold the write lock (cut off
                    # mid-statement).
                    ended = await self._try(self.store.end_sessions_of(acquired.previous))
                    if ended:
                        log.info(
                            "leadership: ended %d database session(s) the previous leader left"
                            " open",
                            ended,
                        )
                return int(epoch)
            state = await self._try(self.store.current())
            if state is not None and (state.holder, state.epoch) != said:
                said = (state.holder, state.epoch)
                log.info(
                    "leadership: standing by; %s leads (epoch %d). This process takes over within"
                    " %g s of it stopping.",
                    state.holder,
                    state.epoch,
                    self.times.takeover_seconds,
                )
            await asyncio.sleep(self.times.poll_every)

    async def _try(self, call: Any) -> Any:
        try:
            result = await within(call, self.times.ttl)
        # the database unreachable for now: keep standing by (said once a minute)
        except Exception as exc:
            if self.monotonic() - self._said_unreachable >= 60:
                self._said_unreachable = self.monotonic()
                log.warning(
                    "leadership: the database does not answer (%s: %s); standing by until it does",
                    type(exc).__name__,
                    exc,
                )
            return None
        if self._said_unreachable > float("-inf"):
            self._said_unreachable = float("-inf")
            log.info("leadership: the database answers again")
        return result

    async def keep(self) -> None:
        """While leading: renew the lease; give it up (stop sending, tell ``on_lost``) when it
        cannot be kept."""
        while self.leading:
            assert self.epoch is not None
            asked = self.monotonic()
            try:
                ours = await within(
                    self.store.renew(self.holder, self.epoch, self.times.ttl),
                    max(0.05, self._valid_until - asked),
                )
            except Exception as exc:  # the database unreachable or silent, or the pool closing
                if self.monotonic() >= self._valid_until or isinstance(exc, TimeoutError):
                    self._lose(
                        f"the lease could not be renewed in time ({type(exc).__name__}: {exc})"
                    )
                    return
                log.warning(
                    "leadership: renewing the lease failed (%s: %s); sending stops in %.1f s unless"
                    " a renewal succeeds",
                    type(exc).__name__,
                    exc,
                    self._valid_until - self.monotonic(),
                )
                await asyncio.sleep(
                    min(self.times.poll_every, max(0.05, self._valid_until - self.monotonic()))
                )
                continue
            if not ours:
                self._lose("another process holds the lease now")
                return
            self._valid_until = self.times.valid_until(asked)
            await asyncio.sleep(self.times.renew_every)

    async def guard(self, conn: Any) -> None:
        """The write guard (fencing): every write transaction refuses to go on unless we still
        lead."""
        if self.epoch is None:
            raise RuntimeError("guard used before leading")
        try:
            await self.store.check(conn, self.holder, self.epoch)
        except NotLeader as exc:
            self._lose(str(exc))
            raise

    def _lose(self, reason: str) -> None:
        if self.lost_because is not None:
            return
        self.lost_because = reason
        # may_send() turned false at the lease's local deadline, or now if that is still ahead: say
        # when.
        late = max(0.0, self.monotonic() - self._valid_until)
        stopped = datetime.datetime.fromtimestamp(time.time() - late).strftime("%H:%M:%S.%f")[:-3]
        log.error(
            "leadership lost: %s. Sending stopped at %s; this process disconnects and stands by.",
            reason,
            stopped,
        )
        if self._on_lost is not None:
            self._on_lost(reason)

    async def release(self) -> None:
        """Stopping on purpose: let a standby take over now instead of when the lease runs out."""
        if self.leading:
            assert self.epoch is not None
            try:
                await self.store.release(self.holder, self.epoch)
            except Exception as exc:
                log.warning(
                    "leadership: could not hand the lease back (%s); a standby takes over when it"
                    " runs out",
                    exc,
                )
            self.lost_because = "stopped"
