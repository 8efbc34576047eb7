"""How the engine reaches the outside world. Discord implements these in cogs/; tests and a console can too."""

from __future__ import annotations

import contextlib
from typing import Protocol


class DeliveryRefused(Exception):
    """The platform refuses this message for good (DMs closed, unknown user): don't retry."""

    def __init__(self, reason: str, *, customer_unreachable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.customer_unreachable = customer_unreachable


class DeliveryFailed(Exception):
    """The platform failed: for now (429, 5xx, network: retry later), or ``permanent`` for this one message
    (the platform rejects its content), in which case the next messages still go out."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class CustomerChannel(Protocol):
    async def send(self, customer_discord_id: int, content: str, *, nonce: str) -> int | None:
        """Send one message (<= 2000 chars) to the customer; returns the platform's message id.

        Raises DeliveryRefused or DeliveryFailed; any other exception counts as DeliveryFailed.
        """

    def typing(self, customer_discord_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Show that the bot is working on an answer."""

