"""What files cost: Discord requests per relayed file, and the bytes kept per customer.

    python -m bench.files [--customers 50] [--kb 200]

N customers each send a DM with a picture (PNG, --kb KB) and a PDF; the assistant sends each to
our team (a question ticket, whose thread gets both files re-posted), and an operator answers each
in its thread with a return label (a PDF). The same run without any file gives the baseline.
Prints the Discord requests per relayed file, each way (target: one upload each, the operator's
file riding with their text), and the bytes kept per customer (the files table, and what the
outbox still holds of operator files: nothing once they are sent).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import discord.ext.test as dpytest
from discord.ext.test import backend

from bench._harness import bench_bot
from bench.copilot import COUNTED, _count_requests, _desk_idle
from core.desk import Operator
from tests import dpytest_ext
from tests.desk_support import ask_then_wait
from tests.dpytest_ext import make_operator
from tests.fake_claude import FakeClaude

PDF = b"%PDF-1.4\n" + b"0" * 50_000 + b"\n%%EOF\n"
LABEL = b"%PDF-1.4\n" + b"1" * 30_000 + b"\n%%EOF\n"
ANSWER = "Here is your return label: print it and drop the parcel at any post office."


async def run(customers: int, kb: int, with_files: bool) -> dict[str, Any]:
    fake = FakeClaude(default=ask_then_wait)
    url = await fake.start()
    picture = b"\x89PNG\r\n\x1a\n" + os.urandom(kb * 1024)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp, "mug.png"), Path(tmp, "receipt.pdf")]
            paths[0].write_bytes(picture)
            paths[1].write_bytes(PDF)
            async with bench_bot(url, customers + 1, concurrency=32) as bot:
                _count_requests()
                people = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id]
                operator = make_operator(bot, people[-1])
                dpytest_ext.requests_made.clear()
                for member in people[:customers]:
                    await dpytest.message(
                        "my mug arrived broken",
                        channel=await member.create_dm(),
                        member=member,
                        attachments=[str(p) for p in paths] if with_files else None,
                    )
                await bot.engine.drain()
                await _desk_idle(bot)
                inbound = sum(dpytest_ext.requests_made[n] for n in COUNTED)
                dpytest_ext.requests_made.clear()
                who = Operator(operator.id, operator.display_name)
                label = [("return-label.pdf", LABEL)] if with_files else []
                for (thread_id,) in await bot.db.fetchall("SELECT thread_id FROM tickets"):
                    await bot.desk.operator_message(thread_id, who, ANSWER, files=label)
                await bot.outbox.drain()
                await _desk_idle(bot)
                outbound = sum(dpytest_ext.requests_made[n] for n in COUNTED)
                [[kept, kept_customers]] = await bot.db.fetchall(
                    "SELECT COALESCE(SUM(size), 0), COUNT(DISTINCT customer_id) FROM files"
                )
                [[owed]] = await bot.db.fetchall(
                    "SELECT COALESCE(SUM(LENGTH(file_data)), 0) FROM outbox"
                )
                [[tickets]] = await bot.db.fetchall("SELECT COUNT(*) FROM tickets")
    finally:
        await fake.stop()
    return {
        "inbound": inbound,
        "outbound": outbound,
        "kept": kept,
        "kept_customers": kept_customers,
        "owed": owed,
        "tickets": tickets,
        "image_blocks": sum(
            1
            for r in fake.requests
            for m in r["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") in ("image", "document")
        ),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--kb", type=int, default=200, help="the picture's size")
    args = parser.parse_args()
    plain = await run(args.customers, args.kb, with_files=False)
    files = await run(args.customers, args.kb, with_files=True)
    n = files["tickets"]
    relayed_in = 2 * n  # a picture and a PDF per ticket, re-posted in its thread
    print(f"{n} tickets ({plain['tickets']} without files), a {args.kb} KB picture and a PDF each")
    print(
        "Discord requests per customer file re-posted in the thread:"
        f" {(files['inbound'] - plain['inbound']) / relayed_in:.2f} (target 1: one upload)"
    )
    print(
        "Discord requests per operator file sent to the customer:"
        f" {(files['outbound'] - plain['outbound']) / n:.2f} (target <= 1: it rides with the text;"
        f" {files['outbound'] / n:.2f} requests per answer with it, {plain['outbound'] / n:.2f}"
        " without)"
    )
    per_customer = files["kept"] / max(1, files["kept_customers"])
    print(
        f"bytes kept per customer: {per_customer / 1024:.0f} KB in files (what they sent), plus"
        f" {files['owed'] / max(1, n) / 1024:.0f} KB of operator files left in the outbox (sent)"
    )
    print(
        f"file blocks in Claude's requests: {files['image_blocks']} ({2 * n} files, each in every"
        " call of its conversation: the prompt cache reads them after the first)"
    )


if __name__ == "__main__":
    asyncio.run(main())
