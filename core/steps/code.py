"""Enrolment and code challenges: destructive actions run only after a correct one-time code.

Everything that decides is one transaction: the code is checked inside it against the secret
(decrypted there, never stored in clear), the challenge moves from pending once, the step is
recorded so the code never works again, and wrong codes are counted in the database (limits
survive restarts). Codes never reach the database, the log, the audit or Claude: the DM that
carries one is stored as ``[one-time code]``. The statements are storage's (``storage/codes.py``):
each check runs here as one ``CodeStore.run`` transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.actions import Action, ActionContext, ActionRegistry
from core.clock import Clock
from core.mfa import SecretBox, generate_secret, matching_step, provisioning_uri, qr_png
from core.outbox import Outbox
from core.policy import Policy
from core.steps.lifecycle import CustomerStep, Opened, Proposal, StepKind, details_text
from core.text import split_message
from storage.codes import Challenge, CodeStore, CodeTx, SecretRow
from storage.db import Database

log = logging.getLogger(__name__)

REDACTED = "[one-time code]"


@dataclass(frozen=True)
class Enrolment:
    text: str
    png: bytes
    uri: str


class OperatorCodes:
    """An operator's own code, asked before approving an amount above ``[mfa] operator_code_above``."""

    def __init__(self, *, policy: Policy, clock: Clock, codes: CodeStore, box: SecretBox) -> None:
        self.policy = policy
        self.clock = clock
        self.codes = codes
        self.box = box

    async def verify_person(self, discord_id: int, code: str) -> str | None:
        """Check a code typed by anyone with an authenticator (an operator approving a large amount).

        None when it is right (and now used up); else why not. Wrong codes count toward the same lock.
        """
        now = self.clock.now()

        def check(tx: CodeTx) -> str | None:
            row = tx.secret_of(discord_id)
            if row is None or row.secret is None:
                return "you have no authenticator set up: DM the bot `enrol` first"
            if row.locked_at is not None:
                return "your codes are locked after too many wrong tries; another operator can /mfa-unlock you"
            step = matching_step(self.box.open(row.secret), code, now, row.last_step)
            if step is not None:
                tx.use_step(row.customer_id, step)
                tx.audit(f"user:{discord_id}", "mfa_operator_code_accepted", f"customer:{row.customer_id}")
                return None
            tx.audit(f"user:{discord_id}", "mfa_operator_code_wrong", f"customer:{row.customer_id}")
            tx.count_failure(row.customer_id, self.policy["mfa"]["failures_per_hour"])
            return "that code is not right (or was already used)"

        return await self.codes.run(check, now)


class OneTimeCodes(CustomerStep):
    """The code challenge: a destructive action runs after a correct code from the customer's authenticator.

    A customer without one is told how to enrol, or (``[mfa] unenrolled = "ticket"``) the step goes to
    ``unenrolled``, the operators' approval, so that a person checks who is asking.
    """

    subject = "mfa"
    strategies = ("code",)

    def __init__(self, *, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry, outbox: Outbox,
                 schedule: Callable[[str, float], None], box: SecretBox, unenrolled: StepKind) -> None:
        super().__init__(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, schedule=schedule)
        self.box = box
        self.codes = CodeStore(db)
        self.unenrolled = unenrolled

    @property
    def issuer(self) -> str:
        return self.policy["mfa"]["issuer"] or self.policy["agent"]["business_name"]

    # -- enrolment --------------------------------------------------------------------------

    async def start_enrolment(self, customer_id: int, account: str) -> Enrolment:
        """A new secret, kept as pending (encrypted) until the customer sends its first code.

        An existing setup keeps working until then: re-enrolling replaces it only when confirmed.
        """
        secret = generate_secret()
        await self.codes.start_setup(customer_id, self.box.seal(secret), self.clock.now())
        uri = provisioning_uri(secret, account, self.issuer)
        return Enrolment(self.policy.message("mfa_enrol", secret=secret, uri=uri), qr_png(uri), uri)

    async def customer_id_for(self, discord_id: int, display_name: str) -> int:
        return await self.codes.customer_id_for(discord_id, display_name, self.clock.now())

    async def expects_code(self, discord_id: int) -> bool:
        """Whether a 6-digit message from this customer is treated as a code: they have an authenticator (or
        are setting one up), or were ever asked for a code (their setup may have been reset since). Such a
        message is never stored or shown to Claude, even when no code was asked."""
        return await self.codes.expects_code(discord_id)

    # -- challenges -------------------------------------------------------------------------

    async def open(self, proposal: Proposal) -> Opened:
        action = proposal.action
        if await self.enrolled(proposal.ctx.customer_id):
            number = await self.challenge(proposal.ctx, action, proposal.params, proposal.preview,
                                          proposal.tool_use_id, proposal.decision.rule)
            return Opened(f"AWAITING A ONE-TIME CODE (#{number}): {action.name} is not done yet. The customer was "
                          "asked for the code from their authenticator app; the result will appear in this "
                          "conversation. Do not ask for or repeat codes yourself, and do not say it is done.")
        if self.policy["mfa"]["unenrolled"] == "ticket":
            return await self.unenrolled.open(proposal)
        proposal.notices.append(self.policy.message("mfa_not_enrolled", action=proposal.label))
        return Opened(f"NOT DONE: {action.name} needs a one-time code and the customer has not set up an "
                      "authenticator; they were told how (type enrol). Do not say it is done.", error=True)

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return await self.codes.pending_deadlines()

    async def enrolled(self, customer_id: int) -> bool:
        return await self.codes.enrolled(customer_id)

    async def challenge(self, ctx: ActionContext, action: Action, params: dict[str, Any],
                        preview: dict[str, Any] | None, tool_use_id: str | None, rule: str) -> int:
        """Ask for a code before ``action`` runs (the prompt is owed to the customer); returns its id."""
        assert ctx.conversation_id is not None
        now = self.clock.now()
        minutes = self.policy["mfa"]["challenge_minutes"]
        details = details_text(action, params, preview)
        prompt = self.policy.message("mfa_prompt", details=details, minutes=f"{minutes:g}")
        challenge_id = await self.codes.create_challenge(
            customer_id=ctx.customer_id, conversation_id=ctx.conversation_id, action_name=action.name, params=params,
            details=details, tool_use_id=tool_use_id, expires_at=now + minutes * 60, rule=rule,
            prompt=split_message(prompt), now=now)
        self.outbox.kick(ctx.customer_id)
        self.schedule(f"mfa:{challenge_id}", now + minutes * 60)
        return challenge_id

    async def submit_code(self, customer_id: int, code: str) -> None:
        """A code from the customer: for the pending challenge, else for a pending enrolment."""
        now = self.clock.now()
        mfa = self.policy["mfa"]

        def decide(tx: CodeTx) -> tuple[Challenge | None, str | None]:
            """(a challenge to run, or None; what to tell the customer, or None when running it says it)."""
            row = tx.secret(customer_id)
            challenge = tx.newest_pending(customer_id)
            if challenge is None:
                return None, self._enrol_with(tx, row, code, now)
            summary = self._summary(challenge.action_name)
            if challenge.expires_at <= now:
                tx.finish(challenge, "expired")
                return None, self.policy.message("mfa_expired", action=summary)
            if row is None or row.secret is None:
                if row is not None and row.pending_secret is not None:
                    return None, self._enrol_with(tx, row, code, now)  # setting up again after a reset
                return None, self.policy.message("mfa_not_enrolled", action=summary)
            if row.locked_at is not None:
                tx.finish(challenge, "failed")
                return None, self.policy.message("mfa_locked")
            step = matching_step(self.box.open(row.secret), code, now, row.last_step)
            if step is not None:
                if not tx.passed(challenge):
                    return None, None
                tx.use_step(customer_id, step)
                tx.audit(f"customer:{customer_id}", "mfa_code_accepted", f"mfa:{challenge.id}",
                         {"action": challenge.action_name})
                return challenge, None
            return None, self._wrong(tx, challenge, summary, mfa)

        def check(tx: CodeTx) -> tuple[Challenge | None, str | None]:
            challenge, text = decide(tx)
            if text:
                tx.tell(customer_id, text)  # in the same transaction as the decision
            return challenge, text

        challenge, text = await self.codes.run(check, now)
        if challenge is not None:
            await self._run(challenge)
        elif text:
            self.outbox.kick(customer_id)

    def _enrol_with(self, tx: CodeTx, row: SecretRow | None, code: str, now: float) -> str | None:
        if row is None or row.pending_secret is None:
            return self.policy.message("mfa_unexpected")
        step = matching_step(self.box.open(row.pending_secret), code, now, 0)
        who = f"customer:{row.customer_id}"
        if step is None:
            tx.audit(who, "mfa_enrolment_code_wrong", who)
            return self.policy.message("mfa_enrol_wrong")
        tx.confirm_setup(row.customer_id, step)
        tx.audit(who, "mfa_enrolled", who)
        return self.policy.message("mfa_enrolled")

    def _wrong(self, tx: CodeTx, challenge: Challenge, summary: str, mfa: dict[str, Any]) -> str:
        tx.add_wrong(challenge)
        tx.audit(f"customer:{challenge.customer_id}", "mfa_code_wrong", f"mfa:{challenge.id}")
        if tx.count_failure(challenge.customer_id, mfa["failures_per_hour"]):
            tx.finish(challenge, "failed")
            return self.policy.message("mfa_locked")
        if challenge.wrong + 1 >= mfa["attempts_per_challenge"]:
            tx.finish(challenge, "failed")
            return self.policy.message("mfa_too_many", action=summary)
        return self.policy.message("mfa_wrong", left=str(mfa["attempts_per_challenge"] - challenge.wrong - 1))

    def _ended(self, challenge: Challenge, message: str) -> tuple[str, str]:
        """(what the customer reads, what Claude reads) when a code request ends without running."""
        status = {"mfa_cancelled": "cancelled", "mfa_expired": "expired"}[message]
        return (self.policy.message(message, action=self._summary(challenge.action_name)),
                f"The code request for {challenge.action_name} (#{challenge.id}) ended: {status}; it was not done.")

    async def _run(self, challenge: Challenge) -> None:
        await self._run_decided(challenge, done="mfa_done", failed="mfa_failed",
                                how="The customer gave a correct one-time code for")

    async def cancel(self, challenge_id: int, discord_id: int) -> tuple[bool, str]:
        def write(tx: CodeTx) -> tuple[bool, str, int | None]:
            challenge = tx.challenge(challenge_id)
            if challenge is None:
                return False, "That request does not exist.", None
            if challenge.discord_id != discord_id:
                return False, "Only the customer who was asked can cancel this.", None
            told = self._ended(challenge, "mfa_cancelled")
            if not tx.finish(challenge, "cancelled", told):
                return False, f"This was already {challenge.status}; nothing more was done.", None
            return True, told[0], challenge.customer_id

        changed, text, customer_id = await self.codes.run(write, self.clock.now())
        if customer_id is not None:
            self.outbox.kick(customer_id)
        return changed, text

    async def expire_due(self) -> int:
        def write(tx: CodeTx) -> list[int]:
            return [challenge.customer_id for challenge in tx.due()
                    if tx.finish(challenge, "expired", self._ended(challenge, "mfa_expired"))]

        customers = await self.codes.run(write, self.clock.now())
        for customer_id in set(customers):
            self.outbox.kick(customer_id)
        return len(customers)

    # -- operators ----------------------------------------------------------------------------

    async def reset(self, discord_id: int, operator: str) -> str:
        """Remove a customer's setup; a code request waiting for them ends (nothing runs) and they are told."""

        def change(tx: CodeTx, customer_id: int) -> bool:
            if not tx.remove_setup(customer_id):
                return False
            for challenge in tx.all_pending(customer_id):  # the old app can no longer answer it
                tx.finish(challenge, "cancelled", self._ended(challenge, "mfa_cancelled"))
            return True

        return await self._operator_change(discord_id, operator, "mfa_reset", change,
                                           "Their authenticator setup was removed.",
                                           "They have no authenticator setup.")

    async def unlock(self, discord_id: int, operator: str) -> str:
        return await self._operator_change(discord_id, operator, "mfa_unlocked", lambda tx, who: tx.unlock(who),
                                           "Codes are unlocked for them.", "Codes are not locked for them.")

    async def _operator_change(self, discord_id: int, operator: str, what: str,
                               change: Callable[[CodeTx, int], bool], done: str, nothing: str) -> str:
        def write(tx: CodeTx) -> tuple[str, int | None]:
            customer_id = tx.customer_of(discord_id)
            if customer_id is None:
                return "That user has never written to the bot.", None
            if not change(tx, customer_id):
                return nothing, None
            tx.audit(operator, what, f"customer:{customer_id}")
            tx.tell(customer_id, self.policy.message(what))
            return f"{done} They have been told.", customer_id

        text, customer_id = await self.codes.run(write, self.clock.now())
        if customer_id is not None:
            self.outbox.kick(customer_id)
        return text
