"""The one client the framework adapters share: Handoff's four tools, settled.

An adapter asks ``ask`` or ``approve`` and gets a person's answer or decision back; in between,
this client does what every agent would otherwise get wrong on its own:

- it waits in calls of at most ``wait_seconds`` (under MCP clients' 60 s cut) and comes back with
  ``get_result`` while the ticket is ``waiting``, up to ``give_up_after`` seconds in all;
- every call carries an idempotency key derived from the framework's own run and step ids
  (``key_for``), so a retried step, a restarted agent or a call repeated after the bot restarted
  finds the same ticket instead of opening a second one;
- the bot unreachable (down, restarting, failing over) is retried with that key every
  ``retry_every`` seconds; a refused token or refused arguments are not (no retry helps).

Nothing here decides anything: a decision not made in time comes back as ``waiting`` or
``expired``, and ``Decision.allowed`` is true only for ``approved`` and ``edited``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent_api.stdio import Desk, DeskUnreachable
from core.agent_desk import MAX_WAIT

DEFAULT_URL = "http://127.0.0.1:8765/mcp"
UNSETTLED = ("waiting", "timed_out")
T = TypeVar("T")


def key_for(framework: str, *ids: object) -> str:
    """An idempotency key from a framework's run and step ids: the same ids, the same key (and
    ticket). Long ids are hashed: the desk takes keys of at most 200 characters."""
    readable = ":".join([framework, *(str(i) for i in ids)])
    if len(readable) <= 120:
        return readable
    return f"{framework}:{hashlib.sha256(readable.encode()).hexdigest()}"


@dataclass(frozen=True)
class Answer:
    """A person's answer to ``ask``; ``answered`` is false while nobody has answered."""

    ticket: int
    status: str  # answered | waiting | timed_out | closed
    text: str = ""
    answered_by: str = ""
    data: dict[str, Any] | None = None  # a typed answer's fields (ask with answer_schema)

    @property
    def answered(self) -> bool:
        return self.status == "answered"


@dataclass(frozen=True)
class Decision:
    """A person's decision on ``approve``. Only ``allowed`` decisions may be acted on, with
    ``details`` (an operator may have edited them)."""

    ticket: int
    status: str  # approved | edited | denied | waiting | expired
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    decided_by: str = ""

    @property
    def allowed(self) -> bool:
        return self.status in ("approved", "edited")

    @property
    def settled(self) -> bool:
        return self.status not in UNSETTLED

    def explained(self) -> str:
        """One line for an agent's log or a model's tool result."""
        by = f" by {self.decided_by}" if self.decided_by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"ticket #{self.ticket} {self.status}{by}{why}"


class HandoffDesk:
    """The desk of a running Handoff bot, for one agent (its MCP token)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        wait_seconds: float = 25,
        give_up_after: float = 600,
        retry_every: float = 2.0,
    ) -> None:
        self.url = url or os.environ.get("HANDOFF_MCP_URL", "").strip() or DEFAULT_URL
        self.token = token or os.environ.get("HANDOFF_MCP_TOKEN", "").strip()
        if not self.token:
            raise ValueError(
                "no token: pass token= or set HANDOFF_MCP_TOKEN to this agent's token (the part"
                " after 'name:' in the bot's HANDOFF_MCP_TOKENS)"
            )
        self.wait_seconds = min(wait_seconds, MAX_WAIT)
        self.give_up_after = give_up_after
        self.retry_every = retry_every

    async def ask(
        self,
        question: str,
        *,
        key: str,
        context: str = "",
        priority: str = "normal",
        answer_schema: dict[str, Any] | None = None,
    ) -> Answer:
        arguments: dict[str, Any] = {"question": question, "context": context, "priority": priority}
        if answer_schema is not None:
            arguments["answer_schema"] = answer_schema
        result = await self._settle("ask_human", arguments, key)
        return Answer(
            result["ticket"],
            result["status"],
            result.get("answer", ""),
            result.get("answered_by", ""),
            result.get("answer_data"),
        )

    async def approve(
        self,
        action: str,
        details: dict[str, Any],
        *,
        key: str,
        amount: float | None = None,
        currency: str | None = None,
        reason: str = "",
    ) -> Decision:
        arguments: dict[str, Any] = {"action": action, "details": details, "reason": reason}
        if amount is not None:
            arguments |= {"amount": amount, "currency": currency}
        result = await self._settle("request_approval", arguments, key)
        return Decision(
            result["ticket"],
            result["status"],
            result.get("details", details),
            result.get("reason", ""),
            result.get("decided_by", ""),
        )

    async def notify(self, message: str, *, priority: str = "normal") -> int:
        async with self._session() as desk:
            result = await desk.call("notify_operators", {"message": message, "priority": priority})
        return int(result["ticket"])

    # Blocking versions, for frameworks whose hooks are plain functions (AG2's get_human_input):
    # each runs on a loop of its own in a worker thread, so it works with or without a running loop.
    def ask_blocking(self, question: str, **kwargs: Any) -> Answer:
        return _blocking(lambda: self.ask(question, **kwargs))

    def approve_blocking(self, action: str, details: dict[str, Any], **kwargs: Any) -> Decision:
        return _blocking(lambda: self.approve(action, details, **kwargs))

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Desk]:
        desk = Desk(self.url, self.token)  # bound to the running loop: one per operation
        try:
            yield desk
        finally:
            await desk.close()

    async def _settle(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        """Call ``tool`` with ``key``, then ``get_result`` until the ticket is settled or
        ``give_up_after`` has passed; the bot unreachable is retried (with the same key)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        ticket: int | None = None
        async with self._session() as desk:
            while True:
                wait = max(0.0, min(self.wait_seconds, deadline - loop.time()))
                try:
                    if ticket is None:
                        call = {**arguments, "idempotency_key": key, "wait_seconds": wait}
                        result = await desk.call(tool, call)
                    else:
                        result = await desk.call(
                            "get_result", {"ticket": ticket, "wait_seconds": wait}
                        )
                except DeskUnreachable:
                    if loop.time() + self.retry_every >= deadline:
                        raise
                    await asyncio.sleep(self.retry_every)
                    continue
                ticket = int(result["ticket"])
                if result["status"] not in UNSETTLED or loop.time() >= deadline:
                    return result


def _blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``make()`` run to its end on a loop of its own, in a worker thread: callable from plain
    code whether or not a loop runs in this thread; its exception is raised here."""
    with ThreadPoolExecutor(1, thread_name_prefix="handoff-desk") as worker:
        return worker.submit(lambda: asyncio.run(make())).result()
