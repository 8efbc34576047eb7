"""The conversation engine: store every DM first, then answer each customer's messages in order.

Customers are independent: each has a worker (``KeyedWorkers``), so one slow answer
never holds up another customer. Messages that arrive while a customer's answer is being
written are answered together in the next round, in the order they were sent.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.actions import ActionContext
from core.assistant import Assistant, LLMUnavailable
from core.clock import Clock, utc_day_start
from core.codes import code_in
from core.desk import TicketDesk
from core.files import MB, Caps, Offered, Refused, Taken, refusal_text, take
from core.help_text import help_text, is_help_request
from core.outbox import Outbox
from core.policy import Policy
from core.ports import CustomerChannel
from core.steps.codes import REDACTED, OneTimeCodes
from core.steps.confirmation import Confirmations, Handled
from core.text import bare_phrase, split_message
from core.words import WordList
from core.workers import KeyedWorkers
from storage.conversations import ConversationStore, Customer, Gate, NewTurn, Turn
from storage.db import Store
from storage.files import FileStore
from storage.records import Source

log = logging.getLogger(__name__)

HISTORY_CAP = 2000  # turns read for one answer (a conversation ends after [conversation] idle)
# Customers whose answer waits for the end of a ``gathering()`` block (set while one runs in this
# task).
_gathered: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "gathered", default=None
)

ENROL_WORDS = {
    "enrol",
    "enroll",
    "enrol me",
    "enroll me",
    "set up codes",
    "setup codes",
    "set up 2fa",
    "2fa",
    "mfa",
    "authenticator",
    "set up authenticator",
}


@dataclass(frozen=True)
class InboundMessage:
    discord_user_id: int
    display_name: str
    content: str
    discord_message_id: int | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    dm_channel_id: int | None = None  # the DM channel it came in: kept, so answers need no look-up
    sent_at: float | None = None  # when Discord says it was sent (its id's time); None: now
    account_created_at: float | None = None  # when the author's Discord account was made


class ConversationEngine:
    def __init__(
        self,
        *,
        db: Store,
        policy: Policy,
        clock: Clock,
        channel: CustomerChannel,
        outbox: Outbox,
        assistant: Assistant | None,
        desk: TicketDesk,
        confirmations: Confirmations,
        codes: OneTimeCodes | None,
    ) -> None:
        """``assistant`` None: no AI configured (every conversation goes to a person); ``codes``
        None: codes off."""
        self.db = db
        self.store = ConversationStore(db)
        self.files = FileStore(db)
        self.policy = policy
        self.clock = clock
        self.channel = channel
        self.outbox = outbox
        self.assistant = assistant
        self.usage = assistant.usage if assistant is not None else None
        self.desk = desk
        self.confirmations = confirmations
        self.codes = codes
        # compiled once, read per message
        self.handover_phrases = WordList(policy.desk.handover_phrases)
        self._workers: KeyedWorkers[int] = KeyedWorkers(self._answer_pending, "conversation")

    # -- input ------------------------------------------------------------------------------

    async def receive(self, message: InboundMessage) -> None:
        """Store a customer's DM (committed before anything else happens), then schedule its
        answer."""
        text = message.content.strip()
        now = self.clock.now()
        taken, refused = await self._files(message, now)
        attachments: list[dict[str, Any]] = [
            {
                "filename": f.filename,
                "size": f.size,
                "media_type": f.media_type,
                "readable": f.readable,
                "store": i,
            }
            for i, f in enumerate(taken)
        ] + [{"filename": r.filename, "refused": r.why} for r in refused]
        data = {"attachments": attachments} if attachments else None
        canned = None
        if not text:
            seen = self.policy.attachments.claude_sees_files and any(f.readable for f in taken)
            if refused and not taken:
                canned = "file_refused_only"
            elif taken and not seen:
                canned = "attachment_only"
            elif not taken:
                canned = "empty"
        # A one-time code is never stored, logged or shown to Claude: the turn keeps a placeholder.
        codes = self.codes
        code = code_in(text) if codes is not None else None
        if (
            code is not None
            and codes is not None
            and not await codes.expects_code(message.discord_user_id)
        ):
            code = None
        enrol = codes is not None and bare_phrase(text) in ENROL_WORDS
        if self.assistant is not None and not code and not enrol and is_help_request(text):
            canned = "help"  # answered by the bot itself, from the actions it has (no Claude call)
        inbound = await self.store.record_inbound(
            discord_id=message.discord_user_id,
            display_name=message.display_name,
            content=REDACTED if code else message.content,
            data=data,
            discord_message_id=message.discord_message_id,
            now=now,
            idle_seconds=self.policy.conversation.idle_minutes * 60,
            status="answered" if canned or code or enrol else "pending",
            dm_channel_id=message.dm_channel_id,
            gate=self._gate(message, now, counted=code is None),
            one_time_code=code is not None,
            files=taken,
        )
        if inbound.duplicate:
            log.info(
                "message %s was already stored; not answering twice", message.discord_message_id
            )
            return
        if inbound.held_by is not None:
            log.info(
                "message %s from customer %s held: %s",
                message.discord_message_id,
                inbound.customer.id,
                inbound.held_by,
            )
            self.outbox.kick(inbound.customer.id)  # the one notice, if this message owed it
            return
        if code is not None and codes is not None:
            await codes.submit_code(inbound.customer.id, code)
            return
        if enrol:
            await self.enrol(inbound.customer, message.display_name)
            return
        if refused:  # one plain sentence; the rest of the message carries on
            told = refusal_text(refused)
            await self.say(
                inbound.customer.id,
                self.policy.message("file_refused", refused=told),
                reason="file_refused",
            )
        if inbound.relayed_to is not None:
            self.desk.desk_outbox.kick(inbound.relayed_to)
            return
        if canned == "file_refused_only":
            return  # said above; nothing for Claude to read
        if canned:
            # Nothing for Claude to read: answer at once, and keep the turn so nothing is lost.
            reply = (
                help_text(self.policy, self.assistant.registry, codes=codes is not None)
                if canned == "help" and self.assistant is not None
                else self.policy.message(canned)
            )
            await self.say(inbound.customer.id, reply, reason=f"canned:{canned}")
            return
        gathered = _gathered.get()
        if gathered is not None:
            gathered.add(inbound.customer.id)
        else:
            self._workers.wake(inbound.customer.id)

    async def customer_edited(self, discord_message_id: int, content: str) -> None:
        """A customer edited a DM: Claude reads the latest text of one not answered yet; in a
        take-over the operator sees the edit in the thread."""
        edited = await self.store.customer_edited(discord_message_id, content, self.clock.now())
        if edited is not None and edited[1] is not None:
            self.desk.desk_outbox.kick(edited[1])

    @contextlib.contextmanager
    def gathering(self) -> Iterator[None]:
        """Messages received in this block (what a customer sent while the bot was down, read back
        at a start) are answered at its end, together, as they would have been had they arrived
        while Claude was busy."""
        gathered: set[int] = set()
        token = _gathered.set(gathered)
        try:
            yield
        finally:
            _gathered.reset(token)
            for customer_id in gathered:
                self._workers.wake(customer_id)

    async def _files(
        self, message: InboundMessage, now: float
    ) -> tuple[list[Taken], list[Refused]]:
        """The message's files within [attachments]' caps (today's allowance read first)."""
        if not message.attachments:
            return [], []
        caps = self.policy.attachments
        used = await self.files.bytes_since(message.discord_user_id, utc_day_start(now))
        offered = [
            Offered(a["filename"], int(a.get("size") or 0), a.get("data"), a.get("content_type"))
            for a in message.attachments
        ]
        return take(
            offered,
            Caps(
                int(caps.max_file_mb * MB),
                caps.files_per_message,
                int(caps.mb_per_customer_per_day * MB),
            ),
            used,
        )

    def _gate(self, message: InboundMessage, now: float, *, counted: bool) -> Gate:
        """``counted`` False: not held for speed (a one-time code: codes have their own attempt
        limits); it still counts toward the speed of the messages after it."""
        abuse = self.policy.abuse
        days = abuse.min_account_age_days
        too_new = bool(
            days
            and message.account_created_at is not None
            and now - message.account_created_at < days * 86400
        )
        sent_at = message.sent_at if message.sent_at is not None else now
        return Gate(
            abuse.messages_per_minute if counted else 0,
            sent_at,
            too_new,
            self.policy.message("blocked"),
            self.policy.message("slow_down"),
            self.policy.message("account_too_new"),
        )

    async def enrol(self, customer: Customer, display_name: str) -> None:
        """A new authenticator setup (QR code and key) straight to the customer's DM; or, when they
        have one, the request for a code from it first (``OneTimeCodes.ask_to_enrol``)."""
        assert self.codes is not None
        enrolment = await self.codes.ask_to_enrol(
            customer.id, account=display_name or str(customer.discord_id)
        )
        if enrolment is not None:
            await self.codes.send_setup(customer.id, enrolment)

    async def say(
        self, customer_id: int, text: str, *, reason: str, turn_id: int | None = None
    ) -> None:
        """Owe the customer a message the bot wrote itself (not Claude), through the outbox."""
        await self.store.owe(
            customer_id, split_message(text), self.clock.now(), reason=reason, turn_id=turn_id
        )
        self.outbox.kick(customer_id)

    # -- lifecycle --------------------------------------------------------------------------

    async def resume(self) -> int:
        """After a start: answer every message that was stored but not answered. Returns the
        customer count."""
        customers = await self.store.customers_with_pending_turns()
        for customer_id in customers:
            self._workers.wake(customer_id)
        if customers:
            log.info(
                "answering stored messages of %d customer(s) left unanswered before the restart",
                len(customers),
            )
        return len(customers)

    async def drain(self) -> None:
        """Wait until every scheduled answer and delivery is done (tests and benchmarks)."""
        desk_outbox = self.desk.desk_outbox
        while self._workers.busy or self.outbox.busy or desk_outbox.busy:
            await self._workers.drain()
            await self.outbox.drain()
            await desk_outbox.drain()

    @property
    def busy(self) -> bool:
        """An answer is being written for some customer."""
        return self._workers.busy

    def stop_accepting(self) -> None:
        """A graceful stop: messages still arrive and are stored (answered after the next start),
        but no new answer starts; answers being written may finish."""
        self._workers.stop_accepting()

    async def close(self) -> None:
        await self._workers.close()

    # -- answering --------------------------------------------------------------------------

    async def _answer_pending(self, customer_id: int) -> None:
        while True:
            work = await self.store.pending_turns(
                # the whole conversation (capped): the assistant's window steps through it from its
                # start, so the prompt's beginning, and its cache, stay the same call after call
                customer_id,
                history_limit=HISTORY_CAP,
            )
            customer, pending = work.customer, work.turns
            if customer is None or not pending:
                return
            # Answer the oldest conversation's messages first (after a long outage there may be
            # two).
            batch = [t for t in pending if t.conversation_id == pending[0].conversation_id]
            if customer.confirming:
                handled = await self.confirmations.handle_reply(customer.id, batch)
                if handled is Handled.LATER:
                    self._workers.wake_later(customer.id, 0.5)
                    return
                if handled is Handled.DONE:
                    # a yes / no (or an unclear answer, asked again) to a pending confirmation
                    continue
            if self.assistant is not None and await self._for_a_person(customer, batch):
                continue
            if self.assistant is not None and await self._over_budget(customer, batch):
                continue
            if self.assistant is None:
                await self._hold_for_human(customer, batch)
            elif not await self._answer_with_claude(customer, batch, work.history):
                return

    async def _hold_for_human(self, customer: Customer, batch: Sequence[Turn]) -> None:
        """No AI configured: keep the messages for a person (a relay ticket) and tell the customer
        once."""
        await self.desk.hold_for_person(
            customer.id, batch, source=Source.RELAY, notice=self.policy.message("no_ai")
        )

    async def _for_a_person(self, customer: Customer, batch: Sequence[Turn]) -> bool:
        """Legal and medical questions, and customers asking for a person, go to a person, not to
        Claude (the policy's word lists decide; Claude can also hand over with its
        hand_over_to_human tool)."""
        assert self.assistant is not None
        text = "\n".join(t.content for t in batch)
        phrase = self.handover_phrases.find(text)
        if phrase is not None:
            await self.desk.hold_for_person(
                customer.id,
                batch,
                source=Source.HANDOVER,
                notice=self.policy.message("ticket_handover", number="{number}"),
                reason=f"the customer asked for a person ({phrase!r})",
            )
            return True
        topic = self.assistant.tools.risk.message_topic(text)
        if topic is None:
            return False
        await self.desk.hold_for_person(
            customer.id,
            batch,
            source=Source.SPECIALIST,
            notice=self.policy.message("specialist_only", number="{number}"),
            reason=f"the customer's message mentions {topic!r} (legal/medical: critical)",
        )
        return True

    async def _over_budget(self, customer: Customer, batch: Sequence[Turn]) -> bool:
        """``[abuse] tokens_per_day`` used up: the messages go to a person (a ticket), not to
        Claude; the customer is told once, when that ticket opens."""
        limit = self.policy.abuse.tokens_per_day
        if not limit or self.usage is None:
            return False
        used = await self.usage.customer_tokens(customer.id, utc_day_start(self.clock.now()))
        if used < limit:
            return False
        told = await self.store.open_ticket_of_source(customer.id, Source.BUDGET)
        await self.desk.hold_for_person(
            customer.id,
            batch,
            source=Source.BUDGET,
            notice=None if told else self.policy.message("budget_reached", number="{number}"),
            reason=f"the customer used {used:,} Claude tokens today ([abuse] tokens_per_day"
            f" {limit:,})",
        )
        return True

    async def _answer_with_claude(
        self, customer: Customer, batch: Sequence[Turn], history: Sequence[Turn]
    ) -> bool:
        """Answer ``batch`` with ``history``, read in the same snapshot (a message arriving since
        waits for the next round, so it is answered exactly once)."""
        assert self.assistant is not None
        conversation_id = batch[0].conversation_id
        ctx = ActionContext(
            customer.id, customer.discord_id, self.db, self.clock.now(), conversation_id
        )

        async def record_round(turns: Sequence[NewTurn]) -> None:
            await self.store.record_round(
                conversation_id, customer.id, turns, self.clock.now(), batch[-1].id
            )

        try:
            typing = (
                self.channel.typing(customer.dm_channel_id)
                if customer.dm_channel_id
                else contextlib.nullcontext()
            )
            async with typing:
                reply = await self.assistant.respond(history, ctx, record_round)
        except LLMUnavailable as exc:
            await self._claude_failed(customer, batch, str(exc))
            return False
        # a bug (ours or an action's): the customer must not be left in silence
        except Exception as exc:
            log.exception("answering customer %s failed", customer.id)
            await self._claude_failed(
                customer, batch, f"internal error: {type(exc).__name__}: {exc}"
            )
            return False
        text = "\n\n".join(part for part in [reply.text, *reply.notices] if part.strip())
        if not text.strip():
            text = "Sorry, I don't have an answer to that. Could you put it another way?"
        uses = [(p.id, p.title, p.origin) for p in reply.used]
        await self.store.complete_answer(
            batch, reply.final_turn, split_message(text), self.clock.now(), uses=uses
        )
        self.outbox.kick(customer.id)
        return True

    async def _claude_failed(self, customer: Customer, batch: Sequence[Turn], error: str) -> None:
        attempts = await self.store.mark_attempt_failed([t.id for t in batch])
        llm = self.policy.llm
        log.warning(
            "Claude failed for customer %s (attempt %d of %d): %s",
            customer.id,
            attempts,
            llm.max_answer_attempts,
            error,
        )
        if attempts >= llm.max_answer_attempts:
            await self.store.give_up(batch, error, self.clock.now())
            await self.say(customer.id, self.policy.message("llm_gave_up"), reason="llm_gave_up")
            await self.desk.hold_for_person(
                customer.id,
                batch,
                source=Source.LLM_FAILURE,
                notice=None,
                reason=f"Claude failed {attempts} times: {error[:300]}",
            )
            return
        if attempts == 1:
            await self.say(
                customer.id, self.policy.message("llm_unavailable"), reason="llm_unavailable"
            )
        self._workers.wake_later(customer.id, llm.retry_after_failure_seconds)
