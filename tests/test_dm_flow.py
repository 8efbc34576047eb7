"""Customers' DMs through discord.py's own dispatch (dpytest) and the real anthropic client."""

from __future__ import annotations

import asyncio
import json

import discord.ext.test as dpytest
from discord.ext.test import callbacks

from tests.conftest import SendRecorder, eventually, http_error
from tests.fake_claude import Reply, error, last_user_text, system_text, text, tool_calls
from tests.support import test_policy


def tool_results(request: dict) -> list[dict]:
    return [
        b
        for m in request["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if b["type"] == "tool_result"
    ]


async def test_plain_answer_reaches_the_customer_and_is_stored(harness):
    await harness.start()
    harness.fake.then(text("Hello! How can I help?"))
    await harness.dm(0, "hi there")

    [reply] = harness.sent()
    assert reply.content == "Hello! How can I help?"
    assert reply.channel.id == harness.members[0].dm_channel.id
    request = harness.fake.requests[0]
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi there", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ]
    assert "Example Shop" in system_text(request)
    assert request["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert request["model"] == "claude-test"
    turns = await harness.fetch("SELECT kind, content, status FROM turns ORDER BY id")
    assert [tuple(t) for t in turns] == [
        ("customer", "hi there", "answered"),
        ("assistant", "Hello! How can I help?", "done"),
    ]
    assert [o[0] for o in await harness.fetch("SELECT status FROM outbox")] == ["sent"]


async def test_typing_indicator_is_shown_while_claude_works(harness):
    await harness.start()
    typed = []

    async def on_typing(channel):
        typed.append((channel.id, dpytest.sent_queue.empty()))

    callbacks.set_callback(on_typing, "send_typing")
    harness.fake.then(text("done", delay=0.2))
    await harness.dm(0, "hello")
    dm = harness.members[0].dm_channel
    assert typed and typed[0] == (dm.id, True), (
        "typing shows in the customer's DM before the answer"
    )
    callbacks.remove_callback("send_typing")


async def test_a_slow_typing_indicator_never_delays_the_answer(harness):
    await harness.start()
    discord_answers_typing = asyncio.Event()

    async def on_typing(channel):
        await discord_answers_typing.wait()  # Discord slow to acknowledge POST /typing

    callbacks.set_callback(on_typing, "send_typing")
    try:
        harness.fake.then(text("Here is your answer."))
        await harness.dm(0, "hello")  # waits until the answer is delivered
        assert [m.content for m in harness.sent()] == ["Here is your answer."]
        assert not discord_answers_typing.is_set()
    finally:
        discord_answers_typing.set()
        callbacks.remove_callback("send_typing")


async def test_tool_call_is_answered_and_the_loop_continues(harness):
    await harness.start()
    harness.fake.then(
        tool_calls(("get_order_status", {"order_id": 2}), preamble="Let me check."),
        text("Your grinder has shipped."),
    )
    await harness.dm(0, "where is my grinder?")

    [reply] = harness.sent()
    assert reply.content == "Let me check.\n\nYour grinder has shipped."
    [result] = tool_results(harness.fake.requests[1])
    payload = json.loads(result["content"])
    assert payload["status"] == "executed"
    assert payload["result"]["item"] == "grinder" and payload["result"]["status"] == "shipped"
    assert "is_error" not in result
    kinds = [r[0] for r in await harness.fetch("SELECT kind FROM turns ORDER BY id")]
    assert kinds == ["customer", "tool_use", "tool_result", "assistant"]


async def test_several_tool_calls_in_one_round_get_results_in_one_message(harness):
    await harness.start()
    harness.fake.then(
        tool_calls(
            ("list_orders", {}), ("get_account", {}), ("get_order_status", {"order_id": 999})
        ),
        text("Here is everything."),
    )
    await harness.dm(0, "show me my account and orders")

    second = harness.fake.requests[1]
    assistant = second["messages"][-2]
    calls = [b for b in assistant["content"] if b["type"] == "tool_use"]
    results = second["messages"][-1]["content"]
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in calls]
    assert len(json.loads(results[0]["content"])["result"]["orders"]) == 2
    assert "email" in json.loads(results[1]["content"])["result"]
    assert (
        results[2]["is_error"] is True
        and "not one of this customer's orders" in results[2]["content"]
    )
    assert harness.sent()[0].content == "Here is everything."


async def test_a_destructive_action_without_an_authenticator_offers_enrolment_or_a_ticket(harness):
    await harness.start()
    harness.fake.then(
        tool_calls(("cancel_subscription", {"subscription_id": 1})),
        # the model claims success; the code-written notice says otherwise
        text("I've cancelled it!"),
    )
    await harness.dm(0, "cancel my subscription please")
    [result] = tool_results(harness.fake.requests[1])
    assert result["is_error"] and "has not set up an authenticator" in result["content"]
    [reply] = harness.sent()
    assert (
        "Cancel a subscription needs a one-time code" in reply.content
        and "Type **enrol**" in reply.content
    )

    await harness.restart(policy=test_policy(mfa={"unenrolled": "ticket"}))
    harness.fake.then(tool_calls(("cancel_subscription", {"subscription_id": 1})), text("Sent."))
    await harness.dm(0, "cancel my subscription please")
    [ticket] = await harness.fetch("SELECT kind, reason FROM tickets")
    assert ticket["kind"] == "approval" and "no authenticator set up" in ticket["reason"]
    cancelled = await harness.fetch(
        "SELECT COUNT(*) FROM shop_subscriptions WHERE status = 'cancelled'"
    )
    assert cancelled[0][0] == 0


async def test_unknown_tool_and_bad_parameters_get_error_results(harness):
    await harness.start()
    harness.fake.then(
        tool_calls(("drop_database", {}), ("get_order_status", {"order_id": "one"})),
        text("Sorry."),
    )
    await harness.dm(0, "status?")
    unknown, invalid = tool_results(harness.fake.requests[1])
    assert unknown["is_error"] and "no action named 'drop_database'" in unknown["content"]
    assert (
        invalid["is_error"]
        and "order_id" in invalid["content"]
        and "not of type 'integer'" in invalid["content"]
    )


async def test_tool_rounds_are_bounded(harness):
    from tests.support import test_policy

    await harness.start(policy=test_policy(llm={"max_tool_rounds": 2}))
    harness.fake.then(*[tool_calls(("list_orders", {})) for _ in range(2)], text("Final answer."))
    await harness.dm(0, "loop forever")
    assert len(harness.fake.requests) == 3
    assert harness.fake.requests[2]["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in harness.fake.requests[0]
    assert harness.sent()[0].content == "Final answer."


async def test_rate_limit_and_overload_are_retried_by_the_sdk(harness):
    await harness.start()
    harness.fake.then(error(429), error(529), text("Finally here."))
    await harness.dm(0, "hello?")
    assert harness.fake.statuses == [429, 529, 200]
    assert [m.content for m in harness.sent()] == ["Finally here."]


async def test_claude_down_apologises_keeps_the_message_and_answers_later(harness):
    await harness.start()
    harness.fake.then(error(500), error(500), error(500))  # the SDK's 2 retries are used up
    await harness.dm(0, "first question")
    [apology] = harness.sent()
    assert "your message is saved" in apology.content.lower()
    [(status, attempts)] = await harness.fetch(
        "SELECT status, attempts FROM turns WHERE kind = 'customer'"
    )
    assert (status, attempts) == ("pending", 1)

    harness.fake.then(text("Answering both now."))
    await harness.dm(0, "second question")
    request = harness.fake.requests[-1]
    assert [b["text"] for b in request["messages"][0]["content"]] == [
        "first question",
        "second question",
    ]
    assert [m.content for m in harness.sent()] == ["Answering both now."]
    statuses = await harness.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert [s[0] for s in statuses] == ["answered", "answered"]


async def test_claude_timing_out_apologises_and_the_message_waits(harness):
    await harness.start(llm_timeout=0.2)
    # the first try and the SDK's 2 retries
    harness.fake.then(*(text("too late", delay=1.0) for _ in range(3)))
    await harness.dm(0, "slow day?")
    assert len(harness.fake.requests) == 3
    [apology] = harness.sent()
    assert "your message is saved" in apology.content.lower()
    [(status,)] = await harness.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert status == "pending"


async def test_a_malformed_answer_from_claude_is_a_failure_not_a_crash(harness, caplog):
    await harness.start()
    harness.fake.then(Reply(body={"type": "message", "id": "msg_x", "content": "not a list"}))
    await harness.dm(0, "hello")
    [apology] = harness.sent()
    assert "your message is saved" in apology.content.lower()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], (
        "reported as Claude failing, not as a bug"
    )
    assert any("no list of content blocks" in r.getMessage() for r in caplog.records)
    harness.fake.then(text("Here now."))
    await harness.dm(0, "still there?")
    assert [m.content for m in harness.sent()] == ["Here now."]


async def test_claude_failing_every_time_stops_retrying_and_says_a_person_follows_up(harness):
    from tests.support import test_policy

    await harness.start(policy=test_policy(llm={"max_answer_attempts": 2}))
    harness.fake.default = lambda request: error(529)
    await harness.dm(0, "hello")
    await harness.dm(0, "anyone?")
    messages = [m.content for m in harness.sent()]
    assert len(messages) == 2 and "saved" in messages[0] and "person from our team" in messages[1]
    statuses = await harness.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert [s[0] for s in statuses] == ["held", "held"]
    audit = await harness.fetch("SELECT action FROM audit WHERE action = 'llm_gave_up'")
    assert len(audit) == 1


async def test_long_answer_is_split_at_discord_limit_on_boundaries(harness):
    await harness.start()
    paragraphs = [f"Paragraph {i}: " + " ".join(["word"] * 96) for i in range(10)]
    answer = "\n\n".join(paragraphs)
    assert 4900 < len(answer) < 5100
    harness.fake.then(text(answer))
    await harness.dm(0, "tell me everything")
    parts = [m.content for m in harness.sent()]
    assert len(parts) == 3
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.startswith("Paragraph") for p in parts), "cuts fall between paragraphs"
    assert "\n\n".join(parts) == answer


async def test_each_customer_is_answered_in_order_and_late_messages_are_answered_together(harness):
    await harness.start()
    harness.fake.then(text("Answer to A", delay=0.2), text("Answer to B and C"))
    await harness.dm(0, "A", settle=False)
    await eventually(lambda: harness.fake.requests, what="Claude to be asked")
    await harness.dm(0, "B", settle=False)
    await harness.dm(0, "C", settle=False)
    await harness.settle()
    assert [m.content for m in harness.sent()] == ["Answer to A", "Answer to B and C"]
    second = harness.fake.requests[1]["messages"]
    assert [[b["text"] for b in m["content"]] for m in second] == [
        ["A"],
        ["Answer to A"],
        ["B", "C"],
    ]


async def test_customers_never_wait_on_each_other(harness):
    await harness.start()

    def slow_for_first(request):
        first = "slow one" in json.dumps(request["messages"])
        return text("slow reply" if first else "fast reply", delay=1.0 if first else 0)

    harness.fake.default = slow_for_first
    await harness.dm(0, "slow one", settle=False)
    await harness.dm(1, "quick one", settle=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await eventually(lambda: not dpytest.sent_queue.empty(), what="a reply")
    assert loop.time() - started < 0.5
    first = dpytest.sent_queue.get_nowait()
    assert first.content == "fast reply" and first.channel.id == harness.members[1].dm_channel.id
    await harness.settle()
    assert [m.content for m in harness.sent()] == ["slow reply"]


async def test_the_limit_on_concurrent_claude_calls_holds(harness):
    await harness.start(concurrency=2, members=5)
    harness.fake.default = lambda request: text("ok", delay=0.1)
    for i in range(5):
        await harness.dm(i, f"customer {i}", settle=False)
    await harness.settle()
    assert len(harness.sent()) == 5
    assert harness.fake.peak_in_flight == 2


async def test_restart_answers_a_message_left_unanswered(harness):
    await harness.start()
    harness.fake.then(text("never delivered", delay=5))
    await harness.dm(0, "are you there?", settle=False)
    await eventually(lambda: harness.fake.requests, what="Claude to be asked")
    await harness.stop()  # the process dies while Claude is thinking

    harness.fake.then(text("Yes, I'm here."))
    await harness.start()
    await harness.settle()
    assert [m.content for m in harness.sent()] == ["Yes, I'm here."]
    assert harness.fake.requests[-1]["messages"][0]["content"][0]["text"] == "are you there?"
    rows = await harness.fetch("SELECT kind, status FROM turns ORDER BY id")
    assert [tuple(r) for r in rows] == [("customer", "answered"), ("assistant", "done")]


async def test_restart_delivers_a_reply_that_was_owed(harness):
    await harness.start()
    recorder = SendRecorder(harness.bot)
    recorder.fail_next(*(http_error(503) for _ in range(50)))
    harness.fake.then(text("Owed reply"))
    await harness.dm(0, "hi", settle=False)
    await eventually(lambda: recorder.attempts, what="a send attempt")
    await harness.stop()
    await harness.start()
    await harness.settle()
    assert [m.content for m in harness.sent()] == ["Owed reply"]
    assert len(harness.fake.requests) == 1, "Claude is not asked twice"


async def test_discord_refusing_sends_for_a_while_still_delivers_once_in_order(harness):
    await harness.start()
    recorder = SendRecorder(harness.bot)
    recorder.fail_next(http_error(429), http_error(500), http_error(502), http_error(429))
    harness.fake.then(text("x" * 2500))
    await harness.dm(0, "long please")
    sent = harness.sent()
    assert len(sent) == 2 and "".join(m.content for m in sent) == "x" * 2500
    assert len(recorder.attempts) == 6
    nonces = [a["nonce"] for a in recorder.attempts]
    assert len(set(nonces[:5])) == 1 and nonces[5] != nonces[0], (
        "retries reuse the nonce; Discord dedupes"
    )
    assert all(a.get("enforce_nonce") for a in recorder.attempts)
    rows = await harness.fetch("SELECT status, attempts FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("sent", 5), ("sent", 1)]


async def test_closed_dms_are_recorded_and_not_retried(harness):
    await harness.start()
    recorder = SendRecorder(harness.bot)
    recorder.fail_next(http_error(403, 50007))
    harness.fake.then(text("a reply the customer can't get"))
    await harness.dm(0, "hi")
    assert harness.sent() == []
    assert len(recorder.attempts) == 1
    [(dm_status,)] = await harness.fetch("SELECT dm_status FROM customers")
    assert dm_status == "closed"
    assert [r[0] for r in await harness.fetch("SELECT status FROM outbox")] == ["refused"]
    [(detail,)] = await harness.fetch("SELECT detail FROM audit WHERE action = 'dm_refused'")
    assert "50007" in detail

    # Writing to us again reopens the customer's DMs.
    harness.fake.then(text("Welcome back"))
    await harness.dm(0, "I opened my DMs")
    assert [m.content for m in harness.sent()] == ["Welcome back"]


async def test_without_ai_customers_are_told_a_person_will_answer_once(harness):
    await harness.start(ai=False)
    await harness.dm(0, "hello")
    await harness.dm(0, "still there?")
    [notice] = harness.sent()
    assert "person from our team" in notice.content and "ticket #1" in notice.content
    statuses = await harness.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert [s[0] for s in statuses] == ["held", "relayed"], (
        "the first opens a relay ticket, the next go to it"
    )
    assert harness.fake.requests == []


async def test_a_message_arriving_just_after_the_batch_is_read_is_answered_once(harness):
    h = harness
    await h.start()
    store = h.bot.engine.store
    original = store.pending_turns
    arrived: list[bool] = []

    async def read_then_second_message_arrives(*args, **kwargs):
        work = await original(*args, **kwargs)
        if not arrived:  # the second DM lands 1 ms after the first was read, before Claude is asked
            arrived.append(True)
            await h.dm(0, "and the second one?", settle=False)
        return work

    store.pending_turns = read_then_second_message_arrives
    await h.dm(0, "first question")
    await h.settle()
    asked = [last_user_text(r) for r in h.fake.requests]
    assert sum("and the second one?" in t for t in asked) == 1, asked
    assert len(h.sent()) == 2, "each message answered once"
    rows = await h.fetch("SELECT COUNT(*) FROM turns WHERE kind = 'assistant'")
    assert rows[0][0] == 2
