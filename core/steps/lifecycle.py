"""One lifecycle for every pending decision, and the registry of its kinds.

A proposed action that may not run at once becomes a *step*: requested (stored with what the
customer is owed, in one transaction) -> decided once (a conditional update) -> executed once ->
the customer and Claude told -> or expired / cancelled. The kinds differ only in who decides and
how: the customer by a yes (``confirmation``), the customer by a one-time code (``code``), an
operator on a ticket (``approval``). Each kind is one module in this package; ``StepKinds`` maps the
risk policy's strategies to them, and refuses at build time a strategy with no kind or with two.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.actions import Action, ActionContext, ActionRegistry, execute
from core.clock import Clock
from core.outbox import Outbox
from core.policy import Policy
from core.risk import Classification
from core.risk_table import STRATEGIES
from storage.db import Store
from storage.steps import StepRequest, StepStore

log = logging.getLogger(__name__)

EXECUTE = "execute"  # the one strategy that is no step: the action runs inside the tool call


def details_text(
    action: Action, params: dict[str, Any], preview: dict[str, Any] | None = None
) -> str:
    """The exact details a customer confirms: what, every parameter by name, and what the action
    previews."""
    lines = [f"**{action.summary or action.name}**"]
    for name, value in {**params, **(preview or {})}.items():
        shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        lines.append(f"- {name.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


@dataclass
class Proposal:
    """One tool call the risk policy did not let run at once: what is asked, and for whom."""

    ctx: ActionContext
    action: Action
    params: dict[str, Any]
    preview: dict[str, Any]
    decision: Classification
    tool_use_id: str | None
    notices: list[str] = field(default_factory=list)  # lines the code writes under Claude's answer

    @property
    def label(self) -> str:
        return self.action.summary or self.action.name


@dataclass(frozen=True)
class Opened:
    """What Claude reads as the tool's result once the step is requested (or refused)."""

    text: str
    error: bool = False


class StepKind(Protocol):
    """A kind of pending decision, as the tool runner and the deadlines see it."""

    strategies: tuple[str, ...]  # the risk policy's strategies this kind handles

    async def open(self, proposal: Proposal) -> Opened:
        """Request the decision (the prompt or ticket number owed in the same transaction); never
        waits."""

    async def expire_due(self) -> int:
        """End every step of this kind past its deadline (whoever waits is told); returns how
        many."""

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        """(job id, due) of each step of this kind still waiting, to arm after a start."""


class StepKinds:
    """The registry: strategy -> the kind that handles it. Built once, complete, or not at all."""

    def __init__(self, kinds: Sequence[StepKind]) -> None:
        self.kinds = tuple(kinds)
        self._by_strategy: dict[str, StepKind] = {}
        for kind in self.kinds:
            for strategy in kind.strategies:
                if strategy not in STRATEGIES or strategy == EXECUTE:
                    raise ValueError(f"{type(kind).__name__} claims unknown strategy {strategy!r}")
                if strategy in self._by_strategy:
                    raise ValueError(
                        f"strategy {strategy!r} has two step kinds: "
                        f"{type(self._by_strategy[strategy]).__name__} and {type(kind).__name__}"
                    )
                self._by_strategy[strategy] = kind
        missing = [s for s in STRATEGIES if s != EXECUTE and s not in self._by_strategy]
        if missing:
            raise ValueError(f"no step kind handles strategy {', '.join(map(repr, missing))}")

    def for_strategy(self, strategy: str) -> StepKind:
        return self._by_strategy[strategy]

    def __iter__(self) -> Iterator[StepKind]:
        return iter(self.kinds)


class CustomerStep:
    """What the kinds the customer decides share (confirmations, code requests): once decided, run
    the action once, record its result on the request, audit it, and tell the customer (and Claude,
    in the history). Their expiry is armed through ``schedule`` (``Deadlines.arm``)."""

    subject = ""  # the audit subject prefix, which also names the table (storage.steps.STEP_TABLES)

    def __init__(
        self,
        *,
        db: Store,
        policy: Policy,
        clock: Clock,
        registry: ActionRegistry,
        outbox: Outbox,
        schedule: Callable[[str, float], None],
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.registry = registry
        self.outbox = outbox
        self.schedule = schedule
        self.steps = StepStore(db)

    def _summary(self, action_name: str) -> str:
        action = self.registry.get(action_name)
        return (action.summary if action else "") or action_name

    async def _run_decided(self, request: StepRequest, *, done: str, failed: str, how: str) -> str:
        summary = self._summary(request.action_name)
        ctx = ActionContext(
            request.customer_id,
            request.discord_id,
            self.db,
            self.clock.now(),
            request.conversation_id,
        )
        outcome, error = await execute(
            self.registry.get(request.action_name), ctx, request.action_params
        )
        text = (
            self.policy.message(done, action=summary)
            if error is None
            else self.policy.message(failed, action=summary, error=error)
        )
        note = (
            f"{how} {request.action_name} with {json.dumps(request.action_params)} ({self.subject}"
            f" #{request.id}); result: {json.dumps(outcome, default=str)[:1500]}"
        )
        await self.steps.record_result(
            self.subject, request, outcome, error is None, (text, note), self.clock.now()
        )
        self.outbox.kick(request.customer_id)
        return text
