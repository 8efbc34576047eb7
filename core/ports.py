"""How the engine reaches the outside world. Discord implements these in cogs/; tests and a console
can too."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.tickets import Card


class DeliveryRefused(Exception):
    """The platform refuses this message for good (DMs closed, unknown user): don't retry."""

    def __init__(self, reason: str, *, customer_unreachable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.customer_unreachable = customer_unreachable


class DeliveryFailed(Exception):
    """The platform failed: for now (429, 5xx, network: retry later), or ``permanent`` for this one
    message (the platform rejects its content), in which case the next messages still go out."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class CustomerChannel(Protocol):
    """A customer's DMs, addressed by the DM channel's id: one request per message sent."""

    async def open_dm(self, customer_discord_id: int) -> int:
        """Open (or find) the DM channel with a customer none of whose messages showed it; returns
        its id.

        Raises DeliveryRefused or DeliveryFailed as ``send`` does."""

    async def send(
        self,
        channel_id: int,
        content: str,
        *,
        nonce: str,
        buttons: list[dict[str, Any]] | None = None,
    ) -> int | None:
        """Send one message (<= 2000 chars) to the customer's DM channel, with ``buttons``
        (confirmation answers) under it; returns the platform's message id.

        Raises DeliveryRefused or DeliveryFailed; any other exception counts as DeliveryFailed.
        """

    async def send_file(
        self, channel_id: int, content: str, data: bytes, filename: str, *, nonce: str | None = None
    ) -> int | None:
        """Send a message with one file (an authenticator QR code, a transcript); returns its id;
        raises on failure as ``send`` does. ``nonce``: stored once by the platform, so a retry does
        not post it twice."""

    async def edit(self, channel_id: int, message_id: int, content: str) -> None:
        """Replace the text of a message the bot sent in a DM (an operator edited theirs). A
        message already gone is not an error; other failures raise DeliveryFailed."""

    async def delete(self, channel_id: int, message_id: int) -> None:
        """Delete a message the bot sent in a DM (an authenticator setup's key, once the setup
        ended). A message already gone is not an error; other failures raise DeliveryFailed."""

    def typing(self, channel_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Show that the bot is working on an answer while the body runs.

        Never waits on the platform before the body starts and never raises: a typing indicator is a
        nicety.
        """


class StaffDesk(Protocol):
    """Where operators see tickets: a message per ticket in the staff channel, with a thread on it.

    Each method raises DeliveryFailed (``permanent`` when retrying cannot help) on failure.
    """

    async def post_ticket(self, card: Card, *, nonce: str) -> int:
        """Post the ticket message (with its buttons, mentioning the operators); returns its id.

        ``nonce`` is the same on every try of one post: the platform stores it once (a retry after a
        lost answer, or after a restart, returns the message already posted)."""

    async def open_thread(self, message_id: int, name: str) -> int:
        """Start the ticket's thread on that message; returns the thread id."""

    async def post(
        self,
        thread_id: int,
        text: str,
        *,
        nonce: str,
        ping: bool = False,
        mention_role: int | None = None,
    ) -> None:
        """Write in the ticket's thread (<= 2000 chars), once per ``nonce``; ``ping`` mentions the
        operators, ``mention_role`` that role alone (an escalation step)."""

    async def post_file(
        self, thread_id: int, text: str, data: bytes, filename: str, *, nonce: str
    ) -> None:
        """Write in the ticket's thread with one file attached (a transcript), once per
        ``nonce``."""

    async def refresh(self, message_id: int, card: Card) -> None:
        """Show the ticket's current state on its message (buttons disabled once decided)."""

    async def archive(self, thread_id: int) -> None:
        """Archive and lock the thread of a closed ticket."""

    async def post_draft(self, thread_id: int, draft_id: int, text: str, *, nonce: str) -> int:
        """Post a drafted answer in the ticket's thread with its Send, Edit & send and Discard
        buttons, once per ``nonce``; returns the message's id."""

    async def end_draft(self, thread_id: int, message_id: int, text: str) -> None:
        """Show on a draft's message how it ended, its buttons gone."""
