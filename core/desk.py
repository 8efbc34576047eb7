"""The operator desk: tickets opened by the agent or the engine, and what operators do with them.

Nothing here waits for a person. A ticket is a row; what operators see is queued in the
desk outbox and what the customer hears is queued in the customer outbox, both in the same
transaction as the state change and its audit row. Every decision is a conditional update,
so two operators (or a click and a slash command) racing for the same ticket decide it once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core.actions import ActionContext, ActionRegistry, execute
from core.clock import Clock
from core.hours import SupportHours
from core.outbox import Outbox
from core.policy import Policy
from core.risk import amounts
from core.text import for_people, split_message
from core.tickets import Card, build_card, classify_priority, details_schema, thread_name, transcript_lines
from core.transcript import WHO, Line, render_html
from storage.conversations import ConversationStore, NewTurn
from storage.db import Database
from storage.records import Kind, Priority, Source, Status, Ticket
from storage.sql import audit
from storage.tickets import DeskTx, NewTicket, TicketStore

if TYPE_CHECKING:
    from core.desk_outbox import DeskOutbox
    from core.steps.code import OperatorCodes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operator:
    id: int
    name: str

    @property
    def actor(self) -> str:
        return f"operator:{self.id}"


@dataclass(frozen=True)
class DeskReply:
    """What the operator who acted is told (ephemerally)."""

    ok: bool
    text: str


ALREADY_HANDLED = DeskReply(False, "")


@dataclass(frozen=True)
class Escalation:
    """What the agent hands to a person: a question, a hand-over, or an action to approve."""

    kind: Kind
    source: Source
    question: str
    reason: str = ""
    action_name: str | None = None
    action_summary: str = ""
    action_params: dict[str, Any] | None = None
    decision_type: str | None = None
    tool_use_id: str | None = None
    priority_hint: Priority = Priority.NORMAL


@dataclass(frozen=True)
class Escalated:
    """Where an escalation went: ``number`` None when it was not sent (too many tickets open); ``new`` False
    when it joined a ticket already open."""

    number: int | None
    new: bool


class CardRenderer:
    """What operators see of a ticket: its card (embed and buttons) and its thread's name."""

    def __init__(self, *, db: Database, policy: Policy, registry: ActionRegistry) -> None:
        self.policy = policy
        self.registry = registry
        self.tickets = TicketStore(db)
        self.conversations = ConversationStore(db)

    async def card(self, ticket_id: int) -> tuple[Card, str, Ticket]:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            raise LookupError(f"ticket {ticket_id} does not exist")
        turns = [] if ticket.agent_name else await self.conversations.history(
            ticket.conversation_id, limit=self.policy["desk"]["transcript_turns"],
            kinds=("customer", "assistant", "operator"))
        action = self.registry.get(ticket.action_name) if ticket.action_name else None
        return (build_card(ticket, transcript_lines(turns), action.summary if action else None),
                thread_name(ticket.id, ticket.question), ticket)


class TicketDesk:
    def __init__(self, *, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry, outbox: Outbox,
                 desk_outbox: DeskOutbox, arm_ticket: Callable[[int, float | None, float], None],
                 operator_codes: OperatorCodes | None, ai_enabled: bool) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.registry = registry
        self.outbox = outbox
        self.desk_outbox = desk_outbox  # kicked after each commit that owes the staff desk a post
        self.arm_ticket = arm_ticket  # arms a new ticket's reminder and timeout (Deadlines.arm_ticket)
        self.operator_codes = operator_codes  # codes on: approving a large amount needs the operator's own code
        self.ai_enabled = ai_enabled
        self.tickets = TicketStore(db)
        self.conversations = ConversationStore(db)
        self._thread_tickets: dict[int, int] = {}
        self.on_changed: list[Callable[[int], None]] = []  # told each ticket whose row changed (agents waiting)
        self.hours = SupportHours(policy["desk"]["hours"], policy["desk"]["timezone"])
        self.tz = ZoneInfo(policy["summary"]["timezone"])  # how transcripts show times

    async def transcript(self, ticket_id: int, *, for_customer: bool = False) -> tuple[str, bytes] | None:
        """(file name, HTML) of a ticket's conversation: the staff's copy with its internal notes, or the
        customer's without them."""
        found = await self.tickets.transcript(ticket_id)
        if found is None:
            return None
        ticket, turns, notes = found
        lines = [Line(t["created_at"], t["kind"], (json.loads(t["data"]) if t["data"] else {}).get("operator_name")
                      or (ticket.customer_name if t["kind"] == "customer" else WHO[t["kind"]]), t["content"])
                 for t in turns]
        lines += [Line(at, "note", author, text) for at, author, text in notes]
        page = render_html(f"Ticket #{ticket.id} · {ticket.kind.value} · {ticket.customer_name}", lines,
                           for_customer=for_customer, tz=self.tz)
        return f"ticket-{ticket.id}-transcript.html", page.encode()

    def _after_hours(self, now: float) -> str:
        """What a customer is told under a new ticket's number when nobody is at the desk now."""
        if self.hours.is_open(now):
            return ""
        return "\n" + self.policy.message("after_hours", when=self.hours.describe_next(now))

    def _due(self, now: float) -> tuple[float | None, float]:
        """When a new ticket gets its reminder (half the answer time) and its timeout."""
        timeouts = self.policy["timeouts"]
        seconds = timeouts["ticket_answer_seconds"]
        return (now + seconds / 2 if timeouts["reminder"] else None), now + seconds

    def _arm(self, ticket_id: int, reminder: float | None, timeout: float) -> None:
        self.arm_ticket(ticket_id, reminder, timeout)

    def kick(self, ticket_id: int) -> None:
        """Deliver what a change owes the staff desk for this ticket, and tell whoever waits on it."""
        self._kick(ticket_id)

    def _kick(self, ticket_id: int, customer_id: int | None = None) -> None:
        # The customer's DM first: its worker then queues its database read before the card's re-render.
        if customer_id is not None:
            self.outbox.kick(customer_id)
        self.desk_outbox.kick(ticket_id)
        for changed in self.on_changed:
            changed(ticket_id)

    # -- opening ----------------------------------------------------------------------------

    async def _priority(self, conversation_id: int, escalation: Escalation) -> tuple[Priority, str]:
        recent = await self.conversations.history(conversation_id, limit=6, kinds=("customer",))
        texts = [escalation.question, escalation.reason, *(t.content for t in recent)]
        return classify_priority(texts=texts, decision_type=escalation.decision_type,
                                 desk_policy=self.policy["desk"], floor=escalation.priority_hint)

    async def escalate(self, ctx: ActionContext, escalation: Escalation, *, into: int | None = None) -> Escalated:
        """Open a ticket from the LLM loop (its number owed to the customer). Never waits.

        A question or hand-over goes into ``into`` (the ticket this answer already opened) while it is open,
        and into the customer's newest open ticket once they have ``[abuse] max_open_tickets``: one answer
        never opens a row of tickets, each pinging the operators. An approval past that cap is not sent."""
        assert ctx.conversation_id is not None
        priority, rule = await self._priority(ctx.conversation_id, escalation)
        now = self.clock.now()
        reminder, timeout = self._due(now)
        new = NewTicket(ctx.customer_id, ctx.conversation_id, escalation.kind.value, escalation.source, priority.value,
                        escalation.question, escalation.reason, escalation.action_name, escalation.action_params,
                        escalation.tool_use_id, reminder_due_at=reminder, timeout_due_at=timeout)

        message = {Kind.QUESTION: "ticket_question", Kind.APPROVAL: "ticket_approval",
                   Kind.HANDOVER: "ticket_handover"}[escalation.kind]

        cap = self.policy["abuse"]["max_open_tickets"]

        def write(tx: DeskTx) -> tuple[int | None, bool]:
            existing = tx.same_open_approval(ctx.customer_id, escalation.action_name,
                                             escalation.action_params or {}) if escalation.action_name else None
            if existing is None:
                crowded = tx.open_count(ctx.customer_id) >= cap
                if escalation.kind is Kind.APPROVAL:
                    if crowded:
                        tx.audit("agent", "ticket_refused", f"customer:{ctx.customer_id}",
                                 {"why": f"{cap} tickets open", "action": escalation.action_name})
                        return None, False
                else:
                    target = into if into is not None and tx.is_open(into) else None
                    if target is None and crowded:
                        target = tx.newest_open(ctx.customer_id)
                    if target is not None:
                        tx.post(target, "post", f"**Also asked by the assistant:** {escalation.question}")
                        tx.audit("agent", "ticket_question_added", f"ticket:{target}",
                                 {"reason": escalation.reason[:500]})
                        return target, False
            ticket_id = existing if existing is not None else tx.open_ticket(new)
            if existing is None:
                tx.audit("agent", "ticket_opened", f"ticket:{ticket_id}",
                         {"kind": new.kind, "source": new.source, "priority": new.priority, "priority_rule": rule,
                          "action": new.action_name, "reason": new.reason[:500]})
            # The ticket number is owed in the same transaction: a crash after this never hides it.
            notice = self.policy.message(message, number=str(ticket_id), action=escalation.action_summary)
            notice += self._after_hours(now)
            tx.owe(ctx.customer_id, None, split_message(notice))
            return ticket_id, existing is None

        ticket_id, created = await self.tickets.run(write, now)
        if ticket_id is None:
            log.warning("customer %s has %d tickets open: a new approval was not sent", ctx.customer_id, cap)
            return Escalated(None, False)
        if created:
            self._arm(ticket_id, reminder, timeout)
            log.info("ticket #%d opened (%s, %s: %s)", ticket_id, new.kind, priority.value, rule)
        self._kick(ticket_id, ctx.customer_id)
        return Escalated(ticket_id, created)

    async def hold_for_person(self, customer_id: int, turns: Sequence[Any], *, source: Source, notice: str | None,
                              reason: str = "") -> int | None:
        """Messages no AI will answer (no AI configured, Claude gave up, a legal or medical question): keep them
        for a person and open a ticket (or add them to the open one of the same source).

        ``notice`` is what the customer is told; ``{number}`` in it becomes the ticket number. In no-AI mode
        the ticket is a relay: the customer's next DMs go to its thread and the operators' messages in it
        go to the customer, until it is closed; the notice is sent once per conversation.
        """
        first = turns[0]
        question = "\n".join(t.content for t in turns if t.content.strip()) or "(no text)"
        kind = Kind.QUESTION if source == Source.SPECIALIST else Kind.HANDOVER
        escalation = Escalation(kind, source, question, reason,
                                priority_hint=Priority.HIGH if source == Source.SPECIALIST else Priority.NORMAL)
        priority, rule = await self._priority(first.conversation_id, escalation)
        now = self.clock.now()
        relay = source == Source.RELAY
        reminder, timeout = self._due(now)

        def write(tx: DeskTx) -> int:
            tx.hold([t.id for t in turns])
            existing = tx.open_of_source(first.customer_id, source)
            if existing is not None:  # the same trouble again: add to the open ticket
                ticket_id = existing
                tx.post(ticket_id, "post", f"**Customer:** {question}")
            else:
                ticket_id = tx.open_ticket(NewTicket(
                    first.customer_id, first.conversation_id, kind.value, source, priority.value, question, reason,
                    takeover_by=0 if relay else None, takeover_by_name="relay" if relay else None,
                    reminder_due_at=reminder, timeout_due_at=timeout))
                created.append(ticket_id)
                tx.audit("system", "ticket_opened", f"ticket:{ticket_id}",
                         {"kind": kind.value, "source": source, "priority": priority.value, "priority_rule": rule})
            if notice is not None and relay:
                if tx.notice_once(first.conversation_id):
                    text = f"{notice}\n{self.policy.message('ticket_relay', number=str(ticket_id))}"
                    tx.owe(first.customer_id, turns[-1].id, [text])
            elif notice is not None:
                tx.owe(first.customer_id, turns[-1].id, split_message(notice.replace("{number}", str(ticket_id))
                                                                      + self._after_hours(now)))
            return ticket_id

        created: list[int] = []
        ticket_id = await self.tickets.run(write, now)
        if created:
            self._arm(ticket_id, reminder, timeout)
        self._kick(ticket_id, first.customer_id)
        return ticket_id

    # -- what operators see -----------------------------------------------------------------

    async def pending(self) -> list[Ticket]:
        return await self.tickets.unclosed()

    async def ticket_for_thread(self, thread_id: int) -> Ticket | None:
        return await self.tickets.by_thread(thread_id)

    async def audit_refusal(self, user: Operator, what: str, ticket_id: int | None) -> None:
        await audit(self.db, self.clock.now(), f"user:{user.id}", "refused_not_operator",
                                 f"ticket:{ticket_id}" if ticket_id else None, {"attempted": what, "name": user.name})

    # -- operators answering ----------------------------------------------------------------

    async def operator_message(self, thread_id: int, operator: Operator, text: str,
                               message_id: int | None = None) -> DeskReply | None:
        """An operator wrote in a thread (live, or read back after a start: ``message_id`` makes it count once).
        Returns a hint to post back, or None when nothing needs saying."""
        ticket_id = self._thread_tickets.get(thread_id)
        if ticket_id is None:
            ticket = await self.tickets.by_thread(thread_id)
            if ticket is None:
                return None  # not a ticket's thread
            ticket_id = self._thread_tickets[thread_id] = ticket.id  # a thread never changes ticket
        if text.lstrip().startswith(self.policy["desk"]["note_prefix"]) or not text.strip():
            if message_id is not None:  # a note between operators: kept for the transcript, never relayed
                note = (ticket_id, operator.name, text.strip()) if text.strip() else None
                await self.tickets.see_thread_message(thread_id, message_id, self.clock.now(), note=note)
            return None
        reply = await self.reply(ticket_id, operator, text, via="thread", seen=(thread_id, message_id)
                                 if message_id is not None else None)
        return None if reply is ALREADY_HANDLED else reply

    def _thread_hint(self, ticket: Ticket, operator: Operator) -> DeskReply | None:
        """Whether an operator's message in the thread is relayed: None if so, else why not."""
        if ticket.in_takeover and ticket.takeover_by in (0, operator.id):
            return None
        if ticket.in_takeover:
            return DeskReply(False, f"Not relayed: {ticket.takeover_by_name} has taken over ticket #{ticket.id}. "
                                    "Use `/reply` to write to the customer anyway.")
        if ticket.kind is Kind.NOTICE:
            return DeskReply(False, f"Not relayed: ticket #{ticket.id} is a notice from {ticket.agent_name}; it"
                                    " expects no answer. `/close` it when it is dealt with.")
        if ticket.status == "open" and ticket.kind.answered_in_words:
            return None  # the first answer to a question
        if ticket.awaits_decision:
            return DeskReply(False, f"Not relayed: ticket #{ticket.id} waits for a decision. Use the buttons, "
                                    "`/approve` or `/deny`; `/reply` writes to the customer.")
        return DeskReply(False, f"Not relayed: ticket #{ticket.id} is {ticket.status}. Use `/reply` to write to the "
                                "customer again, or `/takeover` to talk with them directly.")

    async def reply(self, ticket_id: int, operator: Operator, text: str, *, via: str = "command",
                    seen: tuple[int, int] | None = None) -> DeskReply:
        """Relay an operator's words to the customer; the first answer to an open question answers it.

        ``via="thread"``: a plain message in the ticket's thread, relayed only when it answers an open
        question or during a take-over. Decided in the same transaction as the relay (one round trip).
        """
        now = self.clock.now()
        text = text.strip()
        if not text:
            return DeskReply(False, "Nothing to send: the message is empty.")

        def write(tx: DeskTx, customer: list[int]) -> DeskReply:
            if seen is not None and not tx.see_thread_message(*seen):
                return ALREADY_HANDLED  # this thread message was handled before (caught up after a start)
            ticket = tx.ticket(ticket_id)
            if ticket is None:
                return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
            if ticket.status == Status.CLOSED:
                return DeskReply(False, f"Ticket #{ticket_id} is closed; nothing was sent.")
            if via == "thread" and (hint := self._thread_hint(ticket, operator)) is not None:
                return hint
            customer.append(ticket.customer_id)
            # Read in this same write transaction, so no other answer can come in between.
            answered = ticket.status == "open" and ticket.kind.answered_in_words
            tx.responded(ticket_id, "answered" if answered else ticket.status)
            if answered:
                tx.answered(ticket_id, text, operator.name)
            turn = NewTurn("operator", text, {"operator_name": operator.name, "operator_id": operator.id,
                                              "ticket": ticket_id, "question": ticket.question})
            said = self.policy.message("operator_says", operator=operator.name, text=text)
            tx.tell(ticket, said, turn)
            tx.audit(operator.actor, "answered" if answered else "replied", f"ticket:{ticket_id}",
                     {"via": via, "chars": len(text)})
            if answered:
                tx.post(ticket_id, "refresh")
            if via != "thread":
                tx.post(ticket_id, "post", f"**{operator.name}** (sent to the customer): {text}")
            return DeskReply(True, f"Sent to {ticket.customer_name} (ticket #{ticket_id}).")

        customer: list[int] = []
        reply = await self.tickets.run(lambda tx: write(tx, customer), now)
        if reply.ok:
            self._kick(ticket_id, customer[0])
        return reply

    # -- decisions --------------------------------------------------------------------------

    def _decided_text(self, ticket: Ticket) -> str:
        who = f" by {ticket.decided_by_name}" if ticket.decided_by_name else ""
        return f"Ticket #{ticket.id} was already {ticket.status}{who}."

    def form_schema(self, ticket: Ticket) -> dict[str, Any] | None:
        """The schema an operator's edit is read by: the action's, or the agent's details' own shape."""
        if ticket.kind is Kind.AGENT_APPROVAL:
            return details_schema(ticket.action_params or {})
        action = self.registry.get(ticket.action_name or "")
        return action.input_schema if action else None

    def code_needed(self, ticket: Ticket, params: dict[str, Any] | None = None) -> float | None:
        """The threshold, when approving this ticket needs the operator's own one-time code; else None."""
        threshold = self.policy["mfa"]["operator_code_above"]
        if not threshold or self.operator_codes is None:
            return None
        names = frozenset(n.casefold() for n in self.policy["risk"]["amount_params"])
        values = params if params is not None else ticket.action_params or {}
        if any(abs(number) > threshold for _, _, number in amounts(values, names)):
            return float(threshold)
        return None

    async def approve(self, ticket_id: int, operator: Operator, params: dict[str, Any] | None = None, *,
                      code: str | None = None) -> DeskReply:
        """Approve once and run the action once; ``params`` are an operator's edited values (validated);
        ``code`` is the operator's own one-time code, needed above ``[mfa] operator_code_above``."""
        now = self.clock.now()
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
        if not ticket.kind.decided:
            return DeskReply(False, f"Ticket #{ticket_id} is a {ticket.kind.value}, not an approval; "
                                    "answer it in the thread or with `/reply`.")
        if operator.id == ticket.customer_discord_id:
            await self.audit_refusal(operator, "approve own request", ticket_id)
            return DeskReply(False, "You cannot approve your own request.")
        if ticket.kind is Kind.AGENT_APPROVAL:
            return await self._approve_for_agent(ticket, operator, params, code)
        action = self.registry.get(ticket.action_name or "")
        if action is None:
            return DeskReply(False, f"The action {ticket.action_name!r} is no longer installed; deny or close the "
                                    "ticket instead.")
        final = dict(ticket.action_params or {}) if params is None else params
        problem = action.validate(final)
        if problem is not None:
            return DeskReply(False, f"Not approved: the parameters don't fit {action.name}: {problem}")
        edited = params is not None and params != ticket.action_params
        if (refused := await self._operator_code_refusal(ticket, final, operator, code)) is not None:
            return refused

        def decide(tx: DeskTx) -> Ticket | None:
            if not tx.approve(ticket_id, operator.id, operator.name, final, "edited" if edited else None):
                return tx.ticket(ticket_id)
            tx.audit(operator.actor, "approved", f"ticket:{ticket_id}",
                     {"action": action.name, "params": final, "edited_from": ticket.action_params if edited else None})
            return None

        lost_to = await self.tickets.run(decide, now)
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        outcome = await self._execute(ticket, action, final, operator)
        self._kick(ticket_id, ticket.customer_id)
        return outcome

    async def _operator_code_refusal(self, ticket: Ticket, final: dict[str, Any], operator: Operator,
                                     code: str | None) -> DeskReply | None:
        """Above [mfa] operator_code_above, why this approval may not go ahead without a right code; else None."""
        threshold = self.code_needed(ticket, final)
        if threshold is None or ticket.status != Status.OPEN:
            return None
        if not code:
            return DeskReply(False, f"Approving more than {threshold:g} needs your own one-time code: use "
                                    "`/approve code:` or the Approve button's form. Nothing was done.")
        assert self.operator_codes is not None  # code_needed says None without them
        problem = await self.operator_codes.verify_person(operator.id, code.strip())
        return None if problem is None else DeskReply(False, f"Not approved: {problem}. Nothing was done.")

    async def _approve_for_agent(self, ticket: Ticket, operator: Operator, params: dict[str, Any] | None,
                                 code: str | None) -> DeskReply:
        """An agent's request: decided once here; the agent does the work and reads the decision."""
        final = dict(ticket.action_params or {}) if params is None else params
        edited = params is not None and params != ticket.action_params
        if (refused := await self._operator_code_refusal(ticket, final, operator, code)) is not None:
            return refused

        def decide(tx: DeskTx) -> Ticket | None:
            if not tx.approve(ticket.id, operator.id, operator.name, final, "edited" if edited else None):
                return tx.ticket(ticket.id)
            tx.executed(ticket.id, {"returned_to_agent": ticket.agent_name})
            tx.audit(operator.actor, "approved", f"ticket:{ticket.id}",
                     {"agent": ticket.agent_name, "action": ticket.action_name, "details": final,
                      "edited_from": ticket.action_params if edited else None})
            tx.post(ticket.id, "post", f"✅ {'Edited and approved' if edited else 'Approved'} by **{operator.name}**. "
                                       f"{ticket.agent_name} receives the decision.")
            tx.post(ticket.id, "refresh")
            return None

        lost_to = await self.tickets.run(decide, self.clock.now())
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        self._kick(ticket.id)
        return DeskReply(True, f"Approved ticket #{ticket.id}; {ticket.agent_name} receives the decision.")

    async def _execute(self, ticket: Ticket, action: Any, params: dict[str, Any], operator: Operator) -> DeskReply:
        ctx = ActionContext(ticket.customer_id, ticket.customer_discord_id, self.db, self.clock.now(),
                            ticket.conversation_id)
        result, error = await execute(action, ctx, params)
        now = self.clock.now()
        summary = action.summary or action.name

        def record(tx: DeskTx) -> None:
            tx.executed(ticket.id, result)
            tx.audit("system", "action_executed" if error is None else "action_failed", f"ticket:{ticket.id}",
                     {"action": action.name, "result": result})
            note = (f"{operator.name} (operator) approved {action.name} with {json.dumps(params)} (ticket "
                    f"#{ticket.id}); result: {json.dumps(result, default=str)[:1500]}. The customer has been told.")
            text = (self.policy.message("approved", action=summary, number=str(ticket.id)) if error is None else
                    self.policy.message("approved_failed", action=summary, number=str(ticket.id), error=error))
            tx.tell(ticket, text, NewTurn("system", note))
            outcome = (f"Done: `{json.dumps(result['result'], default=str)[:1500]}`" if error is None
                       else f"⚠ It failed: {error}")
            tx.post(ticket.id, "post", f"✅ Approved by **{operator.name}**. {outcome}")
            tx.post(ticket.id, "refresh")

        await self.tickets.run(record, now)
        if error is None:
            return DeskReply(True, f"Approved and done: ticket #{ticket.id} ({summary}). The customer has been told.")
        return DeskReply(False, f"Approved, but {summary} failed: {error}. The customer has been told.")

    async def deny(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        now = self.clock.now()
        reason = reason.strip() or "no reason given"
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
        if not ticket.kind.decided:
            return DeskReply(False, f"Ticket #{ticket_id} is a {ticket.kind.value}, not an approval; use `/close`.")
        action = self.registry.get(ticket.action_name or "")
        summary = (action.summary if action else None) or ticket.action_name or "the request"

        def decide(tx: DeskTx) -> Ticket | None:
            if not tx.deny(ticket_id, operator.id, operator.name, reason):
                return tx.ticket(ticket_id)
            tx.audit(operator.actor, "denied", f"ticket:{ticket_id}", {"action": ticket.action_name, "reason": reason})
            note = (f"{operator.name} (operator) denied {ticket.action_name} with "
                    f"{json.dumps(ticket.action_params)} (ticket #{ticket_id}); it was not done. Reason: {reason}")
            told = self.policy.message("denied", action=summary, number=str(ticket_id), reason=reason)
            tx.tell(ticket, told, NewTurn("system", note))
            tx.post(ticket_id, "post", f"⛔ Denied by **{operator.name}**: {reason}")
            tx.post(ticket_id, "refresh")
            return None

        lost_to = await self.tickets.run(decide, now)
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        self._kick(ticket_id, ticket.customer_id)
        if ticket.agent_name:
            return DeskReply(True, f"Denied ticket #{ticket_id}; {ticket.agent_name} receives the reason.")
        return DeskReply(True, f"Denied ticket #{ticket_id}; the customer has been told why.")

    # -- handling ---------------------------------------------------------------------------

    async def _update(self, ticket_id: int, operator: Operator, audit_action: str,
                      fn: Callable[[DeskTx, Ticket], DeskReply]) -> DeskReply:
        """Run ``fn(tx, ticket) -> DeskReply`` in a transaction with the ticket's current row."""
        now = self.clock.now()
        customer: list[int] = []

        def write(tx: DeskTx) -> DeskReply:
            ticket = tx.ticket(ticket_id)
            if ticket is None:
                return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
            reply = fn(tx, ticket)
            if reply.ok:
                tx.audit(operator.actor, audit_action, f"ticket:{ticket_id}", {"name": operator.name})
                tx.post(ticket_id, "refresh")
                customer.append(ticket.customer_id)
            return reply

        reply = await self.tickets.run(write, now)
        if reply.ok:
            self._kick(ticket_id, customer[0])
        return reply

    async def claim(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if ticket.status == Status.CLOSED:
                return DeskReply(False, f"Ticket #{ticket_id} is closed.")
            if ticket.claimed_by == operator.id:
                return DeskReply(False, f"You already have ticket #{ticket_id}.")
            if not tx.claim(ticket_id, operator.id, operator.name):
                return DeskReply(False, f"Ticket #{ticket_id} is already claimed by {ticket.claimed_by_name}.")
            tx.post(ticket_id, "post", f"🙋 **{operator.name}** is handling this ticket.")
            return DeskReply(True, f"Ticket #{ticket_id} is yours.")

        return await self._update(ticket_id, operator, "claimed", fn)

    async def takeover(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if ticket.status == Status.CLOSED:
                return DeskReply(False, f"Ticket #{ticket_id} is closed.")
            if ticket.takeover_by == operator.id:
                return DeskReply(False, f"You are already talking with the customer on ticket #{ticket_id}.")
            other = tx.other_takeover(ticket.customer_id, ticket_id)
            if other is not None:
                return DeskReply(False, f"{other[1]} is already talking with this customer on ticket #{other[0]}.")
            if not tx.take_over(ticket_id, operator.id, operator.name):
                return DeskReply(False, f"{ticket.takeover_by_name} has already taken over ticket #{ticket_id}.")
            tx.tell(ticket, self.policy.message("takeover", operator=operator.name),
                    NewTurn("system", f"{operator.name} from our team took over the conversation."))
            tx.post(ticket_id, "post",
                    f"🎧 **{operator.name}** took over: the customer's messages now come here, and your messages "
                    f"here go to the customer (start with `{self.policy['desk']['note_prefix']}` for a note). "
                    "`/handback` returns them to the assistant.")
            return DeskReply(True, f"You're talking with {ticket.customer_name} now. `/handback` when done.")

        return await self._update(ticket_id, operator, "took_over", fn)

    async def handback(self, ticket_id: int, operator: Operator) -> DeskReply:
        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if not self.ai_enabled:
                return DeskReply(False, "No AI is configured, so there is nothing to hand back to; use `/close` "
                                        "when the conversation is done.")
            if not ticket.in_takeover:
                return DeskReply(False, f"Nobody has taken over ticket #{ticket_id}.")
            tx.hand_back(ticket_id)
            tx.tell(ticket, self.policy.message("handback"), NewTurn(
                "system", f"{operator.name} handed the conversation back to you (the assistant). The messages "
                          "above between the customer and our team are what was said meanwhile."))
            tx.post(ticket_id, "post", f"↩ **{operator.name}** handed the customer back to the assistant.")
            return DeskReply(True, f"{ticket.customer_name} is back with the assistant.")

        return await self._update(ticket_id, operator, "handed_back", fn)

    async def close(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        reply = await self._close(ticket_id, operator, reason)
        if reply.ok and self.policy["desk"]["transcript_to_customer"]:
            ticket = await self.tickets.get(ticket_id)
            made = await self.transcript(ticket_id, for_customer=True) if ticket and not ticket.agent_name else None
            if ticket is not None and made is not None:
                await self.conversations.owe_file(ticket.customer_id, f"Your copy of ticket #{ticket_id}:", *made,
                                                  self.clock.now(), reason="transcript")
                self.outbox.kick(ticket.customer_id)
        return reply

    async def _close(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        reason = reason.strip() or "resolved"

        def fn(tx: DeskTx, ticket: Ticket) -> DeskReply:
            if not tx.close(ticket_id, reason):
                return DeskReply(False, f"Ticket #{ticket_id} is already closed.")
            undecided = ticket.awaits_decision
            note = f"{operator.name} closed ticket #{ticket_id}: {reason}"
            if undecided:
                note += f". The proposed {ticket.action_name} was not done."
            # Held messages (no AI, or Claude gave up) are settled by the operator now.
            tx.settle_held(ticket.customer_id)
            told = self.policy.message("closed", number=str(ticket_id), reason=reason)
            tx.tell(ticket, told, NewTurn("system", note))
            if self.policy["feedback"]["ask_after_close"] and not ticket.agent_name:
                tx.owe(ticket.customer_id, None, [self.policy.message("rate", number=str(ticket_id))],
                       buttons=[{"kind": "rating", "subject": f"t{ticket_id}"}])
            tx.post(ticket_id, "post", f"🔒 Closed by **{operator.name}**: {reason}")
            tx.post(ticket_id, "transcript")
            tx.post(ticket_id, "archive")
            return DeskReply(True, f"Ticket #{ticket_id} closed; the customer has been told.")

        return await self._update(ticket_id, operator, "closed", fn)

    async def contact(self, discord_id: int, display_name: str, operator: Operator, text: str) -> DeskReply:
        """An operator writes to someone first: a ticket (its thread shows the conversation; the person's
        DMs come to it, as in a take-over) and the message owed to their DMs, in one transaction."""
        text = text.strip()
        if not text:
            return DeskReply(False, "Nothing to send: the message is empty.")
        now = self.clock.now()
        idle = self.policy["conversation"]["idle_minutes"] * 60

        def write(tx: DeskTx) -> tuple[DeskReply, int | None, int | None]:
            customer_id, conversation_id, row = tx.person(discord_id, display_name, idle)
            if row["blocked_until"] is not None and row["blocked_until"] > now:
                return DeskReply(False, f"{display_name} is blocked: `/unblock` them first."), None, None
            if row["dm_status"] == "closed" and row["dm_closed_at"] is not None:
                return (DeskReply(False, f"{display_name}'s DMs are closed: Discord refused our last message to them."
                                         " Nothing was sent; reach them another way."), None, None)
            if (open_ := tx.other_takeover(customer_id, 0)) is not None:
                return (DeskReply(False, f"{open_[1]} is already talking with {display_name} on ticket "
                                         f"#{open_[0]}: write there."), None, None)
            ticket_id = tx.open_ticket(NewTicket(
                customer_id, conversation_id, Kind.HANDOVER.value, Source.OPERATOR, Priority.NORMAL.value,
                f"{operator.name} contacted {display_name}: {text}", "", takeover_by=operator.id,
                takeover_by_name=operator.name))
            tx.responded(ticket_id, "open")
            ticket = tx.ticket(ticket_id)
            assert ticket is not None
            tx.tell(ticket, self.policy.message("operator_says", operator=operator.name, text=text),
                    NewTurn("operator", text, {"operator_name": operator.name, "operator_id": operator.id,
                                               "ticket": ticket_id}))
            tx.audit(operator.actor, "contacted", f"ticket:{ticket_id}", {"user": discord_id, "chars": len(text)})
            return (DeskReply(True, f"Sent to {display_name} as ticket #{ticket_id}: their replies come to its "
                                    "thread (`/handback` gives them to the assistant, `/close` ends it). If their "
                                    "DMs are closed, the thread will say so."), ticket_id, customer_id)

        reply, ticket_id, customer_id = await self.tickets.run(write, now)
        if ticket_id is not None:
            self._kick(ticket_id, customer_id)
        return reply

    async def auto_close_due(self) -> tuple[int, int]:
        """Quiet tickets: "anything else?" after [desk] auto_close_hours, closed after the grace time unless
        someone spoke meanwhile. Safe to run any number of times (also after a restart). (warned, closed)."""
        hours = self.policy["desk"]["auto_close_hours"]
        if not hours:
            return 0, 0
        now = self.clock.now()
        grace = self.policy["desk"]["auto_close_grace_hours"] * 3600
        warned = closed = 0
        for ticket_id, warned_at, active in await self.tickets.quiet_tickets(now - hours * 3600):
            if warned_at is not None and active > warned_at:  # someone spoke after the notice: start again
                await self.tickets.run(lambda tx, t=ticket_id: tx.warn_auto_close(t, None), now)
            elif warned_at is None:
                await self._warn_quiet(ticket_id, now, grace)
                warned += 1
            elif now >= warned_at + grace:
                quiet = for_people(hours * 3600)
                reply = await self.close(ticket_id, Operator(0, "Handoff"), f"no activity for {quiet}")
                closed += reply.ok
        return warned, closed

    async def _warn_quiet(self, ticket_id: int, now: float, grace: float) -> None:
        def write(tx: DeskTx) -> int | None:
            ticket = tx.ticket(ticket_id)
            if ticket is None or ticket.ended:
                return None
            tx.warn_auto_close(ticket_id, now)
            text = self.policy.message("auto_close_soon", number=str(ticket_id), when=for_people(grace))
            tx.tell(ticket, text, NewTurn("system", f"Ticket #{ticket_id} was quiet; the customer was asked whether "
                                                    "anything else is needed before it closes."))
            tx.post(ticket_id, "post", f"💤 Quiet ticket: the customer was asked \"anything else?\"; it closes in "
                                       f"{for_people(grace)} unless someone writes.")
            tx.audit("system", "auto_close_warned", f"ticket:{ticket_id}")
            return ticket.customer_id

        customer_id = await self.tickets.run(write, now)
        if customer_id is not None:
            self._kick(ticket_id, customer_id)

    # -- faults and restarts ----------------------------------------------------------------

    async def customer_unreachable(self, customer_id: int, reason: str) -> None:
        """DMs are closed: record it on the customer's tickets and tell the operators in their threads."""
        now = self.clock.now()

        def write(tx: DeskTx) -> list[int]:
            ids = tx.mark_dm_closed(customer_id)
            for ticket_id in ids:
                tx.post(ticket_id, "post", f"⚠ The customer's DMs are closed ({reason}): our last message(s) did not "
                                           "reach them and nothing more is sent until they write to us again.")
                tx.post(ticket_id, "refresh")
            return ids

        for ticket_id in await self.tickets.run(write, now):
            self._kick(ticket_id)

    async def resume(self) -> None:
        """Approvals whose action was running when the process stopped: say so rather than guess."""
        now = self.clock.now()
        for ticket in await self.tickets.approved_not_executed():
            def write(tx: DeskTx, ticket: Ticket = ticket) -> None:
                result = {"status": "interrupted", "error": "the bot stopped while the action was running"}
                tx.executed(ticket.id, result, only_once=True)
                tx.audit("system", "action_interrupted", f"ticket:{ticket.id}", {"action": ticket.action_name})
                tx.post(ticket.id, "post", f"⚠ The bot stopped while running the approved `{ticket.action_name}`. "
                                           "It may or may not have been done: check, then tell the customer with "
                                           "`/reply`.")

            await self.tickets.run(write, now)
            self._kick(ticket.id)
