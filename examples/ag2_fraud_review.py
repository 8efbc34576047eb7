"""A fraud review in AG2 with its human on the Handoff desk.

    HANDOFF_MCP_TOKEN=... python examples/ag2_fraud_review.py --batch 2026-12-06 [--transactions F]

The detector screens a batch of card transactions: routine ones are approved by rule, flagged ones
go to the operators (request_approval, all at once, each with its reasons). Its report goes to the
analyst, an agent with human_input_mode="ALWAYS" whose human is an operator on Discord: they
answer in the ticket's thread ("exit" files the report). Prints the summary as JSON: auto-approved,
approved, denied, left pending (nobody decided within --give-up-after seconds).

Rerunning the same --batch reuses its tickets (idempotency keys from the batch and transaction
ids): decisions already made come back at once and nothing is asked twice. No model is needed:
the detector's screening is a rule; with an llm_config, register ``approval_tool`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from autogen import Agent, ConversableAgent

from integrations.ag2 import decide, use_desk_as_human
from integrations.desk import HandoffDesk

SAMPLE = [
    {"id": "T-1001", "card": "4242", "amount": 18.40, "country": "PT", "home": "PT"},
    {"id": "T-1002", "card": "4242", "amount": 940.00, "country": "NG", "home": "PT"},
    {"id": "T-1003", "card": "5100", "amount": 62.10, "country": "ES", "home": "ES"},
    {"id": "T-1004", "card": "5100", "amount": 1200.00, "country": "ES", "home": "ES"},
    {"id": "T-1005", "card": "3782", "amount": 75.00, "country": "US", "home": "DE"},
]


def flags(tx: dict[str, Any]) -> list[str]:
    found = []
    if tx["amount"] >= 500:
        found.append(f"amount {tx['amount']:.2f} EUR is 500 or more")
    if tx["country"] != tx["home"]:
        found.append(f"paid in {tx['country']}, card issued in {tx['home']}")
    return found


async def screen(desk: HandoffDesk, batch: str, transactions: list[dict[str, Any]]) -> dict:
    summary: dict[str, list] = {"auto_approved": [], "approved": [], "denied": [], "pending": []}
    flagged = [(tx, why) for tx in transactions if (why := flags(tx))]
    summary["auto_approved"] = [tx["id"] for tx in transactions if not flags(tx)]
    decisions = await asyncio.gather(
        *(
            decide(desk, batch, "release_payment", tx, "; ".join(why), tx["amount"], "EUR")
            for tx, why in flagged
        )
    )
    for (tx, _), decision in zip(flagged, decisions, strict=True):
        if decision.allowed:
            summary["approved"].append({"id": tx["id"], "by": decision.decided_by})
        elif decision.status == "denied":
            summary["denied"].append(
                {"id": tx["id"], "by": decision.decided_by, "reason": decision.reason}
            )
        else:  # waiting or expired: never released
            summary["pending"].append({"id": tx["id"], "ticket": decision.ticket})
    return summary


async def review(desk: HandoffDesk, batch: str, transactions: list[dict[str, Any]]) -> dict:
    result: dict[str, Any] = {"notes": []}

    async def report(
        recipient: ConversableAgent, messages: list[dict], sender: Agent, config: Any
    ) -> tuple[bool, str]:
        if "summary" not in result:
            result["summary"] = await screen(desk, batch, transactions)
            counts = ", ".join(
                f"{len(v)} {k.replace('_', ' ')}" for k, v in result["summary"].items()
            )
            return True, f"Batch {batch}: {counts}.\n{json.dumps(result['summary'])}"
        result["notes"].append(messages[-1]["content"])
        return True, "Noted. Anything else? ('exit' files the report)"

    detector = ConversableAgent("fraud_detector", llm_config=False, human_input_mode="NEVER")
    detector.register_reply([Agent, None], report)
    analyst = ConversableAgent("fraud_analyst", llm_config=False, human_input_mode="ALWAYS")
    use_desk_as_human(analyst, desk, run_id=batch)
    await analyst.a_initiate_chat(
        detector, message=f"Screen batch {batch}.", max_turns=4, silent=True
    )
    return {**result["summary"], "analyst_notes": result["notes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", required=True, help="the run's id: a rerun reuses its tickets")
    parser.add_argument("--transactions", type=Path, help="a JSON list like SAMPLE")
    parser.add_argument("--give-up-after", type=float, default=600)
    args = parser.parse_args()
    transactions = json.loads(args.transactions.read_text()) if args.transactions else SAMPLE
    desk = HandoffDesk(give_up_after=args.give_up_after)
    with contextlib.redirect_stdout(sys.stderr):  # AG2's console output; stdout is the summary's
        summary = asyncio.run(review(desk, args.batch, transactions))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
