"""The design's risk table: levels, strategies and their order. Shared by the policy file and the
classifier."""

from __future__ import annotations

LEVELS = ("low", "low_medium", "medium", "high", "critical")

# Ordered from the least to the most human involvement; raising a strategy moves right.
# "code" (a one-time code from the customer) comes before "approval" (an operator decides).
STRATEGIES = ("execute", "confirm", "confirm_details", "code", "approval", "human")

DEFAULT_LEVELS = {
    "informational": "low",
    "preference": "low_medium",
    "transactional": "medium",
    "financial": "high",
    "legal_medical": "critical",
    "destructive": "high",
}
DEFAULT_STRATEGIES = {
    "informational": "execute",
    "preference": "confirm",
    "transactional": "confirm_details",
    "financial": "approval",
    "legal_medical": "human",
    "destructive": "code",
}
# The least a level asks for, when something raises the risk to it.
LEVEL_FLOOR_STRATEGY = {
    "low": "execute",
    "low_medium": "confirm",
    "medium": "confirm_details",
    "high": "approval",
    "critical": "human",
}
