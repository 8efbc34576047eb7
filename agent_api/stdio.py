"""The desk's four tools over stdio, for frameworks that spawn their MCP servers.

    HANDOFF_MCP_URL=http://127.0.0.1:8765/mcp HANDOFF_MCP_TOKEN=... python -m agent_api.stdio

(or the ``handoff-mcp-stdio`` console script). The tools, their parameters and their results are
the HTTP endpoint's: each call is forwarded to the running bot over streamable HTTP with the
agent's token, so tickets, waits, idempotency keys and restarts behave exactly as there. A call
waits as over HTTP (``wait_seconds``, then ``waiting`` and ``get_result``), never longer; the
bot unreachable is a tool error saying so, at once. stdout carries only the protocol; logs go to
stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from agent_api.server import INSTRUCTIONS, register_tools
from core.agent_desk import MAX_WAIT

log = logging.getLogger("handoff.stdio")

# beyond the call's own wait: the desk's answer, Discord and the hop itself
SLACK_SECONDS = 15.0


async def raise_refusal(response: httpx2.Response) -> None:
    """The MCP client turns any HTTP error into "Server returned an error response": raise a token's
    refusal here, so that ``refused_with`` finds its status."""
    if response.status_code in (401, 403):
        response.raise_for_status()


def refused_with(exc: BaseException) -> int | None:
    """The HTTP status of a refusal (401, 403) somewhere in what the MCP client raised (it may be
    wrapped in exception groups): a wrong token is not the bot being down, and no retry helps."""
    if isinstance(exc, httpx2.HTTPStatusError) and exc.response.status_code in (401, 403):
        return exc.response.status_code
    inner = [*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__]
    for nested in inner:
        if nested is not None and nested is not exc and (found := refused_with(nested)):
            return found
    return None


class DeskUnreachable(ToolError):
    """The bot did not answer (down, restarting, wrong address): nothing was decided, and a retry
    with the same idempotency_key is safe."""


class Desk:
    """The running bot's MCP endpoint. Each call opens its own MCP session over one shared HTTP
    client (pooled connections): a session belongs to the task that opened it, and a call never
    waits on another's."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            event_hooks={"response": [raise_refusal]},
            timeout=httpx2.Timeout(MAX_WAIT + SLACK_SECONDS, connect=5.0),
        )
        self._sessions: set[asyncio.Task[None]] = set()

    async def _session(
        self, tool: str, arguments: dict[str, Any], got: asyncio.Future[Any]
    ) -> None:
        """One MCP session, in a task of its own: the result is handed over the moment it comes,
        and the session is closed after (closing is a round trip the agent need not wait for)."""
        try:
            async with Client(streamable_http_client(self.url, http_client=self.http)) as client:
                result = await client.call_tool(tool, arguments)
                got.set_result(result)
        except Exception as exc:
            if not got.done():
                got.set_exception(exc)
            else:
                log.debug("closing the session of a %s call failed", tool, exc_info=True)

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        session = asyncio.create_task(self._session(tool, arguments, got))
        self._sessions.add(session)
        session.add_done_callback(self._sessions.discard)
        try:
            result = await got
        except asyncio.CancelledError:
            session.cancel()
            raise
        except Exception as exc:
            if (status := refused_with(exc)) is not None:
                raise ToolError(
                    f"The support desk at {self.url} refused this agent's token (HTTP {status}):"
                    " check HANDOFF_MCP_TOKEN against the bot's HANDOFF_MCP_TOKENS."
                ) from None
            log.warning("%s: the desk at %s did not answer: %s", tool, self.url, exc)
            raise DeskUnreachable(
                f"The support desk (Handoff at {self.url}) could not be reached: {exc}. Nothing"
                " was decided. Retry later with the same idempotency_key; if you already have a"
                " ticket number, get_result(ticket) returns its result."
            ) from None
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content).strip()
            raise ToolError(text or f"{tool} failed at the desk")
        if isinstance(result.structured_content, dict):
            return result.structured_content
        raise ToolError(f"{tool}: the desk's answer had no result")

    async def close(self) -> None:
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=5)
        await self.http.aclose()


def build_stdio_server(desk: Desk) -> MCPServer:
    server: MCPServer = MCPServer(name="handoff", instructions=INSTRUCTIONS)

    async def forward(tool: str, _ctx: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        # the bot fills in what is left out; the agent is the token's
        given = {k: v for k, v in arguments.items() if v is not None}
        return await desk.call(tool, given)

    register_tools(server, forward)
    return server


def main() -> None:
    logging.basicConfig(
        stream=sys.stderr,  # stdout is the protocol's
        level=os.environ.get("HANDOFF_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = os.environ.get("HANDOFF_MCP_URL", "").strip() or "http://127.0.0.1:8765/mcp"
    token = os.environ.get("HANDOFF_MCP_TOKEN", "").strip()
    if not token:
        sys.exit(
            "HANDOFF_MCP_TOKEN is not set: give this agent's token from the bot's"
            " HANDOFF_MCP_TOKENS (name:token), and HANDOFF_MCP_URL if the bot is not at"
            " http://127.0.0.1:8765/mcp."
        )
    desk = Desk(url, token)

    async def serve() -> None:
        try:
            await build_stdio_server(desk).run_stdio_async()
        finally:
            await desk.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
