"""A stand-in for Discord's REST API on 127.0.0.1, for discord.py's real HTTP client.

It answers the routes a DM bot uses (the bot user, users, DM channels, typing, messages) with
Discord's shapes, enforces a global rate (requests per second) and the per-channel message
limit (5 per 5 s) with Discord's real 429 answers: a JSON body ``{"message", "retry_after",
"global"}``, ``Retry-After``, ``X-RateLimit-Scope``, and a ``Via`` header (without it discord.py
takes a 429 for a Cloudflare ban). Tests can script answers (``script``), hold a route
(``hold``), and read what was asked (``requests``). Messages sent with ``enforce_nonce`` and a
nonce seen in the last minutes are not stored twice, as Discord does.

Point discord.py at it with ``use_fake_discord(server)`` (it sets ``discord.http.Route.BASE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import discord.http
from aiohttp import web

BOT_ID = 700000000000000001
_ids = itertools.count(800000000000000001)


def user_json(user_id: int, name: str | None = None, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name or f"user{user_id % 10000}", "discriminator": "0",
            "global_name": None, "avatar": None, "bot": bot}


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    status: int
    at: float
    body: Any = None


class FakeDiscord:
    def __init__(self, *, global_per_second: float = 50, channel_messages: int = 5, channel_window: float = 5.0,
                 latency: float = 0.0) -> None:
        self.global_per_second = global_per_second
        self.channel_messages = channel_messages
        self.channel_window = channel_window
        self.latency = latency
        self.requests: list[Seen] = []
        self.messages: dict[int, list[dict[str, Any]]] = defaultdict(list)  # channel id -> messages stored
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._held: dict[str, asyncio.Event] = {}
        self._global: deque[float] = deque()
        self._channel: dict[int, deque[float]] = defaultdict(deque)
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- scripting ------------------------------------------------------------------------

    def script(self, key: str, *answers: Scripted) -> None:
        """The next answers for a route key such as "POST /channels/{id}/typing" (any channel)."""
        self._scripts[key].extend(answers)

    def hold(self, key: str) -> asyncio.Event:
        """Requests to this route wait until the returned event is set (Discord not answering)."""
        self._held[key] = asyncio.Event()
        return self._held[key]

    @staticmethod
    def global_429(retry_after: float) -> Scripted:
        return Scripted(429, {"message": "You are being rate limited.", "retry_after": retry_after, "global": True},
                        {"Retry-After": str(retry_after), "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global",
                         "Via": "1.1 google"})

    def count(self, method: str, prefix: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(prefix)
                   and (status is None or r.status == status))

    # -- serving --------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/v10"
        return self

    async def stop(self) -> None:
        for event in self._held.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _key(method: str, path: str) -> str:
        parts = ["{id}" if p.isdigit() else p for p in path.strip("/").split("/")]
        return f"{method} /{'/'.join(parts)}"

    def _limited(self, now: float, channel_id: int | None) -> Scripted | None:
        while self._global and self._global[0] <= now - 1.0:
            self._global.popleft()
        if len(self._global) >= self.global_per_second:
            retry = round(self._global[0] + 1.0 - now, 3)
            return self.global_429(max(retry, 0.001))
        if channel_id is not None:
            window = self._channel[channel_id]
            while window and window[0] <= now - self.channel_window:
                window.popleft()
            if len(window) >= self.channel_messages:
                retry = round(window[0] + self.channel_window - now, 3)
                return Scripted(429, {"message": "You are being rate limited.", "retry_after": max(retry, 0.001),
                                      "global": False},
                                {"Retry-After": str(max(retry, 0.001)), "X-RateLimit-Scope": "user",
                                 "X-RateLimit-Limit": str(self.channel_messages), "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset-After": str(max(retry, 0.001)),
                                 "X-RateLimit-Bucket": f"messages-{channel_id}", "Via": "1.1 google"})
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        key = self._key(request.method, path)
        body = await request.json() if request.can_read_body and request.content_type == "application/json" else None
        if self.latency:
            await asyncio.sleep(self.latency)
        held = self._held.get(key)
        if held is not None:
            await held.wait()
        now = time.monotonic()
        parts = path.strip("/").split("/")
        channel_id = int(parts[1]) if key == "POST /channels/{id}/messages" else None
        answer = self._scripts[key].popleft() if self._scripts[key] else self._limited(now, channel_id)
        if answer is None:
            self._global.append(now)
            answer = self._route(request.method, parts, body, now, channel_id)
        self.requests.append(Seen(request.method, path, answer.status, now, body))
        if answer.status == 204:
            return web.Response(status=204, headers=answer.headers)
        # Exactly "application/json", as Discord sends it: discord.py reads anything else as text.
        return web.Response(body=json.dumps(answer.body).encode(), status=answer.status,
                            headers={"Content-Type": "application/json", **answer.headers})

    def _route(self, method: str, parts: list[str], body: Any, now: float, channel_id: int | None) -> Scripted:
        if parts[:2] == ["users", "@me"] and method == "GET":
            return Scripted(200, user_json(BOT_ID, "handoff", bot=True))
        if parts[:3] == ["users", "@me", "channels"] and method == "POST":
            recipient = int(body["recipient_id"])
            return Scripted(200, {"id": str(recipient + 1), "type": 1, "last_message_id": None,
                                  "recipients": [user_json(recipient)]})
        if parts[0] == "users" and method == "GET":
            return Scripted(200, user_json(int(parts[1])))
        if parts[0] == "channels" and parts[2:] == ["typing"]:
            return Scripted(204, None)
        if channel_id is not None:
            nonce = str(body.get("nonce") or "")
            if nonce and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
                return Scripted(200, self._nonces[(channel_id, nonce)])
            self._channel[channel_id].append(now)
            message = {"id": str(next(_ids)), "channel_id": str(channel_id), "author": user_json(BOT_ID, bot=True),
                       "content": body.get("content", ""), "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                       "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                       "mention_roles": [], "attachments": [], "embeds": body.get("embeds") or [], "pinned": False,
                       "type": 0, "flags": 0, "nonce": nonce or None, "components": body.get("components") or []}
            if nonce:
                self._nonces[(channel_id, nonce)] = message
            self.messages[channel_id].append(message)
            return Scripted(200, message, {"X-RateLimit-Limit": str(self.channel_messages),
                                           "X-RateLimit-Remaining": str(max(0, self.channel_messages - len(
                                               self._channel[channel_id]))),
                                           "X-RateLimit-Reset-After": str(self.channel_window),
                                           "X-RateLimit-Bucket": f"messages-{channel_id}"})
        return Scripted(404, {"message": "Unknown route", "code": 0})


@contextlib.contextmanager
def use_fake_discord(server: FakeDiscord) -> Iterator[None]:
    """discord.py's requests go to ``server`` while inside this block."""
    original = discord.http.Route.BASE
    discord.http.Route.BASE = server.url
    try:
        yield
    finally:
        discord.http.Route.BASE = original
