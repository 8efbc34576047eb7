"""Pictures and files: Claude sees the images and PDFs customers send (the same bytes in every
later call, after a restart too), operators see them in the ticket's thread as files, and what is
too large is refused with one sentence and never reaches Claude."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import discord
import pytest

from tests.conftest import eventually_async
from tests.desk_support import desk_with, start_again
from tests.fake_claude import text, tool_calls
from tests.support import test_policy

# a real 1x1 PNG and a tiny PDF: the desk reads their first bytes, not their names
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def saved(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def blocks_of(request: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        b
        for m in request["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == kind
    ]


async def test_claude_sees_a_picture_now_and_in_later_calls_and_after_a_restart(desk, tmp_path):
    h = desk.h
    h.fake.then(text("That mug is cracked; I'm sorry."))
    await h.dm(0, "it arrived like this", attachments=[saved(tmp_path, "mug.png", PNG)])
    [image] = blocks_of(h.fake.requests[0], "image")
    assert image["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    said = json.dumps(h.fake.requests[0]["messages"])
    assert "mug.png (image" in said and "not instructions" in said
    h.fake.then(text("A replacement is on its way."))
    await h.dm(0, "can you replace it?")
    assert blocks_of(h.fake.requests[1], "image") == [image], "again in the next call's history"
    await start_again(desk)
    h.fake.then(text("Anything else?"))
    await h.dm(0, "thanks")
    assert blocks_of(h.fake.requests[2], "image") == [image], "read from the database"
    [(size, readable)] = await h.fetch("SELECT size, readable FROM files")
    assert (size, readable) == (len(PNG), 1)


def test_one_request_shows_what_the_api_takes_newest_first():
    from core.files import MB, shown_in_one_request

    png, pdf = "image/png", "application/pdf"
    # a phone photo over the API's 5 MB of base64 (3.75 MB of bytes) is never shown
    assert shown_in_one_request([(1, png, 4 * MB), (2, pdf, 4 * MB)]) == {
        1: "too large for you to see; the operators have it"
    }
    # six 3.5 MB pictures: the newest five fit the request's 20 MB; the oldest waits out
    six = [(i, png, int(3.5 * MB)) for i in range(1, 7)]
    assert list(shown_in_one_request(six)) == [1]
    # and at most 20 files a request (more would shrink the API's pixel limit)
    many = [(i, png, 1000) for i in range(1, 23)]
    assert sorted(shown_in_one_request(many)) == [1, 2]


def picture(width: int, height: int, *, noise: bool = False) -> bytes:
    """A PNG; with noise it does not compress (1200 x 1200: a 4.3 MB file, like a phone photo)."""
    import io
    import os

    from PIL import Image

    image = (
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        if noise
        else Image.new("RGB", (width, height), "teal")
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_a_photo_over_the_apis_size_or_pixels_is_shown_smaller(desk, tmp_path):
    import io

    from PIL import Image

    from core.files import IMAGE_MAX_BYTES

    h = desk.h
    photo, strip = picture(1200, 1200, noise=True), picture(9000, 20)
    assert len(photo) > IMAGE_MAX_BYTES, "over the API's 5 MB of base64 as it came"
    h.fake.then(text("I see the box and the label."))
    attached = [saved(tmp_path, "box.png", photo), saved(tmp_path, "label.png", strip)]
    await h.dm(0, "the box", attachments=attached)
    shown = blocks_of(h.fake.requests[0], "image")
    assert [b["source"]["media_type"] for b in shown] == ["image/jpeg", "image/jpeg"]
    sizes = [Image.open(io.BytesIO(base64.b64decode(b["source"]["data"]))).size for b in shown]
    # the photo keeps its pixels, as a JPEG within the size; the strip takes the API's own scale
    assert sizes == [(1200, 1200), (1568, 4)]
    assert all(len(b["source"]["data"]) <= 5 * 1024 * 1024 for b in shown)
    assert [tuple(r) for r in await h.fetch("SELECT size FROM files ORDER BY id")] == [
        (len(photo),),
        (len(strip),),
    ], "the operators keep the originals"


async def test_a_picture_unreadable_or_of_too_many_pixels_is_described_not_sent(desk, tmp_path):
    import io

    from PIL import Image

    h = desk.h
    broken = PNG[:16] + b"\x7f" * (4 * 1024 * 1024)  # a PNG's first bytes, then nothing readable
    bomb = io.BytesIO()  # 72 megapixels in a small file: never decoded
    Image.new("L", (9000, 8000)).save(bomb, "PNG")
    h.fake.then(text("Could you send them again?"))
    attached = [saved(tmp_path, "box.png", broken), saved(tmp_path, "wall.png", bomb.getvalue())]
    await h.dm(0, "the box", attachments=attached)
    assert blocks_of(h.fake.requests[0], "image") == []
    said = json.dumps(h.fake.requests[0])
    assert "box.png (4.0 MB): could not be read as a picture" in said
    assert "wall.png (" in said and "): too large for you to see" in said
    assert [m.content for m in h.sent()] == ["Could you send them again?"]


async def test_a_file_the_api_refuses_is_left_out_and_the_answer_still_comes(desk, tmp_path):
    """A picture the API cannot process (400) would refuse every later answer of the conversation:
    the answer is written without it, and it is never shown again."""
    from tests.fake_claude import error

    h = desk.h
    refused = "messages.0.content.0.image.source.base64: Could not process image"
    h.fake.then(error(400, message=refused), text("Thanks, I'll look at your order."))
    await h.dm(0, "my parcel", attachments=[saved(tmp_path, "parcel.png", PNG)])
    assert [m.content for m in h.sent()] == ["Thanks, I'll look at your order."]
    first, again = h.fake.requests
    assert len(blocks_of(first, "image")) == 1 and blocks_of(again, "image") == []
    assert "parcel.png (1 KB): could not be shown to you" in json.dumps(again)
    assert [tuple(r) for r in await h.fetch("SELECT readable FROM files")] == [(0,)]
    h.fake.then(text("Anything else?"))
    await h.dm(0, "thanks")
    assert len(h.fake.requests) == 3, "no refused request first"
    assert blocks_of(h.fake.requests[2], "image") == []


async def test_a_pdf_is_a_document_and_a_picture_alone_goes_to_claude(desk, tmp_path):
    h = desk.h
    h.fake.then(text("Thanks for the invoice."))
    await h.dm(0, "", attachments=[saved(tmp_path, "invoice.pdf", PDF)])
    [document] = blocks_of(h.fake.requests[0], "document")
    assert document["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(document["source"]["data"]) == PDF


async def test_a_name_that_lies_is_not_shown_as_a_picture(desk, tmp_path):
    h = desk.h
    h.fake.then(text("What is in the file?"))
    await h.dm(0, "see attached", attachments=[saved(tmp_path, "photo.png", b"MZ\x90 not a png")])
    assert blocks_of(h.fake.requests[0], "image") == []
    assert "you cannot open this type" in json.dumps(h.fake.requests[0]["messages"])


async def test_an_oversized_file_is_refused_politely_and_never_sent_to_claude(harness, tmp_path):
    policy = test_policy(attachments={"max_file_mb": 0.1})
    async with desk_with(harness, policy) as desk:
        h = desk.h
        big = saved(tmp_path, "video.png", PNG + b"\0" * 200_000)
        h.fake.then(text("Tell me more."))
        await h.dm(0, "look", attachments=[big])
        told = [m.content for m in h.sent()]
        assert any("I couldn't take “video.png” (" in t and "up to 102 KB" in t for t in told)
        assert blocks_of(h.fake.requests[0], "image") == []
        assert await h.fetch("SELECT id FROM files") == []
        h.fake.requests.clear()
        await h.dm(0, "", attachments=[big])  # only a refused file: one sentence, no Claude call
        assert h.fake.requests == [] and len(h.sent()) == 1


async def test_operators_get_the_files_in_the_thread_as_files(desk, tmp_path):
    h = desk.h
    h.fake.then(
        tool_calls(("hand_over_to_human", {"reason": "damaged item"})), text("A person will help.")
    )
    await h.dm(0, "broken, see photo", attachments=[saved(tmp_path, "mug.png", PNG)])
    await h.settle()
    files = [m for m in h.staff() if m.attachments]
    assert [m.attachments[0].filename for m in files] == ["mug.png"]
    assert files[0].content.startswith("📎 ") and "mug.png" in files[0].content
    await desk.slash("takeover", 1)
    await desk.told(1)
    await h.dm(0, "and the box", attachments=[saved(tmp_path, "box.pdf", PDF)])
    await h.settle()
    posted = h.staff()
    assert any(m.content.endswith("and the box") for m in posted)
    assert [m.attachments[0].filename for m in posted if m.attachments] == ["box.pdf"]


async def test_more_files_than_a_message_takes_are_refused_one_sentence(desk, tmp_path):
    h = desk.h
    h.fake.then(text("Got them."))
    paths = [saved(tmp_path, f"p{i}.png", PNG) for i in range(5)]
    await h.dm(0, "photos", attachments=paths)
    assert len(blocks_of(h.fake.requests[0], "image")) == 4
    [refusal] = [m.content for m in h.sent() if "couldn't take" in m.content]
    assert "p4.png" in refusal and "at most 4 files a message" in refusal


# -- operators' files to the customer --------------------------------------------------------------


async def operator_posts(desk: Any, number: int, content: str, *paths: str) -> None:
    import discord.ext.test as dpytest

    await dpytest.message(
        content, channel=await desk.thread(number), member=desk.operator, attachments=list(paths)
    )
    await desk.h.settle()


async def test_an_operators_file_in_the_thread_reaches_the_customer_as_a_file_once(desk, tmp_path):
    from tests.desk_support import open_question

    h = desk.h
    await open_question(desk)
    label = saved(tmp_path, "return-label.pdf", PDF)
    await operator_posts(desk, 1, "Here is your return label.", label)
    [dm] = h.sent()
    assert dm.content.endswith("Here is your return label.")
    assert [a.filename for a in dm.attachments] == ["return-label.pdf"], "one upload, with the text"
    [(dropped,)] = await h.fetch(
        "SELECT file_data IS NULL FROM outbox WHERE file_name = 'return-label.pdf'"
    )
    assert dropped, "sent: its bytes are not kept"
    await operator_posts(desk, 1, "// internal: label from the carrier", label)
    assert h.sent() == [], "a note with a file stays between operators"
    history = await h.fetch("SELECT data FROM turns WHERE kind = 'operator'")
    assert "return-label.pdf" in history[0][0]


async def test_an_operators_file_owed_across_a_restart_is_sent_once(desk, tmp_path):
    from tests.desk_support import open_question

    h = desk.h
    await open_question(desk)
    h.bot.outbox.stop_accepting()  # the bot stops right after storing the DM it owes
    await operator_posts(desk, 1, "", saved(tmp_path, "invoice.pdf", PDF))
    assert h.sent() == []
    await start_again(desk)
    await h.settle()
    [dm] = [m for m in h.sent() if m.attachments]
    assert dm.attachments[0].filename == "invoice.pdf" and "📎 invoice.pdf" in dm.content
    rows = await h.fetch("SELECT COUNT(*) FROM outbox WHERE file_name = 'invoice.pdf'")
    assert rows[0][0] == 1


async def test_the_transcript_shows_pictures_inline_and_lists_other_files(desk, tmp_path):
    h = desk.h
    h.fake.then(
        tool_calls(("hand_over_to_human", {"reason": "damaged"})), text("A person will help.")
    )
    await h.dm(
        0,
        "photo and notes",
        attachments=[saved(tmp_path, "mug.png", PNG), saved(tmp_path, "notes.txt", b"cracked")],
    )
    _, page = await h.bot.desk.transcript(1)
    html = page.decode()
    assert f"data:image/png;base64,{base64.b64encode(PNG).decode()}" in html
    assert "📎 notes.txt (1 KB)" in html


async def test_a_customer_edit_updates_what_claude_reads_and_shows_in_a_takeover(desk):
    h = desk.h
    h.fake.then(
        tool_calls(("hand_over_to_human", {"reason": "person"})), text("A person will help.")
    )
    message = await h.dm(0, "my order is 4411")
    await desk.slash("takeover", 1)
    await desk.told(1)
    relayed = await h.dm(0, "it came broken")
    h.staff()

    def edit(of: Any, content: str) -> None:
        h.bot._connection.parse_message_update(message_update(of, content))

    edit(relayed, "it came broken, the handle is off")
    posted: list[Any] = []
    for _ in range(100):
        await h.settle()
        posted += h.staff()
        if posted:
            break
        await asyncio.sleep(0.02)
    assert [m.content for m in posted] == [
        f"✏️ **{h.members[0].name}** edited a message: it came broken, the handle is off"
    ]
    edit(message, "my order is 4412")  # answered long ago: nothing changes
    await asyncio.sleep(0.1)
    [(content,)] = await h.fetch(
        "SELECT content FROM turns WHERE discord_message_id = ?", (message.id,)
    )
    assert content == "my order is 4411"


def message_update(of: Any, content: str) -> dict[str, Any]:
    """MESSAGE_UPDATE as the gateway sends it for an edited message (dpytest's own builder)."""
    from discord.ext.test import factories

    data = factories.make_message_dict(of.channel, of.author, id_num=of.id, content=content)
    data["timestamp"] = data["edited_timestamp"] = of.created_at.isoformat()
    data.pop("member", None)  # dpytest's member lacks roles; the gateway's edit needs none
    if of.guild is not None:  # a thread's message: the gateway names its guild
        data["guild_id"] = str(of.guild.id)
    return data


async def relayed_answer(desk: Any) -> tuple[Any, Any, Any]:
    """A question ticket answered in its thread: (the operator's message, the thread, the
    customer's DM copy)."""
    import discord.ext.test as dpytest

    from tests.desk_support import open_question

    await open_question(desk)
    thread = await desk.thread(1)
    posted = await dpytest.message("It is dishwasher safe.", channel=thread, member=desk.operator)
    await desk.h.settle()
    [dm] = desk.h.sent()
    return posted, thread, dm


async def test_an_operators_edit_and_delete_follow_to_the_customers_copy(desk):
    h = desk.h
    posted, thread, dm = await relayed_answer(desk)
    h.bot._connection.parse_message_update(
        message_update(posted, "It is dishwasher safe, up to 60°C.")
    )
    for _ in range(100):  # the edit's handler runs in discord.py's dispatch
        copy = await dm.channel.fetch_message(dm.id)
        if copy.content.endswith("up to 60°C."):
            break
        await asyncio.sleep(0.02)
    assert copy.content.endswith("It is dishwasher safe, up to 60°C.")
    h.fake.then(text("Anything else?"))
    await h.dm(0, "thanks")
    said = json.dumps(h.fake.requests[-1]["messages"], ensure_ascii=False)
    assert "up to 60°C" in said, "Claude reads the edit"
    h.bot._connection.parse_message_delete(
        {"id": str(posted.id), "channel_id": str(thread.id), "guild_id": str(thread.guild.id)}
    )
    for _ in range(100):
        try:
            await dm.channel.fetch_message(dm.id)
        except discord.NotFound:
            break
        await asyncio.sleep(0.02)
    with pytest.raises(discord.NotFound):
        await dm.channel.fetch_message(dm.id)


async def test_an_operators_edit_discord_refuses_for_now_is_made_after_a_restart(desk):
    """The edit is owed like a message: Discord failing (503) and the bot stopping lose nothing;
    two edits while it waits make one request with the latest text."""
    from tests.conftest import http_error

    h = desk.h
    posted, _, dm = await relayed_answer(desk)
    tried: list[str] = []

    async def refused(channel_id: int, message_id: int, *, params: Any) -> Any:
        tried.append(params.payload["content"])
        raise http_error(503)

    h.bot.http.edit_message = refused  # type: ignore[method-assign]
    # Discord adding a link's preview sends an update with the same words: nothing is owed
    h.bot._connection.parse_message_update(message_update(posted, "It is dishwasher safe."))
    await h.settle()

    async def edits() -> list[tuple[Any, ...]]:
        rows = await h.fetch("SELECT status, attempts, content FROM outbox WHERE change = 'edit'")
        return [tuple(r) for r in rows]

    h.bot._connection.parse_message_update(message_update(posted, "It is safe, up to 60°C."))
    await eventually_async(edits, lambda rows: rows and rows[0][1] >= 1, "a refused try")
    h.bot._connection.parse_message_update(message_update(posted, "It is safe, up to 65°C."))
    await eventually_async(edits, lambda rows: "65" in rows[0][2], "the second edit")
    await start_again(desk)
    await h.settle()
    copy = await dm.channel.fetch_message(dm.id)
    assert copy.content.endswith("It is safe, up to 65°C.")
    [(status, _, content)] = await edits()
    assert status == "sent" and content.endswith("up to 65°C."), "one edit row, the latest text"
    assert tried and all(t.endswith("°C.") for t in tried), "no request for the unchanged words"


async def test_an_answer_with_files_is_edited_in_its_text_and_deleted_whole(desk, tmp_path):
    import discord.ext.test as dpytest

    from tests.desk_support import open_question

    h = desk.h
    await open_question(desk)
    thread = await desk.thread(1)
    posted = await dpytest.message(
        "Your label and invoice.",
        channel=thread,
        member=desk.operator,
        attachments=[saved(tmp_path, "label.pdf", PDF), saved(tmp_path, "invoice.pdf", PDF)],
    )
    await h.settle()
    text_dm, file_dm = h.sent()
    assert [a.filename for a in text_dm.attachments] == ["label.pdf"]
    assert [a.filename for a in file_dm.attachments] == ["invoice.pdf"]
    h.bot._connection.parse_message_update(message_update(posted, "Your label, and the invoice."))
    await eventually_async(
        lambda: text_dm.channel.fetch_message(text_dm.id),
        lambda m: m.content.endswith("Your label, and the invoice."),
        "the text's copy edited",
    )
    assert (await file_dm.channel.fetch_message(file_dm.id)).content == "📎 invoice.pdf"
    h.bot._connection.parse_message_delete(
        {"id": str(posted.id), "channel_id": str(thread.id), "guild_id": str(thread.guild.id)}
    )
    await h.settle()

    async def gone(message: Any) -> bool:
        try:
            await message.channel.fetch_message(message.id)
        except discord.NotFound:
            return True
        return False

    await eventually_async(
        lambda: asyncio.gather(gone(text_dm), gone(file_dm)), all, "both copies deleted"
    )


async def test_a_file_discord_refuses_to_deliver_is_said_in_the_thread(desk, tmp_path):
    import discord.ext.test as dpytest

    from tests.conftest import SendRecorder, http_error
    from tests.desk_support import open_question

    h = desk.h
    await open_question(desk)
    recorder = SendRecorder(h.bot)
    recorder.fail_next(http_error(413, 40005))  # Request entity too large
    await dpytest.message(
        "",
        channel=await desk.thread(1),
        member=desk.operator,
        attachments=[saved(tmp_path, "scan.pdf", PDF)],
    )
    await h.settle()
    said = [m.content for m in h.staff()]
    assert any("Discord did not deliver **scan.pdf**" in s and "40005" in s for s in said), said
    assert [m for m in h.sent() if m.attachments] == []


async def test_an_edit_before_the_answer_is_what_claude_reads_afterwards(desk):
    h = desk.h
    h.fake.then(text("One moment.", delay=0.5), text("Noted."))
    message = await h.dm(0, "my order is 4411", settle=False)
    # edited while Claude is still answering: the message is not answered yet
    h.bot._connection.parse_message_update(message_update(message, "my order is 4412"))
    await h.settle()
    await h.dm(0, "thanks")
    later = json.dumps(h.fake.requests[-1]["messages"])
    assert "my order is 4412" in later and "my order is 4411" not in later


async def test_reply_with_an_attachment_sends_the_customer_the_file(desk, tmp_path):
    from tests.desk_support import open_question

    h = desk.h
    await open_question(desk)
    await desk.slash(
        "reply", 1, text="Your invoice.", attachment=Path(saved(tmp_path, "inv.pdf", PDF))
    )
    [(told, ephemeral)] = await desk.told(1)
    assert ephemeral and told.startswith("Sent to")
    await h.settle()
    [dm] = h.sent()
    assert dm.content.endswith("Your invoice.") and [a.filename for a in dm.attachments] == [
        "inv.pdf"
    ]


async def test_files_older_than_keep_days_are_deleted_and_said_so(harness, tmp_path):
    # a conversation long enough to outlive its file
    policy = test_policy(attachments={"keep_days": 1}, conversation={"idle_minutes": 2880})
    async with desk_with(harness, policy) as desk:
        h = desk.h
        h.fake.then(text("Cracked, sorry."))
        await h.dm(0, "look", attachments=[saved(tmp_path, "mug.png", PNG)])
        h.clock.advance(23 * 3600)
        await h.bot.deadlines.tidy()
        assert len(await h.fetch("SELECT id FROM files")) == 1, "kept for keep_days"
        h.clock.advance(2 * 3600)
        await h.bot.deadlines.tidy()
        assert await h.fetch("SELECT id FROM files") == []
        h.fake.then(text("What else can I do?"))
        await h.dm(0, "any news?")
        said = json.dumps(h.fake.requests[-1]["messages"])
        assert blocks_of(h.fake.requests[-1], "image") == []
        assert "mug.png (1 KB): no longer kept" in said
