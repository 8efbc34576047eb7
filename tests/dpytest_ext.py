"""Extensions to dpytest where it differs from Discord in ways Handoff depends on."""

from __future__ import annotations

from typing import Any

from discord.ext.test import backend, callbacks
from discord.ext.test import factories as facts

_dm_channel_ids: dict[int, int] = {}


async def _start_private_message(self: backend.FakeHttp, user_id: int) -> dict[str, Any]:
    # Discord has one DM channel per user, with a stable id. dpytest makes a new channel on every
    # create_dm(), so once discord.py's cache of 128 DM channels evicts one, replies go to a
    # channel nobody is watching. Keep one id per user, as Discord does.
    user = backend._get_higher_locs(1).get("self", None)
    await callbacks.dispatch_event("start_private_message", user)
    channel_id = _dm_channel_ids.setdefault(user_id, facts.make_id())
    return facts.make_dm_channel_dict(user, id_num=channel_id)


def install() -> None:
    backend.FakeHttp.start_private_message = _start_private_message  # type: ignore[method-assign]
