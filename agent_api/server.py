"""Handoff's desk for other agents, over the Model Context Protocol (streamable HTTP at ``/mcp``).

Tools: ``ask_human``, ``request_approval``, ``get_result``, ``notify_operators``. Every request needs
``Authorization: Bearer <token>`` from ``HANDOFF_MCP_TOKENS``; the token's name is the agent's name on its
tickets and in the audit. The server is stateless (each request stands alone, JSON answers), so a
client's reconnect or retry needs nothing from a session; it runs on the bot's own event loop and
database (``McpService``), beside discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from core.agent_desk import DEFAULT_WAIT, MAX_WAIT, AgentDesk, AgentError

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "A human desk: people on a support team answer your questions and approve or deny your actions in Discord. "
    "Calls return at once with a ticket number and wait at most wait_seconds (default 25, at most 50) for the "
    "person; if the status is 'waiting', carry on and call get_result(ticket) later. Pass an idempotency_key "
    "when you may retry a call, so a retry never opens a second ticket. Never treat 'waiting' or 'expired' as "
    "approved."
)


class BearerAuth:
    """ASGI middleware: a request without a known token gets 401 and no detail; the agent's name is passed on."""

    def __init__(self, app: Any, tokens: Mapping[str, str]) -> None:
        self.app = app
        self.tokens = dict(tokens)  # name -> token

    def agent_for(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer "):].strip().encode()
        found = None
        for name, token in self.tokens.items():  # compare with every token, in constant time each
            if hmac.compare_digest(offered, token.encode()):
                found = name
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        agent = self.agent_for(headers.get("authorization"))
        if agent is None:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"www-authenticate", b'Bearer realm="handoff"'), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        scope.setdefault("state", {})["agent"] = agent
        await self.app(scope, receive, send)


def agent_of(ctx: Context[Any, Any]) -> str:
    """The calling agent: BearerAuth put its name in the request's scope before the request got here."""
    request = ctx.request_context.request
    agent = request.scope.get("state", {}).get("agent") if request is not None else None
    if agent is None:  # pragma: no cover - the middleware refuses such requests before they get here
        raise ToolError("not authorized")
    return agent


def build_server(agents: AgentDesk) -> MCPServer:
    server: MCPServer = MCPServer(name="handoff", instructions=INSTRUCTIONS)

    async def call(coro: Any) -> dict[str, Any]:
        try:
            return await coro
        except AgentError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description=(
        "Ask a person on the support team a question you cannot or must not answer yourself. Opens a ticket in "
        "their staff channel and waits up to wait_seconds (default 25, max 50) for the answer. Returns {ticket, "
        "status: 'answered' | 'waiting' | 'timed_out' | 'closed', answer?, answered_by?}. On 'waiting', call "
        "get_result(ticket) later: the answer is kept. 'timed_out' means nobody answered within the desk's time; "
        "the ticket stays open and a late answer still comes through get_result."))
    async def ask_human(question: str, ctx: Context[Any, Any], context: str = "",
                        priority: Literal["normal", "high", "urgent"] = "normal",
                        wait_seconds: float = DEFAULT_WAIT, idempotency_key: str | None = None) -> dict[str, Any]:
        return await call(agents.ask_human(agent_of(ctx), question, context=context, priority=priority,
                                           wait_seconds=wait_seconds, idempotency_key=idempotency_key))

    @server.tool(description=(
        "Ask a person to approve an action before you do it (a refund, a payout, flagging an account...). The "
        "operators see the action and its details and Approve, Deny (with a reason) or Edit & approve. Waits up "
        f"to wait_seconds (default 25, max {MAX_WAIT:g}). Returns {{ticket, status: 'approved' | 'edited' | "
        "'denied' | 'waiting' | 'expired', details?, reason?, decided_by?}. Only 'approved' and 'edited' allow "
        "the action, with the returned details (an operator may have changed them). On 'waiting', call "
        "get_result(ticket) later; an undecided request expires and is never approved."))
    async def request_approval(action: str, details: dict[str, Any], ctx: Context[Any, Any],
                               amount: float | None = None, currency: str | None = None, reason: str = "",
                               wait_seconds: float = DEFAULT_WAIT,
                               idempotency_key: str | None = None) -> dict[str, Any]:
        return await call(agents.request_approval(
            agent_of(ctx), action, details, amount=amount, currency=currency, reason=reason,
            wait_seconds=wait_seconds, idempotency_key=idempotency_key))

    @server.tool(description=(
        "The current result of one of your tickets (from ask_human or request_approval), waiting up to "
        "wait_seconds (default 0, max 50) for it to be settled. Same result shapes as those tools."))
    async def get_result(ticket: int, ctx: Context[Any, Any], wait_seconds: float = 0) -> dict[str, Any]:
        return await call(agents.get_result(agent_of(ctx), ticket, wait_seconds=wait_seconds))

    @server.tool(description=(
        "Tell the support team something that needs no answer (an FYI in their staff channel). Returns "
        "{ticket, status: 'posted'}."))
    async def notify_operators(message: str, ctx: Context[Any, Any],
                               priority: Literal["normal", "high", "urgent"] = "normal") -> dict[str, Any]:
        return await call(agents.notify_operators(agent_of(ctx), message, priority=priority))

    return server


def build_app(agents: AgentDesk, tokens: Mapping[str, str], *, host: str) -> BearerAuth:
    app = build_server(agents).streamable_http_app(stateless_http=True, json_response=True, host=host)
    return BearerAuth(app, tokens)


class McpService:
    """The MCP endpoint served by uvicorn on the running event loop; started and stopped with the bot."""

    def __init__(self, agents: AgentDesk, tokens: Mapping[str, str], *, host: str, port: int) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:  # the bot owns SIGTERM and SIGINT (a graceful stop of both)
                yield

        config = uvicorn.Config(build_app(agents, tokens, host=host), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = Server(config)
        self.host, self.port = host, port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
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
