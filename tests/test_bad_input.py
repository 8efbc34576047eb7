"""Bad or unusual input from Discord: every case gets a clear answer or is ignored on purpose, and
nothing is lost."""

from __future__ import annotations

import discord.ext.test as dpytest
from discord.ext.test import backend

from tests.conftest import SendRecorder
from tests.fake_claude import text


async def test_empty_message_gets_a_plain_answer_without_claude(harness):
    await harness.start()
    await harness.dm(0, "   ")
    [reply] = harness.sent()
    assert "only read text" in reply.content
    assert harness.fake.requests == []
    [(content, status)] = await harness.fetch("SELECT content, status FROM turns")
    assert (content, status) == ("   ", "answered")


async def test_attachment_only_message_is_stored_and_answered(harness, tmp_path):
    await harness.start()
    picture = tmp_path / "receipt.png"
    picture.write_bytes(b"\x89PNG fake")
    await harness.dm(0, "", attachments=[str(picture)])
    [reply] = harness.sent()
    assert "only see pictures and PDFs" in reply.content
    [(data,)] = await harness.fetch("SELECT data FROM turns WHERE kind = 'customer'")
    assert "receipt.png" in data
    assert harness.fake.requests == []


async def test_text_with_attachment_tells_claude_about_the_file(harness, tmp_path):
    await harness.start()
    picture = tmp_path / "broken.jpg"
    picture.write_bytes(b"jpeg")
    harness.fake.then(text("I can't see images, but tell me more."))
    await harness.dm(0, "my grinder arrived like this", attachments=[str(picture)])
    sent_text = harness.fake.requests[0]["messages"][0]["content"][0]["text"]
    assert sent_text.startswith("my grinder arrived like this")
    assert "broken.jpg" in sent_text and "cannot open" in sent_text


async def test_4000_character_message_is_stored_and_sent_whole(harness):
    await harness.start()
    long = ("Lorem ipsum dolor sit amet. " * 150)[:4000]
    harness.fake.then(text("That's a lot!"))
    await harness.dm(0, long)
    assert harness.fake.requests[0]["messages"][0]["content"][0]["text"] == long
    [(stored,)] = await harness.fetch("SELECT content FROM turns WHERE kind = 'customer'")
    assert stored == long


async def test_messages_from_bots_and_guild_channels_are_ignored(harness):
    await harness.start()
    other_bot = backend.make_user("OtherBot", "0009")
    other_bot.bot = True
    dm = await other_bot.create_dm()
    backend.make_message("I am a bot", other_bot, dm)
    await dpytest.message(
        "hello from the guild", channel=dpytest.get_config().channels[0], member=harness.members[0]
    )
    await harness.settle()
    assert harness.sent() == []
    assert harness.fake.requests == []
    assert await harness.fetch("SELECT * FROM turns") == []


async def test_the_bot_never_answers_itself(harness):
    await harness.start()
    harness.fake.then(text("Hello!"))
    await harness.dm(0, "hi")
    await harness.settle()
    assert len(harness.sent()) == 1
    assert len(harness.fake.requests) == 1, "the bot's own DM did not trigger another answer"


async def test_unusual_text_is_kept_verbatim_and_never_pings(harness):
    await harness.start()
    recorder = SendRecorder(harness.bot)
    weird = (
        "@everyone @here <@123456789012345678> **bold** `code` 😀👍🏽 zero\u200bwidth"
        " \u202eRTL\u202c שלום مرحبا"
    )
    harness.fake.then(text(f"Echo: {weird}"))
    await harness.dm(0, weird)
    assert harness.fake.requests[0]["messages"][0]["content"][0]["text"] == weird
    [(stored,)] = await harness.fetch("SELECT content FROM turns WHERE kind = 'customer'")
    assert stored == weird
    [reply] = harness.sent()
    assert reply.content == f"Echo: {weird}"
    [payload] = recorder.attempts
    assert payload["allowed_mentions"] == {"parse": []}, (
        "nothing the customer or Claude writes can ping anyone"
    )


async def test_a_redelivered_discord_message_is_not_answered_twice(harness):
    await harness.start()
    harness.fake.then(text("Once."))
    message = await harness.dm(0, "hello")
    # The gateway can deliver an event again (e.g. after a resume): dispatch the same message id
    # once more.
    harness.bot.dispatch("message", message)
    await dpytest.run_all_events()
    await harness.settle()
    assert [m.content for m in harness.sent()] == ["Once."]
    assert len(await harness.fetch("SELECT * FROM turns WHERE kind = 'customer'")) == 1


async def test_a_conversation_ends_after_the_idle_time(harness):
    await harness.start()
    harness.fake.then(text("one"), text("two"), text("three"))
    await harness.dm(0, "first")
    harness.clock.advance(10 * 60)
    await harness.dm(0, "second, same conversation")
    harness.clock.advance(31 * 60)  # policy default: 30 minutes idle
    await harness.dm(0, "third, new conversation")
    conversations = await harness.fetch("SELECT id, ended_at FROM conversations ORDER BY id")
    assert len(conversations) == 2 and conversations[0][1] is not None
    assert len(harness.fake.requests[1]["messages"]) == 3
    assert harness.fake.requests[2]["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "third, new conversation",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        }
    ]
