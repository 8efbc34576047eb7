"""Deadlines (fake clock, across restarts) and the escalation summary (figures, alert, chart,
export)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from PIL import Image

from core.summary import compute, export, render_chart, render_text
from storage.db import Database
from tests.conftest import eventually
from tests.desk_support import ask_then_wait, open_question, start_again
from tests.fake_claude import text

DAY = 86400.0


# -- timeouts ----------------------------------------------------------------------------------


async def test_reminder_and_timeout_fire_once_each_across_a_restart(desk):
    h = desk.h
    await open_question(desk)
    jobs = {job.id: job.next_run_time.timestamp() for job in h.bot.scheduler.get_jobs()}
    assert jobs["ticket-reminder:1"] == pytest.approx(h.clock.now() + 300, abs=1)
    assert jobs["ticket-timeout:1"] == pytest.approx(h.clock.now() + 600, abs=1)

    h.clock.advance(299)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert h.staff() == [] and h.sent() == [], "nothing is due yet"
    h.clock.advance(2)
    await h.bot.deadlines.run_due()
    await h.bot.deadlines.run_due()  # fired twice: acts once
    await h.settle()
    [reminder] = h.staff()
    assert reminder.content.startswith(
        f"<@&{h.bot.settings.operator_role_id}> ⏰ Reminder: ticket #1"
    )

    await start_again(desk)
    ids = [job.id for job in h.bot.scheduler.get_jobs()]
    assert "ticket-timeout:1" in ids and "ticket-reminder:1" not in ids, (
        "re-armed from the database"
    )
    assert len(ids) == len(set(ids))
    h.clock.advance(300)
    await start_again(desk)  # down across the timeout: start-up settles it at once
    told = await h.fetch("SELECT content FROM outbox WHERE content LIKE 'No one from our team%'")
    assert len(told) == 1 and "ticket #1" in told[0][0]
    await h.bot.deadlines.run_due()
    await h.settle()
    assert (
        len(await h.fetch("SELECT 1 FROM outbox WHERE content LIKE 'No one from our team%'")) == 1
    )
    [ticket] = await h.fetch("SELECT status, timed_out_at FROM tickets")
    assert ticket["status"] == "open" and ticket["timed_out_at"] is not None, (
        "nothing is lost at a timeout"
    )


async def test_a_late_answer_after_the_timeout_still_reaches_the_customer(desk):
    h = desk.h
    await open_question(desk)
    h.clock.advance(601)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert h.sent()[-1].content.startswith("No one from our team has answered yet")
    await desk.write(1, "Yes, it is dishwasher safe.")
    assert h.sent()[-1].content.endswith("Yes, it is dishwasher safe.")


async def test_an_answered_ticket_is_neither_reminded_nor_timed_out(desk):
    h = desk.h
    await open_question(desk)
    await desk.write(1, "Yes.")
    h.sent(), h.staff()
    h.clock.advance(3600)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert h.sent() == [] and h.staff() == []


async def test_idle_conversations_are_closed_by_their_deadline(desk):
    h = desk.h
    h.fake.default = lambda request: text("Hi")
    await h.dm(0, "hello")
    h.clock.advance(29 * 60)
    assert await h.bot.deadlines.close_idle_conversations() == 0
    h.clock.advance(2 * 60)
    assert await h.bot.deadlines.close_idle_conversations() == 1
    [conversation] = await h.fetch("SELECT ended_at, last_activity_at FROM conversations")
    assert conversation["ended_at"] == conversation["last_activity_at"] + 30 * 60


# -- the summary -------------------------------------------------------------------------------


async def hand_made(db: Database, now: float) -> None:
    """10 conversations in the last 7 days (2 more before), 3 of them escalated with 4 tickets."""

    def write(c):
        c.execute(
            "INSERT INTO customers (id, discord_id, display_name, created_at) VALUES (1, 42,"
            " 'Ada', 0)"
        )
        for i in range(12):
            started = now - (i + 0.5) * DAY if i < 10 else now - 9 * DAY
            c.execute(
                "INSERT INTO conversations (id, customer_id, started_at, last_activity_at) VALUES"
                " (?, 1, ?, ?)",
                (i + 1, started, started),
            )
        # conversation, kind, priority, status, source, action, created, first response after, timed
        # out
        tickets = [
            (
                1,
                "approval",
                "urgent",
                "approved",
                "approval",
                "issue_refund",
                now - 0.4 * DAY,
                60,
                False,
            ),
            (1, "question", "normal", "answered", "ask_human", None, now - 0.3 * DAY, 300, False),
            (
                2,
                "approval",
                "urgent",
                "denied",
                "approval",
                "issue_refund",
                now - 1.4 * DAY,
                120,
                False,
            ),
            (3, "handover", "high", "open", "handover", None, now - 2.4 * DAY, None, True),
            # outside
            (11, "question", "normal", "answered", "ask_human", None, now - 9 * DAY, 10, False),
        ]
        for n, (
            conv,
            kind,
            priority,
            status,
            source,
            action,
            created,
            wait,
            timed_out,
        ) in enumerate(tickets, 1):
            c.execute(
                "INSERT INTO tickets (id, customer_id, conversation_id, kind, source, priority,"
                " status, question, action_name, created_at, first_response_at, timed_out_at)"
                " VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    n,
                    conv,
                    kind,
                    source,
                    priority,
                    status,
                    f"q{n}",
                    action,
                    created,
                    created + wait if wait is not None else None,
                    created + 600 if timed_out else None,
                ),
            )

    await db.run(write)


async def test_the_summary_figures_match_a_hand_made_data_set(tmp_path):
    now = 1_800_000_000.0
    async with Database(tmp_path / "s.db") as db:
        await hand_made(db, now)
        s = await compute(db, now - 7 * DAY, now)
        csv_bytes = await export(db, now - 7 * DAY, now)
    assert (s.conversations, s.escalated_conversations, s.tickets) == (7, 3, 4)
    assert s.escalation_rate == pytest.approx(3 / 7)
    assert s.by_kind == {"approval": 2, "question": 1, "handover": 1}
    assert s.by_priority == {"urgent": 2, "normal": 1, "high": 1}
    assert s.by_outcome == {"approved": 1, "answered": 1, "denied": 1, "timed out": 1}
    assert s.top_reasons[0] == ("an action needed approval: issue_refund", 2)
    assert s.first_response_median == 120 and s.first_response_p90 == 300
    assert sum(sum(kinds.values()) for kinds in s.per_day.values()) == 4
    rows = list(csv.DictReader(io.StringIO(csv_bytes.decode())))
    assert [r["id"] for r in rows] == ["4", "3", "1", "2"], "oldest first, only the period"
    assert rows[0]["outcome"] == "timed out" and rows[0]["timed_out"] == "yes"
    assert rows[2]["first_response_seconds"] == "60" and rows[2]["action_name"] == "issue_refund"


def test_the_alert_threshold_on_both_sides():
    from core.summary import Summary

    at = Summary(0, 1, conversations=100, escalated_conversations=15)
    above = Summary(0, 1, conversations=1000, escalated_conversations=151)
    text, alert = render_text(at, alert_percent=15, days=7)
    assert not alert and "escalation rate 15.0%" in text and "Alert" not in text
    text, alert = render_text(above, alert_percent=15, days=7)
    assert alert and text.startswith("⚠ **Alert:**") and "above the alert level of 15%" in text
    assert render_text(Summary(0, 1), alert_percent=15, days=7)[1] is False, (
        "no conversations: no alert"
    )


def test_the_chart_is_a_png_that_opens():
    from core.summary import Summary

    s = Summary(0, 1_800_000_000.0, per_day={"2027-01-14": {"question": 2, "approval": 1}})
    png = render_chart(s, days=7)
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.format == "PNG" and image.size[0] >= 600


async def test_scheduled_post_is_an_alert_with_a_mention_and_a_chart(desk):
    from tests.conftest import SendRecorder

    h = desk.h
    await open_question(desk)  # 1 conversation, 1 escalated: 100%
    recorder = SendRecorder(h.bot)
    job = h.bot.scheduler.get_job("escalation-summary")
    assert job is not None and str(job.trigger).startswith("cron[")
    await job.func()
    [post] = [m for m in h.staff() if "Escalations, last 7 days" in m.content]
    role = h.bot.settings.operator_role_id
    assert (
        post.content.startswith(f"<@&{role}>\n⚠ **Alert:**")
        and post.attachments[0].filename == "escalations.png"
    )
    assert recorder.attempts[-1]["allowed_mentions"]["roles"] == [role]


async def test_stats_and_export_for_operators_only(desk):
    await open_question(desk)
    await desk.slash("stats", None, days=7)
    await desk.slash("export", None, days=30)
    await desk.slash("stats", None, member=desk.stranger)
    told = await desk.told(3)
    followups = {
        r["data"]["attachments"][0]["filename"]: r["data"]
        for r in desk.i.responses
        if r.get("followup")
    }
    stats, export = followups["escalations.png"], followups["tickets-30d.csv"]
    assert "Tickets: 1" in stats["content"] and stats["flags"] & 64
    assert stats["attachments"][0]["filename"] == "escalations.png"
    assert export["attachments"][0]["filename"] == "tickets-30d.csv" and export["flags"] & 64
    assert any(said.startswith("Only operators") for said, _ in told)


async def test_export_escapes_cells_a_spreadsheet_would_run(desk):
    h = desk.h
    desk.h.fake.default = ask_then_wait
    await h.dm(0, '=HYPERLINK("http://example.invalid","x")')
    await desk.slash("export", None, days=7)
    await desk.told(0)
    await eventually(lambda: any(r.get("followup") for r in desk.i.responses), what="the export")
    [export] = [r for r in desk.i.responses if r.get("followup")]
    data = export["files"][0]
    [row] = list(csv.DictReader(io.StringIO(data.decode())))
    assert row["question"].startswith("'About: =HYPERLINK") or row["question"].startswith("About:")
    for value in row.values():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_csv_cells_are_escaped_as_owasp_recommends():
    from core.summary import csv_cell

    for risky in (
        '=HYPERLINK("http://example.invalid","x")',
        "+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
    ):
        assert csv_cell(risky) == "'" + risky
    assert csv_cell("a =b") == "a =b" and csv_cell(-5) == -5 and csv_cell("") == ""


def test_a_year_long_chart_is_drawn_by_week_within_a_fixed_width():
    from core.summary import CHART_MAX_INCHES, Summary, chart_buckets

    until = 1_800_000_000.0
    day = dt.datetime.fromtimestamp(until, dt.UTC).date()
    per_day = {(day - dt.timedelta(days=i)).isoformat(): {"question": 1} for i in range(365)}
    s = Summary(0, until, per_day=per_day)
    buckets = chart_buckets(s, 365)
    assert len(buckets) == 53 and sum(t["question"] for _, t in buckets) == 365
    assert len(chart_buckets(s, 60)) == 60, "daily up to 60 days"
    image = Image.open(io.BytesIO(render_chart(s, days=365)))
    assert image.size[0] <= CHART_MAX_INCHES * 100


async def test_customers_are_answered_while_a_chart_is_drawn(desk, monkeypatch):
    import sys
    import threading
    import time

    h = desk.h
    drawing, done = threading.Event(), threading.Event()

    def slow_chart(*args, **kwargs):
        drawing.set()
        time.sleep(1.5)  # a chart that takes long, as a year's once did (1.3 s)
        done.set()
        return render_chart(*args, **kwargs)

    # the module the bot loaded
    monkeypatch.setattr(sys.modules["cogs.stats"], "render_chart", slow_chart)
    await desk.slash("stats", None, days=365)
    await eventually(drawing.is_set, what="the chart being drawn")
    h.fake.then(text("Your order is on its way."))
    await h.dm(1, "where is my order?")
    assert [m.content for m in h.sent()] == ["Your order is on its way."]
    assert not done.is_set(), "the answer went out while the chart was still being drawn"
    await eventually(
        lambda: any(r.get("followup") for r in desk.i.responses), within=10, what="the chart"
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (20, "20 seconds"),
        (89, "89 seconds"),
        (90, "2 minutes"),
        (600, "10 minutes"),
        (60 * 89, "89 minutes"),
        (5400, "1 hour 30 minutes"),
        (7200, "2 hours"),
        (86400, "24 hours"),
        (3 * 86400 + 3600, "3 days 1 hour"),
        (-5, "0 seconds"),
        (20 / 3 * 3, "20 seconds"),
    ],
)
def test_durations_are_written_for_people(seconds, said):
    from core.text import for_people

    assert for_people(seconds) == said


async def test_short_ticket_times_read_in_seconds(harness):
    from tests.desk_support import Desk
    from tests.dpytest_ext import Interactions
    from tests.support import test_policy

    h = harness
    await h.start(policy=test_policy(timeouts={"ticket_answer_seconds": 20}))
    desk = Desk(h, Interactions(h.bot))
    await open_question(desk)
    h.clock.advance(10)
    await h.bot.deadlines.run_due()
    await h.settle()
    [reminder] = h.staff()
    assert (
        "the customer is told in about 10 seconds that no one has answered yet" in reminder.content
    )
    h.clock.advance(10)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert any(m.content.startswith("⌛ No answer within 20 seconds:") for m in h.staff())
    desk.i.close()
