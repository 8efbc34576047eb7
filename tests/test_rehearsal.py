"""python bot.py --rehearse: the real bot on the Discord stand-in with the scripted model, driven
through the rehearsal page's own endpoints, as the page's buttons do: the seed's three stories."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from rehearsal.rehearse import free_port

ROOT = Path(__file__).resolve().parents[1]


async def start_rehearsal(tmp_path: Path, **extra: str) -> asyncio.subprocess.Process:
    """``bot.py --rehearse`` in ``tmp_path`` (a fresh clone's state: no .env, no policy.toml), its
    output piped; the page's port is free. ``extra``: the deployer's environment."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "ANTHROPIC_", "HANDOFF_"))
    }
    env["HANDOFF_REHEARSAL_DB"] = str(tmp_path / "rehearsal.db")
    env.update(extra)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        "--rehearse",
        "--rehearse-port",
        str(port),
        cwd=tmp_path,  # a fresh clone's state: no .env here
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@contextlib.asynccontextmanager
async def rehearsal(tmp_path: Path, **extra: str) -> AsyncIterator[str]:
    process = await start_rehearsal(tmp_path, **extra)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line
        assert "A scripted model answers" in line and "throwaway key" in line
        yield match[0]
    finally:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 20)
        if process.returncode is None:
            process.kill()


class PageClient:
    """The rehearsal page's own endpoints, as its buttons and boxes call them."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url

    async def state(self, customer: int = 0) -> dict[str, Any]:
        async with self.http.get(f"{self.url}state?customer={customer}") as r:
            return await r.json()

    async def post(self, path: str, **form: Any) -> None:
        async with self.http.post(self.url + path, data={k: str(v) for k, v in form.items()}) as r:
            assert r.status == 200, await r.text()


async def until(read: Callable[[], Any], ok: Callable[[Any], bool], what: str) -> Any:
    for _ in range(150):
        value = await read()
        if ok(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {value}")


async def test_the_three_stories_through_the_rehearsal_page(tmp_path):
    async with rehearsal(tmp_path) as url, aiohttp.ClientSession() as http:
        client = PageClient(http, url)
        state, post = client.state, client.post

        page = await (await http.get(url)).text()
        assert "Rehearsal: nothing here reaches Discord" in page
        # another site's page, or a name rebound to 127.0.0.1, cannot drive it
        forged = {"customer": "0", "text": "!tool issue_refund {}"}
        async with http.post(
            url + "say", data=forged, headers={"Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403
        async with http.post(
            url + "say", data=forged, headers={"Sec-Fetch-Site": "cross-site"}
        ) as r:
            assert r.status == 403
        async with http.get(url + "state", headers={"Host": "evil.example:8787"}) as r:
            assert r.status == 403
        # 1. a discount question answered by an operator in the thread
        await post("say", customer=0, text="!ask May Ada get 15% off?")
        staff = await until(state, lambda s: "data-thread=" in s["staff"], "the ticket's thread")
        thread = re.search(r'data-thread="(\d+)"', staff["staff"])[1]
        await post("write", thread=thread, text="Yes, 15% once.", operator=0)
        await until(state, lambda s: "15% once" in s["dm"], "the answer in the DM")
        await post("write", thread=thread, text="/close reason=answered by phone", operator=0)
        await until(state, lambda s: "answered by phone" in s["dm"], "the slash command's close")
        # 2. an order confirmed with the button
        order = {"item": "mug", "quantity": 1, "address": "1 Example Street, Springfield"}
        await post("say", customer=1, text=f"!tool place_order {json.dumps(order)}")
        dm = await until(
            lambda: state(1), lambda s: "confirm:yes:" in s["dm"], "the Confirm button"
        )
        message, custom_id = re.search(
            r'data-message="(\d+)" data-id="(confirm:yes:\d+)"', dm["dm"]
        ).groups()
        await post("click", where="dm", message=message, id=custom_id, customer=1, operator=0)
        await until(
            lambda: state(1),
            lambda s: "Done: Place an order" in s["dm"],
            "the order",
        )
        # 3. a refund approved with the card's button
        # customer 2 got the demo orders 1-2 and placed 3; this customer's are 4 and 5
        refund = {"order_id": 4, "amount": 10, "reason": "arrived broken"}
        await post("say", customer=2, text=f"!tool issue_refund {json.dumps(refund)}")
        staff = await until(
            state, lambda s: re.search(r'data-id="ticket:approve:\d+"', s["staff"]), "the card"
        )
        message, custom_id = re.search(
            r'data-message="(\d+)" data-id="(ticket:approve:\d+)"', staff["staff"]
        ).groups()
        await post("click", where="staff", message=message, id=custom_id, customer=2, operator=1)
        await until(lambda: state(2), lambda s: "approved and done" in s["dm"], "the refund done")


async def test_a_second_rehearsal_opens_the_same_database_with_the_kept_key(tmp_path):
    async with rehearsal(tmp_path):
        pass
    key = tmp_path / "rehearsal.db.key"
    assert key.stat().st_mode & 0o777 == 0o600, "the throwaway key is the user's alone"
    first = key.read_text()
    async with rehearsal(tmp_path) as url, aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert "throwaway key (rehearsal.db.key)" in await page.text()
    assert key.read_text() == first


async def test_a_bot_that_cannot_start_says_why_on_the_terminal(tmp_path):
    (tmp_path / "policy.toml").write_text("[risk]\nrefund_aproval_above = 50\n")
    process = await start_rehearsal(tmp_path)
    assert process.stdout is not None
    said = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
    assert await process.wait() != 0
    assert "The bot stopped" in said and "refund_aproval_above" in said, said


async def test_pictures_and_files_both_ways_on_the_page(tmp_path):
    from tests.test_files import PDF, PNG

    async with rehearsal(tmp_path) as url, aiohttp.ClientSession() as http:
        state = PageClient(http, url).state

        async def upload(path: str, files: list[tuple[str, bytes]], **fields: Any) -> None:
            form = aiohttp.FormData({k: str(v) for k, v in fields.items()})
            for name, data in files:
                form.add_field("file", data, filename=name)
            async with http.post(url + path, data=form) as r:
                assert r.status == 200, await r.text()

        # the customer's picture reaches the model as an image block (the scripted one says so)
        await upload("say", [("mug.png", PNG)], customer=0, text="the handle came off")
        dm = await until(state, lambda s: "1 picture(s)" in s["dm"], "the model's answer")
        link = re.search(r'<img src="(/file/\d+)" alt="mug.png">', dm["dm"])[1]
        async with http.get(url + link.lstrip("/")) as r:
            assert r.content_type == "image/png" and await r.read() == PNG
        # with a question for the team, the thread shows the picture (re-posted as a file)
        await upload("say", [("mug.png", PNG)], customer=0, text="!ask Can we replace it?")
        staff = await until(state, lambda s: "mug.png" in s["staff"], "the picture in the thread")
        thread = re.search(r'data-thread="(\d+)"', staff["staff"])[1]
        # the operator's PDF reaches the customer's DM as a file; it is served as a download
        await upload("write", [("label.pdf", PDF)], thread=thread, text="Your label.", operator=0)
        dm = await until(state, lambda s: "label.pdf" in s["dm"], "the label in the DM")
        link = re.search(r'<a href="(/file/\d+)">📎 label.pdf', dm["dm"])[1]
        async with http.get(url + link.lstrip("/")) as r:
            assert await r.read() == PDF and r.headers["Content-Disposition"].startswith("attach")


async def test_a_page_port_in_use_is_said_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bot.py"),
            "--rehearse",
            "--rehearse-port",
            str(port),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        said = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in said and "--rehearse-port" in said, said
    assert not (tmp_path / "data" / "rehearsal.db").exists(), "no bot was started"


async def test_the_deployers_agents_are_rehearsed_with_typed_answers(tmp_path):
    """With HANDOFF_MCP_TOKENS the rehearsal serves agents on a port of its own (their webhooks
    off); a typed answer's choices are a select on the page, submitted as Discord does."""
    from tests.test_real_bot_process import AGENT_TOKEN, agent_client

    mcp_port = free_port()
    deployer = {
        "HANDOFF_MCP_TOKENS": f"fraud-review:{AGENT_TOKEN}",
        "HANDOFF_REHEARSAL_MCP_PORT": str(mcp_port),
        "HANDOFF_MCP_WEBHOOKS": "fraud-review=https://agents.example.com/hook",
    }
    schema = {
        "type": "object",
        "properties": {"offer": {"enum": ["discount", "free shipping"]}},
        "required": ["offer"],
    }
    async with (
        rehearsal(tmp_path, **deployer) as url,
        aiohttp.ClientSession() as http,
        agent_client(f"http://127.0.0.1:{mcp_port}/mcp") as agent,
    ):
        client = PageClient(http, url)
        state, post = client.state, client.post

        page = await (await http.get(url)).text()
        assert f"http://127.0.0.1:{mcp_port}/mcp" in page and "webhooks off" in page
        asked = await agent.call_tool(
            "ask_human",
            {"question": "What do we offer?", "answer_schema": schema, "wait_seconds": 0},
        )
        assert asked.structured_content == {"ticket": 1, "status": "waiting"}
        staff = await until(state, lambda s: 'data-id="ticket:answer:1"' in s["staff"], "Answer")
        message = re.search(r'data-message="(\d+)" data-id="ticket:answer:1"', staff["staff"])[1]
        await post("click", where="staff", message=message, id="ticket:answer:1", operator=0)
        told = await until(state, lambda s: any(t.get("form") for t in s["told"]), "the form")
        [form] = [t for t in told["told"] if t.get("form")]
        assert form["fields"] == [
            {"id": "offer", "label": "Offer", "options": ["discount", "free shipping"]}
        ]
        chosen = json.dumps({"offer": "discount"})
        await post("submit", form=form["form"], values=chosen, operator=0)
        result = await agent.call_tool("get_result", {"ticket": 1, "wait_seconds": 15})
        assert result.structured_content["answer_data"] == {"offer": "discount"}
