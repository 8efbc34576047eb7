"""Customer confirmations: preference actions ("I can do X. Confirm?") and transactional ones (the
exact details, explicitly confirmed). The customer answers with a button or by typing; an unclear
answer is never taken as yes. A confirmation is decided once (a conditional update), expires, and
survives restarts.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from core.actions import Action, ActionContext, ActionRegistry
from core.clock import Clock
from core.outbox import Outbox
from core.policy import Policy
from core.replies import Reply, ReplyReader
from core.risk import Classification
from core.steps.lifecycle import CustomerStep, Opened, Proposal, details_text
from core.text import split_message
from storage.db import Store
from storage.steps import Confirmation, ConfirmationStore, Decided, StepRequest

log = logging.getLogger(__name__)
# A message that came after a question was made, while its delivery is not recorded yet, waits this
# long for it.
DELIVERY_GRACE = 30.0


class Handled(enum.Enum):
    DONE = "done"  # a typed answer was used (decided, or asked again)
    NONE = "none"  # no answer among them: Claude reads the messages
    LATER = "later"  # an answer may be on its way: the question's delivery is not recorded yet


class Confirmations(CustomerStep):
    subject = "confirmation"
    strategies: tuple[str, ...] = ("confirm", "confirm_details")

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
        super().__init__(
            db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, schedule=schedule
        )
        words = self.policy.confirmations
        self.replies = ReplyReader(words.yes_words, words.no_words, words.ack_words)
        self.store = ConfirmationStore(db)

    # -- asking -----------------------------------------------------------------------------

    async def open(self, proposal: Proposal) -> Opened:
        number = await self.request(
            proposal.ctx,
            proposal.action,
            proposal.params,
            proposal.decision,
            proposal.tool_use_id,
            proposal.preview,
        )
        return Opened(
            f"AWAITING THE CUSTOMER'S CONFIRMATION (#{number}): {proposal.action.name} is not done"
            " yet. The customer was shown the exact details and asked to confirm; the result will"
            " appear in this conversation. Do not say it is done."
        )

    async def request(
        self,
        ctx: ActionContext,
        action: Action,
        params: dict[str, Any],
        decision: Classification,
        tool_use_id: str | None,
        preview: dict[str, Any] | None = None,
    ) -> int:
        """Store a pending confirmation, its prompt owed to the customer; returns its id."""
        assert ctx.conversation_id is not None
        now = self.clock.now()
        details = details_text(action, params, preview)
        if decision.strategy == "confirm":
            flat = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items())
            prompt = self.policy.message(
                "confirm_preference",
                details=f"{action.summary or action.name}" + (f" ({flat})" if flat else ""),
            )
        else:
            prompt = self.policy.message("confirm_details", details=details)
        expires = now + self.policy.risk.confirmation_minutes * 60
        confirmation_id = await self.store.create(
            customer_id=ctx.customer_id,
            conversation_id=ctx.conversation_id,
            action_name=action.name,
            params=params,
            strategy=decision.strategy,
            level=decision.level,
            rules=decision.rules,
            rule=decision.rule,
            details=details,
            tool_use_id=tool_use_id,
            expires_at=expires,
            now=now,
            prompt=split_message(prompt),
        )
        self.outbox.kick(ctx.customer_id)
        self.schedule(f"confirmation:{confirmation_id}", expires)
        return confirmation_id

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return await self.store.pending_deadlines()

    # -- the customer's answer ----------------------------------------------------------------

    async def handle_reply(self, customer_id: int, turns: list[Any]) -> Handled:
        """A typed answer to a pending confirmation, among the customer's waiting messages. DONE
        when one was handled: only that message is used up, so a question sent with it ("where is my
        parcel?", "yes") is still answered by Claude in the next round; NONE: Claude reads them all.

        A message counts as an answer only if the customer sent it after the question reached them:
        an "ok thanks" typed while Claude was still writing the proposal answers nothing (Claude
        reads it). With more than one question waiting, a typed yes or no is ambiguous: the customer
        is asked to use the buttons, and nothing is decided."""
        pending = await self.store.pending_for(customer_id)
        if not pending:
            return Handled.NONE
        for turn in turns:
            meaning = self.replies.read(turn.content)
            if meaning is Reply.OTHER:
                # a new question, or a qualified yes: Claude answers it; the confirmation stays
                # pending
                continue
            shown = [p.shown_before(turn.discord_message_id, turn.created_at) for p in pending]
            if True not in shown:
                if None in shown and self.clock.now() - turn.created_at < DELIVERY_GRACE:
                    # the question is being delivered: read this again when it is
                    return Handled.LATER
                continue  # sent before any question was shown to the customer: not an answer to it
            if len(pending) > 1:
                if meaning is Reply.NO_AND_MORE:
                    continue  # Claude reads it; nothing is cancelled on a guess
                text = self.policy.message("confirm_use_buttons", count=str(len(pending)))
                await self.store.ask_again(
                    pending[0], [turn.id], text, self.clock.now(), len(turn.content), repeat=False
                )
                self.outbox.kick(customer_id)
                return Handled.DONE
            [confirmation] = pending
            if meaning is Reply.UNCLEAR:
                text = self.policy.message(
                    "confirm_again", action=self._summary(confirmation.action_name)
                )
                await self.store.ask_again(
                    confirmation, [turn.id], text, self.clock.now(), len(turn.content)
                )
                self.outbox.kick(customer_id)
                return Handled.DONE
            if meaning is Reply.NO_AND_MORE:
                # "no, make it 2": cancel, and Claude answers the messages (this one included) now.
                await self.decide(confirmation.id, False, via="typed")
                return Handled.NONE
            await self.decide(
                confirmation.id, meaning is Reply.YES, via="typed", answered_turns=[turn.id]
            )
            return Handled.DONE
        return Handled.NONE

    def _cancelled(self, request: StepRequest) -> tuple[str, str]:
        return (
            self.policy.message("confirm_cancelled", action=self._summary(request.action_name)),
            (
                f"The customer cancelled {request.action_name} (confirmation #{request.id}); it was"
                " not done."
            ),
        )

    def _expired(self, request: StepRequest) -> tuple[str, str]:
        return (
            self.policy.message("confirm_expired", action=self._summary(request.action_name)),
            f"The confirmation for {request.action_name} (#{request.id}) expired; it was not done.",
        )

    async def decide(
        self,
        confirmation_id: int,
        yes: bool,
        *,
        via: str,
        by_discord_id: int | None = None,
        answered_turns: list[int] | None = None,
    ) -> tuple[bool, str]:
        """Confirm (run the action once) or cancel. Returns (changed, what to tell whoever
        acted)."""
        decision = await self.store.decide(
            confirmation_id,
            yes,
            via=via,
            by_discord_id=by_discord_id,
            answered_turns=answered_turns or [],
            now=self.clock.now(),
            on_cancel=self._cancelled,
            on_expire=self._expired,
        )
        confirmation = decision.confirmation
        if decision.outcome is Decided.CONFIRMED:
            assert confirmation is not None
            return True, await self._run(confirmation)
        if decision.outcome in (Decided.EXPIRED, Decided.CANCELLED):
            assert confirmation is not None
            self.outbox.kick(confirmation.customer_id)
            if decision.outcome is Decided.EXPIRED:
                return True, "This confirmation had expired; nothing was done."
            return True, self._cancelled(confirmation)[0]
        return False, {
            Decided.MISSING: "That confirmation does not exist.",
            Decided.NOT_YOURS: "Only the customer who was asked can answer this.",
        }.get(decision.outcome, f"This was already {decision.status}; nothing more was done.")

    async def _run(self, confirmation: Confirmation) -> str:
        return await self._run_decided(
            confirmation,
            done="confirmed_done",
            failed="confirmed_failed",
            how="The customer confirmed",
        )

    # -- expiry -------------------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Cancel every confirmation past its expiry and tell the customer. Returns how many."""
        customers = await self.store.expire_due(self.clock.now(), self._expired)
        for customer_id in set(customers):
            self.outbox.kick(customer_id)
        return len(customers)
