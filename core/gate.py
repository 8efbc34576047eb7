"""What may run right now. Until the risk policy lands, only informational actions run.

The gate is consulted by code for every tool call; nothing in the model's arguments is
read by it, so the model cannot talk its way past it.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class GateDecision:
    run_now: bool
    step: str = ""


class InformationalOnlyGate:
    def decide(self, action: Action) -> GateDecision:
        if action.decision_type is DecisionType.INFORMATIONAL:
            return GateDecision(True)
        return GateDecision(False, REQUIRED_STEP[action.decision_type])
