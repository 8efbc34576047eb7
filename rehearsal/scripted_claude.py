"""A scripted Messages API server on 127.0.0.1 for the real ``anthropic`` client.

Tests queue replies (text, tool calls, errors, delays); anything not scripted is answered
by ``default`` (an echo of the last customer text). Every request body is recorded.
Run as a program for benchmarks: ``python -m rehearsal.scripted_claude --latency 0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.knowledge_text import PASSAGES_INTRO

_ids = itertools.count(1)


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", model: str = "claude-test"
) -> dict:
    return {
        "id": f"msg_{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def text(answer: str, *, delay: float = 0.0) -> Reply:
    return Reply(body=message([{"type": "text", "text": answer}]), delay=delay)


def tool_calls(
    *calls: tuple[str, dict[str, Any]], preamble: str | None = None, delay: float = 0.0
) -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": preamble}] if preamble else []
    for name, arguments in calls:
        content.append(
            {"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": name, "input": arguments}
        )
    return Reply(body=message(content, stop_reason="tool_use"), delay=delay)


ERROR_TYPES = {
    400: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(status: int, *, retry_after_ms: int = 1, message: str = "") -> Reply:
    kind = ERROR_TYPES.get(status, "api_error")
    return Reply(
        status=status,
        body={"type": "error", "error": {"type": kind, "message": message or f"scripted {status}"}},
        headers={"retry-after-ms": str(retry_after_ms)},
    )


def system_text(request: dict[str, Any]) -> str:
    """The request's system prompt as text (a string, or text blocks with cache breakpoints)."""
    system = request.get("system", "")
    return system if isinstance(system, str) else "".join(b.get("text", "") for b in system)


def last_user_text(request: dict[str, Any]) -> str:
    for msg in reversed(request["messages"]):
        if msg["role"] != "user":
            continue
        content = msg["content"]
        if isinstance(content, str):
            return content
        texts = [
            b["text"]
            for b in content
            if b.get("type") == "text" and not b["text"].startswith(PASSAGES_INTRO)
        ]
        if texts:
            return texts[-1]
    return ""


def echo(request: dict[str, Any]) -> Reply:
    return text(f"You said: {last_user_text(request)}")


PASSAGE = re.compile(
    r'<passage id="K(\d+)" title="[^"]*"(?: url="[^"]*")?>\n(.*?)\n</passage>', re.S
)


def passages_in(request: dict[str, Any]) -> list[tuple[int, str]]:
    """(id, text) of the knowledge passages quoted in the request's last user message."""
    found: list[tuple[int, str]] = []
    for block in request["messages"][-1]["content"]:
        if block.get("type") == "text" and block["text"].startswith(PASSAGES_INTRO):
            found += [(int(i), body) for i, body in PASSAGE.findall(block["text"])]
    return found


def answer_from_knowledge(request: dict[str, Any]) -> Reply:
    """A model that does what the knowledge rules say: answers from the first passage it is given
    (citing it), and asks our team when it is given none."""
    last = request["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("I've asked our team; they will answer you here.")
    given = passages_in(request)
    if given:
        number, body = given[0]
        return text(f"{body.splitlines()[-1]} [K{number}]")
    return tool_calls(("ask_human", {"question": last_user_text(request)}))


class PromptCache:
    """The Messages API's prompt caching, as documented: the prompt is tools, then system, then
    messages; a block with ``cache_control`` caches the prefix ending at it when that prefix is at
    least ``minimum`` tokens; a request reads the longest cached prefix that ends at one of its
    breakpoints or at one of the 20 blocks before each; an entry lives 5 minutes from its last use;
    at most 4 breakpoints (more is a 400). Tokens are counted as 4 characters of canonical JSON."""

    LOOKBACK = 20
    LIFETIME = 300.0

    def __init__(self, minimum: int = 1024) -> None:
        self.minimum = minimum
        self.entries: dict[str, float] = {}  # prefix hash -> expiry (time.monotonic)

    @staticmethod
    def _blocks(request: dict[str, Any]) -> list[tuple[str, bool]]:
        """(canonical text, marked) of every block of the prompt, in cache order."""
        system = request.get("system", [])
        system = [{"type": "text", "text": system}] if isinstance(system, str) else system
        blocks = [*request.get("tools", []), *system]
        for message in request.get("messages", []):
            content = message["content"]
            content = [{"type": "text", "text": content}] if isinstance(content, str) else content
            blocks += [{**b, "_role": message["role"]} for b in content]
        out = []
        for block in blocks:
            plain = {k: v for k, v in block.items() if k != "cache_control"}
            out.append((json.dumps(plain, sort_keys=True), "cache_control" in block))
        return out

    def usage(self, request: dict[str, Any]) -> dict[str, int] | str:
        """The usage the API reports for this request, or why it refuses it (400)."""
        blocks = self._blocks(request)
        marks = [i for i, (_, marked) in enumerate(blocks) if marked]
        if len(marks) > 4:
            return f"A maximum of 4 blocks with cache_control may be provided. Found {len(marks)}."
        hashes, sizes, digest, size = [], [], hashlib.sha256(), 0
        for text_, _ in blocks:
            digest.update(text_.encode())
            size += len(text_) // 4
            hashes.append(digest.hexdigest())
            sizes.append(size)
        total = size + len(json.dumps(request.get("model", ""))) // 4
        now = time.monotonic()
        read = 0
        for mark in marks:
            for i in range(mark, max(-1, mark - self.LOOKBACK - 1), -1):
                expiry = self.entries.get(hashes[i])
                if expiry is not None and expiry > now:
                    self.entries[hashes[i]] = now + self.LIFETIME
                    read = max(read, sizes[i])
                    break
        written = 0
        for mark in marks:
            if sizes[mark] >= self.minimum and sizes[mark] > read:
                if hashes[mark] not in self.entries or self.entries[hashes[mark]] <= now:
                    written = max(written, sizes[mark] - read)
                self.entries[hashes[mark]] = now + self.LIFETIME
        return {
            "input_tokens": total - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
        }


class FakeClaude:
    def __init__(
        self,
        *,
        latency: float = 0.0,
        default: Callable[[dict[str, Any]], Reply] = echo,
        requests_per_minute: int = 4000,
    ) -> None:
        self.latency = latency
        self.default = default
        self.script: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.cache = PromptCache()
        # the key's limit, announced in the real headers; past it, 429 with retry-after
        self.requests_per_minute = requests_per_minute
        self._minute: deque[float] = deque()
        self.usages: list[dict[str, int]] = []  # what each answered request reported

    def then(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> FakeClaude:
        self.script.extend(replies)
        return self

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        now = time.monotonic()
        while self._minute and self._minute[0] <= now - 60:
            self._minute.popleft()
        if len(self._minute) >= self.requests_per_minute:
            wait = max(1, int(self._minute[0] + 60 - now) + 1)
            self.statuses.append(429)
            return web.json_response(
                {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                status=429,
                headers={"retry-after": str(wait), **self._limits(0)},
            )
        self._minute.append(now)
        step = self.script.popleft() if self.script else self.default
        reply = step(body) if callable(step) else step
        delay = self.latency + reply.delay
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        self.statuses.append(reply.status)
        headers = {
            "request-id": f"req_{next(_ids)}",
            **self._limits(self.requests_per_minute - len(self._minute)),
            **reply.headers,
        }
        payload = reply.body
        if reply.status == 200 and "usage" in payload:
            usage = self.cache.usage(body)
            if isinstance(usage, str):
                payload = {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": usage},
                }
                return web.json_response(payload, status=400, headers=headers)
            output = sum(len(b.get("text", "")) for b in payload["content"]) // 4 + 1
            payload = {**payload, "usage": {**usage, "output_tokens": output}}
            self.usages.append(payload["usage"])
        if reply.status == 200 and body.get("stream"):
            return await self._stream(request, payload, headers)
        return web.Response(
            status=reply.status,
            text=json.dumps(payload),
            content_type="application/json",
            headers=headers,
        )

    async def _stream(
        self, request: web.Request, payload: dict[str, Any], headers: dict[str, str]
    ) -> web.StreamResponse:
        """The same message as server-sent events, as the API streams it (Claude Code always
        asks for a stream): start, each block's start, delta and stop, the stop reason, stop."""
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)

        async def event(kind: str, data: dict[str, Any]) -> None:
            await response.write(
                f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()
            )

        usage = payload["usage"]
        start = {
            **payload,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        await event("message_start", {"message": start})
        for index, block in enumerate(payload["content"]):
            if block["type"] == "tool_use":
                empty, delta = (
                    {**block, "input": {}},
                    {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                )
            else:
                empty, delta = {**block, "text": ""}, {"type": "text_delta", "text": block["text"]}
            await event("content_block_start", {"index": index, "content_block": empty})
            await event("content_block_delta", {"index": index, "delta": delta})
            await event("content_block_stop", {"index": index})
        stop = {"stop_reason": payload["stop_reason"], "stop_sequence": None}
        await event(
            "message_delta", {"delta": stop, "usage": {"output_tokens": usage["output_tokens"]}}
        )
        await event("message_stop", {})
        await response.write_eof()
        return response

    def _limits(self, remaining: int) -> dict[str, str]:
        """The rate-limit headers the API sends with every answer."""
        return {
            "anthropic-ratelimit-requests-limit": str(self.requests_per_minute),
            "anthropic-ratelimit-requests-remaining": str(max(0, remaining)),
            "anthropic-ratelimit-input-tokens-remaining": "2000000",
        }

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)  # the API takes 32 MB
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _serve(latency: float, port: int) -> None:
    server = FakeClaude(latency=latency)
    url = await server.start(port)
    print(url, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_serve(args.latency, args.port))
