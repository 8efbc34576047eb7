"""What Claude calls cost, from the tokens the API reported and ``[llm.prices]``. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from storage.usage import Spent, UsageRows

PER_MILLION = 1_000_000


def price_of(prices: Mapping[str, Mapping[str, float]], model: str) -> Mapping[str, float] | None:
    """The price of the longest model name in ``prices`` that ``model`` starts with (a dated
    release like ``claude-sonnet-4-5-20250929`` takes its family's price)."""
    names = [name for name in prices if model.startswith(name)]
    return prices[max(names, key=len)] if names else None


def dollars(spent: Spent, prices: Mapping[str, Mapping[str, float]]) -> float | None:
    price = price_of(prices, spent.model)
    if price is None:
        return None
    return (
        spent.input_tokens * price["input"]
        + spent.cache_write_tokens * price["cache_write"]
        + spent.cache_read_tokens * price["cache_read"]
        + spent.output_tokens * price["output"]
    ) / PER_MILLION


@dataclass(frozen=True)
class CostFigures:
    calls: int
    input_tokens: int  # all input: uncached, written to the cache, read from it
    cache_read_tokens: int
    output_tokens: int
    dollars: float
    unpriced: list[str]  # models without a price (their tokens are counted, not their cost)
    by_purpose: dict[str, float]
    conversations: int
    per_conversation: float
    without_person: int
    per_conversation_without_person: float
    most_expensive: list[tuple[int, float]]  # (conversation, dollars)

    @property
    def cache_share(self) -> float:
        return self.cache_read_tokens / self.input_tokens if self.input_tokens else 0.0


def _sum(spent: Iterable[Spent], prices: Mapping[str, Mapping[str, float]]) -> float:
    return sum(dollars(s, prices) or 0.0 for s in spent)


def cost_figures(rows: UsageRows, prices: Mapping[str, Mapping[str, float]]) -> CostFigures:
    every = [s for _, s in rows.by_purpose]
    by_purpose: dict[str, float] = {}
    for purpose, spent in rows.by_purpose:
        by_purpose[purpose] = by_purpose.get(purpose, 0.0) + (dollars(spent, prices) or 0.0)
    per: dict[int, tuple[bool, float]] = {}
    for conversation, ticketed, spent in rows.by_conversation:
        before = per.get(conversation, (ticketed, 0.0))[1]
        per[conversation] = (ticketed, before + (dollars(spent, prices) or 0.0))
    alone = [d for ticketed, d in per.values() if not ticketed]
    total = _sum(every, prices)
    return CostFigures(
        calls=sum(s.calls for s in every),
        input_tokens=sum(
            s.input_tokens + s.cache_write_tokens + s.cache_read_tokens for s in every
        ),
        cache_read_tokens=sum(s.cache_read_tokens for s in every),
        output_tokens=sum(s.output_tokens for s in every),
        dollars=total,
        unpriced=sorted({s.model for s in every if price_of(prices, s.model) is None}),
        by_purpose=by_purpose,
        conversations=len(per),
        per_conversation=sum(d for _, d in per.values()) / len(per) if per else 0.0,
        without_person=len(alone),
        per_conversation_without_person=sum(alone) / len(alone) if alone else 0.0,
        most_expensive=sorted(((c, d) for c, (_, d) in per.items()), key=lambda x: -x[1])[:3],
    )


def cost_lines(f: CostFigures) -> list[str]:
    """What /stats and the summary say of Claude's cost."""
    if not f.calls:
        return []
    lines = [
        f"Claude: {f.calls} call(s), {f.input_tokens:,} input tokens ({f.cache_share:.0%} read"
        f" from the cache), {f.output_tokens:,} output; ${f.dollars:.2f}"
        + (f" (no price for {', '.join(f.unpriced)})" if f.unpriced else ""),
    ]
    if f.conversations:
        lines.append(
            f"Per conversation ${f.per_conversation:.4f}; resolved without a person"
            f" ({f.without_person}) ${f.per_conversation_without_person:.4f}"
        )
    if f.most_expensive:
        lines.append(
            "Most expensive conversations: "
            + ", ".join(f"#{c} ${d:.4f}" for c, d in f.most_expensive)
        )
    return lines
