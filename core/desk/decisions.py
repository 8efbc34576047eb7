"""Decisions: approve (once, with the operator's own code above the threshold), deny, and running
the action."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.actions import ActionContext, execute
from core.approvals import approvals_line, approvers_needed
from core.desk.base import DeskBase, DeskReply, Operator
from core.risk import amounts, money_names
from core.tickets import details_schema
from storage.conversations import NewTurn
from storage.records import DeskOp, Kind, Status, Ticket
from storage.tickets import DeskTx


@dataclass(frozen=True)
class Gathering:
    """An approval recorded short of the number the ticket needs: nothing is decided yet."""

    names: list[str]
    needed: int
    counted: bool  # False: this operator had approved these details already

    def reply(self, ticket_id: int) -> DeskReply:
        line = approvals_line(self.names, self.needed)
        if not self.counted:
            return DeskReply(
                False,
                f"You already approved ticket #{ticket_id} ({line}); another operator must"
                " approve too.",
            )
        more = self.needed - len(self.names)
        return DeskReply(
            True,
            f"Your approval of ticket #{ticket_id} is recorded ({line}). {more} more"
            f" operator{'s' if more > 1 else ''} must approve; nothing is done until then.",
        )


class Decisions(DeskBase):
    """Approve and deny, once each; the action runs once after an approval (after the last one,
    when a ticket needs several operators)."""

    def _gather(
        self, tx: DeskTx, ticket: Ticket, operator: Operator, final: dict[str, Any]
    ) -> Ticket | Gathering | None:
        """In the approving transaction: None when this approval decides the ticket; a Gathering
        when more operators must approve (this one recorded once); the ticket when it was decided
        meanwhile."""
        needed = approvers_needed(ticket, final, self.policy)
        if needed <= 1:
            return None
        current = tx.ticket(ticket.id)
        if current is None or current.status != Status.OPEN:
            return current
        earlier = tx.approvals(ticket.id).names
        counted = tx.add_approval(ticket.id, operator.id, operator.name, final)
        names = tx.approvals(ticket.id).names
        if len(names) >= needed:
            return None
        if counted:
            restarted = [n for n in earlier if n not in names]
            tx.audit(
                operator.actor,
                "approval_recorded",
                f"ticket:{ticket.id}",
                {"approvals": len(names), "needed": needed, "details": final},
            )
            again = (
                f" Their details differ from what {', '.join(restarted)} approved: the count"
                " starts again."
                if restarted
                else ""
            )
            tx.post(
                ticket.id,
                DeskOp.POST,
                f"👍 Approved by **{operator.name}** ({approvals_line(names, needed)}).{again}"
                " Another operator must approve before anything is done.",
            )
            tx.post(ticket.id, DeskOp.REFRESH)
        return Gathering(names, needed, counted)

    async def _final_details(self, ticket: Ticket, params: dict[str, Any] | None) -> dict:
        """What this approval approves: the operator's edit, else what earlier approvers approved
        (perhaps edited), else the request."""
        if params is not None:
            return params
        agreed = (await self.tickets.approvals(ticket.id)).details
        return agreed if agreed is not None else dict(ticket.action_params or {})

    def form_schema(self, ticket: Ticket) -> dict[str, Any] | None:
        """The schema an operator's edit is read by: the action's, or the agent's details' own
        shape."""
        if ticket.kind is Kind.AGENT_APPROVAL:
            return details_schema(ticket.action_params or {})
        action = self.registry.get(ticket.action_name or "")
        return action.input_schema if action else None

    def code_needed(self, ticket: Ticket, params: dict[str, Any] | None = None) -> float | None:
        """The threshold, when approving this ticket needs the operator's own one-time code; else
        None."""
        threshold = self.policy.mfa.operator_code_above
        if not threshold or self.operator_codes is None:
            return None
        names = money_names(self.policy.risk)
        values = params if params is not None else ticket.action_params or {}
        if any(abs(number) > threshold for _, _, number in amounts(values, names)):
            return float(threshold)
        return None

    async def approve(
        self,
        ticket_id: int,
        operator: Operator,
        params: dict[str, Any] | None = None,
        *,
        code: str | None = None,
    ) -> DeskReply:
        """Approve once and run the action once; ``params`` are an operator's edited values
        (validated); ``code`` is the operator's own one-time code, needed above ``[mfa]
        operator_code_above``."""
        now = self.clock.now()
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
        if not ticket.kind.decided:
            return DeskReply(
                False,
                f"Ticket #{ticket_id} is a {ticket.kind.value}, not an approval; "
                "answer it in the thread or with `/reply`.",
            )
        if operator.id == ticket.customer_discord_id:
            await self.audit_refusal(operator, "approve own request", ticket_id)
            return DeskReply(False, "You cannot approve your own request.")
        if ticket.kind is Kind.AGENT_APPROVAL:
            return await self._approve_for_agent(ticket, operator, params, code)
        action = self.registry.get(ticket.action_name or "")
        if action is None:
            return DeskReply(
                False,
                f"The action {ticket.action_name!r} is no longer installed; deny or close the "
                "ticket instead.",
            )
        final = await self._final_details(ticket, params)
        problem = action.validate(final)
        if problem is not None:
            return DeskReply(
                False, f"Not approved: the parameters don't fit {action.name}: {problem}"
            )
        edited = final != ticket.action_params
        if (
            refused := await self._operator_code_refusal(ticket, final, operator, code)
        ) is not None:
            return refused

        def decide(tx: DeskTx) -> Ticket | Gathering | None:
            if (short := self._gather(tx, ticket, operator, final)) is not None:
                return short
            # several approvers: all of them decided it
            by = ", ".join(tx.approvals(ticket_id).names) or operator.name
            if not tx.approve(ticket_id, operator.id, by, final, "edited" if edited else None):
                return tx.ticket(ticket_id)
            tx.audit(
                operator.actor,
                "approved",
                f"ticket:{ticket_id}",
                {
                    "action": action.name,
                    "params": final,
                    "edited_from": ticket.action_params if edited else None,
                },
            )
            return None

        lost_to = await self.tickets.run(decide, now)
        if isinstance(lost_to, Gathering):
            self._kick(ticket_id)
            return lost_to.reply(ticket_id)
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        outcome = await self._execute(ticket, action, final, operator)
        self._kick(ticket_id, ticket.customer_id)
        return outcome

    async def _operator_code_refusal(
        self, ticket: Ticket, final: dict[str, Any], operator: Operator, code: str | None
    ) -> DeskReply | None:
        """Above [mfa] operator_code_above, why this approval may not go ahead without a right code;
        else None."""
        threshold = self.code_needed(ticket, final)
        if threshold is None or ticket.status != Status.OPEN:
            return None
        if not code:
            return DeskReply(
                False,
                f"Approving more than {threshold:g} needs your own one-time code: use "
                "`/approve code:` or the Approve button's form. Nothing was done.",
            )
        assert self.operator_codes is not None  # code_needed says None without them
        problem = await self.operator_codes.verify_person(operator.id, code.strip())
        return (
            None
            if problem is None
            else DeskReply(False, f"Not approved: {problem}. Nothing was done.")
        )

    async def _approve_for_agent(
        self, ticket: Ticket, operator: Operator, params: dict[str, Any] | None, code: str | None
    ) -> DeskReply:
        """An agent's request: decided once here; the agent does the work and reads the decision."""
        final = await self._final_details(ticket, params)
        edited = final != ticket.action_params
        if (
            refused := await self._operator_code_refusal(ticket, final, operator, code)
        ) is not None:
            return refused

        def decide(tx: DeskTx) -> Ticket | Gathering | None:
            if (short := self._gather(tx, ticket, operator, final)) is not None:
                return short
            # several approvers: all of them decided it
            by = ", ".join(tx.approvals(ticket.id).names) or operator.name
            if not tx.approve(ticket.id, operator.id, by, final, "edited" if edited else None):
                return tx.ticket(ticket.id)
            tx.executed(ticket.id, {"returned_to_agent": ticket.agent_name})
            tx.audit(
                operator.actor,
                "approved",
                f"ticket:{ticket.id}",
                {
                    "agent": ticket.agent_name,
                    "action": ticket.action_name,
                    "details": final,
                    "edited_from": ticket.action_params if edited else None,
                },
            )
            tx.post(
                ticket.id,
                DeskOp.POST,
                f"✅ {'Edited and approved' if edited else 'Approved'} by **{by}**. "
                f"{ticket.agent_name} receives the decision.",
            )
            tx.post(ticket.id, DeskOp.REFRESH)
            return None

        lost_to = await self.tickets.run(decide, self.clock.now())
        if isinstance(lost_to, Gathering):
            self._kick(ticket.id)
            return lost_to.reply(ticket.id)
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        self._kick(ticket.id)
        return DeskReply(
            True, f"Approved ticket #{ticket.id}; {ticket.agent_name} receives the decision."
        )

    async def _execute(
        self, ticket: Ticket, action: Any, params: dict[str, Any], operator: Operator
    ) -> DeskReply:
        ctx = ActionContext(
            ticket.customer_id,
            ticket.customer_discord_id,
            self.db,
            self.clock.now(),
            ticket.conversation_id,
        )
        result, error = await execute(action, ctx, params)
        now = self.clock.now()
        summary = action.summary or action.name

        def record(tx: DeskTx) -> None:
            tx.executed(ticket.id, result)
            tx.audit(
                "system",
                "action_executed" if error is None else "action_failed",
                f"ticket:{ticket.id}",
                {"action": action.name, "result": result},
            )
            note = (
                f"{operator.name} (operator) approved {action.name} with {json.dumps(params)}"
                f" (ticket #{ticket.id}); result: {json.dumps(result, default=str)[:1500]}. The"
                " customer has been told."
            )
            text = (
                self.policy.message("approved", action=summary, number=str(ticket.id))
                if error is None
                else self.policy.message(
                    "approved_failed", action=summary, number=str(ticket.id), error=error
                )
            )
            tx.tell(ticket, text, NewTurn("system", note))
            outcome = (
                f"Done: `{json.dumps(result['result'], default=str)[:1500]}`"
                if error is None
                else f"⚠ It failed: {error}"
            )
            tx.post(ticket.id, DeskOp.POST, f"✅ Approved by **{operator.name}**. {outcome}")
            tx.post(ticket.id, DeskOp.REFRESH)

        await self.tickets.run(record, now)
        if error is None:
            return DeskReply(
                True,
                f"Approved and done: ticket #{ticket.id} ({summary}). The customer has been told.",
            )
        return DeskReply(
            False, f"Approved, but {summary} failed: {error}. The customer has been told."
        )

    async def deny(self, ticket_id: int, operator: Operator, reason: str) -> DeskReply:
        now = self.clock.now()
        reason = reason.strip() or "no reason given"
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return DeskReply(False, f"Ticket #{ticket_id} does not exist.")
        if not ticket.kind.decided:
            return DeskReply(
                False,
                f"Ticket #{ticket_id} is a {ticket.kind.value}, not an approval; use `/close`.",
            )
        action = self.registry.get(ticket.action_name or "")
        summary = (action.summary if action else None) or ticket.action_name or "the request"

        def decide(tx: DeskTx) -> Ticket | None:
            if not tx.deny(ticket_id, operator.id, operator.name, reason):
                return tx.ticket(ticket_id)
            tx.audit(
                operator.actor,
                "denied",
                f"ticket:{ticket_id}",
                {"action": ticket.action_name, "reason": reason},
            )
            note = (
                f"{operator.name} (operator) denied {ticket.action_name} with"
                f" {json.dumps(ticket.action_params)} (ticket #{ticket_id}); it was not done."
                f" Reason: {reason}"
            )
            told = self.policy.message(
                "denied", action=summary, number=str(ticket_id), reason=reason
            )
            tx.tell(ticket, told, NewTurn("system", note))
            tx.post(ticket_id, DeskOp.POST, f"⛔ Denied by **{operator.name}**: {reason}")
            tx.post(ticket_id, DeskOp.REFRESH)
            return None

        lost_to = await self.tickets.run(decide, now)
        if lost_to is not None:
            return DeskReply(False, self._decided_text(lost_to))
        self._kick(ticket_id, ticket.customer_id)
        if ticket.agent_name:
            return DeskReply(
                True, f"Denied ticket #{ticket_id}; {ticket.agent_name} receives the reason."
            )
        return DeskReply(True, f"Denied ticket #{ticket_id}; the customer has been told why.")
