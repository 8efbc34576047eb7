"""The figures behind the escalation summary and the CSV export: SQL over covering indexes.

``figures`` is three queries in one read transaction (one round trip); the tickets of the period are
aggregated in one pass. What the figures mean to operators (labels, percentiles, text, chart, CSV)
is core's (``core/summary.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from storage.db import Connection, Store
from storage.records import Outcome, Status


def outcome_sql(t: str = "") -> str:
    """A ticket's Outcome: its decision, or timed out (no human answer in time), still open, or
    closed."""
    decided = ", ".join(
        f"'{o.value}'"
        for o in (Outcome.APPROVED, Outcome.DENIED, Outcome.ANSWERED, Outcome.EXPIRED)
    )
    return (
        f"CASE WHEN {t}status IN ({decided}) THEN {t}status WHEN {t}timed_out_at IS NOT NULL AND"
        f" {t}first_response_at IS NULL THEN '{Outcome.TIMED_OUT.value}' WHEN {t}status ="
        f" '{Status.OPEN.value}' THEN '{Outcome.OPEN.value}' ELSE '{Outcome.CLOSED.value}' END"
    )


@dataclass
class PeriodFigures:
    """Counts of one period, as the database has them."""

    since: float
    until: float
    conversations: int = 0
    escalated_conversations: int = 0
    tickets: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_priority: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    # (source, action) -> tickets
    by_source: dict[tuple[str, str | None], int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)  # seconds to the first human response, sorted
    # "2026-11-20" -> kind -> count
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    delivery_stalls: int = 0  # times the watchdog found Discord requests stuck
    # (score, by a person, comment)
    ratings: list[tuple[int, bool, str | None]] = field(default_factory=list)
    # (ticket created, first response wait)
    created: list[tuple[float, float | None]] = field(default_factory=list)
    # action -> (decided, denied, edited)
    overrides: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # scores of the period just before (the trend)
    ratings_before: list[int] = field(default_factory=list)


def utc_day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _count(counts: dict[Any, int], key: Any) -> None:
    counts[key] = counts.get(key, 0) + 1


def figures_sql(c: Connection, since: float, until: float) -> PeriodFigures:
    f = PeriodFigures(since, until)
    f.conversations = c.execute(
        "SELECT COUNT(*) FROM conversations WHERE started_at >= ? AND started_at <= ?",
        (since, until),
    ).fetchone()[0]
    # Escalated: conversations started in the period with at least one ticket. A ticket comes after
    # its conversation started, so only tickets created since the start of the period can count.
    f.escalated_conversations = c.execute(
        "SELECT COUNT(*) FROM conversations WHERE started_at >= ? AND started_at <= ? AND id IN"
        " (SELECT conversation_id FROM tickets WHERE created_at >= ?)",
        (since, until, since),
    ).fetchone()[0]
    for kind, priority, outcome, source, action, wait, created, status, note in c.execute(
        f"SELECT kind, priority, {outcome_sql()}, source, action_name, first_response_at -"
        " created_at, created_at, status, decision_note FROM tickets WHERE created_at >= ? AND"
        " created_at <= ?",
        (since, until),
    ):
        f.tickets += 1
        f.created.append((created, wait))
        # a person decided what the assistant proposed
        if kind == "approval" and status in ("approved", "denied"):
            decided, denied, edited = f.overrides.get(action, (0, 0, 0))
            f.overrides[action] = (
                decided + 1,
                denied + (status == "denied"),
                edited + (note == "edited"),
            )
        _count(f.by_kind, kind)
        _count(f.by_priority, priority)
        _count(f.by_outcome, outcome)
        _count(f.by_source, (source, action))
        if wait is not None:
            f.waits.append(wait)
        _count(f.per_day.setdefault(utc_day(created), {}), kind)
    f.waits.sort()
    f.delivery_stalls = c.execute(
        "SELECT COUNT(*) FROM audit WHERE action = 'delivery_stalled' AND at >= ? AND at <= ?",
        (since, until),
    ).fetchone()[0]
    f.ratings = [
        (r[0], bool(r[1]), r[2])
        for r in c.execute(
            "SELECT score, by_person, comment FROM ratings WHERE created_at >= ? AND created_at <="
            " ? ORDER BY id",
            (since, until),
        )
    ]
    f.ratings_before = [
        r[0]
        for r in c.execute(
            "SELECT score FROM ratings WHERE created_at >= ? AND created_at < ?",
            (since - (until - since), since),
        )
    ]
    return f


@dataclass(frozen=True)
class ExportRow:
    id: int
    created_at: float
    kind: str
    priority: str
    source: str
    status: str
    outcome: str
    customer_discord_id: int
    question: str
    reason: str
    action_name: str | None
    action_params: str | None
    claimed_by_name: str | None
    decided_by_name: str | None
    decision_note: str | None
    first_response_seconds: float | None
    timed_out: bool
    closed_at: float | None
    close_reason: str | None
    agent: str | None = None  # the agent (MCP) whose ticket it is
    answer: str | None = None


class SummaryStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def figures(self, since: float, until: float) -> PeriodFigures:
        """The counts of tickets and conversations in [since, until], in one database round trip."""
        return await self.db.read(lambda c: figures_sql(c, since, until))

    async def tickets(self, since: float, until: float) -> list[ExportRow]:
        """The tickets created in [since, until], oldest first, for the export."""
        rows = await self.db.fetchall(
            f"SELECT t.*, {outcome_sql('t.')} AS outcome, c.discord_id, c.agent_name FROM tickets t"
            " JOIN customers c ON c.id = t.customer_id WHERE t.created_at >= ? AND t.created_at <="
            " ? ORDER BY t.created_at, t.id",
            (since, until),
        )
        return [
            ExportRow(
                r["id"],
                r["created_at"],
                r["kind"],
                r["priority"],
                r["source"],
                r["status"],
                r["outcome"],
                r["discord_id"],
                r["question"],
                r["reason"],
                r["action_name"],
                r["action_params"],
                r["claimed_by_name"],
                r["decided_by_name"],
                r["decision_note"],
                r["first_response_at"] - r["created_at"] if r["first_response_at"] else None,
                bool(r["timed_out_at"]),
                r["closed_at"],
                r["close_reason"],
                r["agent_name"],
                r["answer"],
            )
            for r in rows
        ]
