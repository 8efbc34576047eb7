"""The risk policy: every proposed action gets a decision type, a risk level, a strategy and the
rules that decided them. Pure and fast (it runs on every tool call); no discord, no database.

The declared decision type is a floor. Amounts above the threshold raise an action to
financial/high; personal data raises it to at least medium; legal or medical words in the customer's
message make it critical; the model's own view can raise the level. Nothing lowers anything: each
rule can only move the level and the strategy up (``STRATEGIES`` is ordered by how much a person is
involved).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.risk_table import LEVEL_FLOOR_STRATEGY, LEVELS, STRATEGIES
from core.words import word_list

if TYPE_CHECKING:
    from core.policy import Policy
    from core.policy_sections import RiskSection

LEVEL_RANK = {level: i for i, level in enumerate(LEVELS)}
STRATEGY_RANK = {strategy: i for i, strategy in enumerate(STRATEGIES)}
MODEL_VIEWS = ("low", "medium", "high", "critical")
_CARD_DIGITS = re.compile(r"(?:\d[ -]?){13,19}")


@dataclass(frozen=True)
class Classification:
    decision_type: str
    level: str
    strategy: str
    rules: tuple[str, ...]

    @property
    def rule(self) -> str:
        """The rule that decided the outcome (the last one that raised something)."""
        return self.rules[-1]

    def describe(self) -> str:
        return f"{self.decision_type} · {self.level} · {self.strategy} — " + "; ".join(self.rules)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    for match in _CARD_DIGITS.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return True
    return False


_CURRENCY = r"(?:[A-Za-z]{3}|[$€£¥₹₩₽¢])"
_MONEY_TEXT = re.compile(
    rf"^\s*{_CURRENCY}?\s*(?P<sign>-)?\s*{_CURRENCY}?\s*"
    r"(?P<number>\d{1,3}(?:[,_ ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    rf"\s*{_CURRENCY}?\s*$"
)


def _number(value: Any) -> float | None:
    """A money value as a number: 12, 12.5, "12.50", "$1,200", "5000 USD", "EUR 5 000". None: not a
    number (text that only starts with one, "5k", "five thousand", two figures: read by a person,
    not by code)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else math.inf
    if isinstance(value, str):
        match = _MONEY_TEXT.match(value)
        if match is None:
            return None
        number = float(re.sub(r"[,_ ]", "", match["number"]))
        return -number if match["sign"] else number
    return None


def money_names(risk: RiskSection) -> frozenset[str]:
    """The parameter names ``[risk] amount_params`` says hold money, as ``amounts`` compares
    them."""
    return frozenset(p.casefold() for p in risk.amount_params)


def amounts(
    params: Mapping[str, Any], amount_params: frozenset[str]
) -> Iterator[tuple[str, Any, float]]:
    """(where, value as given, value as a number) of every value that holds money: a parameter named
    as money ([risk] amount_params, or any name with "amount"), at any depth (``refund.amount``,
    ``lines[0].price``), and everything inside one (``{"refund": {"value": 5000}}``). Money that
    cannot be read as a number ("five thousand", "5k", a list of words) counts as infinite: above
    every threshold and limit, so a person sees it; nothing the code cannot read is waved
    through."""

    def walk(value: Any, where: str, money: bool) -> Iterator[tuple[str, Any, float]]:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                name = str(key)
                folded = name.casefold()
                yield from walk(
                    inner,
                    f"{where}.{name}" if where else name,
                    money or folded in amount_params or "amount" in folded,
                )
        elif isinstance(value, list | tuple):
            for i, inner in enumerate(value):
                yield from walk(inner, f"{where}[{i}]", money)
        elif money and value is not None and value != "" and not isinstance(value, bool):
            number = _number(value)
            yield where, value, math.inf if number is None else number

    yield from walk(params, "", False)


class RiskPolicy:
    """Compiled from the policy file once; ``classify`` is then a few dictionary lookups and
    regexes."""

    def __init__(self, policy: Policy) -> None:
        risk = policy.risk
        self.levels: Mapping[str, str] = dict(policy["risk_levels"])
        self.strategies: Mapping[str, str] = dict(policy["strategies"])
        self.amount_threshold = float(risk.amount_threshold)
        self.amount_params = money_names(risk)
        self.personal_params = frozenset(p.casefold() for p in risk.personal_data_params)
        self.legal_medical = word_list(tuple(risk.legal_medical_keywords))
        self.confidence_threshold = int(risk.confidence_threshold)

    # -- the customer's message ---------------------------------------------------------------

    def message_topic(self, text: str) -> str | None:
        """The legal/medical word a customer's message mentions, if any (such messages go to a
        person)."""
        return self.legal_medical.found_text(text)

    # -- a proposed action --------------------------------------------------------------------

    def classify(
        self,
        declared: str,
        params: Mapping[str, Any] | None = None,
        *,
        customer_text: str = "",
        model_view: str | None = None,
    ) -> Classification:
        decision_type = declared
        level = self.levels[declared]
        strategy = self.strategies[declared]
        rules = [f"declared {declared}: {level}, {strategy}"]

        def raise_to(
            new_level: str, new_strategy: str | None, why: str, new_type: str | None = None
        ) -> None:
            nonlocal decision_type, level, strategy
            changed = False
            if LEVEL_RANK[new_level] > LEVEL_RANK[level]:
                level = new_level
                changed = True
                new_strategy = new_strategy or LEVEL_FLOOR_STRATEGY[new_level]
            if new_strategy and STRATEGY_RANK[new_strategy] > STRATEGY_RANK[strategy]:
                strategy = new_strategy
                changed = True
            if new_type and changed:
                decision_type = new_type
            if changed:
                rules.append(f"{why}: {level}, {strategy}")

        for name, value, amount in amounts(params or {}, self.amount_params):
            if abs(amount) > self.amount_threshold:
                raise_to(
                    self.levels["financial"],
                    self.strategies["financial"],
                    f"{name}={value} is above {self.amount_threshold:g}",
                    "financial",
                )
        for name, value in (params or {}).items():
            if name.casefold() in self.personal_params:
                raise_to("medium", "confirm_details", f"parameter {name!r} holds personal data")
            elif isinstance(value, str) and looks_like_card_number(value):
                raise_to(
                    "medium", "confirm_details", f"parameter {name!r} looks like a card number"
                )
        if topic := self.message_topic(customer_text):
            raise_to(
                "critical",
                self.strategies["legal_medical"],
                f"the customer's message mentions {topic!r} (legal/medical)",
                "legal_medical",
            )
        if model_view in MODEL_VIEWS and model_view != "low":
            raise_to(model_view, None, f"the assistant rated it {model_view}")
        return Classification(decision_type, level, strategy, tuple(rules))

    def describe(self) -> list[str]:
        lines = [f"{dt}: {self.levels[dt]} risk → {self.strategies[dt]}" for dt in self.levels]
        lines.append(
            f"amounts above {self.amount_threshold:g} in {', '.join(sorted(self.amount_params))} → "
            f"financial ({self.levels['financial']}, {self.strategies['financial']})"
        )
        lines.append(
            f"personal data in {', '.join(sorted(self.personal_params))} or card numbers → at least"
            " medium (confirm_details)"
        )
        lines.append(f"confidence below {self.confidence_threshold} → a person is asked")
        return lines
