"""Handoff's desk for other agents, over the Model Context Protocol (streamable HTTP at ``/mcp``).

Tools: ``ask_human``, ``request_approval``, ``get_result``, ``notify_operators``. Every request
needs ``Authorization: Bearer <token>`` from ``HANDOFF_MCP_TOKENS``; the token's name is the agent's
name on its tickets and in the audit. The server is stateless (each request stands alone, JSON
answers), so a client's reconnect or retry needs nothing from a session; it runs on the bot's own
event loop and database (``McpService``), beside discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.agent_desk import DEFAULT_WAIT, MAX_WAIT, AgentDesk, AgentError
from core.policy_sections import AgentsSection

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "A human desk: people on a support team answer your questions and approve or deny your actions"
    " in Discord. Calls return at once with a ticket number and wait at most wait_seconds (default"
    " 25, at most 50) for the person; if the status is 'waiting', carry on and call"
    " get_result(ticket) later. Pass an idempotency_key when you may retry a call, so a retry never"
    " opens a second ticket. Never treat 'waiting' or 'expired' as approved."
)


@dataclass(frozen=True)
class PortLimits:
    """What one MCP port may take of the process ([agents] in the policy): the bot's files and
    sockets for Discord and Claude come first."""

    max_connections: int = 128
    max_calls_per_agent: int = 32
    request_seconds: float = 10.0

    @classmethod
    def from_policy(cls, agents: AgentsSection) -> PortLimits:
        return cls(
            agents.max_connections, agents.max_calls_per_agent, float(agents.request_seconds)
        )


class Refusals:
    """Counts what the port refused and logs it at most once a minute (a flood must not flood the
    log)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.counts: Counter[str] = Counter()
        self.total: Counter[str] = Counter()  # since start (tests, /stats)
        self._last = -math.inf

    def note(self, what: str) -> None:
        self.counts[what] += 1
        self.total[what] += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.warning(
                "MCP port: refused %s in the last minute (limits: [agents] max_connections,"
                " max_calls_per_agent, request_seconds)",
                ", ".join(f"{n} {w}" for w, n in sorted(self.counts.items())),
            )
            self.counts.clear()


def guarded_protocol(limits: PortLimits, refusals: Refusals) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a cap on open connections and a deadline for each request's
    headers and body: a client that connects and sends nothing (or half a request) no longer holds a
    socket for ever. A request read in full is not timed: a call may wait for a person (up to 50
    s)."""

    class Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                refusals.note("connections over max_connections")
                transport.abort()
                return
            self._arm()

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(limits.request_seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            refusals.note("requests not sent within request_seconds")
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the next request on a connection kept alive
            super().data_received(data)
            if (
                self.cycle is not None
                and not self.cycle.more_body
                and not self.cycle.response_complete
            ):
                self._disarm()  # read in full: the app has it

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Guarded


class BearerAuth:
    """ASGI middleware: a request without a known token gets 401 and no detail; the agent's name is
    passed on. An agent with ``max_calls_per_agent`` calls in progress gets 429 for the next until
    some return."""

    def __init__(
        self,
        app: Any,
        tokens: Mapping[str, str],
        limits: PortLimits | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self.app = app
        self.tokens = dict(tokens)  # name -> token
        self.limits = limits or PortLimits()
        self.refusals = refusals or Refusals()
        self.in_progress: Counter[str] = Counter()

    def agent_for(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer ") :].strip().encode()
        found = None
        for name, token in self.tokens.items():  # compare with every token, in constant time each
            if hmac.compare_digest(offered, token.encode()):
                found = name
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        agent = self.agent_for(headers.get("authorization"))
        if agent is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"www-authenticate", b'Bearer realm="handoff"'),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if self.in_progress[agent] >= self.limits.max_calls_per_agent:
            self.refusals.note("calls over max_calls_per_agent")
            body = json.dumps(
                {
                    "error": (
                        f"too many calls in progress for {agent} (at most "
                        f"{self.limits.max_calls_per_agent}); wait for some to return, and use "
                        "get_result with wait_seconds instead of many waiting calls"
                    )
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"5"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["agent"] = agent
        self.in_progress[agent] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress[agent] -= 1


def agent_of(ctx: Context[Any, Any]) -> str:
    """The calling agent: BearerAuth put its name in the request's scope before the request got
    here."""
    request = ctx.request_context.request
    agent = request.scope.get("state", {}).get("agent") if request is not None else None
    if (
        agent is None
    ):  # pragma: no cover - the middleware refuses such requests before they get here
        raise ToolError("not authorized")
    return agent


ASK_HUMAN_DESCRIPTION = (
    "Ask a person on the support team a question you cannot or must not answer yourself."
    " Opens a ticket in their staff channel and waits up to wait_seconds (default 25, max"
    " 50) for the answer. Returns {ticket, status: 'answered' | 'waiting' | 'timed_out' |"
    " 'closed', answer?, answered_by?}. On 'waiting', call get_result(ticket) later: the"
    " answer is kept. 'timed_out' means nobody answered within the desk's time; the ticket"
    " stays open and a late answer still comes through get_result. Give answer_schema (a JSON"
    " Schema object of at most 5 fields: string with maxLength, integer or number with"
    " minimum/maximum, boolean, enum of texts) to get a typed answer: the person fills in a form"
    " and the result carries answer_data (the object) beside the answer in words."
)

REQUEST_APPROVAL_DESCRIPTION = (
    "Ask a person to approve an action before you do it (a refund, a payout, flagging an"
    " account...). The operators see the action and its details and Approve, Deny (with a"
    f" reason) or Edit & approve. Waits up to wait_seconds (default 25, max {MAX_WAIT:g})."
    " Returns {ticket, status: 'approved' | 'edited' | 'denied' | 'waiting' | 'expired',"
    " details?, reason?, decided_by?}. Only 'approved' and 'edited' allow the action,"
    " with the returned details (an operator may have changed them). approvers (1-5) asks for"
    " that many distinct people to approve. On 'waiting', call"
    " get_result(ticket) later; an undecided request expires and is never approved."
)

NOTIFY = (
    " Give notify_url (https://) to have the result POSTed there when it is settled, signed as"
    " Standard Webhooks are, instead of polling."
)

GET_RESULT_DESCRIPTION = (
    "The current result of one of your tickets (from ask_human or request_approval),"
    " waiting up to wait_seconds (default 0, max 50) for it to be settled. Same result"
    " shapes as those tools."
)

NOTIFY_OPERATORS_DESCRIPTION = (
    "Tell the support team something that needs no answer (an FYI in their staff channel)."
    " Returns {ticket, status: 'posted'}."
)


# What a front end does with a tool call: (tool name, the call's context, its arguments) -> result.
ToolHandler = Callable[[str, Context[Any, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def register_tools(server: MCPServer, handle: ToolHandler) -> None:
    """The desk's four tools, their parameters and descriptions, defined once: the HTTP endpoint
    runs them on this bot's desk, the stdio server forwards them to a running bot."""

    @server.tool(description=ASK_HUMAN_DESCRIPTION + NOTIFY)
    async def ask_human(
        question: str,
        ctx: Context[Any, Any],
        context: str = "",
        priority: Literal["normal", "high", "urgent"] = "normal",
        wait_seconds: float = DEFAULT_WAIT,
        idempotency_key: str | None = None,
        answer_schema: dict[str, Any] | None = None,
        notify_url: str | None = None,
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "question": question,
            "context": context,
            "priority": priority,
            "wait_seconds": wait_seconds,
            "idempotency_key": idempotency_key,
            "answer_schema": answer_schema,
            "notify_url": notify_url,
        }
        return await handle("ask_human", ctx, arguments)

    @server.tool(description=REQUEST_APPROVAL_DESCRIPTION + NOTIFY)
    async def request_approval(
        action: str,
        details: dict[str, Any],
        ctx: Context[Any, Any],
        amount: float | None = None,
        currency: str | None = None,
        reason: str = "",
        wait_seconds: float = DEFAULT_WAIT,
        idempotency_key: str | None = None,
        approvers: int | None = None,
        notify_url: str | None = None,
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "action": action,
            "details": details,
            "amount": amount,
            "currency": currency,
            "reason": reason,
            "wait_seconds": wait_seconds,
            "idempotency_key": idempotency_key,
            "approvers": approvers,
            "notify_url": notify_url,
        }
        return await handle("request_approval", ctx, arguments)

    @server.tool(description=GET_RESULT_DESCRIPTION)
    async def get_result(
        ticket: int, ctx: Context[Any, Any], wait_seconds: float = 0
    ) -> dict[str, Any]:
        return await handle("get_result", ctx, {"ticket": ticket, "wait_seconds": wait_seconds})

    @server.tool(description=NOTIFY_OPERATORS_DESCRIPTION)
    async def notify_operators(
        message: str,
        ctx: Context[Any, Any],
        priority: Literal["normal", "high", "urgent"] = "normal",
    ) -> dict[str, Any]:
        return await handle("notify_operators", ctx, {"message": message, "priority": priority})


def build_server(agents: AgentDesk) -> MCPServer:
    from agent_api.tasks import DeskTasks

    server: MCPServer = MCPServer(
        name="handoff", instructions=INSTRUCTIONS, extensions=[DeskTasks(agents)]
    )

    async def on_this_desk(
        tool: str, ctx: Context[Any, Any], args: dict[str, Any]
    ) -> dict[str, Any]:
        agent = agent_of(ctx)
        try:
            if tool == "ask_human":
                return await agents.ask_human(agent, **args)
            if tool == "request_approval":
                return await agents.request_approval(agent, **args)
            if tool == "get_result":
                return await agents.get_result(
                    agent, args["ticket"], wait_seconds=args["wait_seconds"]
                )
            return await agents.notify_operators(agent, **args)
        except AgentError as exc:
            raise ToolError(str(exc)) from None

    register_tools(server, on_this_desk)
    return server


def transport_security(public_url: str | None) -> TransportSecuritySettings | None:
    """The SDK's Host and Origin check (DNS rebinding) for an endpoint agents reach at
    ``public_url``; None: the SDK's own default, which checks them only when the server listens on a
    loopback address."""
    if not public_url:
        return None
    parts = urlsplit(public_url)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[parts.netloc],
        allowed_origins=[f"{parts.scheme}://{parts.netloc}"],
    )


def build_app(
    agents: AgentDesk,
    tokens: Mapping[str, str],
    *,
    host: str,
    public_url: str | None = None,
    limits: PortLimits | None = None,
    refusals: Refusals | None = None,
) -> BearerAuth:
    app = build_server(agents).streamable_http_app(
        stateless_http=True,
        json_response=True,
        host=host,
        transport_security=transport_security(public_url),
    )
    return BearerAuth(app, tokens, limits, refusals)


class McpService:
    """The MCP endpoint served by uvicorn on the running event loop; started and stopped with the
    bot."""

    def __init__(
        self,
        agents: AgentDesk,
        tokens: Mapping[str, str],
        *,
        host: str,
        port: int,
        public_url: str | None = None,
        limits: PortLimits | None = None,
    ) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            # the bot owns SIGTERM and SIGINT (a graceful stop of both)
            def capture_signals(self) -> Any:
                yield

        self.limits = limits or PortLimits()
        self.refusals = Refusals()
        app = build_app(
            agents,
            tokens,
            host=host,
            public_url=public_url,
            limits=self.limits,
            refusals=self.refusals,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http=guarded_protocol(self.limits, self.refusals),
            backlog=min(2048, 2 * self.limits.max_connections),
            # a stop ends the calls still waiting (the agent gets an error and comes back with
            # get_result or its idempotency_key) instead of holding them for their whole wait
            timeout_graceful_shutdown=1,
        )
        self.server = Server(config)
        self.host, self.port = host, port
        self._task: asyncio.Task[None] | None = None
        self._previous_handler: Any = None

    def _quiet_accept_errors(self) -> None:
        """Out of files, asyncio logs every failed accept() (thousands of lines a second under a
        flood): count them with the port's other refusals instead, logged once a minute."""
        loop = asyncio.get_running_loop()
        previous = self._previous_handler = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
                self.refusals.note("connections: out of open files")
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def start(self) -> None:
        self._quiet_accept_errors()
        self._task = asyncio.create_task(self.server.serve(), name="mcp-server")
        for _ in range(200):
            if self.server.started or self._task.done():
                break
            await asyncio.sleep(0.025)
        if self._task.done():
            self._task.result()  # raises why it could not start (e.g. the port is taken)
            raise RuntimeError("the MCP server stopped at once")
        if not self.server.started:
            raise RuntimeError(f"the MCP server did not start on {self.host}:{self.port}")
        log.info("MCP server for agents at http://%s:%d/mcp", self.host, self.port)

    @property
    def bound_port(self) -> int:
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)
        self._task = None
        asyncio.get_running_loop().set_exception_handler(self._previous_handler)
