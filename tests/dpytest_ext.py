"""Extensions to dpytest where it differs from Discord in ways Handoff depends on."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any

from discord.ext.test import backend, callbacks
from discord.ext.test import factories as facts

_dm_channel_ids: dict[int, int] = {}


def json_of(payload: Any, multipart: Any) -> dict[str, Any] | None:
    """The JSON of a request: with a file, discord.py sends it as the multipart field
    ``payload_json``."""
    if payload is None and multipart:
        import json

        form = next((f for f in multipart if f.get("name") == "payload_json"), None)
        return json.loads(form["value"]) if form else None
    return payload


async def _start_private_message(self: backend.FakeHttp, user_id: int) -> dict[str, Any]:
    # Discord has one DM channel per user, with a stable id. dpytest makes a new channel on every
    # create_dm(), so once discord.py's cache of 128 DM channels evicts one, replies go to a
    # channel nobody is watching. Keep one id per user, as Discord does.
    user = backend._get_higher_locs(1).get("self", None)
    # opened by id (http.start_private_message), not by user.create_dm()
    if not hasattr(user, "discriminator"):
        user = self.state.get_user(user_id) or next(
            (m._user for g in self.state.guilds for m in g.members if m.id == user_id), None
        )
    await callbacks.dispatch_event("start_private_message", user)
    channel_id = _dm_channel_ids.setdefault(user_id, facts.make_id())
    return facts.make_dm_channel_dict(user, id_num=channel_id)


def install() -> None:
    backend.FakeHttp.start_private_message = _counted(
        "start_private_message",  # type: ignore[method-assign]
        _start_private_message,
    )


# --- threads -----------------------------------------------------------------------------------

THREAD_NAME_LIMIT = 100
created_threads: list[dict[str, Any]] = []


async def _start_thread_with_message(
    self: backend.FakeHttp,
    channel_id: int,
    message_id: int,
    *,
    name: str,
    auto_archive_duration: int,
    rate_limit_per_user: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """POST /channels/{id}/messages/{id}/threads, which dpytest lacks. Enforces Discord's name
    limit."""
    import datetime as dt

    import discord

    if not 1 <= len(name) <= THREAD_NAME_LIMIT:
        detail = f"thread name must be 1-100 characters, got {len(name)}"
        raise discord.HTTPException(
            backend.FakeRequest(400, "Bad Request"), {"code": 50035, "message": detail}
        )
    parent = self.state.get_channel(channel_id)
    if any(int(t["message_id"]) == int(message_id) for t in created_threads):
        raise discord.HTTPException(
            backend.FakeRequest(400, "Bad Request"),
            {"code": 160004, "message": "A thread has already been created for this message"},
        )
    data = {  # as Discord does: a thread started from a message has that message's id
        "id": str(message_id),
        "type": discord.ChannelType.public_thread.value,
        "guild_id": str(parent.guild.id),
        "parent_id": str(channel_id),
        "owner_id": str(self.state.user.id),
        "name": name,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": rate_limit_per_user or 0,
        "last_message_id": None,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": auto_archive_duration,
            "locked": False,
            "archive_timestamp": dt.datetime.now(dt.UTC).isoformat(),
        },
    }
    created_threads.append({**data, "message_id": message_id})
    self.state.parse_thread_create(data)  # Discord follows up with THREAD_CREATE on the gateway
    return data


archived_threads: list[int] = []
locked_threads: list[int] = []


async def _edit_channel(
    self: backend.FakeHttp, channel_id: int, *, reason: str | None = None, **options: Any
) -> dict[str, Any]:
    """PATCH /channels/{id} for threads (archiving a closed ticket's thread), which dpytest
    lacks."""
    thread = self.state.get_channel(channel_id)
    data = next((dict(t) for t in created_threads if int(t["id"]) == channel_id), None)
    if thread is None or data is None:
        raise NotImplementedError(f"dpytest_ext only edits threads it created, not {channel_id}")
    data.pop("message_id", None)
    data["thread_metadata"] = {
        **data["thread_metadata"],
        **{
            k: v for k, v in options.items() if k in ("archived", "locked", "auto_archive_duration")
        },
    }
    if options.get("archived"):
        archived_threads.append(channel_id)
    if options.get("locked"):
        locked_threads.append(channel_id)
    self.state.parse_thread_update(data)
    return data


async def _bulk_upsert_guild_commands(
    self: backend.FakeHttp, application_id: int, guild_id: int, payload: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """PUT /applications/{id}/guilds/{id}/commands: what tree.sync() sends; Discord echoes it with
    ids."""
    registered_commands[guild_id] = payload
    command_syncs.append(guild_id)
    return [
        {
            **cmd,
            "id": str(facts.make_id()),
            "application_id": str(application_id),
            "guild_id": str(guild_id),
            "version": "1",
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
        }
        for cmd in payload
    ]


registered_commands: dict[int, list[dict[str, Any]]] = {}
command_syncs: list[int] = []  # each bulk registration, guild id or GLOBAL
GLOBAL = 0  # registered_commands key of global commands


async def _bulk_upsert_global_commands(
    self: backend.FakeHttp, application_id: int, payload: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """PUT /applications/{id}/commands: the global commands (customers' /enrol in DMs)."""
    registered_commands[GLOBAL] = payload
    command_syncs.append(GLOBAL)
    return [
        {
            **cmd,
            "id": str(facts.make_id()),
            "application_id": str(application_id),
            "version": "1",
            "default_member_permissions": None,
            "nsfw": False,
        }
        for cmd in payload
    ]


# --- interactions ------------------------------------------------------------------------------


class Interactions:
    """Feeds INTERACTION_CREATE payloads through discord.py's own dispatch and captures the
    responses.

    Slash commands go through ``bot.tree``; button clicks and modal submits through the view store,
    so persistent views and DynamicItems are matched exactly as in production.
    """

    def __init__(self, bot: Any) -> None:
        import itertools

        from discord.webhook.async_ import AsyncWebhookAdapter

        self.bot = bot
        self.responses: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        bot._connection._command_tree = bot.tree
        # Interaction() reads it; the adapter below never uses it
        bot.http._HTTPClient__session = None
        original = AsyncWebhookAdapter.create_interaction_response
        responses = self.responses

        async def capture(
            adapter: Any, interaction_id: int, token: str, *, params: Any, **_: Any
        ) -> dict:
            responses.append(
                {
                    "interaction_id": interaction_id,
                    **(json_of(params.payload, params.multipart) or {}),
                }
            )
            return {"interaction": {"id": str(interaction_id), "type": 0}}

        original_followup = AsyncWebhookAdapter.execute_webhook
        bot_user = facts.dict_from_user(bot.user)

        async def followup(
            adapter: Any,
            webhook_id: int,
            token: str,
            *,
            payload: Any = None,
            multipart: Any = None,
            files: Any = None,
            **_: Any,
        ) -> dict:
            responses.append(
                {
                    "followup": True,
                    "data": dict(json_of(payload, multipart) or {}),
                    "files": [f.fp.getvalue() for f in files or [] if hasattr(f.fp, "getvalue")],
                }
            )
            from rehearsal.discord_stand_in import message_json

            return message_json(
                0,
                bot_user,
                (payload or {}).get("content", ""),
                id=str(facts.make_id()),
                flags=(payload or {}).get("flags", 0),
            )

        AsyncWebhookAdapter.create_interaction_response = capture  # type: ignore[method-assign]
        AsyncWebhookAdapter.execute_webhook = followup  # type: ignore[method-assign]
        self._restore = (AsyncWebhookAdapter, original, original_followup)

    def close(self) -> None:
        cls, original, original_followup = self._restore
        cls.create_interaction_response = original
        cls.execute_webhook = original_followup

    def texts(self) -> list[tuple[str, bool]]:
        """What the users who acted were told: (text, ephemeral) per response, deferrals left
        out."""
        out = []
        for r in self.responses:
            data = r.get("data") or {}
            if "content" in data:
                out.append((data["content"], bool(data.get("flags", 0) & 64)))
        return out

    def _base(self, kind: int, member: Any, channel: Any, data: dict[str, Any]) -> dict[str, Any]:
        guild = getattr(channel, "guild", None)
        channel_data: dict[str, Any] = {"id": str(channel.id), "type": channel.type.value}
        payload: dict[str, Any] = {
            "id": str(facts.make_id()),
            "application_id": str(self.bot.application_id or self.bot.user.id),
            "type": kind,
            "token": f"token-{next(self._ids)}",
            "version": 1,
            "channel_id": str(channel.id),
            "channel": channel_data,
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "attachment_size_limit": 8 * 1024 * 1024,
            "data": data,
        }
        if guild is None:  # a DM: Discord sends the user, no member and no guild
            payload.update(user=facts.dict_from_user(member), context=1)
            return payload
        channel_data.update(name=channel.name, guild_id=str(guild.id))
        if getattr(channel, "parent_id", None):
            channel_data["parent_id"] = str(channel.parent_id)
        if getattr(channel, "owner_id", None):  # a thread: Discord sends it whole
            channel_data.update(
                owner_id=str(channel.owner_id),
                message_count=channel.message_count,
                member_count=channel.member_count,
                thread_metadata={
                    "archived": bool(channel.archived),
                    "auto_archive_duration": channel.auto_archive_duration,
                    "archive_timestamp": channel.archive_timestamp.isoformat(),
                    "locked": bool(channel.locked),
                },
            )
        payload.update(
            guild_id=str(guild.id),
            guild_locale="en-US",
            context=0,
            member={**facts.dict_from_member(member), "permissions": "0"},
        )
        return payload

    def slash(
        self, name: str, /, *, member: Any, channel: Any, guild_command: bool = True, **options: Any
    ) -> None:
        """A slash command ("snippet add": a group's subcommand, as Discord nests it); Discord names
        the guild in the command data when the command is a guild command."""
        import discord

        types = {str: 3, int: 4, bool: 5, float: 10}
        group, _, sub = name.partition(" ")
        data: dict[str, Any] = {"id": str(facts.make_id()), "name": group, "type": 1, "options": []}
        given = data["options"]
        if sub:
            data["options"] = [{"name": sub, "type": 1, "options": []}]
            given = data["options"][0]["options"]
        for key, value in options.items():
            # a file option: an id, and the attachment in "resolved" (its URL a local path, which
            # dpytest's CDN reads)
            if isinstance(value, Path):
                attachment_id = str(facts.make_id())
                given.append({"name": key, "type": 11, "value": attachment_id})
                data.setdefault("resolved", {}).setdefault("attachments", {})[attachment_id] = {
                    "id": attachment_id,
                    "filename": value.name,
                    "size": value.stat().st_size,
                    "url": str(value),
                    "proxy_url": str(value),
                }
                continue
            # a user option: an id, and the user in "resolved"
            if isinstance(value, discord.abc.User):
                given.append({"name": key, "type": 6, "value": str(value.id)})
                data.setdefault("resolved", {"users": {}})["users"][str(value.id)] = (
                    facts.dict_from_user(value)
                )
            else:
                given.append({"name": key, "type": types[type(value)], "value": value})
        if guild_command:
            data["guild_id"] = str(channel.guild.id)
        self.bot._connection.parse_interaction_create(self._base(2, member, channel, data))

    def autocomplete(
        self, name: str, option: str, typed: str, /, *, member: Any, channel: Any
    ) -> None:
        """Someone typing in a slash command's option with autocomplete (type 4): Discord sends what
        was typed so far, the option marked focused; the bot answers with choices (a type 8
        response)."""
        group, _, sub = name.partition(" ")
        focused = [{"name": option, "type": 3, "value": typed, "focused": True}]
        options = [{"name": sub, "type": 1, "options": focused}] if sub else focused
        data = {
            "id": str(facts.make_id()),
            "name": group,
            "type": 1,
            "options": options,
            "guild_id": str(channel.guild.id),
        }
        self.bot._connection.parse_interaction_create(self._base(4, member, channel, data))

    def click(
        self,
        custom_id: str,
        *,
        member: Any,
        channel: Any,
        message: Any,
        components: list[dict[str, Any]] | None = None,
    ) -> None:
        """A button click. ``components``: the message as the clicker saw it (a click racing an
        edit)."""
        payload = self._base(3, member, channel, {"custom_id": custom_id, "component_type": 2})
        payload["message"] = facts.dict_from_message(message)
        # Discord sends the clicked message with its components; dpytest's dict leaves them out.
        payload["message"]["components"] = (
            stored_components(message) if components is None else components
        )
        self.bot._connection.parse_interaction_create(payload)

    def submit_modal(
        self, custom_id: str, values: dict[str, str | list[str]], *, member: Any, channel: Any
    ) -> None:
        """A form sent back as Discord sends it: a text input in an action row; a list is a
        select's chosen values, under its label (type 18)."""
        rows = [
            {"type": 18, "component": {"type": 3, "custom_id": k, "values": v}}
            if isinstance(v, list)
            else {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
            for k, v in values.items()
        ]
        self.bot._connection.parse_interaction_create(
            self._base(5, member, channel, {"custom_id": custom_id, "components": rows})
        )


def _known_dm(http: backend.FakeHttp, channel_id: int) -> Any:
    """A DM channel Discord has (its id came with a customer's message) though this client never
    opened it, e.g. after a restart: sends by channel id reach it, as on Discord."""
    channel = http.state._get_private_channel(channel_id)
    if channel is None:
        user_id = next((u for u, c in _dm_channel_ids.items() if c == channel_id), None)
        user = http.state.get_user(user_id) if user_id is not None else None
        if user is None and user_id is not None:
            user = next(
                (m._user for g in http.state.guilds for m in g.members if m.id == user_id), None
            )
        if user is not None:
            channel = http.state.add_dm_channel(facts.make_dm_channel_dict(user, id_num=channel_id))
    return channel


# backend calls by name, as Discord would count
requests_made: collections.Counter[str] = collections.Counter()


def _counted(name: str, fn: Any) -> Any:
    async def counted(*args: Any, **kwargs: Any) -> Any:
        requests_made[name] += 1
        # dpytest reads its caller's locals (self, channel): hand on the ones of our caller.
        caller = backend._get_higher_locs(1)
        self, channel = caller.get("self"), caller.get("channel")  # noqa: F841
        return await fn(*args, **kwargs)

    counted.__name__ = name
    return counted


async def _send_typing(self: backend.FakeHttp, channel_id: int) -> None:
    channel = self.state.get_channel(channel_id) or _known_dm(self, channel_id)
    await callbacks.dispatch_event("send_typing", channel)


async def _send_message(self: backend.FakeHttp, channel_id: int, *, params: Any) -> dict[str, Any]:
    """dpytest's send, keeping the components (buttons) in the stored message, as Discord does."""
    channel = self.state.get_channel(channel_id) or _known_dm(self, channel_id)  # noqa: F841 (read by dpytest)
    if params.payload is None and params.multipart:  # dpytest only reads params.payload
        from discord.http import MultipartParameters

        params = MultipartParameters(
            payload=json_of(None, params.multipart), multipart=params.multipart, files=params.files
        )
    payload = params.payload or {}
    nonce = payload.get("nonce")
    # Discord: the same nonce returns the message it already has
    if nonce and payload.get("enforce_nonce"):
        for stored in backend._cur_config.messages.get(channel_id, []):
            if stored.get("nonce") == nonce:
                return stored
    data = await _original_send(self, channel_id, params=params)
    if nonce:
        for stored in backend._cur_config.messages.get(channel_id, []):
            if int(stored["id"]) == int(data["id"]):
                stored["nonce"] = nonce
    components = payload.get("components")
    if components:
        for stored in backend._cur_config.messages.get(channel_id, []):
            if int(stored["id"]) == int(data["id"]):
                stored["components"] = components
        data["components"] = components
        _set_cached_components(self, int(data["id"]), components)
    return data


async def _logs_from(
    self: backend.FakeHttp,
    channel_id: int,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
) -> list[dict[str, Any]]:
    """GET /channels/{id}/messages as Discord answers it: with ``after``, the ``limit`` messages
    right after that id (any id, not only a stored message's), newest first; else the newest before
    ``before``."""
    messages = sorted(backend._cur_config.messages.get(channel_id, []), key=lambda m: int(m["id"]))
    if after is not None:
        return list(reversed([m for m in messages if int(m["id"]) > int(after)][:limit]))
    if before is not None:
        messages = [m for m in messages if int(m["id"]) < int(before)]
    return list(reversed(messages[-limit:]))


def missed_message(channel: Any, author: Any, content: str) -> dict[str, Any]:
    """A message Discord holds that no bot received (it was sent while the bot was down)."""
    import discord

    user = author._user if isinstance(author, discord.Member) else author
    data = facts.make_message_dict(channel, user, id_num=facts.make_id(), content=content)
    data.pop("member", None)
    if getattr(channel, "guild", None) is not None:
        data["guild_id"] = channel.guild.id
    backend._cur_config.messages.setdefault(channel.id, []).append(data)
    return data


def stored_components(message: Any) -> list[dict[str, Any]]:
    """The components Discord holds for a message right now."""
    stored = next(
        (
            m
            for m in backend._cur_config.messages.get(message.channel.id, [])
            if int(m["id"]) == message.id
        ),
        {},
    )
    return list(stored.get("components", []))


def _set_cached_components(
    http: backend.FakeHttp, message_id: int, components: list[dict[str, Any]]
) -> None:
    from discord.components import _component_factory

    cached = http.state._get_message(message_id)
    if cached is not None:
        cached.components = [c for c in map(_component_factory, components) if c is not None]


async def _edit_message(
    self: backend.FakeHttp, channel_id: int, message_id: int, **fields: Any
) -> dict[str, Any]:
    """PATCH a stored message by id (dpytest's version needs a full Message from its caller's
    frame)."""
    import discord

    payload = fields["params"].payload or {}
    for stored in backend._cur_config.messages.get(channel_id, []):
        if int(stored["id"]) == message_id:
            stored.update(payload)
            if "components" in payload:
                _set_cached_components(self, message_id, payload["components"])
            return dict(stored)
    raise discord.NotFound(
        backend.FakeRequest(404, "Not Found"), {"code": 10008, "message": "Unknown Message"}
    )


_original_send = backend.FakeHttp.send_message
_original_get_user = backend.FakeHttp.get_user


def install_all() -> None:
    install()
    backend.FakeHttp.start_thread_with_message = _start_thread_with_message  # type: ignore[method-assign]
    backend.FakeHttp.edit_channel = _edit_channel  # type: ignore[method-assign]
    backend.FakeHttp.bulk_upsert_guild_commands = _bulk_upsert_guild_commands  # type: ignore[method-assign]
    backend.FakeHttp.bulk_upsert_global_commands = _bulk_upsert_global_commands  # type: ignore[method-assign]
    backend.FakeHttp.send_message = _counted("send_message", _send_message)  # type: ignore[method-assign]
    backend.FakeHttp.send_typing = _counted("send_typing", _send_typing)  # type: ignore[method-assign]
    backend.FakeHttp.get_user = _counted("get_user", _original_get_user)  # type: ignore[method-assign]
    backend.FakeHttp.edit_message = _edit_message  # type: ignore[method-assign]
    backend.FakeHttp.logs_from = _counted("logs_from", _logs_from)  # type: ignore[method-assign]
    # dpytest's fake gateway has no socket: Client.close() (a graceful stop, a signal) must see it
    # as shut.
    from discord.ext.test.websocket import FakeWebSocket

    FakeWebSocket.open = property(lambda self: False)  # type: ignore[assignment,method-assign]


@dataclasses.dataclass
class World:
    """What Discord keeps while the bot restarts: the guild, the staff channel, the role, people,
    messages, threads."""

    guild_id: int
    channel_id: int
    role_id: int
    people: list[tuple[int, str, str]]
    messages: dict[int, list[dict[str, Any]]]
    application_id: int  # an application keeps its id (dpytest makes a new bot user each time)


def capture_world(bot: Any) -> World:
    import discord.ext.test as dpytest

    config = dpytest.get_config()
    return World(
        config.guilds[0].id,
        config.channels[0].id,
        bot.settings.operator_role_id,
        [(m.id, m.name, m.discriminator) for m in config.members],
        {k: [dict(m) for m in v] for k, v in backend._cur_config.messages.items()},
        bot.application_id,
    )


def _rebuild(bot: Any, world: World) -> Any:
    """dpytest.configure() makes a new world with new ids; make the old one again instead."""
    import discord.ext.test as dpytest
    from discord.ext.test import runner

    dpytest.configure(bot, guilds=0, text_channels=0, voice_channels=0, members=0)
    guild = backend.make_guild("Test Guild 0", id_num=world.guild_id)
    channel = backend.make_text_channel("TextChannel_0", guild, id_num=world.channel_id)
    members = [
        backend.make_member(
            backend.make_user(name, discrim, id_num=uid), guild, nick=f"{name}_nick"
        )
        for uid, name, discrim in world.people
    ]
    backend.make_member(backend.get_state().user, guild, nick="bot_nick")
    backend.make_role("Operators", guild, id_num=world.role_id)
    backend._cur_config.messages.update(world.messages)
    for thread in created_threads:
        if int(thread["guild_id"]) == guild.id:
            bot._connection.parse_thread_create(
                {k: v for k, v in thread.items() if k != "message_id"}
            )
    runner._cur_config = runner.RunnerConfig(bot, [guild], [channel], members)
    return guild


async def attach(bot: Any, *, members: int, world: World | None = None) -> None:
    """Put a HandoffBot on dpytest's fake Discord and run its start-up, as ``bot.start()`` would.

    With ``world`` (from ``capture_world`` before the last bot stopped), Discord is as that bot left
    it.
    """
    import discord
    import discord.ext.test as dpytest

    install_all()
    # The real bot needs no member cache (payloads carry members); dpytest's fake guild does.
    bot._connection._intents.members = True
    bot._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(
        bot._connection._intents
    )
    if world is None:
        forget_discord()  # a new Discord: nothing from an earlier test's world leaks into this one
        dpytest.configure(bot, members=members)
        guild = dpytest.get_config().guilds[0]
        role = backend.make_role("Operators", guild)
    else:
        guild = _rebuild(bot, world)
        role = guild.get_role(world.role_id)
    # Point the bot at dpytest's guild and channel, with an operator role (given out by
    # make_operator).
    config = dpytest.get_config()
    bot.settings = dataclasses.replace(
        bot.settings,
        guild_id=guild.id,
        staff_channel_id=config.channels[0].id,
        operator_role_id=role.id,
    )
    # tree.sync() needs it; Discord sends it on READY, and it stays the same across restarts.
    bot._connection.application_id = world.application_id if world is not None else bot.user.id
    bot.tree._http = bot.http  # the tree kept the real HTTP client from before configure()
    await bot._async_setup_hook()  # after configure: it hands the running loop to dpytest's state
    await bot.setup_hook()


def forget_discord() -> None:
    """Reset what this module remembers of Discord (threads, archives, commands, DM channels) in
    place, so names imported by tests keep pointing at the live objects."""
    created_threads.clear()
    archived_threads.clear()
    locked_threads.clear()
    registered_commands.clear()
    command_syncs.clear()
    _dm_channel_ids.clear()
    requests_made.clear()


def make_operator(bot: Any, member: Any) -> Any:
    """Give a member the bot's operator role (as a guild admin would)."""
    role = member.guild.get_role(bot.settings.operator_role_id)
    backend.update_member(member, roles=[role])
    return member.guild.get_member(member.id)


async def detach(bot: Any) -> None:
    await bot.close()
