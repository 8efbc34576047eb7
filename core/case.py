"""The case at a glance, as operators read it on an approval ticket's card: facts the desk counts
(``storage/case.py``), then Claude's one line, marked as its opinion. Pure."""

from __future__ import annotations

from storage.case import CaseFacts
from storage.records import Ticket

DISCORD_EPOCH_MS = 1420070400000
YEAR = 365.25 * 86400


def _counts(by_status: dict[str, int]) -> str:
    return ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))


def account_age(discord_id: int, now: float) -> str:
    """How old a Discord account is, read from its id (Discord's ids carry their creation time)."""
    created = ((discord_id >> 22) + DISCORD_EPOCH_MS) / 1000
    years = (now - created) / YEAR
    if years >= 1:
        return f"{years:.1f} years"
    days = max(0, int((now - created) // 86400))
    return f"{days} day{'s' if days != 1 else ''}"


def case_lines(ticket: Ticket, facts: CaseFacts) -> list[str]:
    """What the desk knows, one fact a line; then Claude's reading if it gave one."""
    lines = []
    earlier = sum(facts.earlier.values())
    lines.append(
        f"Earlier tickets: {earlier} ({_counts(facts.earlier)})"
        if earlier
        else "Earlier tickets: none (the first of this customer)"
    )
    if ticket.action_name:
        same = sum(facts.same_action.values())
        lines.append(
            f"`{ticket.action_name}` asked before: {same} ({_counts(facts.same_action)}),"
            f" {facts.same_action_30d} in the last 30 days"
            if same
            else f"`{ticket.action_name}` asked before: never"
        )
        if facts.everyone_90d:
            lines.append(
                f"`{ticket.action_name}` for everyone, 90 days: {_counts(facts.everyone_90d)}"
            )
    if not ticket.agent_name and ticket.customer_discord_id > 0:
        lines.append(
            f"Discord account: {account_age(ticket.customer_discord_id, ticket.created_at)} old"
        )
    if facts.ratings:
        average = sum(facts.ratings) / len(facts.ratings)
        shown = ", ".join(str(r) for r in facts.ratings[-5:])
        lines.append(f"Ratings: {shown} (average {average:.1f} of {len(facts.ratings)})")
    if ticket.copilot_view:
        lines.append(f"*Claude's reading (an opinion, not a decision):* {ticket.copilot_view}")
    return lines
