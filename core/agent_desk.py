"""The desk for other agents (over MCP): ask a person, ask for approval, come back for the result.

An agent's question or approval request is a ticket like a customer's (the same staff channel,
thread, buttons, slash commands, reminders, audit and summary); the agent is a customer row without
DMs. A call returns the ticket number at once and waits at most ``wait_seconds`` (never past the 60
s at which MCP clients cut a call) for the decision, woken by the desk when the ticket changes; an
agent that stopped waiting comes back with ``get_result``. The same ``idempotency_key`` returns the
same ticket, never a second card. An approval request nobody decided in time expires and can no
longer be approved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from core.answer_forms import SchemaError, read_schema
from core.approvals import MAX_APPROVERS
from core.clock import Clock
from core.desk import TicketDesk
from core.policy import Policy, auto_approve_limits
from core.risk import amounts, money_names
from core.text import for_people
from core.webhooks import notify_url_problem
from storage.records import DeskOp, Kind, Priority, Source, Status, Ticket
from storage.tickets import DeskTx, NewTicket, TicketStore

log = logging.getLogger(__name__)

MAX_WAIT = 50.0  # seconds: MCP clients cut a call at about 60
DEFAULT_WAIT = 25.0
CARD_TEXT = 1500  # what a card's description holds; longer texts also go in full to the thread
WITHDRAWN = "withdrawn by the agent"
MAX_SCHEMA = 8000  # characters of an answer_schema (a form of at most 5 fields needs far less)


class AgentError(ValueError):
    """A call the agent must correct (an unknown ticket, another agent's ticket, a bad argument)."""


def result_of(ticket: Ticket) -> dict[str, Any]:
    """What the agent reads of its ticket: the public shape of ask_human / request_approval /
    get_result."""
    out: dict[str, Any] = {"ticket": ticket.id}
    if ticket.status == Status.CLOSED and ticket.decision_note == WITHDRAWN:
        return {**out, "status": "withdrawn"}
    if ticket.kind is Kind.AGENT_APPROVAL:
        if ticket.status == Status.APPROVED:
            out.update(
                status="edited" if ticket.decision_note == "edited" else "approved",
                details=ticket.action_params or {},
                decided_by=ticket.decided_by_name,
            )
        elif ticket.status == Status.DENIED:
            out.update(
                status="denied",
                reason=ticket.decision_note or "",
                decided_by=ticket.decided_by_name,
            )
        elif ticket.status == Status.EXPIRED:
            out.update(status="expired", reason="nobody decided in time; it was not approved")
        elif ticket.status == Status.CLOSED:
            out.update(
                status="denied",
                reason=f"closed by the operators: {ticket.decision_note or 'no decision'}",
            )
        else:
            out.update(status="waiting")
        return out
    if ticket.answer is not None:
        out.update(status="answered", answer=ticket.answer, answered_by=ticket.answered_by_name)
        if ticket.answer_data is not None:
            out["answer_data"] = ticket.answer_data
    elif ticket.status == Status.CLOSED:
        out.update(status="closed", reason=ticket.decision_note or "closed without an answer")
    elif ticket.kind is Kind.NOTICE:
        out.update(status="posted")
    elif ticket.timed_out:
        out.update(status="timed_out")
    else:
        out.update(status="waiting")
    return out


def request_fingerprint(
    kind: Kind,
    question: str,
    reason: str,
    priority: Priority,
    action: str | None,
    details: dict[str, Any] | None,
    answer_schema: dict[str, Any] | None = None,
    approvers: int = 1,
) -> str:
    """What an idempotency key stands for: the request's own arguments (not how long the call
    waits)."""
    request: list[Any] = [kind.value, question, reason, priority.value, action, details]
    if answer_schema is not None:  # keys given before typed answers existed keep their prints
        request.append(answer_schema)
    if approvers > 1:  # ... and before two-person approval
        request.append({"approvers": approvers})
    canonical = json.dumps(
        request,
        sort_keys=True,
        ensure_ascii=False,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AgentDesk:
    def __init__(
        self,
        *,
        desk: TicketDesk,
        policy: Policy,
        clock: Clock,
        arm: Callable[[str, float], None],
        notify_urls: Mapping[str, str] | None = None,
    ) -> None:
        self.desk = desk
        self.policy = policy
        self.clock = clock
        self.tickets: TicketStore = desk.tickets
        self.arm = arm  # arms an approval request's expiry (Deadlines.arm)
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        # checked when the policy loaded
        self.auto_approve = auto_approve_limits(policy.agents.auto_approve)
        self.money_names = money_names(policy.risk)  # compiled once, read per approval request
        self.notify_urls = dict(notify_urls or {})  # HANDOFF_MCP_WEBHOOKS: each agent's default
        desk.on_changed.append(self._changed)

    # -- waiting ------------------------------------------------------------------------------

    def _changed(self, ticket_id: int) -> None:
        for event in self._waiters.get(ticket_id, ()):
            event.set()

    async def _result(self, ticket_id: int, seconds: float) -> dict[str, Any]:
        """The ticket's result once a person settled it, or as it stands after ``seconds``."""
        deadline = asyncio.get_running_loop().time() + seconds
        event = asyncio.Event()
        self._waiters[ticket_id].add(event)
        try:
            while True:
                ticket = await self.tickets.get(ticket_id)
                assert ticket is not None
                result = result_of(ticket)
                left = deadline - asyncio.get_running_loop().time()
                if result["status"] != "waiting" or left <= 0:
                    return result
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
        finally:
            self._waiters[ticket_id].discard(event)
            if not self._waiters[ticket_id]:
                del self._waiters[ticket_id]

    def _notify_url(self, agent: str, given: str | None) -> str | None:
        """Where this call's outcome is POSTed: the call's own URL (checked), else the agent's."""
        if given is None or not given.strip():
            return self.notify_urls.get(agent)
        if (problem := notify_url_problem(given)) is not None:
            raise AgentError(problem)
        return given.strip()

    @staticmethod
    def _wait_seconds(value: float | None) -> float:
        if value is None:
            return DEFAULT_WAIT
        if not math.isfinite(value):  # NaN passes every comparison: a wait that would never end
            raise AgentError("wait_seconds must be a finite number of seconds")
        if value < 0:
            raise AgentError("wait_seconds must be 0 or more")
        return min(float(value), MAX_WAIT)

    def _money(
        self, details: dict[str, Any], amount: float | None
    ) -> tuple[float | None, list[str]]:
        """(the largest amount the request carries, where money could not be read). Money in the
        details must agree with ``amount``: details' own "amount" equal to it, any other money not
        above it (the policy and the operators judge the figure the agent will act on)."""
        numbers = [] if amount is None else [amount]
        unreadable = []
        for where, value, number in amounts(details, self.money_names):
            if math.isinf(number):
                unreadable.append(where)
                continue
            if amount is not None and (
                abs(number) > amount or (where == "amount" and number != amount)
            ):
                raise AgentError(
                    f"details.{where} is {value!r} but amount is {amount:g}: money in the details "
                    "must agree with amount (state the amount you will act on)"
                )
            numbers.append(abs(number))
        return (max(numbers) if numbers else None), unreadable

    # -- tools ----------------------------------------------------------------------------------

    async def ask_human(
        self,
        agent: str,
        question: str,
        *,
        context: str = "",
        priority: str = "normal",
        wait_seconds: float | None = None,
        idempotency_key: str | None = None,
        answer_schema: dict[str, Any] | None = None,
        notify_url: str | None = None,
    ) -> dict[str, Any]:
        question = question.strip()
        if not question:
            raise AgentError("question is empty: say what you need a person to answer")
        if answer_schema is not None:
            if len(json.dumps(answer_schema, default=str)) > MAX_SCHEMA:
                raise AgentError(f"answer_schema is longer than {MAX_SCHEMA} characters")
            try:
                read_schema(answer_schema)  # a form Discord can show, or the field that is not
            except SchemaError as exc:
                raise AgentError(str(exc)) from None
        wait = self._wait_seconds(wait_seconds)
        ticket_id = await self._open(
            agent,
            Kind.AGENT_QUESTION,
            question,
            context.strip(),
            self._priority(priority),
            idempotency_key=idempotency_key,
            answer_schema=answer_schema,
            notify_url=self._notify_url(agent, notify_url),
        )
        return await self._result(ticket_id, wait)

    async def request_approval(
        self,
        agent: str,
        action: str,
        details: dict[str, Any],
        *,
        amount: float | None = None,
        currency: str | None = None,
        reason: str = "",
        wait_seconds: float | None = None,
        idempotency_key: str | None = None,
        approvers: int | None = None,
        notify_url: str | None = None,
    ) -> dict[str, Any]:
        action = action.strip()
        if not action:
            raise AgentError("action is empty: name what you want to do, e.g. 'refund'")
        if not isinstance(details, dict):
            raise AgentError("details must be an object of names and values")
        if amount is not None and not math.isfinite(amount):
            raise AgentError("amount must be a finite number")
        if amount is not None and amount < 0:
            raise AgentError("amount must be 0 or more")
        if approvers is not None and not 1 <= approvers <= MAX_APPROVERS:
            raise AgentError(f"approvers must be 1 to {MAX_APPROVERS} (distinct operators)")
        needed = max(approvers or 1, int(self.policy.agents.approvers.get(action, 1)))
        wait = self._wait_seconds(wait_seconds)
        largest, unreadable = self._money(details, amount)
        shown = dict(details)
        if amount is not None:
            shown.setdefault("amount", amount)
        if currency:
            shown.setdefault("currency", currency)
        limit = self.auto_approve.get(action)
        # "action:max": up to that amount; an action listed with 0 (no money involved) is approved
        # when no money is given. A positive limit needs an amount: leaving it out never skips the
        # operators, nor does money the code cannot read ("five thousand"): a person reads it.
        by_policy = (
            limit is not None
            and needed == 1  # what needs several people is never routine
            and not unreadable
            and ((largest is not None and largest <= limit) or (limit == 0 and not largest))
        )
        why = reason.strip()
        if unreadable and limit is not None:
            note = f"(Not approved by the policy: money it cannot read in {', '.join(unreadable)}.)"
            why = f"{why}\n{note}" if why else note
        expires = self.clock.now() + self.policy.agents.approval_minutes * 60
        ticket_id = await self._open(
            agent,
            Kind.AGENT_APPROVAL,
            f"{agent} asks to {action}",
            why,
            Priority.URGENT if largest or unreadable else Priority.NORMAL,
            action=action,
            details=shown,
            idempotency_key=idempotency_key,
            expires_at=None if by_policy else expires,
            approved_by_policy=(
                f"{action} up to {limit:g} (largest amount {largest or 0:g})" if by_policy else None
            ),
            approvers=needed,
            notify_url=self._notify_url(agent, notify_url),
        )
        return await self._result(ticket_id, wait)

    async def get_result(
        self, agent: str, ticket_id: int, *, wait_seconds: float | None = None
    ) -> dict[str, Any]:
        ticket = await self.own(agent, ticket_id)
        wait = self._wait_seconds(0 if wait_seconds is None else wait_seconds)
        return await self._result(ticket.id, wait)

    async def withdraw(self, agent: str, ticket_id: int) -> dict[str, Any]:
        """The agent no longer needs an answer or a decision: an open ticket is closed (the card
        says so, its buttons go); a settled one is left as it is. Returns the ticket's result."""
        await self.own(agent, ticket_id)

        def write(tx: DeskTx) -> bool:
            if not tx.withdraw(ticket_id, WITHDRAWN):
                return False
            tx.audit(f"agent:{agent}", "withdrawn", f"ticket:{ticket_id}")
            tx.post(
                ticket_id,
                DeskOp.POST,
                f"↩ Withdrawn by {agent}: it no longer needs an answer or a decision. Nothing"
                " was done.",
            )
            tx.post(ticket_id, DeskOp.REFRESH)
            tx.post(ticket_id, DeskOp.ARCHIVE)
            return True

        if await self.tickets.run(write, self.clock.now()):
            self.desk.kick(ticket_id)
        return await self._result(ticket_id, 0)

    async def notify_operators(
        self, agent: str, message: str, *, priority: str = "normal"
    ) -> dict[str, Any]:
        message = message.strip()
        if not message:
            raise AgentError("message is empty")
        ticket_id = await self._open(agent, Kind.NOTICE, message, "", self._priority(priority))
        return {"ticket": ticket_id, "status": "posted"}

    # -- tickets --------------------------------------------------------------------------------

    @staticmethod
    def _priority(value: str) -> Priority:
        try:
            return Priority(value)
        except ValueError:
            raise AgentError(
                f"priority must be one of normal, high, urgent (not {value!r})"
            ) from None

    async def own(self, agent: str, ticket_id: int) -> Ticket:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None or not ticket.kind.from_agent:
            raise AgentError(f"there is no agent ticket #{ticket_id}")
        if ticket.agent_name != agent:
            raise AgentError(f"ticket #{ticket_id} belongs to another agent")
        return ticket

    async def _open(
        self,
        agent: str,
        kind: Kind,
        question: str,
        reason: str,
        priority: Priority,
        *,
        action: str | None = None,
        details: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        expires_at: float | None = None,
        approved_by_policy: str | None = None,
        answer_schema: dict[str, Any] | None = None,
        approvers: int = 1,
        notify_url: str | None = None,
    ) -> int:
        now = self.clock.now()
        answer_in = self.policy.timeouts.ticket_answer_seconds
        reminders = kind is not Kind.NOTICE and approved_by_policy is None
        reminder = now + answer_in / 2 if reminders and self.policy.timeouts.reminder else None
        timeout = now + answer_in if reminders else None
        idle = self.policy.conversation.idle_minutes * 60
        key = (idempotency_key or "").strip() or None
        if key is not None and len(key) > 200:
            raise AgentError("idempotency_key is longer than 200 characters")

        fingerprint = (
            None
            if key is None
            else request_fingerprint(
                kind, question, reason, priority, action, details, answer_schema, approvers
            )
        )

        def write(tx: DeskTx) -> tuple[int, bool]:
            customer_id, conversation_id = tx.agent(agent, idle)
            if key is not None and (found := tx.by_idempotency_key(customer_id, key)) is not None:
                existing, first = found
                if existing.kind is not kind:
                    raise AgentError(
                        f"idempotency_key {key!r} was used for ticket #{existing.id}, a "
                        f"{existing.kind.value}"
                    )
                if first is not None and first != fingerprint:
                    raise AgentError(
                        f"idempotency_key {key!r} was used for ticket #{existing.id} with other"
                        " arguments; a retry must send the same ones (use a new key for a new"
                        " request)"
                    )
                return existing.id, False
            ticket_id = tx.open_ticket(
                NewTicket(
                    customer_id,
                    conversation_id,
                    kind,
                    Source.AGENT,
                    priority,
                    question,
                    reason,
                    action,
                    details,
                    reminder_due_at=reminder,
                    timeout_due_at=timeout,
                )
            )
            tx.agent_fields(ticket_id, key, expires_at, fingerprint, answer_schema)
            if approvers > 1:
                tx.approvers_needed(ticket_id, approvers)
            if notify_url is not None:
                tx.notify_url(ticket_id, notify_url)
            tx.audit(
                f"agent:{agent}",
                "ticket_opened",
                f"ticket:{ticket_id}",
                {
                    "kind": kind.value,
                    "source": Source.AGENT,
                    "priority": priority.value,
                    "action": action,
                },
            )
            if len(question) > CARD_TEXT:  # the card shows the start; the thread has it whole
                tx.post(ticket_id, DeskOp.POST, f"**Full text from {agent}:**\n{question}")
            if reason and len(reason) > CARD_TEXT:
                tx.post(ticket_id, DeskOp.POST, f"**Context from {agent}:**\n{reason}")
            if approved_by_policy is not None:
                tx.approve(ticket_id, 0, "policy", details or {}, None)
                tx.executed(ticket_id, {"returned_to_agent": agent})
                tx.audit("policy", "approved", f"ticket:{ticket_id}", {"rule": approved_by_policy})
                tx.post(
                    ticket_id,
                    DeskOp.POST,
                    f"✅ Approved by the policy ([agents] auto_approve: {approved_by_policy}).",
                )
                tx.post(ticket_id, DeskOp.REFRESH)
            return ticket_id, True

        ticket_id, created = await self.tickets.run(write, now)
        if created:
            log.info("agent %s opened ticket #%d (%s)", agent, ticket_id, kind.value)
            if timeout is not None:
                self.desk.arm_ticket(ticket_id, reminder, timeout)
            if expires_at is not None:
                self.arm(f"agent-approval:{ticket_id}", expires_at)
        self.desk.kick(ticket_id)
        if created:
            self.desk.opened(ticket_id)
        return ticket_id

    # -- expiry (a step kind's deadlines) ---------------------------------------------------------

    async def expire_due(self) -> int:
        def write(tx: DeskTx) -> list[int]:
            done = []
            for ticket in tx.expiring():
                if tx.expire(ticket.id):
                    minutes = self.policy.agents.approval_minutes
                    tx.audit(
                        "system",
                        "agent_approval_expired",
                        f"ticket:{ticket.id}",
                        {"agent": ticket.agent_name},
                    )
                    tx.post(
                        ticket.id,
                        DeskOp.POST,
                        f"⌛ Nobody decided within {for_people(minutes * 60)}: the request "
                        f"expired and can no longer be approved. {ticket.agent_name} is told.",
                    )
                    tx.post(ticket.id, DeskOp.REFRESH)
                    done.append(ticket.id)
            return done

        expired = await self.tickets.run(write, self.clock.now())
        for ticket_id in expired:
            self.desk.kick(ticket_id)
        return len(expired)

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return await self.tickets.expiry_deadlines()
