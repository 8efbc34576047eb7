"""What may run right now, decided by code for every tool call from the action's declared type.

Nothing in the model's arguments is read here, so the model cannot talk its way past it.
Informational actions run; those that need an operator go to the desk as approval tickets;
the rest need a step that is not built yet (the risk policy replaces this table).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.actions import Action, DecisionType

# The step each decision type needs before it may run (the design's risk table).
REQUIRED_STEP = {
    DecisionType.PREFERENCE: "your confirmation",
    DecisionType.TRANSACTIONAL: "your explicit confirmation",
    DecisionType.FINANCIAL: "an operator's approval",
    DecisionType.LEGAL_MEDICAL: "a person from our team",
    DecisionType.DESTRUCTIVE: "a one-time code",
}
OPERATOR_TYPES = frozenset({DecisionType.FINANCIAL, DecisionType.LEGAL_MEDICAL})


class Verdict(enum.Enum):
    RUN = "run"
    OPERATOR = "operator"  # an approval ticket
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    step: str = ""

    @property
    def run_now(self) -> bool:
        return self.verdict is Verdict.RUN


class Gate:
    def __init__(self, *, desk_available: bool = True) -> None:
        self.desk_available = desk_available

    def decide(self, action: Action) -> GateDecision:
        kind = action.decision_type
        if kind is DecisionType.INFORMATIONAL:
            return GateDecision(Verdict.RUN)
        if kind in OPERATOR_TYPES and self.desk_available:
            return GateDecision(Verdict.OPERATOR, REQUIRED_STEP[kind])
        return GateDecision(Verdict.UNAVAILABLE, REQUIRED_STEP[kind])
