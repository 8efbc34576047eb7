"""The customer's "help": what the assistant can do, generated from the actions and the risk
policy."""

from __future__ import annotations

from core.actions import ActionRegistry
from core.policy import Policy
from core.text import bare_phrase

HELP_WORDS = {
    "help",
    "help me",
    "menu",
    "commands",
    "what can you do",
    "what can you do for me",
    "options",
    "how does this work",
    "info",
}

# How each strategy reads to a customer, in the order a customer meets them.
_HOW = {
    "execute": "right away",
    "confirm": "after you say yes",
    "confirm_details": "after you confirm the exact details",
    "code": "with a one-time code from your authenticator app (type **enrol** to set one up)",
    "approval": "once a person on our team approves",
    "human": "a person on our team answers",
}


def is_help_request(text: str) -> bool:
    return bare_phrase(text) in HELP_WORDS


def help_text(policy: Policy, registry: ActionRegistry, *, codes: bool) -> str:
    """The policy's ``help`` message with {abilities}: the actions grouped by how they are done."""
    groups: dict[str, list[str]] = {}
    for action in registry.actions.values():
        strategy = policy["strategies"][action.decision_type.value]
        if strategy == "code" and not codes:
            strategy = "approval"  # codes off: an operator checks it instead
        groups.setdefault(strategy, []).append((action.summary or action.name).lower())
    lines = [
        f"- {', '.join(names)}: {_HOW[strategy]}"
        for strategy, names in sorted(groups.items(), key=lambda item: list(_HOW).index(item[0]))
    ]
    return policy.message(
        "help", business_name=policy.agent.business_name, abilities="\n".join(lines)
    )
