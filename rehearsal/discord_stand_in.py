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
import mimetypes
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.http
from aiohttp import BodyPartReader, web

from cogs.discord.setup_check import STAFF_PERMISSIONS

BOT_ID = 700000000000000001
_last_id = 0


def _new_id() -> int:
    """A snowflake as Discord makes them: its creation time in the high bits, so reading "after" a
    time works."""
    global _last_id
    _last_id = max(_last_id + 1, discord.utils.time_snowflake(dt.datetime.now(dt.UTC)))
    return _last_id


def user_json(user_id: int, name: str | None = None, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name or f"user{user_id % 10000}",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


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
    def __init__(
        self,
        *,
        global_per_second: float = 50,
        channel_messages: int = 5,
        channel_window: float = 5.0,
        latency: float = 0.0,
    ) -> None:
        self.global_per_second = global_per_second
        self.channel_messages = channel_messages
        self.channel_window = channel_window
        self.latency = latency
        self.requests: list[Seen] = []  # answered requests
        # "METHOD /path" of every request as it arrives (before any hold)
        self.arrived: list[str] = []
        # channel id -> messages stored
        self.messages: dict[int, list[dict[str, Any]]] = defaultdict(list)
        # channel id -> what people wrote
        self.written: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.files: list[tuple[str, bytes]] = []  # (name, content) of every file uploaded
        # every file on the "CDN" (the bot's uploads, customers' and operators' attachments), by id
        self.attachments: dict[int, tuple[str, bytes]] = {}
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._held: dict[str, asyncio.Event] = {}
        self._global: deque[float] = deque()
        self._channel: dict[int, deque[float]] = defaultdict(deque)
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.gateway_url = ""
        # The world a guild bot sees: one guild, a staff channel, an operator role, threads made on
        # cards.
        self.guild_id, self.staff_channel_id, self.operator_role_id = (
            900000000000000001,
            900000000000000002,
            900000000000000003,
        )
        self.operator_id = 900000000000000004
        # thread id (= its card's message id) -> channel JSON
        self.threads: dict[int, dict[str, Any]] = {}
        # what the bot answered to interactions (callbacks)
        self.interactions: list[dict[str, Any]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)
        self.identified = asyncio.Event()  # a bot connected and identified (READY sent)
        self._background: set[asyncio.Task[bool]] = set()

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
        return Scripted(
            429,
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": True},
            {
                "Retry-After": str(retry_after),
                "X-RateLimit-Global": "true",
                "X-RateLimit-Scope": "global",
                "Via": "1.1 google",
            },
        )

    def count(self, method: str, prefix: str, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if r.method == method
            and r.path.startswith(prefix)
            and (status is None or r.status == status)
        )

    # -- serving --------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_route("GET", "/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)
        app.router.add_route("GET", "/cdn/attachments/{id}/{filename}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/v10"
        self.cdn_url = f"http://127.0.0.1:{port}/cdn"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def _cdn(self, request: web.Request) -> web.Response:
        """An attachment's bytes, at the URL its message carries (Discord's CDN)."""
        found = self.attachments.get(int(request.match_info["id"]))
        if found is None or found[0] != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[1], content_type="application/octet-stream")

    def attachment(self, filename: str, data: bytes) -> dict[str, Any]:
        """A file kept on the stand-in's CDN, as a message's attachment object."""
        attachment_id = _new_id()
        self.attachments[attachment_id] = (filename, data)
        url = f"{self.cdn_url}/attachments/{attachment_id}/{filename}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            **({"content_type": kind} if (kind := mimetypes.guess_type(filename)[0]) else {}),
        }

    async def stop(self) -> None:
        for event in self._held.values():
            event.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def route_key(method: str, path: str) -> str:
        """ "POST /channels/{id}/messages": a route with its ids folded (how scripts and counts name
        it)."""
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
                return Scripted(
                    429,
                    {
                        "message": "You are being rate limited.",
                        "retry_after": max(retry, 0.001),
                        "global": False,
                    },
                    {
                        "Retry-After": str(max(retry, 0.001)),
                        "X-RateLimit-Scope": "user",
                        "X-RateLimit-Limit": str(self.channel_messages),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": str(max(retry, 0.001)),
                        "X-RateLimit-Bucket": f"messages-{channel_id}",
                        "Via": "1.1 google",
                    },
                )
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        key = self.route_key(request.method, path)
        body = await self._body(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        self.arrived.append(f"{request.method} {path}")
        held = self._held.get(key)
        if held is not None:
            await held.wait()
        now = time.monotonic()
        parts = path.strip("/").split("/")
        channel_id = int(parts[1]) if key == "POST /channels/{id}/messages" else None
        # Interaction answers and follow-ups are not bound by the global limit (Discord's rule).
        interaction = parts[0] in ("interactions", "webhooks")
        answer = (
            self._scripts[key].popleft()
            if self._scripts[key]
            else (None if interaction else self._limited(now, channel_id))
        )
        if answer is None:
            if not interaction:
                self._global.append(now)
            answer = (
                self._history(int(parts[1]), request.query)
                if key == "GET /channels/{id}/messages"
                else self._route(request.method, parts, body, now, channel_id)
            )
        self.requests.append(Seen(request.method, path, answer.status, now, body))
        if answer.status in (204,) or answer.body is None:
            return web.Response(status=204, headers=answer.headers)
        # Exactly "application/json", as Discord sends it: discord.py reads anything else as text.
        return web.Response(
            body=json.dumps(answer.body).encode(),
            status=answer.status,
            headers={"Content-Type": "application/json", **answer.headers},
        )

    async def _body(self, request: web.Request) -> Any:
        """JSON, or a multipart upload's ``payload_json`` with its files listed as attachments (as
        Discord keeps them)."""
        if not request.can_read_body:
            return None
        if request.content_type == "application/json":
            return await request.json()
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            files = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # no nested multipart in what discord.py sends
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.filename:
                    data = bytes(await part.read())
                    self.files.append((part.filename, data))
                    files.append(self.attachment(part.filename, data))
            return {**payload, "attachments": files} if files else payload
        return None

    def _message(self, channel_id: int, body: dict[str, Any], nonce: str) -> dict[str, Any]:
        return message_json(
            channel_id,
            user_json(BOT_ID, "handoff", bot=True),
            body.get("content", ""),
            attachments=[a for a in body.get("attachments") or [] if "filename" in a],
            embeds=body.get("embeds") or [],
            nonce=nonce or None,
            components=body.get("components") or [],
            **(
                {"guild_id": str(self.guild_id)}
                if channel_id == self.staff_channel_id or channel_id in self.threads
                else {}
            ),
        )

    def _history(self, channel_id: int, query: Any) -> Scripted:
        """GET /channels/{id}/messages: with ``after``, the ``limit`` messages right after it,
        newest first."""
        limit = min(int(query.get("limit", 50)), 100)
        everything = sorted(
            self.messages.get(channel_id, []) + self.written.get(channel_id, []),
            key=lambda m: int(m["id"]),
        )
        if "after" in query:
            chosen = [m for m in everything if int(m["id"]) > int(query["after"])][:limit]
        else:
            before = int(query.get("before", 1 << 63))
            chosen = [m for m in everything if int(m["id"]) < before][-limit:]
        return Scripted(200, list(reversed(chosen)))

    def find_message(self, message_id: int) -> dict[str, Any] | None:
        for messages in self.messages.values():
            for message in messages:
                if int(message["id"]) == message_id:
                    return message
        return None

    def _route(
        self, method: str, parts: list[str], body: Any, now: float, channel_id: int | None
    ) -> Scripted:
        if parts == ["users", "@me"] and method == "GET":
            return Scripted(200, user_json(BOT_ID, "handoff", bot=True))
        if parts == ["oauth2", "applications", "@me"]:
            return Scripted(
                200,
                {
                    "id": str(BOT_ID),
                    "name": "Handoff",
                    "icon": None,
                    "description": "",
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "verify_key": "0" * 64,
                    "owner": user_json(self.operator_id),
                    "team": None,
                    "flags": 0,
                    "interactions_endpoint_url": None,
                    "rpc_origins": [],
                },
            )
        if parts == ["gateway"]:
            return Scripted(200, {"url": self.gateway_url})
        if parts == ["gateway", "bot"]:
            return Scripted(
                200,
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 1000,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                },
            )
        if parts[0] == "applications" and method == "PUT":  # slash commands registered
            return Scripted(
                200,
                [
                    {**c, "id": str(_new_id()), "application_id": str(BOT_ID), "version": "1"}
                    for c in body or []
                ],
            )
        # POST /interactions/{id}/{token}/callback?with_response=true
        if parts[0] == "interactions":
            self.interactions.append(body)
            return Scripted(
                200,
                {
                    "interaction": {
                        "id": parts[1],
                        "type": 3,
                        "activity_instance_id": None,
                        "response_message_id": None,
                        "response_message_loading": False,
                        "response_message_ephemeral": False,
                    }
                },
            )
        if parts[0] == "webhooks":  # follow-ups and edits of interaction answers
            self.interactions.append(body or {})
            return Scripted(200, self._message(0, body or {}, ""))
        if parts[:3] == ["users", "@me", "channels"] and method == "POST":
            recipient = int(body["recipient_id"])
            return Scripted(
                200,
                {
                    "id": str(recipient + 1),
                    "type": 1,
                    "last_message_id": None,
                    "recipients": [user_json(recipient)],
                },
            )
        if parts[0] == "users" and method == "GET":
            return Scripted(200, user_json(int(parts[1])))
        if parts[0] == "channels" and parts[2:] == ["typing"]:
            return Scripted(204, None)
        # a thread on a card
        if parts[0] == "channels" and len(parts) == 5 and parts[4] == "threads":
            message_id = int(parts[3])
            if message_id in self.threads:
                return Scripted(
                    400,
                    {
                        "code": 160004,
                        "message": "A thread has already been created for this message",
                    },
                )
            self.threads[message_id] = {
                "id": str(message_id),
                "type": 11,
                "guild_id": str(self.guild_id),
                "parent_id": parts[1],
                "owner_id": str(BOT_ID),
                "name": body.get("name", "thread"),
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "last_message_id": None,
                "thread_metadata": {
                    "archived": False,
                    "locked": False,
                    "auto_archive_duration": body.get("auto_archive_duration", 10080),
                    "archive_timestamp": dt.datetime.now(dt.UTC).isoformat(),
                },
            }
            # Discord follows a new thread with THREAD_CREATE on the gateway (the bot then has it
            # cached).
            task = asyncio.get_running_loop().create_task(
                self.dispatch("THREAD_CREATE", {**self.threads[message_id], "newly_created": True})
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return Scripted(201, self.threads[message_id])
        # GET or PATCH a channel (a thread: fetch, archive)
        if parts[0] == "channels" and len(parts) == 2:
            thread = self.threads.get(int(parts[1]))
            if thread is None:
                if int(parts[1]) == self.staff_channel_id:
                    return Scripted(200, self.staff_channel_json())
                return Scripted(404, {"code": 10003, "message": "Unknown Channel"})
            if method == "PATCH" and "archived" in (body or {}):
                thread["thread_metadata"]["archived"] = bool(body["archived"])
            return Scripted(200, thread)
        # GET or PATCH one message
        if parts[0] == "channels" and len(parts) == 4 and parts[2] == "messages":
            message = self.find_message(int(parts[3]))
            if message is None:
                return Scripted(404, {"code": 10008, "message": "Unknown Message"})
            if method == "DELETE":
                self.messages[int(parts[1])].remove(message)
                return Scripted(204, None)
            if method == "PATCH":
                message.update(
                    {
                        k: v
                        for k, v in (body or {}).items()
                        if k in ("content", "embeds", "components")
                    }
                )
                message["edited_timestamp"] = dt.datetime.now(dt.UTC).isoformat()
            return Scripted(200, message)
        if channel_id is not None:
            nonce = str(body.get("nonce") or "")
            if nonce and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
                return Scripted(200, self._nonces[(channel_id, nonce)])
            self._channel[channel_id].append(now)
            message = self._message(channel_id, body, nonce)
            if nonce:
                self._nonces[(channel_id, nonce)] = message
            self.messages[channel_id].append(message)
            return Scripted(
                200,
                message,
                {
                    "X-RateLimit-Limit": str(self.channel_messages),
                    "X-RateLimit-Remaining": str(
                        max(0, self.channel_messages - len(self._channel[channel_id]))
                    ),
                    "X-RateLimit-Reset-After": str(self.channel_window),
                    "X-RateLimit-Bucket": f"messages-{channel_id}",
                },
            )
        return Scripted(404, {"message": "Unknown route", "code": 0})

    # -- the gateway ----------------------------------------------------------------------

    def staff_channel_json(self) -> dict[str, Any]:
        return {
            "id": str(self.staff_channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "staff",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def guild_json(self) -> dict[str, Any]:
        # a server set up as DISCORD_BOT.md says: what the staff desk checks for, and pings
        allowed = discord.Permissions(
            **dict.fromkeys((flag for flag, _ in STAFF_PERMISSIONS), True),
            mention_everyone=True,
            use_application_commands=True,
        )
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(allowed.value),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
        }
        operators = {
            "id": str(self.operator_role_id),
            "name": "Operators",
            "permissions": "0",
            "position": 1,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": True,
        }
        joined = dt.datetime.now(dt.UTC).isoformat()
        members = [
            {
                "user": user_json(BOT_ID, "handoff", bot=True),
                "roles": [],
                "joined_at": joined,
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
            {
                "user": user_json(self.operator_id, "operator"),
                "roles": [str(self.operator_role_id)],
                "joined_at": joined,
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
        ]
        return {
            "id": str(self.guild_id),
            "name": "Shop",
            "owner_id": str(self.operator_id),
            "roles": [everyone, operators],
            "channels": [self.staff_channel_json()],
            "threads": list(self.threads.values()),
            "members": members,
            "member_count": len(members),
            "unavailable": False,
            "emojis": [],
            "stickers": [],
            "features": [],
            "large": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """Discord's gateway, as much as a DM and desk bot needs: HELLO, IDENTIFY -> READY +
        GUILD_CREATE, heartbeats; events go out with ``dispatch``."""
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        )
        try:
            async for frame in ws:
                if frame.type != web.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                if message.get("op") == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif message.get("op") == 2:
                    await self._send(
                        ws,
                        "READY",
                        {
                            "v": 10,
                            "user": user_json(BOT_ID, "handoff", bot=True),
                            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                            "session_id": "fake",
                            "resume_gateway_url": self.gateway_url,
                            "application": {"id": str(BOT_ID), "flags": 0},
                            "private_channels": [],
                            "relationships": [],
                        },
                    )
                    await self._send(ws, "GUILD_CREATE", self.guild_json())
                    self.identified.set()
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    @property
    def connected(self) -> bool:
        return self.sessions > 0

    @property
    def sessions(self) -> int:
        """Gateway sessions open now (one token, two sessions: both get every event)."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def dispatch(self, event: str, data: dict[str, Any]) -> bool:
        """Send a gateway event to the connected bot; False when none is connected (the event is
        missed)."""
        sent = False
        for ws in list(self._sockets):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._send(ws, event, data)
                    sent = True
        return sent

    @staticmethod
    def _written(channel_id: int, author: dict[str, Any], content: str) -> dict[str, Any]:
        """A message someone (not the bot) wrote, as MESSAGE_CREATE carries it."""
        return message_json(channel_id, author, content)

    async def customer_writes(
        self, user_id: int, content: str, files: Sequence[tuple[str, bytes]] = ()
    ) -> tuple[int, bool]:
        """A DM from a customer, with files (name, bytes) if any: (its message id, whether a bot
        received it). Discord keeps it either way."""
        data = self._written(user_id + 1, user_json(user_id), content)
        data["attachments"] = [self.attachment(name, raw) for name, raw in files]
        self.written[user_id + 1].append(data)
        return int(data["id"]), await self.dispatch("MESSAGE_CREATE", data)

    def _operator_member(self, operator_id: int | None = None) -> dict[str, Any]:
        who = operator_id or self.operator_id
        return {
            "user": user_json(
                who, "operator" if who == self.operator_id else f"operator{who % 100}"
            ),
            "roles": [str(self.operator_role_id)],
            "joined_at": dt.datetime.now(dt.UTC).isoformat(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": "2147483647",
        }

    async def operator_writes(
        self,
        thread_id: int,
        content: str,
        operator_id: int | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> bool:
        """An operator (by default the first) writes in a ticket's thread, with files if any."""
        member = self._operator_member(operator_id)
        data = self._written(thread_id, member["user"], content)
        data["attachments"] = [self.attachment(name, raw) for name, raw in files]
        data["guild_id"] = str(self.guild_id)
        data["member"] = {k: v for k, v in member.items() if k != "user"}
        self.messages[thread_id].append(data)
        return await self.dispatch("MESSAGE_CREATE", data)

    async def customer_clicks(self, user_id: int, message: dict[str, Any], custom_id: str) -> bool:
        """A customer presses a button under a DM (a confirmation's Yes)."""
        interaction_id = _new_id()
        return await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction_id),
                "application_id": str(BOT_ID),
                "type": 3,
                "token": f"token-{interaction_id}",
                "version": 1,
                "channel_id": str(user_id + 1),
                "channel": {"id": str(user_id + 1), "type": 1},
                "user": user_json(user_id),
                "message": message,
                "data": {"custom_id": custom_id, "component_type": 2},
                "locale": "en-US",
                "app_permissions": "2147483647",
                "entitlements": [],
                "authorizing_integration_owners": {},
                "context": 1,
                "attachment_size_limit": 8388608,
            },
        )

    async def operator_clicks(
        self, message: dict[str, Any], custom_id: str, operator_id: int | None = None
    ) -> bool:
        """An operator (by default the first) presses a button on a message in the staff
        channel."""
        return await self._operator_interaction(
            3, {"custom_id": custom_id, "component_type": 2}, message, operator_id
        )

    async def operator_command(
        self,
        channel_id: int,
        name: str,
        options: dict[str, str | int],
        operator_id: int | None = None,
    ) -> bool:
        """An operator runs a slash command (a guild command) in the staff channel or a thread."""
        data = {
            "id": str(_new_id()),
            "name": name,
            "type": 1,
            "guild_id": str(self.guild_id),
            "options": [
                {"name": k, "type": 4 if isinstance(v, int) else 3, "value": v}
                for k, v in options.items()
            ],
        }
        return await self._operator_interaction(2, data, None, operator_id, channel_id)

    async def operator_submits(
        self, custom_id: str, values: dict[str, str], operator_id: int | None = None
    ) -> bool:
        """An operator submits a form (a modal the bot opened), shaped as Discord sends it: a text
        input's ``value``; a select (under its label) the chosen ``values``."""
        opened = self.form_fields(custom_id)
        rows: list[dict[str, Any]] = []
        for k, v in values.items():
            field = opened.get(k, {"type": 4, "labelled": False})
            if field["type"] == 3:
                select = {"type": 3, "custom_id": k, "values": [v] if v else []}
                rows.append({"type": 18, "component": select})
            elif field["labelled"]:
                rows.append({"type": 18, "component": {"type": 4, "custom_id": k, "value": v}})
            else:
                rows.append({"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]})
        return await self._operator_interaction(
            5, {"custom_id": custom_id, "components": rows}, None, operator_id
        )

    def form_fields(self, custom_id: str) -> dict[str, dict[str, Any]]:
        """The fields of the form the bot last opened with this custom_id, by custom_id: its
        component type, label, options (a select's values) and whether it sits under a label."""
        for body in reversed(self.interactions):
            data = (body or {}).get("data") or {}
            if (body or {}).get("type") == 9 and data.get("custom_id") == custom_id:
                return {
                    field["custom_id"]: field
                    for row in data.get("components") or []
                    for field in modal_fields(row)
                }
        return {}

    async def _operator_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        message: dict[str, Any] | None,
        operator_id: int | None,
        channel_id: int | None = None,
    ) -> bool:
        interaction_id = _new_id()
        where = channel_id or self.staff_channel_id
        channel = self.threads.get(where) or {"id": str(where), "type": 0}
        member = self._operator_member(operator_id)
        return await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction_id),
                "application_id": str(BOT_ID),
                "type": kind,
                "token": f"token-{interaction_id}",
                "version": 1,
                "guild_id": str(self.guild_id),
                "channel_id": str(where),
                "channel": channel,
                "member": member,
                **({"message": message} if message is not None else {}),
                "data": data,
                "locale": "en-US",
                "guild_locale": "en-US",
                "app_permissions": "2147483647",
                "entitlements": [],
                "authorizing_integration_owners": {},
                "attachment_size_limit": 8388608,
            },
        )


def message_json(
    channel_id: int | str, author: dict[str, Any], content: str, **fields: Any
) -> dict[str, Any]:
    """A message object as Discord sends it (a new id, now); ``fields`` set or add the rest."""
    return {
        "id": str(_new_id()),
        "channel_id": str(channel_id),
        "author": author,
        "content": content,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
        **fields,
    }


def modal_fields(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One top-level component of a modal as its fields: an action row's text inputs, or the one
    component under a label (type 18)."""
    if row.get("type") == 18:
        inner = row.get("component") or {}
        return [
            {
                "custom_id": inner.get("custom_id"),
                "type": inner.get("type"),
                "label": row.get("label") or inner.get("custom_id"),
                "options": [o.get("value") for o in inner.get("options") or []],
                "labelled": True,
            }
        ]
    return [
        {
            "custom_id": c.get("custom_id"),
            "type": c.get("type"),
            "label": c.get("label") or c.get("custom_id"),
            "options": [],
            "labelled": False,
        }
        for c in row.get("components") or []
        if c.get("custom_id")
    ]


@contextlib.contextmanager
def use_fake_discord(server: FakeDiscord) -> Iterator[None]:
    """discord.py's requests go to ``server`` while inside this block."""
    original = discord.http.Route.BASE
    discord.http.Route.BASE = server.url
    try:
        yield
    finally:
        discord.http.Route.BASE = original
