"""Simulations: a deployer's policy, prompt and actions tried against the real bot before customers
meet them.

    python -m rehearsal.simulate scenarios/ [--policy policy.toml] [--real-model] [-k NAME]

Each scenario file (TOML) is a conversation: what the customer writes and clicks, what an operator
does, and what must hold afterwards. Every scenario runs the real ``python bot.py`` against the
Discord stand-in (Discord's REST API and gateway on 127.0.0.1, with its limits and error shapes)
and a fresh database. The model is scripted by the scenario's ``[[model]]`` turns (a text, or a
tool call with its input: every action and every path of the policy can be walked without a key);
with ``--real-model`` and ``ANTHROPIC_API_KEY`` set, Claude answers instead and the script is
ignored. Prints one line per scenario and a summary; exits 1 if any fails, so a deployer's CI can
run it after every change to the policy, the prompt or the actions.

A scenario:

    name = "a refund waits for an operator"
    [[model]]
    tool = "issue_refund"
    input = { order_id = 1, amount = 10, reason = "arrived broken" }
    [[model]]
    text = "I've sent your refund request to our team."
    [[step]]
    customer = "my grinder arrived broken, refund 10 please"
    [[step]]
    operator_clicks = "approve"          # a button of the newest ticket's card
    [expect]
    tools_called = ["issue_refund"]      # also: tools_not_called
    ticket_kind = "approval"             # also: no_ticket = true
    dm_contains = ["approved and done"]  # also: dm_not_contains
    [[expect.sql]]                       # anything in the bot's database, e.g. your actions' tables
    query = "SELECT COUNT(*) FROM shop_orders WHERE refunded_cents > 0"
    equals = 1

Steps: ``customer`` (a DM), ``customer_clicks`` (the label of a button under the newest DM that has
buttons), ``operator_writes`` (in the newest ticket's thread), ``operator_clicks`` (approve, deny,
edit, claim... on the newest ticket's card), ``wait`` (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.discord_stand_in import FakeDiscord
from rehearsal.scripted_claude import FakeClaude, Reply, text, tool_calls

ROOT = Path(__file__).resolve().parents[1]
CUSTOMER = 600000000000000001
QUIET_SECONDS = 0.8  # nothing new from the bot for this long: it has done what it will do
MOST_SECONDS = 20.0
STEPS = ("customer", "customer_clicks", "operator_writes", "operator_clicks", "wait")
CHECKS = (
    "tools_called",
    "tools_not_called",
    "ticket_kind",
    "no_ticket",
    "dm_contains",
    "dm_not_contains",
    "sql",
)


class ScenarioError(ValueError):
    """A scenario file the runner cannot read: the file and what is wrong."""


@dataclass
class Scenario:
    path: Path
    name: str
    model: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    expect: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Scenario:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ScenarioError(f"{path}: {exc}") from None
        steps = raw.get("step") or []
        for i, step in enumerate(steps, 1):
            if len(step) != 1 or next(iter(step)) not in STEPS:
                raise ScenarioError(f"{path}: step {i} must be one of {', '.join(STEPS)}")
        expect = raw.get("expect") or {}
        unknown = sorted(set(expect) - set(CHECKS))
        if unknown:
            raise ScenarioError(f"{path}: unknown check {unknown[0]!r}; known: {', '.join(CHECKS)}")
        for i, turn in enumerate(raw.get("model") or [], 1):
            if not ("text" in turn) ^ ("tool" in turn):
                raise ScenarioError(f"{path}: model turn {i} needs text or tool (with input)")
        return cls(
            path,
            str(raw.get("name") or path.stem),
            list(raw.get("model") or []),
            steps,
            expect,
            dict(raw.get("policy") or {}),
        )


def scripted(turns: list[dict[str, Any]]) -> list[Reply]:
    """The scenario's model turns as the scripted Messages API's replies (the model says it is
    scripted when the script runs out)."""
    return [
        tool_calls((turn["tool"], dict(turn.get("input") or {})))
        if "tool" in turn
        else text(str(turn["text"]))
        for turn in turns
    ]


def _policy_file(base: Path | None, overrides: dict[str, Any], folder: Path) -> Path | None:
    """The deployer's policy with the scenario's overrides ([policy.section] key = value)."""
    if not overrides:
        return base
    lines = [base.read_text()] if base is not None else []
    for section, keys in overrides.items():
        lines.append(f"\n[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    merged = folder / "policy.toml"
    merged.write_text("\n".join(lines) + "\n")
    return merged


class Run:
    """One scenario's world: the stand-in, the scripted model, the bot process, its database."""

    def __init__(self, discord: FakeDiscord, folder: Path) -> None:
        self.discord, self.folder = discord, folder
        self.db = folder / "rehearsal.db"

    def dms(self) -> list[dict[str, Any]]:
        return list(self.discord.messages.get(CUSTOMER + 1, []))

    def staff(self) -> list[dict[str, Any]]:
        return [
            m
            for channel, posted in self.discord.messages.items()
            if channel == self.discord.staff_channel_id or channel in self.discord.threads
            for m in posted
        ]

    def _seen(self) -> int:
        return len(self.dms()) + len(self.staff()) + len(self.discord.interactions)

    async def settle(self) -> None:
        """Wait until the bot has been quiet for a moment (or at most MOST_SECONDS)."""
        started, last, seen = time.monotonic(), time.monotonic(), self._seen()
        while time.monotonic() - started < MOST_SECONDS:
            await asyncio.sleep(0.1)
            now = self._seen()
            if now != seen:
                seen, last = now, time.monotonic()
            elif time.monotonic() - last >= QUIET_SECONDS:
                return

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.db)) as c:
            return [tuple(r) for r in c.execute(sql, params).fetchall()]

    def newest_ticket(self) -> tuple[int, int | None, int | None]:
        rows = self.query("SELECT id, staff_message_id, thread_id FROM tickets ORDER BY id DESC")
        if not rows:
            raise AssertionError("no ticket was opened")
        return rows[0][0], rows[0][1], rows[0][2]

    async def step(self, step: dict[str, Any]) -> None:
        kind, value = next(iter(step.items()))
        if kind == "customer":
            await self.discord.customer_writes(CUSTOMER, str(value))
        elif kind == "wait":
            await asyncio.sleep(float(value))
        elif kind == "customer_clicks":
            for message in reversed(self.dms()):
                for row in message.get("components") or []:
                    for button in row.get("components") or []:
                        if button.get("label") == value:
                            await self.discord.customer_clicks(
                                CUSTOMER, message, button["custom_id"]
                            )
                            await self.settle()
                            return
            raise AssertionError(f"no button {value!r} under the customer's DMs")
        elif kind == "operator_writes":
            _, _, thread = self.newest_ticket()
            if thread is None:
                raise AssertionError("the newest ticket has no thread")
            await self.discord.operator_writes(thread, str(value))
        elif kind == "operator_clicks":
            number, card_id, _ = self.newest_ticket()
            card = next((m for m in self.staff() if int(m["id"]) == card_id), None)
            if card is None:
                raise AssertionError(f"ticket #{number}'s card was not posted")
            await self.discord.operator_clicks(card, f"ticket:{value}:{number}")
        await self.settle()

    def check(self, expect: dict[str, Any]) -> list[str]:
        """What does not hold, one line each."""
        wrong = []
        called = [
            block["name"]
            for (data,) in self.query("SELECT data FROM turns WHERE kind = 'tool_use'")
            for block in json.loads(data)["blocks"]
            if block.get("type") == "tool_use"
        ]
        for tool in expect.get("tools_called", []):
            if tool not in called:
                wrong.append(f"{tool} was not called (called: {', '.join(called) or 'none'})")
        for tool in expect.get("tools_not_called", []):
            if tool in called:
                wrong.append(f"{tool} was called")
        kinds = [k for (k,) in self.query("SELECT kind FROM tickets ORDER BY id")]
        if "ticket_kind" in expect and expect["ticket_kind"] not in kinds:
            wrong.append(
                f"no {expect['ticket_kind']} ticket (tickets: {', '.join(kinds) or 'none'})"
            )
        if expect.get("no_ticket") and kinds:
            wrong.append(f"a ticket was opened ({', '.join(kinds)})")
        said = "\n".join(m.get("content", "") for m in self.dms())
        for words in expect.get("dm_contains", []):
            if words.lower() not in said.lower():
                wrong.append(f"no DM says {words!r}")
        for words in expect.get("dm_not_contains", []):
            if words.lower() in said.lower():
                wrong.append(f"a DM says {words!r}")
        for check in expect.get("sql", []):
            got = self.query(check["query"])
            value = got[0][0] if got and len(got[0]) == 1 else got
            if value != check["equals"]:
                wrong.append(f"{check['query']} gave {value!r}, not {check['equals']!r}")
        return wrong


def bot_env(
    discord: FakeDiscord,
    db: Path,
    policy: Path | None,
    model: str | None,
    secret_key: str | None = None,
) -> dict[str, str]:
    """The deployer's environment for everything but Discord (the stand-in's values) and the
    database (the rehearsal's own file); ``secret_key`` for it, else the deployer's or a
    throwaway one."""
    # Not the deployer's agents either: their endpoint's port may be a running bot's, and their
    # webhooks would tell real receivers of outcomes that never happened.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "HANDOFF_DB", "HANDOFF_MCP_"))
    }
    env.update(
        DISCORD_TOKEN="rehearsal.token.value",
        DISCORD_GUILD_ID=str(discord.guild_id),
        DISCORD_STAFF_CHANNEL_ID=str(discord.staff_channel_id),
        DISCORD_OPERATOR_ROLE_ID=str(discord.operator_role_id),
        DISCORD_API_BASE=discord.url,
        HANDOFF_DB=str(db),
        HANDOFF_MCP_TOKENS="",
    )
    if secret_key or not env.get("HANDOFF_SECRET_KEY", "").strip():
        # a throwaway key for the rehearsal's own database when the deployer has none
        env["HANDOFF_SECRET_KEY"] = secret_key or throwaway_key()
    if policy is not None:
        env["HANDOFF_POLICY"] = str(policy)
    if model is not None:  # the scripted model
        env.update(ANTHROPIC_API_KEY="scripted", ANTHROPIC_BASE_URL=model)
    return env


def throwaway_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@contextlib.asynccontextmanager
async def world(scenario: Scenario, policy: Path | None, real_model: bool) -> AsyncIterator[Run]:
    discord = await FakeDiscord().start()
    model = None if real_model else FakeClaude()
    with tempfile.TemporaryDirectory(prefix="handoff-sim-") as tmp:
        folder = Path(tmp)
        run = Run(discord, folder)
        if model is not None:
            await model.start()
            model.then(*scripted(scenario.model))
        env = bot_env(
            discord,
            run.db,
            _policy_file(policy, scenario.policy, folder),
            model.url if model else None,
        )
        log = (folder / "bot.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "bot.py", cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            await asyncio.wait_for(discord.identified.wait(), 30)
            await run.settle()
            yield run
        except TimeoutError:
            raise AssertionError(
                "the bot did not connect: " + (folder / "bot.log").read_text()[-1500:]
            ) from None
        finally:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 15)
                if process.returncode is None:
                    process.kill()
            log.close()
            if model is not None:
                await model.stop()
            await discord.stop()


async def run_one(scenario: Scenario, policy: Path | None, real_model: bool) -> list[str]:
    try:
        async with world(scenario, policy, real_model) as run:
            for step in scenario.steps:
                await run.step(step)
            return run.check(scenario.expect)
    except AssertionError as exc:
        return [str(exc)]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", type=Path, help="a scenario file or a folder of them")
    parser.add_argument("--policy", type=Path, default=ROOT / "policy.toml")
    parser.add_argument("--real-model", action="store_true", help="Claude (ANTHROPIC_API_KEY)")
    parser.add_argument("-k", dest="only", help="only scenarios whose name contains this")
    args = parser.parse_args(argv)
    if args.real_model and not os.environ.get("ANTHROPIC_API_KEY"):
        parser.error("--real-model needs ANTHROPIC_API_KEY")
    files = sorted(args.scenarios.glob("*.toml")) if args.scenarios.is_dir() else [args.scenarios]
    try:
        scenarios = [Scenario.load(f) for f in files]
    except ScenarioError as exc:
        print(f"cannot read a scenario: {exc}", file=sys.stderr)
        return 2
    if args.only:
        scenarios = [s for s in scenarios if args.only in s.name]
    if not scenarios:
        print(f"no scenarios in {args.scenarios}", file=sys.stderr)
        return 2
    failed = 0
    started = time.monotonic()
    for scenario in scenarios:
        began = time.monotonic()
        wrong = await run_one(scenario, args.policy, args.real_model)
        took = time.monotonic() - began
        if wrong:
            failed += 1
            print(f"FAIL {scenario.name} ({scenario.path.name}, {took:.1f} s): {'; '.join(wrong)}")
        else:
            print(f"ok   {scenario.name} ({took:.1f} s)")
    total = time.monotonic() - started
    print(f"{len(scenarios) - failed} passed, {failed} failed, in {total:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
