"""A standby that takes over: two real ``python bot.py`` on one PostgreSQL database and one Discord
stand-in.

The leader is killed (SIGKILL: no goodbye, its lease simply stops being renewed) in the middle of a
conversation, of an approval and of a send. Nothing may be lost, answered twice or run twice; the
standby leads within ``[ha] takeover_seconds``. Fencing and the timing rules are tested without
processes at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from core.leadership import Leadership, LeaseTimes
from storage import PostgresDatabase
from storage.lease import LeaseStore, NotLeader
from tests.conftest import eventually
from tests.fake_claude import FakeClaude, text, tool_calls
from tests.fake_discord import FakeDiscord
from tests.test_real_bot_process import CUSTOMER, ROOT, RealBot, bot_env

# [ha] takeover_seconds for these tests (the default, 10, is what bench/failover.py measures)
TAKEOVER = 4


class Pair:
    """Two processes, same .env, same database, same Discord: ``a`` starts first and leads."""

    def __init__(
        self, discord: FakeDiscord, claude: FakeClaude, env: dict[str, str], tmp_path: Path
    ) -> None:
        self.discord, self.claude = discord, claude
        self.a = RealBot(discord, env, tmp_path / "a.log")
        self.b = RealBot(discord, env, tmp_path / "b.log")

    async def start(self) -> None:
        await self.a.spawn()
        await asyncio.wait_for(self.discord.identified.wait(), 30)
        await eventually(lambda: self.a.said("ready to work"), within=15, what="a to be ready")
        self.discord.identified.clear()
        await self.b.spawn()
        await eventually(
            lambda: self.b.said("leadership: standing by"), within=15, what="b to stand by"
        )
        assert not self.discord.identified.is_set() and self.discord.sessions == 1, (
            "a standby does not connect to the gateway"
        )

    async def kill_a_and_time_takeover(self) -> float:
        killed = time.monotonic()
        await self.a.kill()
        await asyncio.wait_for(self.discord.identified.wait(), TAKEOVER + 10)
        took = time.monotonic() - killed
        assert self.b.said("now leads, epoch 2"), self.b.log.read_text()[-2000:]
        return took

    def answers(self) -> list[str]:
        return [m["content"] for m in self.discord.messages.get(CUSTOMER + 1, [])]


@pytest.fixture
async def pair(tmp_path, pg_url):
    discord = await FakeDiscord().start()
    claude = FakeClaude()
    await claude.start()
    policy = (
        (ROOT / "policy.toml")
        .read_text()
        .replace("takeover_seconds = 10", f"takeover_seconds = {TAKEOVER}")
    )
    (tmp_path / "policy.toml").write_text(policy)
    env = bot_env(
        discord,
        tmp_path,
        HANDOFF_DB=pg_url,
        HANDOFF_POLICY=str(tmp_path / "policy.toml"),
        ANTHROPIC_API_KEY="k",
        ANTHROPIC_BASE_URL=claude.url,
    )
    both = Pair(discord, claude, env, tmp_path)
    try:
        yield both
    finally:
        await both.a.kill()
        await both.b.kill()
        await claude.stop()
        await discord.stop()


async def test_killed_in_the_middle_of_a_conversation(pair):
    await pair.start()
    pair.claude.then(text("never delivered: this leader dies first", delay=30))
    await pair.discord.customer_writes(CUSTOMER, "where is my parcel?")
    await eventually(lambda: pair.claude.requests, within=10, what="Claude being asked")
    took = await pair.kill_a_and_time_takeover()
    assert took < TAKEOVER + 2, f"takeover took {took:.1f} s"
    # The stored message is answered by the new leader, once.
    await eventually(lambda: pair.answers(), within=15, what="the answer")
    await asyncio.sleep(1)
    assert pair.answers() == ["You said: where is my parcel?"]


async def test_check_names_the_leader_and_a_graceful_stop_hands_over_at_once(pair, tmp_path):
    await pair.start()
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        "bot.py",
        "--check",
        cwd=ROOT,
        env=pair.a.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await check.communicate()
    assert check.returncode == 0, err.decode()
    line = next(x for x in out.decode().splitlines() if x.startswith("Leadership:"))
    assert "leads (epoch 1, lease renewed" in line and "would stand by" in line

    stopped = time.monotonic()
    pair.a.process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(pair.discord.identified.wait(), TAKEOVER)
    assert time.monotonic() - stopped < 2.5, (
        "the lease is handed back: no waiting for it to run out"
    )
    assert await asyncio.wait_for(pair.a.process.wait(), 10) == 0
    assert pair.a.said("Handoff stopped (SIGTERM)")
    await pair.discord.customer_writes(CUSTOMER, "still there?")
    await eventually(
        lambda: pair.answers() == ["You said: still there?"], within=15, what="b answering"
    )

    await pair.a.spawn()  # back, as a standby; a standby stops at once too
    await eventually(
        lambda: pair.a.said("leadership: standing by"), within=15, what="a standing by"
    )
    pair.a.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(pair.a.process.wait(), 5) == 0
    assert pair.a.said("Handoff stopped (SIGTERM): it was standing by; database closed.")


async def test_killed_in_the_middle_of_an_approval(pair):
    await pair.start()
    pair.claude.then(
        tool_calls(("issue_refund", {"order_id": 1, "amount": 10, "reason": "broken"})),
        text("A person will look at your refund."),
    )
    await pair.discord.customer_writes(CUSTOMER, "refund order 1 please, it arrived broken")
    staff = pair.discord.staff_channel_id

    def card() -> dict | None:
        return next(
            (
                m
                for m in pair.discord.messages.get(staff, [])
                if any(
                    c.get("custom_id") == "ticket:approve:1"
                    for row in m.get("components") or []
                    for c in row["components"]
                )
            ),
            None,
        )

    await eventually(card, within=15, what="the approval card")
    await pair.kill_a_and_time_takeover()
    await eventually(lambda: pair.b.said("ready to work"), within=15, what="b to be ready")
    # discord.py marks itself ready ~2 s after the guild arrives; clicks before are lost
    await asyncio.sleep(2.5)
    pair.claude.then(text("Your refund of 10 is done."))
    assert await pair.discord.operator_clicks(card(), "ticket:approve:1")
    # a double click on the new leader
    assert await pair.discord.operator_clicks(card(), "ticket:approve:1")
    await eventually(
        lambda: any("refund" in a.lower() and "done" in a.lower() for a in pair.answers()),
        within=15,
        what="the customer told the refund is done",
    )
    await asyncio.sleep(1)
    async with PostgresDatabase(pair.a.env["HANDOFF_DB"]) as db:
        refunded = await db.fetchone("SELECT COALESCE(SUM(refunded_cents), 0) FROM shop_orders")
        decided = await db.fetchone("SELECT COUNT(*) FROM audit WHERE action = 'approved'")
    assert int(refunded[0]) == 1000, "the refund ran once"
    assert decided[0] == 1


async def test_killed_in_the_middle_of_a_send(pair):
    await pair.start()
    dm = f"POST /channels/{CUSTOMER + 1}/messages"
    # Discord got the request and has not answered
    held = pair.discord.hold("POST /channels/{id}/messages")
    await pair.discord.customer_writes(CUSTOMER, "hello")
    await eventually(
        lambda: dm in pair.discord.arrived, within=10, what="a's send reaching Discord"
    )
    await pair.kill_a_and_time_takeover()
    held.set()  # Discord carries out the dead process's request: the message exists
    await eventually(lambda: pair.answers(), within=15, what="the answer")
    await eventually(
        lambda: pair.discord.arrived.count(dm) >= 2, within=15, what="b sending the owed row again"
    )
    await asyncio.sleep(1)
    assert pair.answers() == ["You said: hello"], (
        "shown once: the new leader's retry carries the same nonce"
    )


# -- without processes: the rules
# ---------------------------------------------------------------------


def test_lease_times_leave_room_to_connect():
    times = LeaseTimes(10)
    assert times.ttl == 5 and times.renew_every == pytest.approx(5 / 3) and times.poll_every == 1
    assert times.ttl + times.poll_every < 10, "a standby holds the lease with time left to connect"
    assert times.valid_until(100.0) == 104.0, (
        "a leader stops sending a second before its lease could end"
    )
    assert LeaseTimes(3).margin == 0.5 and LeaseTimes(3).poll_every == pytest.approx(0.3)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_a_leader_that_cannot_renew_stops_sending_before_its_lease_ends(pg_url):
    async with PostgresDatabase(pg_url) as db:
        store = LeaseStore(db)
        clock = FakeMonotonic()
        a = Leadership(store, LeaseTimes(10), holder="a", monotonic=clock)
        lost: list[str] = []
        earlier_bot: list[str] = []
        a.on_lost(earlier_bot.append)  # a bot from an earlier time this process led
        a.on_lost(lost.append)  # the bot leading now replaces it
        await a.wait_until_leader()
        assert a.may_send()

        async def unreachable(*args):
            raise ConnectionError("database unreachable")

        store.renew = unreachable  # type: ignore[method-assign]
        keeping = asyncio.create_task(a.keep())
        clock.t += 3.9
        await asyncio.sleep(0.05)
        assert a.may_send() and not lost, "within its lease it still sends"
        # past ttl - margin (4 s) since the last renewal was asked: before the lease's 5 s
        clock.t += 0.2
        await asyncio.wait_for(keeping, 3)
        assert not a.may_send() and lost and "could not be renewed" in lost[0]
        assert earlier_bot == [], "a closed bot is not told (nor kept alive) when a later one loses"


async def test_a_stale_leaders_late_write_is_refused(pg_url):
    async with PostgresDatabase(pg_url) as db_a, PostgresDatabase(pg_url) as db_b:
        a = Leadership(LeaseStore(db_a), LeaseTimes(3), holder="a")
        await a.wait_until_leader()
        assert (
            a.describe()
            == "This process (a) leads, epoch 1; standbys take over within 3 s if it stops."
        )
        db_a.write_guard = a.guard
        await db_a.execute("INSERT INTO kept (key, value, updated_at) VALUES ('x', 'by a', 0)")
        # a is cut off (its renewals stop); its lease runs out and b takes over with the next epoch.
        await db_b.execute("UPDATE leader_lease SET expires_at = expires_at - 60")
        b = Leadership(LeaseStore(db_b), LeaseTimes(3), holder="b")
        assert await b.wait_until_leader() == a.epoch + 1
        db_b.write_guard = b.guard
        with pytest.raises(NotLeader, match="no longer leads"):
            await db_a.execute("UPDATE kept SET value = 'late write by a' WHERE key = 'x'")
        assert not a.may_send() and a.lost_because
        assert a.describe().startswith(
            "This process (a) does not lead: this process (a) no longer leads (epoch 1)"
        )
        await db_b.execute("UPDATE kept SET value = 'by b' WHERE key = 'x'")
        assert await db_a.kept("x") == "by b"
        with pytest.raises(NotLeader):
            async with db_a.transaction() as tx:  # an action's own transaction is fenced too
                await tx.execute("UPDATE kept SET value = 'late' WHERE key = 'x'")
        assert await db_b.kept("x") == "by b"


class Partition:
    """A TCP relay to PostgreSQL that can go silent, as a network partition does (no reset, no
    answer)."""

    def __init__(self, port: int = 5432) -> None:
        self.target_port = port
        self.cut = asyncio.Event()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Partition:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut.is_set():
            return  # accepted, never answered
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if self.cut.is_set():
                    return  # dropped on the floor from now on
                dst.write(data)
                await dst.drain()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )

    async def stop(self) -> None:
        """The network back, then gone: every relayed connection is closed (PostgreSQL ends their
        sessions)."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


def logged_at(bot: RealBot, words: str) -> float:
    """When the bot's log first says ``words`` (its timestamp, this machine's clock), as epoch
    seconds."""
    line = next(x for x in bot.log.read_text().splitlines() if words in x)
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


async def test_a_leader_cut_off_from_the_database_stops_before_its_lease_ends(pair, pg_url):
    partition = await Partition().start()
    try:
        # a reaches PostgreSQL through the relay; b directly.
        pair.a.env = {
            **pair.a.env,
            "HANDOFF_DB": pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{partition.port}"),
        }
        await pair.start()
        await pair.discord.customer_writes(CUSTOMER, "hello")
        await eventually(
            lambda: pair.answers() == ["You said: hello"], within=15, what="a's answer"
        )

        partition.cut.set()
        await eventually(
            lambda: pair.b.said("now leads, epoch 2"), within=TAKEOVER + 10, what="b taking over"
        )
        await eventually(lambda: pair.a.said("leadership lost"), within=5, what="a giving up")
        # When a stopped sending (its own account: the log line itself may come later on a busy
        # machine).
        line = next(x for x in pair.a.log.read_text().splitlines() if "leadership lost" in x)
        stopped = dt.datetime.strptime(
            line[:11] + re.search(r"Sending stopped at ([\d:.]+)", line).group(1),
            "%Y-%m-%d %H:%M:%S.%f",
        ).timestamp()
        took_over = logged_at(pair.b, "now leads, epoch 2")
        assert stopped < took_over, "a stopped sending before b could hold the lease"
        # a's sessions may still hold the write lock (cut off mid-statement, "active": no server
        # limit ends them); b ends them as it takes over, so its start is not held up (it was, 15 s,
        # before).
        await eventually(lambda: pair.b.said("ready to work"), within=10, what="b ready")
        # how many a's pool had open when cut off depends on the machine's load (1 to its size)
        ended = re.search(
            r"ended (\d+) database session\(s\) the previous leader left open",
            pair.b.log.read_text(),
        )
        assert ended is not None and int(ended[1]) >= 1
        assert logged_at(pair.b, "ready to work") - took_over < TAKEOVER, (
            "b's start waited on a's write lock"
        )
        await eventually(
            lambda: pair.discord.sessions == 1, within=10, what="only b connected to the gateway"
        )

        await pair.discord.customer_writes(CUSTOMER, "are you still there?")
        await eventually(lambda: len(pair.answers()) == 2, within=15, what="b's answer")
        await asyncio.sleep(1)
        assert pair.answers() == ["You said: hello", "You said: are you still there?"]
        assert pair.a.process.returncode is None, "a stays, to stand by again"
    finally:
        await partition.stop()


async def test_a_write_lock_held_by_a_cut_off_process_is_freed_for_the_next_leader(pg_url):
    partition = await Partition().start()
    via = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{partition.port}")
    async with (
        PostgresDatabase(via, idle_in_transaction=1) as cut_off,
        PostgresDatabase(pg_url) as other,
    ):
        inside = asyncio.Event()

        async def hold_the_write_lock() -> None:
            async with cut_off.transaction() as tx:
                await tx.execute(
                    "INSERT INTO kept (key, value, updated_at) VALUES ('x', 'cut off', 0)"
                )
                inside.set()
                await asyncio.sleep(60)  # the network goes silent meanwhile

        holder = asyncio.create_task(hold_the_write_lock())
        await asyncio.wait_for(inside.wait(), 5)
        partition.cut.set()
        started = time.monotonic()
        await asyncio.wait_for(
            other.execute("INSERT INTO kept (key, value, updated_at) VALUES ('y', 'next', 0)"), 10
        )
        assert time.monotonic() - started < 3, "the server ended the silent session after 1 s idle"
        assert await other.kept("x") is None and await other.kept("y") == "next"
        await partition.stop()
        holder.cancel()
        with contextlib.suppress(BaseException):
            await holder
