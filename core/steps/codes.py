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
from core.codes import SecretBox, generate_secret, matching_step, provisioning_uri, qr_png
from core.outbox import Outbox
from core.policy import Policy
from core.ports import CustomerChannel
from core.steps.lifecycle import CustomerStep, Opened, Proposal, StepKind, details_text
from core.text import split_message
from storage.codes import Challenge, CodeStore, CodeTx, SecretRow, SetupMessage
from storage.db import Store

log = logging.getLogger(__name__)

REDACTED = "[one-time code]"


@dataclass(frozen=True)
class Enrolment:
    text: str
    png: bytes
    uri: str


@dataclass(frozen=True)
class CodeOutcome:
    """What a code decided: a challenge to run (its result tells the customer), a text owed to them,
    a new setup to send (the current setup's code was right), or a setup confirmed (its key's DM to
    delete)."""

    challenge: Challenge | None = None
    text: str | None = None
    new_setup: bool = False
    setup_confirmed: bool = False


class OperatorCodes:
    """An operator's own code, asked before approving an amount above ``[mfa]
    operator_code_above``."""

    def __init__(self, *, policy: Policy, clock: Clock, codes: CodeStore, box: SecretBox) -> None:
        self.policy = policy
        self.clock = clock
        self.codes = codes
        self.box = box

    async def verify_person(self, discord_id: int, code: str) -> str | None:
        """Check a code typed by anyone with an authenticator (an operator approving a large
        amount).

        None when it is right (and now used up); else why not. Wrong codes count toward the same
        lock.
        """
        now = self.clock.now()

        def check(tx: CodeTx) -> str | None:
            row = tx.secret_of(discord_id)
            if row is None or row.secret is None:
                return "you have no authenticator set up: DM the bot `enrol` first"
            if row.locked_at is not None:
                return (
                    "your codes are locked after too many wrong tries; another operator can"
                    " /mfa-unlock you"
                )
            step = matching_step(self.box.open(row.secret), code, now, row.last_step)
            if step is not None:
                tx.use_step(row.customer_id, step)
                tx.audit(
                    f"user:{discord_id}",
                    "mfa_operator_code_accepted",
                    f"customer:{row.customer_id}",
                )
                return None
            tx.audit(f"user:{discord_id}", "mfa_operator_code_wrong", f"customer:{row.customer_id}")
            tx.count_failure(row.customer_id, self.policy.mfa.failures_per_hour)
            return "that code is not right (or was already used)"

        return await self.codes.run(check, now)


class OneTimeCodes(CustomerStep):
    """The code challenge: a destructive action runs after a correct code from the customer's
    authenticator.

    A customer without one is told how to enrol, or (``[mfa] unenrolled = "ticket"``) the step goes
    to ``unenrolled``, the operators' approval, so that a person checks who is asking.
    """

    subject = "mfa"
    strategies: tuple[str, ...] = ("code",)

    def __init__(
        self,
        *,
        db: Store,
        policy: Policy,
        clock: Clock,
        registry: ActionRegistry,
        outbox: Outbox,
        schedule: Callable[[str, float], None],
        box: SecretBox,
        unenrolled: StepKind,
        channel: CustomerChannel,
    ) -> None:
        super().__init__(
            db=db, policy=policy, clock=clock, registry=registry, outbox=outbox, schedule=schedule
        )
        self.box = box
        self.codes = CodeStore(db)
        self.unenrolled = unenrolled
        # the setup's key goes straight to the DM (never through the outbox table)
        self.channel = channel

    @property
    def issuer(self) -> str:
        return self.policy.mfa.issuer or self.policy.agent.business_name

    # -- enrolment --------------------------------------------------------------------------

    @property
    def setup_seconds(self) -> float:
        return self.policy.mfa.setup_minutes * 60

    async def ask_to_enrol(self, customer_id: int, account: str) -> Enrolment | None:
        """A customer asks for a setup (typed "enrol" or /enrol). None when they already have a
        confirmed one: whoever holds their Discord session must not be able to swap it, so they are
        told (owed) to send a code from the current one first; that code opens a new setup
        (``submit_code``)."""
        now = self.clock.now()

        def write(tx: CodeTx) -> bool:
            row = tx.secret(customer_id)
            if row is None or row.secret is None:
                return True
            tx.ask_replacement(customer_id)
            tx.audit(f"customer:{customer_id}", "mfa_replacement_asked", f"customer:{customer_id}")
            tx.tell(
                customer_id,
                self.policy.message(
                    "mfa_replace_needs_code", minutes=f"{self.policy.mfa.setup_minutes:g}"
                ),
            )
            return False

        if await self.codes.run(write, now):
            return await self._new_setup(customer_id, account)
        self.outbox.kick(customer_id)
        return None

    async def _new_setup(self, customer_id: int, account: str) -> Enrolment:
        """A new secret, kept as pending (encrypted) until its first code or ``[mfa]
        setup_minutes``; the setup it replaces (if any) is abandoned and its DM deleted."""
        secret = generate_secret()
        now = self.clock.now()
        expires = now + self.setup_seconds
        abandoned = await self.codes.start_setup(customer_id, self.box.seal(secret), now, expires)
        if abandoned is not None:
            await self._delete_setup_message(abandoned)
        self.schedule(f"mfa-setup:{customer_id}", expires)
        uri = provisioning_uri(secret, account, self.issuer)
        return Enrolment(self.policy.message("mfa_enrol", secret=secret, uri=uri), qr_png(uri), uri)

    async def send_setup(self, customer_id: int, enrolment: Enrolment) -> None:
        """The setup straight to the customer's DM (not through the outbox: the message carries the
        secret); its message is kept so that it is deleted when the setup ends. If Discord refuses,
        the customer is told to ask again (a new secret is made each time)."""
        discord_id, channel_id, _ = await self.codes.contact(customer_id)
        try:
            channel_id = channel_id or await self.channel.open_dm(discord_id)
            message_id = await self.channel.send_file(
                channel_id, enrolment.text, enrolment.png, "authenticator.png"
            )
        except Exception as exc:
            log.warning(
                "could not send the authenticator setup to customer %s: %s",
                customer_id,
                type(exc).__name__,
            )
            await self._tell(
                customer_id,
                "Sorry, I couldn't send the setup just now. Type **enrol** to try again.",
            )
            return
        if message_id is not None and not await self.codes.setup_sent(
            customer_id, channel_id, message_id
        ):
            await self._delete_setup_message(SetupMessage(customer_id, channel_id, message_id))

    async def _tell(self, customer_id: int, text: str) -> None:
        await self.codes.run(lambda tx: tx.tell(customer_id, text), self.clock.now())
        self.outbox.kick(customer_id)

    async def delete_finished_setups(self) -> int:
        """Delete the DMs that showed the key of a setup that ended (confirmed, abandoned, reset);
        one that cannot be deleted now stays listed and is tried again at the next expiry pass."""
        deleted = 0
        for message in await self.codes.setup_messages_done():
            if await self._delete_setup_message(message):
                deleted += 1
        return deleted

    async def _delete_setup_message(self, message: SetupMessage) -> bool:
        try:
            await self.channel.delete(message.channel_id, message.message_id)
        except Exception as exc:
            log.warning(
                "could not delete the authenticator setup DM of customer %s: %s",
                message.customer_id,
                type(exc).__name__,
            )
            return False
        await self.codes.setup_message_deleted(message)
        return True

    async def customer_id_for(self, discord_id: int, display_name: str) -> int:
        return await self.codes.customer_id_for(discord_id, display_name, self.clock.now())

    async def expects_code(self, discord_id: int) -> bool:
        """Whether a 6-digit message from this customer is treated as a code: they have an
        authenticator (or are setting one up), or were ever asked for a code (their setup may have
        been reset since). Such a message is never stored or shown to Claude, even when no code was
        asked."""
        return await self.codes.expects_code(discord_id)

    # -- challenges -------------------------------------------------------------------------

    async def open(self, proposal: Proposal) -> Opened:
        action = proposal.action
        if await self.enrolled(proposal.ctx.customer_id):
            number = await self.challenge(
                proposal.ctx,
                action,
                proposal.params,
                proposal.preview,
                proposal.tool_use_id,
                proposal.decision.rule,
            )
            return Opened(
                f"AWAITING A ONE-TIME CODE (#{number}): {action.name} is not done yet. The customer"
                " was asked for the code from their authenticator app; the result will appear in"
                " this conversation. Do not ask for or repeat codes yourself, and do not say it is"
                " done."
            )
        if self.policy.mfa.unenrolled == "ticket":
            return await self.unenrolled.open(proposal)
        proposal.notices.append(self.policy.message("mfa_not_enrolled", action=proposal.label))
        return Opened(
            f"NOT DONE: {action.name} needs a one-time code and the customer has not set up an "
            "authenticator; they were told how (type enrol). Do not say it is done.",
            error=True,
        )

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return await self.codes.pending_deadlines()

    async def enrolled(self, customer_id: int) -> bool:
        return await self.codes.enrolled(customer_id)

    async def challenge(
        self,
        ctx: ActionContext,
        action: Action,
        params: dict[str, Any],
        preview: dict[str, Any] | None,
        tool_use_id: str | None,
        rule: str,
    ) -> int:
        """Ask for a code before ``action`` runs (the prompt is owed to the customer); returns its
        id."""
        assert ctx.conversation_id is not None
        now = self.clock.now()
        minutes = self.policy.mfa.challenge_minutes
        details = details_text(action, params, preview)
        prompt = self.policy.message("mfa_prompt", details=details, minutes=f"{minutes:g}")
        challenge_id = await self.codes.create_challenge(
            customer_id=ctx.customer_id,
            conversation_id=ctx.conversation_id,
            action_name=action.name,
            params=params,
            details=details,
            tool_use_id=tool_use_id,
            expires_at=now + minutes * 60,
            rule=rule,
            prompt=split_message(prompt),
            now=now,
        )
        self.outbox.kick(ctx.customer_id)
        self.schedule(f"mfa:{challenge_id}", now + minutes * 60)
        return challenge_id

    async def submit_code(self, customer_id: int, code: str) -> None:
        """A code from the customer: for the pending challenge, else for a pending setup, else
        (asked to replace the setup) from the current setup, which opens a new one."""
        now = self.clock.now()
        outcome = await self.codes.run(lambda tx: self._take_code(tx, customer_id, code, now), now)
        if outcome.challenge is not None:
            await self._run(outcome.challenge)
        elif outcome.text:
            self.outbox.kick(customer_id)
        if outcome.new_setup:
            _, _, name = await self.codes.contact(customer_id)
            await self.send_setup(
                customer_id, await self._new_setup(customer_id, name or str(customer_id))
            )
        if outcome.setup_confirmed:
            await self.delete_finished_setups()  # its key leaves the DM history

    def _take_code(self, tx: CodeTx, customer_id: int, code: str, now: float) -> CodeOutcome:
        """One transaction (see ``CodeStore.run``): the code judged, and what the customer is told
        owed with it."""
        outcome = self._judge_code(tx, customer_id, code, now)
        if outcome.text:
            tx.tell(customer_id, outcome.text)
        return outcome

    def _judge_code(self, tx: CodeTx, customer_id: int, code: str, now: float) -> CodeOutcome:
        row = tx.secret(customer_id)
        challenge = tx.newest_pending(customer_id)
        if challenge is None:
            if (
                row is not None
                and row.replacing(now, self.setup_seconds)
                and not row.may_confirm_pending(now)
            ):
                right, text = self._replace_with(tx, row, code, now)
                return CodeOutcome(text=text, new_setup=right)
            return self._enrol_with(tx, row, code, now)
        summary = self._summary(challenge.action_name)
        if challenge.expires_at <= now:
            tx.finish(challenge, "expired")
            return CodeOutcome(text=self.policy.message("mfa_expired", action=summary))
        if row is None or row.secret is None:
            if row is not None and row.may_confirm_pending(now):
                return self._enrol_with(tx, row, code, now)  # setting up again after a reset
            return CodeOutcome(text=self.policy.message("mfa_not_enrolled", action=summary))
        if row.locked_at is not None:
            tx.finish(challenge, "failed")
            return CodeOutcome(text=self.policy.message("mfa_locked"))
        step = matching_step(self.box.open(row.secret), code, now, row.last_step)
        if step is None:
            return CodeOutcome(text=self._wrong(tx, challenge, summary))
        if not tx.passed(challenge):
            return CodeOutcome()  # another code passed it first
        tx.use_step(customer_id, step)
        tx.audit(
            f"customer:{customer_id}",
            "mfa_code_accepted",
            f"mfa:{challenge.id}",
            {"action": challenge.action_name},
        )
        return CodeOutcome(challenge=challenge)

    def _enrol_with(self, tx: CodeTx, row: SecretRow | None, code: str, now: float) -> CodeOutcome:
        if row is None or not row.may_confirm_pending(now):
            return CodeOutcome(text=self.policy.message("mfa_unexpected"))
        assert row.pending_secret is not None
        step = matching_step(self.box.open(row.pending_secret), code, now, 0)
        who = f"customer:{row.customer_id}"
        if step is None:
            tx.audit(who, "mfa_enrolment_code_wrong", who)
            return CodeOutcome(text=self.policy.message("mfa_enrol_wrong"))
        tx.confirm_setup(row.customer_id, step)
        replaced = row.secret is not None
        tx.audit(who, "mfa_replaced" if replaced else "mfa_enrolled", who)
        return CodeOutcome(
            text=self.policy.message("mfa_replaced" if replaced else "mfa_enrolled"),
            setup_confirmed=True,
        )

    def _replace_with(
        self, tx: CodeTx, row: SecretRow, code: str, now: float
    ) -> tuple[bool, str | None]:
        """A code from the current setup, asked before a new one is made: (right, what to tell the
        customer)."""
        who = f"customer:{row.customer_id}"
        if row.locked_at is not None:
            return False, self.policy.message("mfa_locked")
        assert row.secret is not None
        step = matching_step(self.box.open(row.secret), code, now, row.last_step)
        if step is None:
            tx.audit(who, "mfa_replacement_code_wrong", who)
            if tx.count_failure(row.customer_id, self.policy.mfa.failures_per_hour):
                return False, self.policy.message("mfa_locked")
            return False, self.policy.message("mfa_replace_wrong")
        tx.use_step(row.customer_id, step)
        tx.replacement_verified(row.customer_id)
        tx.audit(who, "mfa_replacement_verified", who)
        return True, None

    def _wrong(self, tx: CodeTx, challenge: Challenge, summary: str) -> str:
        mfa = self.policy.mfa
        tx.add_wrong(challenge)
        tx.audit(f"customer:{challenge.customer_id}", "mfa_code_wrong", f"mfa:{challenge.id}")
        if tx.count_failure(challenge.customer_id, mfa.failures_per_hour):
            tx.finish(challenge, "failed")
            return self.policy.message("mfa_locked")
        if challenge.wrong + 1 >= mfa.attempts_per_challenge:
            tx.finish(challenge, "failed")
            return self.policy.message("mfa_too_many", action=summary)
        return self.policy.message(
            "mfa_wrong", left=str(mfa.attempts_per_challenge - challenge.wrong - 1)
        )

    def _ended(self, challenge: Challenge, message: str) -> tuple[str, str]:
        """(what the customer reads, what Claude reads) when a code request ends without running."""
        status = {"mfa_cancelled": "cancelled", "mfa_expired": "expired"}[message]
        return (
            self.policy.message(message, action=self._summary(challenge.action_name)),
            (
                f"The code request for {challenge.action_name} (#{challenge.id}) ended: {status};"
                " it was not done."
            ),
        )

    async def _run(self, challenge: Challenge) -> None:
        await self._run_decided(
            challenge,
            done="mfa_done",
            failed="mfa_failed",
            how="The customer gave a correct one-time code for",
        )

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
        """Expire code requests and abandon setups past their time (the customer is told; a setup's
        DM is deleted)."""

        def write(tx: CodeTx) -> list[int]:
            expired = [
                challenge.customer_id
                for challenge in tx.due()
                if tx.finish(challenge, "expired", self._ended(challenge, "mfa_expired"))
            ]
            for customer_id in tx.abandoned_setups():
                tx.audit("system", "mfa_setup_abandoned", f"customer:{customer_id}")
                tx.tell(customer_id, self.policy.message("mfa_setup_abandoned"))
                expired.append(customer_id)
            return expired

        customers = await self.codes.run(write, self.clock.now())
        for customer_id in set(customers):
            self.outbox.kick(customer_id)
        await self.delete_finished_setups()
        return len(customers)

    # -- operators ----------------------------------------------------------------------------

    async def reset(self, discord_id: int, operator: str) -> str:
        """Remove a customer's setup; a code request waiting for them ends (nothing runs) and they
        are told."""

        def change(tx: CodeTx, customer_id: int) -> bool:
            if not tx.remove_setup(customer_id):
                return False
            for challenge in tx.all_pending(customer_id):  # the old app can no longer answer it
                tx.finish(challenge, "cancelled", self._ended(challenge, "mfa_cancelled"))
            return True

        text = await self._operator_change(
            discord_id,
            operator,
            "mfa_reset",
            change,
            "Their authenticator setup was removed.",
            "They have no authenticator setup.",
        )
        await self.delete_finished_setups()
        return text

    async def unlock(self, discord_id: int, operator: str) -> str:
        return await self._operator_change(
            discord_id,
            operator,
            "mfa_unlocked",
            lambda tx, who: tx.unlock(who),
            "Codes are unlocked for them.",
            "Codes are not locked for them.",
        )

    async def _operator_change(
        self,
        discord_id: int,
        operator: str,
        what: str,
        change: Callable[[CodeTx, int], bool],
        done: str,
        nothing: str,
    ) -> str:
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
