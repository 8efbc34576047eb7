"""Pure logic: message splitting, the history window, migrations. No discord here."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.assistant import build_messages, window
from core.text import split_message
from storage.conversations import Turn
from storage.db import Database, migration_files

prose = st.lists(
    st.sampled_from(
        ["word", "longerword", " ", " ", "\n", "\n\n", ". ", "!", "😀", "\u200b", "```", "x" * 300]
    ),
    max_size=400,
).map("".join)


@given(prose, st.integers(min_value=50, max_value=2000))
@settings(max_examples=300, deadline=None)
def test_split_respects_the_limit_and_keeps_every_word(text, limit):
    chunks = split_message(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    original_words = text.replace("```", " ").split()
    split_words = " ".join(chunks).replace("```", " ").split()
    # Hard cuts inside very long words may divide a word; its letters are all still there, in order.
    assert "".join(split_words) == "".join(original_words)


def test_split_never_cuts_through_back_to_back_fences():
    text = "longerword" + "x" * 300 + "``````word"  # found by the hypothesis test above
    chunks = split_message(text, 316)
    assert "".join(" ".join(chunks).replace("```", " ").split()) == "".join(
        text.replace("```", " ").split()
    )


def test_split_prefers_paragraphs_then_sentences():
    text = ("A sentence here. " * 70).strip() + "\n\n" + "Second paragraph."
    chunks = split_message(text, 1300)
    assert all(c.endswith(".") for c in chunks)


def test_split_reopens_a_code_block():
    text = "```python\n" + "\n".join(f"x_{i} = {i}" for i in range(400)) + "\n```"
    first, *rest = split_message(text)
    assert first.endswith("```") and rest[0].startswith("```")


def _turn(i: int, kind: str, content: str = "x", data=None) -> Turn:
    return Turn(i, 1, 1, kind, content, data, "done", 0, 0.0)


def test_window_never_starts_with_an_assistant_or_tool_turn():
    use = {"blocks": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]}
    result = {"blocks": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
    turns = [
        _turn(1, "customer", "a" * 4000),
        _turn(2, "tool_use", "", use),
        _turn(3, "tool_result", "", result),
        _turn(4, "assistant", "b"),
        _turn(5, "customer", "c"),
    ]
    kept = window(turns, token_budget=600)
    assert [t.id for t in kept] == [5]
    messages = build_messages(window(turns, token_budget=100_000))
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]


def test_consecutive_same_role_turns_are_merged():
    turns = [_turn(1, "customer", "a"), _turn(2, "customer", "b"), _turn(3, "system", "note")]
    [message] = build_messages(turns)
    assert [b["text"] for b in message["content"]] == ["a", "b", "[System note]: note"]


async def test_migrations_set_user_version_and_reopen_cleanly(tmp_path):
    path = tmp_path / "m.db"
    async with Database(path) as db:
        assert await db.user_version() == len(migration_files())
        async with db.conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
    async with Database(path) as db:  # second open applies nothing and fails on nothing
        assert await db.user_version() == len(migration_files())


async def test_audit_log_is_append_only(tmp_path):
    async with Database(tmp_path / "a.db") as db:
        await db.execute("INSERT INTO audit (at, actor, action) VALUES (1, 'x', 'y')")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await db.execute("UPDATE audit SET actor = 'z'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await db.execute("DELETE FROM audit")


async def test_a_database_from_newer_code_is_refused(tmp_path):
    from storage.db import StorageError

    path = tmp_path / "new.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 999").connection.close()
    with pytest.raises(StorageError, match="newer than this code"):
        await Database(path).open()


def test_a_hard_cut_never_splits_a_code_fence_marker():
    # Found by hypothesis: a 300-character word followed by ``` was cut between the backticks.
    for extra in range(0, 4):
        text = "x" * (300 + extra) + "```word"
        chunks = split_message(text, 305)
        assert all(len(c) <= 305 for c in chunks)
        assert "".join(chunks).replace("```", "") == "x" * (300 + extra) + "word"
        assert all(c.count("`") % 3 == 0 for c in chunks), "no chunk holds a partial ``` marker"


async def test_migration_9_keeps_every_ticket_and_reference_and_drops_the_kind_check(tmp_path):
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    for number, migration in migration_files()[:8]:  # a database as version 8 left it
        raw.executescript(
            f"BEGIN;\n{migration.read_text()}\nPRAGMA user_version = {number};\nCOMMIT;"
        )
    raw.executescript("""
        INSERT INTO customers (id, discord_id, display_name, created_at) VALUES (1, 42, 'Ada', 0);
        INSERT INTO conversations (id, customer_id, started_at, last_activity_at)
            VALUES (1, 1, 0, 0);
        INSERT INTO tickets (id, customer_id, conversation_id, kind, source, priority, status,
                             question, thread_id, created_at, reminder_due_at, timed_out_at)
            VALUES (7, 1, 1, 'approval', 'approval', 'urgent', 'approved', 'refund?', 555,
                    10, 20, 30);
        INSERT INTO desk_outbox (ticket_id, op, content, next_attempt_at, created_at)
            VALUES (7, 'post', 'hi', 0, 0);
    """)
    raw.close()
    async with Database(path) as db:
        assert await db.user_version() == len(migration_files())
        [ticket] = await db.fetchall(
            "SELECT id, kind, status, thread_id, reminder_due_at, timed_out_at FROM tickets"
        )
        assert tuple(ticket) == (7, "approval", "approved", 555, 20, 30)
        assert await db.fetchall("PRAGMA foreign_key_check") == []
        [(outbox_ticket,)] = await db.fetchall("SELECT ticket_id FROM desk_outbox")
        assert outbox_ticket == 7
        indexes = {r["name"] for r in await db.fetchall("PRAGMA index_list(tickets)")}
        assert {
            "tickets_open",
            "tickets_customer",
            "tickets_created",
            "tickets_reminder_due",
            "tickets_timeout_due",
            "tickets_summary",
        } <= indexes
        await db.execute(
            "INSERT INTO tickets (customer_id, conversation_id, kind, source, priority, question,"
            " created_at) VALUES (1, 1, 'callback', 'phone', 'normal', 'call me', 0)"
        )
        with pytest.raises(sqlite3.IntegrityError):  # references are still enforced
            await db.execute(
                "INSERT INTO desk_outbox (ticket_id, op, content, next_attempt_at, created_at)"
                " VALUES (999, 'post', 'x', 0, 0)"
            )
