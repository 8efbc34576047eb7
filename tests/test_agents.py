"""Other agents on the desk over MCP: the official client against the server on 127.0.0.1, Discord
through dpytest."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_api.server import McpService, PortLimits
from core.summary import compute, export
from tests.conftest import eventually
from tests.desk_support import buttons, start_again, uploaded

ROOT = Path(__file__).resolve().parents[1]
PRICING = "pricing-agent"
FRAUD = "fraud-review"
TOKENS = {PRICING: "p" * 24 + "-pricing-token", FRAUD: "f" * 24 + "-fraud-token"}


class Agents:
    def __init__(self, desk: Any) -> None:
        self.desk = desk
        self.service: McpService | None = None
        self.url = ""

    async def serve(self) -> None:
        self.service = McpService(
            self.desk.h.bot.agents,
            TOKENS,
            host="127.0.0.1",
            port=0,
            limits=PortLimits.from_policy(self.desk.h.bot.policy.agents),
        )
        await self.service.start()
        self.url = f"http://127.0.0.1:{self.service.bound_port}/mcp"
        self.desk.h.bot.app.webhooks.use_tokens(TOKENS)  # the tokens it serves sign its webhooks

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    @contextlib.asynccontextmanager
    async def client(self, agent: str = PRICING, token: str | None = None) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token if token is not None else TOKENS[agent]}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(self.url, http_client=http)) as client,
        ):
            yield client

    async def call(self, tool: str, agent: str = PRICING, **arguments: Any) -> Any:
        async with self.client(agent) as client:
            return await client.call_tool(tool, arguments)

    async def raw_call(self, tool: str, arguments: str, agent: str = PRICING) -> dict[str, Any]:
        """A tools/call written by hand, as an attacker would (JSON's NaN and Infinity included)."""
        body = (
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": '
            + json.dumps(tool)
            + ', "arguments": '
            + arguments
            + "}}"
        )
        headers = {
            "Authorization": f"Bearer {TOKENS[agent]}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(self.url, content=body.encode(), headers=headers)
        return response.json()["result"]

    async def example(
        self, *args: str, env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        """A script (an example) run as this test's pricing agent, against this desk."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env={
                **os.environ,
                "HANDOFF_MCP_TOKEN": TOKENS[PRICING],
                "HANDOFF_MCP_URL": self.url,
                **(env or {}),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def posted(self, number: int, within: float = 15.0) -> None:
        """The ticket's card and thread are in the staff channel. ``within``: long enough for an
        example's own process to start (importing a framework takes seconds on a loaded machine)."""

        async def has_thread() -> bool:
            rows = await self.desk.h.fetch("SELECT thread_id FROM tickets WHERE id = ?", (number,))
            return bool(rows and rows[0][0])

        for _ in range(int(within / 0.02)):
            if await has_thread():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"ticket #{number} was not posted within {within:g} s")


async def test_an_agent_asks_and_an_operator_answers_in_the_thread(agents):
    call = asyncio.create_task(
        agents.call(
            "ask_human",
            question="What discount may I offer on order 4411?",
            context="Customer threatens to cancel",
            priority="high",
            wait_seconds=20,
        )
    )
    await agents.posted(1)
    card = await agents.desk.staff_message(1)
    shown = card.embeds[0].to_dict()
    assert "What discount may I offer" in shown["description"]
    assert {"name": "Agent", "value": PRICING, "inline": False} in shown["fields"]
    assert "Customer threatens to cancel" in str(shown["fields"])
    # a note between operators is not the answer
    await agents.desk.write(1, "// checking with finance")
    await agents.desk.write(1, "Up to 10%, once.")
    result = await asyncio.wait_for(call, 10)
    assert not result.is_error
    assert result.structured_content == {
        "ticket": 1,
        "status": "answered",
        "answer": "Up to 10%, once.",
        "answered_by": agents.desk.operator.display_name,
    }
    assert agents.desk.h.sent() == []  # nothing goes to anyone's DMs
    assert (await agents.desk.h.fetch("SELECT COUNT(*) FROM outbox"))[0][0] == 0


async def test_an_agents_answered_question_can_be_saved_as_knowledge(agents):
    call = asyncio.create_task(
        agents.call("ask_human", question="Do we ship to Iceland?", wait_seconds=20)
    )
    await agents.posted(1)
    await agents.desk.write(1, "Yes, 12 EUR, 6-9 working days.")
    await asyncio.wait_for(call, 10)
    for _ in range(300):  # the card's refresh is delivered after the answer
        if "ticket:save:1" in await buttons(agents.desk, 1):
            break
        await asyncio.sleep(0.01)
    assert "ticket:save:1" in await buttons(agents.desk, 1)
    agents.desk.i.submit_modal(
        "ticket:save-knowledge:1",
        {"question": "Do we ship to Iceland?", "answer": "Yes, 12 EUR.", "title": "Iceland"},
        member=agents.desk.operator,
        channel=await agents.desk.thread(1),
    )
    [(said, _)] = await agents.desk.told(1)
    assert said.startswith("Saved as `K1`")
    [found] = await agents.desk.h.bot.knowledge.search("can you deliver to iceland")
    assert (found.title, found.origin) == ("Iceland", "saved")


async def test_twenty_agents_at_once_each_get_their_own_answer(agents):
    calls = [
        asyncio.create_task(
            agents.call(
                "ask_human", question=f"question {i}?", wait_seconds=40, idempotency_key=f"q{i}"
            )
        )
        for i in range(20)
    ]
    for number in range(1, 21):
        await agents.posted(number)
    rows = await agents.desk.h.fetch("SELECT id, question FROM tickets")
    order = [number for number, _ in rows]
    random.Random(3).shuffle(order)
    for number in reversed(sorted(order)):
        question = dict(rows)[number]
        await agents.desk.write(number, f"answer to {question}")
    results = await asyncio.wait_for(asyncio.gather(*calls), 30)
    for i, result in enumerate(results):
        assert result.structured_content["status"] == "answered"
        assert result.structured_content["answer"] == f"answer to question {i}?"


async def test_a_wait_ends_as_waiting_and_a_late_answer_survives_a_restart(agents):
    result = await agents.call(
        "ask_human", question="Is the warehouse open on Sunday?", wait_seconds=0.2
    )
    assert result.structured_content == {"ticket": 1, "status": "waiting"}
    await agents.posted(1)
    await agents.stop()
    await start_again(agents.desk)  # the bot restarts between the question and the answer
    await agents.serve()
    await agents.desk.write(1, "Yes, 10 to 4.")
    late = await agents.call("get_result", ticket=1)
    assert late.structured_content == {
        "ticket": 1,
        "status": "answered",
        "answer": "Yes, 10 to 4.",
        "answered_by": agents.desk.operator.display_name,
    }


async def test_the_same_idempotency_key_never_opens_a_second_ticket(agents):
    first = await agents.call(
        "request_approval",
        action="refund",
        details={"order": 4411},
        amount=30,
        currency="EUR",
        wait_seconds=0,
        idempotency_key="refund-4411",
    )
    again = await agents.call(
        "request_approval",
        action="refund",
        details={"order": 4411},
        amount=30,
        currency="EUR",
        wait_seconds=0,
        idempotency_key="refund-4411",
    )
    assert (
        first.structured_content == again.structured_content == {"ticket": 1, "status": "waiting"}
    )
    await agents.posted(1)
    assert (await agents.desk.h.fetch("SELECT COUNT(*) FROM tickets"))[0][0] == 1
    other = await agents.call(
        "request_approval",
        agent=FRAUD,
        action="refund",
        details={"order": 4411},
        wait_seconds=0,
        idempotency_key="refund-4411",
    )
    assert other.structured_content["ticket"] == 2  # keys are per agent


async def test_an_approval_double_clicked_is_decided_once_and_returned(agents):
    call = asyncio.create_task(
        agents.call(
            "request_approval",
            action="refund",
            details={"order": 4411},
            amount=30,
            currency="EUR",
            reason="item arrived broken",
            wait_seconds=20,
        )
    )
    await agents.posted(1)
    seen = await agents.desk.screen(1)
    await agents.desk.click(1, "approve")
    # the second click, from a screen not yet refreshed
    await agents.desk.click(1, "approve", seen=seen)
    told = await agents.desk.told(2)
    result = await asyncio.wait_for(call, 10)
    assert result.structured_content == {
        "ticket": 1,
        "status": "approved",
        "details": {"order": 4411, "amount": 30.0, "currency": "EUR"},
        "decided_by": agents.desk.operator.display_name,
    }
    name = agents.desk.operator.display_name
    # Two clicks at once: either may be answered first; one approves, the other is told it was done.
    assert sorted(text for text, _ in told) == sorted(
        [
            f"Approved ticket #1; {PRICING} receives the decision.",
            f"Ticket #1 was already approved by {name}.",
        ]
    )
    audit = await agents.desk.h.fetch("SELECT COUNT(*) FROM audit WHERE action = 'approved'")
    assert audit[0][0] == 1


async def test_edit_and_approve_returns_the_edited_details(agents):
    call = asyncio.create_task(
        agents.call("request_approval", action="discount", details={"percent": 25}, wait_seconds=20)
    )
    await agents.posted(1)
    await agents.desk.click(1, "edit")  # the form opens with the details' own fields
    agents.desk.i.submit_modal(
        "ticket:edit-params:1",
        {"percent": "15"},
        member=agents.desk.operator,
        channel=agents.desk.h.bot.get_channel(agents.desk.h.bot.settings.staff_channel_id),
    )
    result = await asyncio.wait_for(call, 10)
    assert result.structured_content["status"] == "edited"
    assert result.structured_content["details"] == {"percent": 15}


async def test_a_denial_carries_its_reason(agents):
    call = asyncio.create_task(
        agents.call(
            "request_approval", action="flag_account", details={"account": "A-17"}, wait_seconds=20
        )
    )
    await agents.posted(1)
    agents.desk.i.submit_modal(
        "ticket:deny-reason:1",
        {"reason": "known customer, false alarm"},
        member=agents.desk.operator,
        channel=agents.desk.h.bot.get_channel(agents.desk.h.bot.settings.staff_channel_id),
    )
    result = await asyncio.wait_for(call, 10)
    assert result.structured_content == {
        "ticket": 1,
        "status": "denied",
        "reason": "known customer, false alarm",
        "decided_by": agents.desk.operator.display_name,
    }


async def test_an_undecided_request_expires_and_can_no_longer_be_approved(agents):
    h = agents.desk.h
    result = await agents.call(
        "request_approval", action="payout", details={"to": "IBAN…"}, amount=900, wait_seconds=0
    )
    assert result.structured_content["status"] == "waiting"
    await agents.posted(1)
    seen = await agents.desk.screen(1)  # the card as an operator's screen still shows it
    assert any("ticket:approve:1" in str(row) for row in seen)
    h.clock.advance(61 * 60)  # [agents] approval_minutes = 60
    await h.bot.deadlines.run_due()
    expired = await agents.call("get_result", ticket=1)
    assert expired.structured_content == {
        "ticket": 1,
        "status": "expired",
        "reason": "nobody decided in time; it was not approved",
    }
    for _ in range(250):  # the card is refreshed through the desk outbox: its buttons go
        if not any("ticket:approve:1" in str(row) for row in await agents.desk.screen(1)):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the expired card still offers Approve")
    await agents.desk.click(1, "approve", seen=seen)
    [(text, _)] = await agents.desk.told(1)
    assert text == "Ticket #1 was already expired."
    assert (await agents.call("get_result", ticket=1)).structured_content["status"] == "expired"


async def test_policy_approves_routine_items_up_to_an_amount(harness):
    from tests.support import test_policy

    policy = test_policy(
        agents={"auto_approve": ["flag_review:0", "refund:50"], "approval_minutes": 60}
    )
    await harness.start(policy=policy, members=4)
    world = Agents(type("D", (), {"h": harness})())
    await world.serve()
    try:
        small = await world.call(
            "request_approval", action="refund", details={"order": 1}, amount=20, wait_seconds=0
        )
        large = await world.call(
            "request_approval", action="refund", details={"order": 2}, amount=80, wait_seconds=0
        )
        other = await world.call(
            "request_approval", action="payout", details={"order": 3}, amount=5, wait_seconds=0
        )
        routine = await world.call(
            "request_approval", action="flag_review", details={"account": "A-17"}, wait_seconds=0
        )
        unstated = await world.call(
            "request_approval", action="refund", details={"order": 4}, wait_seconds=0
        )
    finally:
        await world.stop()
    assert small.structured_content == {
        "ticket": 1,
        "status": "approved",
        "details": {"order": 1, "amount": 20.0},
        "decided_by": "policy",
    }
    assert large.structured_content["status"] == "waiting"
    assert other.structured_content["status"] == "waiting"
    assert routine.structured_content["status"] == "approved"  # listed with 0: no money involved
    # a refund without its amount waits for a person
    assert unstated.structured_content["status"] == "waiting"


async def test_bad_tokens_get_401_without_detail(agents):
    for header in (
        "Bearer",
        "Bearer wrong-token-wrong-token-wrong",
        f"Bearer {TOKENS[PRICING]}x",
        f"Basic {TOKENS[PRICING]}",
        TOKENS[PRICING],
    ):
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                agents.url,
                headers={"Authorization": header},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
        assert response.status_code == 401 and response.content == b""
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            agents.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
    assert response.status_code == 401


async def test_another_agents_or_an_unknown_ticket_is_a_tool_error(agents):
    await agents.call("ask_human", question="Mine?", wait_seconds=0)
    theirs = await agents.call("get_result", agent=FRAUD, ticket=1)
    assert theirs.is_error and "belongs to another agent" in theirs.content[0].text
    missing = await agents.call("get_result", ticket=99)
    assert missing.is_error and "no agent ticket #99" in missing.content[0].text


async def test_invalid_arguments_name_the_argument(agents):
    empty = await agents.call("ask_human", question="   ")
    assert empty.is_error and "question is empty" in empty.content[0].text
    bad_priority = await agents.call("ask_human", question="Why?", priority="asap")
    assert bad_priority.is_error and "priority" in bad_priority.content[0].text
    not_object = await agents.call("request_approval", action="refund", details="all of it")
    assert not_object.is_error and "details" in not_object.content[0].text
    negative = await agents.call("ask_human", question="Why?", wait_seconds=-1)
    assert negative.is_error and "wait_seconds" in negative.content[0].text


async def test_a_long_question_is_shortened_on_the_card_and_attached_whole_in_the_thread(agents):
    question = "Please review this transaction history. " + "Line of detail. " * 400
    await agents.call("ask_human", question=question, wait_seconds=0)
    await agents.posted(1)
    card = await agents.desk.staff_message(1)
    assert len(card.embeds[0].description) <= 1500
    post, text = await uploaded(agents.desk.h.staff, "the whole question attached in the thread")
    assert post.content.startswith(f"**Full text from {PRICING}:**") and "attached" in post.content
    assert text.endswith(question.strip())


async def test_agent_tickets_show_in_pending_stats_and_export(agents):
    await agents.call(
        "notify_operators", message="Nightly fraud scan finished: 3 flagged.", priority="high"
    )
    await agents.call("ask_human", question="Is account A-17 a known customer?", wait_seconds=0)
    await agents.posted(2)
    await agents.desk.slash("pending", None)
    [(text, _)] = await agents.desk.told(1)
    assert f"notice from {PRICING}" in text and f"agent question from {PRICING}" in text
    await agents.desk.write(2, "Yes, since 2019.")
    exported = await export(agents.desk.h.db, 0, agents.desk.h.clock.now() + 60)
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert [(r["kind"], r["agent"], r["answer"], r["outcome"]) for r in rows] == [
        ("notice", PRICING, "", "open"),
        ("agent question", PRICING, "Yes, since 2019.", "answered"),
    ]
    summary = await compute(agents.desk.h.db, 0, agents.desk.h.clock.now() + 60)
    assert summary.by_kind == {"notice": 1, "agent question": 1}


async def test_the_ask_and_wait_example_gets_a_late_answer(agents):
    import json

    process = await agents.example(
        "examples/ask_and_wait.py",
        "Is the Lisbon warehouse open on Sunday?",
        "--wait",
        "0.5",
        "--key",
        "lisbon",
    )
    await agents.posted(1)
    await asyncio.sleep(1.2)  # the example has come back with get_result at least once
    await agents.desk.write(1, "Yes, 10:00 to 16:00.")
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {
        "ticket": 1,
        "status": "answered",
        "answer": "Yes, 10:00 to 16:00.",
        "answered_by": agents.desk.operator.display_name,
    }
    assert b"waiting, asking again" in err


async def test_the_discount_agent_offers_what_the_operator_allowed(agents):
    import json

    process = await agents.example(
        "examples/discount_agent.py",
        "--customer",
        "Ada (order 4411)",
        "--asking",
        "20",
        "--wait",
        "5",
    )
    await agents.posted(1)
    await agents.desk.write(1, "Offer 12% at most.")
    await agents.posted(2)
    card = await agents.desk.staff_message(2)
    assert "apply_discount" in str(card.embeds[0].to_dict())
    await agents.desk.click(2, "edit")
    agents.desk.i.submit_modal(
        "ticket:edit-params:2",
        {"customer": "Ada (order 4411)", "percent": "10"},
        member=agents.desk.operator,
        channel=agents.desk.h.bot.get_channel(agents.desk.h.bot.settings.staff_channel_id),
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {"offered": 10.0, "approved_by": agents.desk.operator.display_name}


async def test_money_in_the_details_must_agree_with_the_amount_the_policy_judges(harness):
    from tests.support import test_policy

    policy = test_policy(
        agents={"auto_approve": ["refund:50"], "approval_minutes": 60},
        mfa={"operator_code_above": 100},
    )
    await harness.start(policy=policy, members=4)
    world = Agents(type("D", (), {"h": harness})())
    await world.serve()
    try:
        hidden = await world.call(
            "request_approval",
            action="refund",
            details={"order": 7, "amount": 5000},
            amount=20,
            wait_seconds=0,
        )
        nested = await world.call(
            "request_approval",
            action="refund",
            details={"refund": {"amount": 5000}},
            amount=20,
            wait_seconds=0,
        )
        as_text = await world.call(
            "request_approval", action="refund", details={"refund": "5000 USD"}, wait_seconds=0
        )
        in_words = await world.call(
            "request_approval", action="refund", details={"refund": "five thousand"}, wait_seconds=0
        )
        unstated = await world.call(
            "request_approval", action="refund", details={"order": 9, "total": 30}, wait_seconds=0
        )
        endless = await world.raw_call("get_result", '{"ticket": 1, "wait_seconds": NaN}')
        forever = await world.raw_call(
            "ask_human", '{"question": "Still there?", "wait_seconds": Infinity}'
        )
        huge = await world.raw_call(
            "request_approval", '{"action": "refund", "details": {}, "amount": Infinity}'
        )
    finally:
        await world.stop()
    assert hidden.is_error and "details.amount is 5000 but amount is 20" in hidden.content[0].text
    assert nested.is_error and "details.refund.amount" in nested.content[0].text
    assert as_text.structured_content["status"] == "waiting", (
        "5000 USD is read as 5000: above the limit"
    )
    assert in_words.structured_content["status"] == "waiting", (
        "money the code cannot read goes to a person"
    )
    assert unstated.structured_content["status"] == "approved", (
        "the details' own total (30) is the amount"
    )
    assert (
        endless["isError"]
        and "wait_seconds must be a finite number" in endless["content"][0]["text"]
    )
    assert (
        forever["isError"]
        and "wait_seconds must be a finite number" in forever["content"][0]["text"]
    )
    assert huge["isError"] and "amount must be a finite number" in huge["content"][0]["text"]
    assert (await harness.fetch("SELECT COUNT(*) FROM tickets"))[0][0] == 3, (
        "refused calls open no ticket"
    )
    rules = [r[0] for r in await harness.fetch("SELECT detail FROM audit WHERE actor = 'policy'")]
    assert len(rules) == 1 and "largest amount 30" in rules[0]
    # An operator approving "5000 USD" or "five thousand" needs their own code, as for 5000.
    desk = harness.bot.desk
    for number in (1, 2):
        ticket = await desk.tickets.get(number)
        assert desk.code_needed(ticket) == 100


async def test_an_idempotency_key_reused_with_other_arguments_is_refused(agents):
    first = await agents.call(
        "request_approval",
        action="discount",
        details={"percent": 5},
        wait_seconds=0,
        idempotency_key="discount-77",
    )
    retry = await agents.call(
        "request_approval",
        action="discount",
        details={"percent": 5},
        wait_seconds=3,
        idempotency_key="discount-77",
    )
    other = await agents.call(
        "request_approval",
        action="discount",
        details={"percent": 50},
        wait_seconds=0,
        idempotency_key="discount-77",
    )
    assert first.structured_content["ticket"] == retry.structured_content["ticket"] == 1
    assert (
        other.is_error
        and "idempotency_key 'discount-77' was used for ticket #1 with other arguments"
        in other.content[0].text
    )
    asked = await agents.call("ask_human", question="May I?", wait_seconds=0, idempotency_key="q-1")
    changed = await agents.call(
        "ask_human", question="May I give 50%?", wait_seconds=0, idempotency_key="q-1"
    )
    assert asked.structured_content["ticket"] == 2 and changed.is_error
    assert (await agents.desk.h.fetch("SELECT COUNT(*) FROM tickets"))[0][0] == 2


async def test_the_port_bounds_connections_slow_requests_and_calls_per_agent(desk, caplog):
    import logging

    from agent_api.server import PortLimits

    service = McpService(
        desk.h.bot.agents,
        TOKENS,
        host="127.0.0.1",
        port=0,
        limits=PortLimits(max_connections=5, max_calls_per_agent=2, request_seconds=0.5),
    )
    await service.start()
    world = Agents(desk)
    world.service, world.url = service, f"http://127.0.0.1:{service.bound_port}/mcp"
    caplog.set_level(logging.WARNING, logger="agent_api.server")
    try:
        half_open = []
        for _ in range(12):  # a request line and one header, then nothing
            reader, writer = await asyncio.open_connection("127.0.0.1", service.bound_port)
            writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            await writer.drain()
            half_open.append((reader, writer))
        loop = asyncio.get_running_loop()
        started = loop.time()
        closed = await asyncio.wait_for(asyncio.gather(*(r.read() for r, _ in half_open)), 5)
        assert closed == [b""] * 12, "every half-open connection is closed by the server"
        assert loop.time() - started < 2, "the extra ones at once, the rest at request_seconds"
        assert service.refusals.total["connections over max_connections"] >= 7
        assert service.refusals.total["requests not sent within request_seconds"] >= 1
        for _, writer in half_open:
            writer.close()

        waiting = [
            asyncio.create_task(world.call("ask_human", question=f"Q{i}?", wait_seconds=3))
            for i in range(2)
        ]
        await eventually(
            lambda: service.server.config.app.in_progress[PRICING] == 2, what="two calls waiting"
        )
        async with httpx2.AsyncClient() as http:
            third = await http.post(
                world.url,
                headers={"Authorization": f"Bearer {TOKENS[PRICING]}"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
        assert third.status_code == 429 and "too many calls in progress" in third.json()["error"]
        other_agent = await world.call("get_result", agent=FRAUD, ticket=1)
        # not refused
        assert other_agent.is_error and "belongs to another agent" in other_agent.content[0].text
        assert [r.structured_content["status"] for r in await asyncio.gather(*waiting)] == [
            "waiting"
        ] * 2
        served = await world.call("get_result", ticket=1)  # the port serves again
        assert served.structured_content["ticket"] == 1
    finally:
        await service.stop()
    lines = [r for r in caplog.records if "MCP port: refused" in r.getMessage()]
    assert len(lines) == 1, "refusals are logged once a minute, not per connection"


async def test_a_port_beyond_this_machine_checks_host_and_origin(desk):
    service = McpService(
        desk.h.bot.agents,
        TOKENS,
        host="127.0.0.1",
        port=0,
        public_url="https://desk.example.com/mcp",
    )
    await service.start()
    url = f"http://127.0.0.1:{service.bound_port}/mcp"
    headers = {
        "Authorization": f"Bearer {TOKENS[PRICING]}",
        "Accept": "application/json, text/event-stream",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    try:
        async with httpx2.AsyncClient() as http:
            named = await http.post(url, headers={**headers, "Host": "desk.example.com"}, json=body)
            rebound = await http.post(
                url, headers={**headers, "Host": "attacker.example"}, json=body
            )
            foreign = await http.post(
                url,
                headers={
                    **headers,
                    "Host": "desk.example.com",
                    "Origin": "https://attacker.example",
                },
                json=body,
            )
    finally:
        await service.stop()
    assert named.status_code == 200
    assert rebound.status_code in (400, 421) and foreign.status_code in (400, 403)
