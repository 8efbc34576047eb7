"""Classifications per second for a realistic mix of tool calls (target >= 50,000/s on one core).

    python -m bench.classify [--seconds 3]

The mix follows a shop's traffic: mostly look-ups, some preference and order changes, a few refunds
and cancellations; parameters with and without amounts and personal data; customer messages of
ordinary length, a few with legal or medical words, and sometimes the model's own view.
"""

from __future__ import annotations

import argparse
import random
import time

from core.policy import defaults
from core.risk import RiskPolicy

MESSAGES = [
    "Hi, where is my order? It was supposed to arrive yesterday and I still haven't got it.",
    "Can you change the delivery address of my last order to 12 Oak Street please",
    "I'd like to stop the email newsletter, it's too much",
    "please refund the broken grinder, it arrived with a cracked lid",
    "cancel my subscription, I'm moving abroad next month",
    "order two more bags of the dark roast to my usual address",
    "I think I had an allergic reaction to the hazelnut flavour, what should I do?",
    "my lawyer says your terms are unfair",
]
MESSAGE_WEIGHTS = [20, 15, 10, 10, 8, 12, 1, 1]  # legal and medical messages are rare
CALLS = [
    (40, "informational", {"order_id": 12}),
    (10, "informational", {}),
    (10, "preference", {"email_updates": False}),
    (
        12,
        "transactional",
        {"item": "coffee beans", "quantity": 2, "address": "12 Oak Street", "total": 36.0},
    ),
    (6, "transactional", {"order_id": 3, "address": "4 Elm Road, Springfield"}),
    (8, "financial", {"order_id": 1, "amount": 89.0, "reason": "arrived broken"}),
    (3, "financial", {"percent": 15, "reason": "loyal customer"}),
    (4, "destructive", {"subscription_id": 1}),
    (4, "preference", {"note": "card 4111 1111 1111 1111", "password": "x"}),
    (
        3,
        "transactional",
        {"item": "grinder", "quantity": 20, "address": "1 Main St", "total": 1780.0},
    ),
]


def mix(n: int, seed: int = 7) -> list[tuple[str, dict, str, str | None]]:
    rng = random.Random(seed)
    weights = [w for w, _, _ in CALLS]
    picks = rng.choices(CALLS, weights=weights, k=n)
    texts = rng.choices(MESSAGES, weights=MESSAGE_WEIGHTS, k=n)
    return [
        (dt, params, text, rng.choice([None, None, None, "low", "high"]))
        for (_, dt, params), text in zip(picks, texts, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    risk = RiskPolicy(defaults())
    calls = mix(10_000)
    strategies: dict[str, int] = {}
    done = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        for declared, params, message, view in calls:
            c = risk.classify(declared, params, customer_text=message, model_view=view)
            strategies[c.strategy] = strategies.get(c.strategy, 0) + 1
        done += len(calls)
    elapsed = time.perf_counter() - started
    print(
        f"{done} classifications in {elapsed:.2f} s on one core: {done / elapsed:,.0f}/s (target >="
        " 50,000/s)"
    )
    print(
        "strategies in the mix: "
        + ", ".join(f"{k} {v * 100 / done:.0f}%" for k, v in sorted(strategies.items()))
    )


if __name__ == "__main__":
    main()
