"""The step-kind registry: every strategy but execute has exactly one kind, checked when Handoff is
built."""

from __future__ import annotations

import logging

import pytest

from core.policy import parse_policy
from core.risk_table import STRATEGIES
from core.steps.lifecycle import StepKinds


class Kind:
    def __init__(self, *strategies: str) -> None:
        self.strategies = strategies

    async def open(self, proposal):  # pragma: no cover - never opened here
        raise AssertionError

    async def expire_due(self) -> int:
        return 0

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        return []


def test_each_strategy_finds_its_kind():
    confirm, code, operator = (
        Kind("confirm", "confirm_details"),
        Kind("code"),
        Kind("approval", "human"),
    )
    kinds = StepKinds([confirm, code, operator])
    assert kinds.for_strategy("confirm_details") is confirm
    assert kinds.for_strategy("code") is code
    assert kinds.for_strategy("human") is operator
    assert list(kinds) == [confirm, code, operator]


def test_a_strategy_without_a_kind_is_refused_at_build_time():
    with pytest.raises(ValueError, match="no step kind handles strategy 'code'"):
        StepKinds([Kind("confirm", "confirm_details"), Kind("approval", "human")])


def test_two_kinds_for_one_strategy_are_refused():
    with pytest.raises(ValueError, match="strategy 'code' has two step kinds"):
        StepKinds(
            [Kind("confirm", "confirm_details", "code"), Kind("code"), Kind("approval", "human")]
        )


@pytest.mark.parametrize("strategy", ["execute", "refund"])
def test_a_kind_cannot_claim_execute_or_an_unknown_strategy(strategy):
    assert "execute" in STRATEGIES
    with pytest.raises(ValueError, match=f"unknown strategy '{strategy}'"):
        StepKinds(
            [Kind("confirm", "confirm_details"), Kind("code", strategy), Kind("approval", "human")]
        )


def test_a_retired_policy_key_warns_with_its_line_and_still_loads(caplog):
    text = '[messages]\nhelp = "Ask me."\naction_unavailable = "Not done: {action}."\n'
    with caplog.at_level(logging.WARNING, logger="core.policy"):
        policy = parse_policy(text, "policy.toml")
    assert policy.message("help") == "Ask me."
    assert "policy.toml:3: [messages] action_unavailable is no longer used" in caplog.text
