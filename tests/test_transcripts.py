"""Closing a ticket posts a readable transcript in its thread, then archives and locks the
thread."""

from __future__ import annotations

from core.transcript import Line, render_html
from tests import dpytest_ext
from tests.conftest import eventually
from tests.desk_support import open_question, uploaded


def test_the_transcript_escapes_everything_and_the_customers_copy_has_no_notes():
    lines = [
        Line(1.0, "customer", "Ada <ada>", "<script>alert(1)</script> **bold** @everyone"),
        Line(2.0, "note", "Sam", "// check the supplier"),
        Line(3.0, "operator", "Sam", "It is safe."),
    ]
    staff = render_html("Ticket #1", lines, for_customer=False)
    assert (
        "<script>" not in staff
        and "&lt;script&gt;alert(1)&lt;/script&gt; **bold** @everyone" in staff
    )
    assert "internal note" in staff and "check the supplier" in staff and "Ada &lt;ada&gt;" in staff
    mine = render_html("Ticket #1", lines, for_customer=True)
    assert "check the supplier" not in mine and "It is safe." in mine


async def test_close_posts_the_transcript_with_notes_then_archives_and_locks(desk):
    h = desk.h
    await open_question(desk)
    await desk.write(1, "// the supplier says yes")
    await desk.write(1, "Yes, <b>dishwasher</b> safe.")
    thread = await desk.thread(1)
    await desk.slash("close", 1, reason="answered")
    await desk.told(1)
    posted, page = await uploaded(h.staff, "the transcript in the thread")
    assert posted.channel.id == thread.id and posted.content == "📄 Transcript of ticket #1"
    assert posted.attachments[0].filename == "ticket-1-transcript.html"
    assert "is the mug dishwasher safe?" in page  # the customer
    assert "Yes, &lt;b&gt;dishwasher&lt;/b&gt; safe." in page  # the operator's answer, escaped
    assert "internal note" in page and "the supplier says yes" in page
    await eventually(lambda: thread.id in dpytest_ext.archived_threads, what="the thread archived")
    assert thread.id in dpytest_ext.locked_threads


async def test_the_customer_gets_their_copy_without_the_notes_when_wished(harness):
    from tests.desk_support import desk_with
    from tests.support import test_policy

    async with desk_with(harness, test_policy(desk={"transcript_to_customer": True})) as desk:
        await open_question(desk)
        await desk.write(1, "// internal: check the supplier")
        await desk.write(1, "Yes, it is.")
        await desk.slash("close", 1, reason="answered")
        await desk.told(1)
        copy, page = await uploaded(harness.sent, "the customer's copy")
        assert copy.content == "Your copy of ticket #1:" and copy.channel.type.name == "private"
        assert (
            "Yes, it is." in page
            and "check the supplier" not in page
            and "internal note" not in page
        )
