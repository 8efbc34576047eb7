"""Time to compute the escalation summary over 100,000 conversations and 20,000 tickets (target <=
200 ms).

    python -m bench.summary [--conversations 100000] [--tickets 20000] [--days 7] [--runs 7]

Builds a database of that size in a temporary file (conversations spread over 90 days, tickets with
realistic kinds, priorities, outcomes and response times), then times ``core.summary.compute`` for
the last ``--days`` days and for all 90, as the scheduled post and /stats run it (one read
transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from core.summary import compute
from storage.db import Database

DAY = 86400.0


async def build(db: Database, conversations: int, tickets: int, now: float) -> None:
    rng = random.Random(3)

    def write(c):
        c.executemany(
            "INSERT INTO customers (id, discord_id, display_name, created_at) VALUES (?, ?, ?, 0)",
            [(i, 10**17 + i, f"c{i}") for i in range(1, conversations // 5 + 2)],
        )
        starts = [now - rng.random() * 90 * DAY for _ in range(conversations)]
        c.executemany(
            "INSERT INTO conversations (id, customer_id, started_at, last_activity_at) VALUES (?,"
            " ?, ?, ?)",
            [(i + 1, i // 5 + 1, t, t + 600) for i, t in enumerate(starts)],
        )
        rows = []
        for n in range(1, tickets + 1):
            conv = rng.randrange(1, conversations + 1)
            created = starts[conv - 1] + rng.random() * 600
            kind = rng.choices(["question", "approval", "handover"], [5, 3, 2])[0]
            status = rng.choices(
                ["answered", "approved", "denied", "open", "closed"], [5, 3, 1, 1, 2]
            )[0]
            wait = rng.expovariate(1 / 240) if status != "open" else None
            rows.append(
                (
                    n,
                    conv // 5 + 1,
                    conv,
                    kind,
                    rng.choice(["ask_human", "approval", "handover", "specialist"]),
                    rng.choices(["urgent", "high", "normal"], [2, 3, 5])[0],
                    status,
                    "q",
                    "issue_refund" if kind == "approval" else None,
                    created,
                    created + wait if wait is not None else None,
                    created + 600 if status == "open" and rng.random() < 0.5 else None,
                )
            )
        c.executemany(
            "INSERT INTO tickets (id, customer_id, conversation_id, kind, source, priority, status,"
            " question, action_name, created_at, first_response_at, timed_out_at) VALUES (?, ?, ?,"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    await db.run(write)
    await db.conn.execute("ANALYZE")


async def run(conversations: int, tickets: int, days: int, runs: int) -> None:
    now = 1_800_000_000.0
    with tempfile.TemporaryDirectory() as tmp:
        async with Database(Path(tmp) / "bench.db") as db:
            started = time.perf_counter()
            await build(db, conversations, tickets, now)
            print(
                f"built {conversations:,} conversations and {tickets:,} tickets in "
                f"{time.perf_counter() - started:.1f} s"
            )
            for window in (days, 90):
                times = []
                for _ in range(runs):
                    t = time.perf_counter()
                    summary = await compute(db, now - window * DAY, now)
                    times.append(time.perf_counter() - t)
                print(
                    f"summary over the last {window} days ({summary.conversations:,} conversations,"
                    f" {summary.tickets:,} tickets): median {statistics.median(times) * 1000:.1f}"
                    f" ms, max {max(times) * 1000:.1f} ms over {runs} runs (target <= 200 ms)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.tickets, args.days, args.runs))


if __name__ == "__main__":
    main()
