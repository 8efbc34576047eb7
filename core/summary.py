"""The escalation summary: why customers needed a person, computed by SQL over indexed columns.

``compute`` is three queries over covering indexes in one read transaction (one round trip);
``render_text`` and ``render_chart`` turn it into what operators read: text within Discord's limits
and a PNG bar chart.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import threading
from dataclasses import dataclass, field

from storage.db import Database

KINDS = ("question", "approval", "handover")
OUTCOMES = ("approved", "denied", "answered", "timed out", "open", "closed")
REASONS = {"ask_human": "the assistant needed a fact or decision", "approval": "an action needed approval",
           "handover": "the customer asked for a person", "llm_failure": "the assistant could not answer",
           "relay": "no AI configured (relay)", "specialist": "legal or medical"}


@dataclass
class Summary:
    since: float
    until: float
    conversations: int = 0
    escalated_conversations: int = 0
    tickets: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_priority: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    first_response_median: float | None = None
    first_response_p90: float | None = None
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)  # "2026-11-20" -> kind -> count
    delivery_stalls: int = 0  # times the watchdog found Discord requests stuck and recovered the client

    @property
    def escalation_rate(self) -> float:
        return self.escalated_conversations / self.conversations if self.conversations else 0.0


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def outcome_sql(t: str = "") -> str:
    """A ticket's outcome: its decision, or timed out (no human answer in time), still open, or closed."""
    return (f"CASE WHEN {t}status IN ('approved', 'denied', 'answered') THEN {t}status"
            f" WHEN {t}timed_out_at IS NOT NULL AND {t}first_response_at IS NULL THEN 'timed out'"
            f" WHEN {t}status = 'open' THEN 'open' ELSE 'closed' END")


def compute_sql(c: sqlite3.Connection, since: float, until: float) -> Summary:
    """Three queries over covering indexes; the tickets of the period are aggregated in one pass."""
    s = Summary(since, until)
    s.conversations = c.execute("SELECT COUNT(*) FROM conversations WHERE started_at >= ? AND started_at <= ?",
                                (since, until)).fetchone()[0]
    # Escalated: conversations started in the period with at least one ticket. A ticket comes after its
    # conversation started, so only tickets created since the start of the period can count.
    s.escalated_conversations = c.execute(
        "SELECT COUNT(*) FROM conversations WHERE started_at >= ? AND started_at <= ? AND id IN"
        " (SELECT conversation_id FROM tickets WHERE created_at >= ?)", (since, until, since)).fetchone()[0]
    reasons: dict[str, int] = {}
    waits: list[float] = []
    for kind, priority, outcome, source, action, wait, day in c.execute(
            f"SELECT kind, priority, {outcome_sql()}, source, action_name, first_response_at - created_at,"
            " date(created_at, 'unixepoch') FROM tickets WHERE created_at >= ? AND created_at <= ?", (since, until)):
        s.tickets += 1
        s.by_kind[kind] = s.by_kind.get(kind, 0) + 1
        s.by_priority[priority] = s.by_priority.get(priority, 0) + 1
        s.by_outcome[outcome] = s.by_outcome.get(outcome, 0) + 1
        label = REASONS.get(source, source) + (f": {action}" if action else "")
        reasons[label] = reasons.get(label, 0) + 1
        if wait is not None:
            waits.append(wait)
        per_kind = s.per_day.setdefault(day, {})
        per_kind[kind] = per_kind.get(kind, 0) + 1
    s.top_reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    s.delivery_stalls = c.execute("SELECT COUNT(*) FROM audit WHERE action = 'delivery_stalled' AND at >= ?"
                                  " AND at <= ?", (since, until)).fetchone()[0]
    waits.sort()
    s.first_response_median = _percentile(waits, 50)
    s.first_response_p90 = _percentile(waits, 90)
    return s


async def compute(db: Database, since: float, until: float) -> Summary:
    """The summary of tickets and conversations in [since, until], in one database round trip."""
    return await db.read(lambda c: compute_sql(c, since, until))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(s: Summary, *, alert_percent: float, days: int) -> tuple[str, bool]:
    """The summary as Markdown (under 2000 characters) and whether it is an alert."""
    rate = s.escalation_rate * 100
    alert = rate > alert_percent
    counts = lambda d, keys: ", ".join(f"{k} {d[k]}" for k in keys if d.get(k)) or "none"  # noqa: E731
    lines = [
        f"{'⚠ **Alert:** ' if alert else ''}**Escalations, last {days} day{'s' if days != 1 else ''}**",
        f"Conversations: {s.conversations} · escalated: {s.escalated_conversations} · "
        f"**escalation rate {rate:.1f}%**" + (f" (above the alert level of {alert_percent:g}%)" if alert else ""),
        f"Tickets: {s.tickets} — by kind: {counts(s.by_kind, KINDS)}",
        f"By priority: {counts(s.by_priority, ('urgent', 'high', 'normal'))}",
        f"By outcome: {counts(s.by_outcome, OUTCOMES)}",
        f"Time to the first human response: median {_duration(s.first_response_median)}, "
        f"90th percentile {_duration(s.first_response_p90)}",
    ]
    if s.top_reasons:
        lines.append("Top reasons:")
        lines.extend(f"{i}. {reason} — {count}" for i, (reason, count) in enumerate(s.top_reasons, 1))
    if s.delivery_stalls:
        lines.append(f"⚠ Discord requests stalled and were recovered {s.delivery_stalls} time(s): see the log")
    text = "\n".join(lines)
    return (text if len(text) <= 1900 else text[:1899] + "…"), alert


CHART_MAX_INCHES = 14  # at 100 dpi: never wider than 1400 pixels, whatever the period
DAILY_UP_TO_DAYS = 60  # longer periods are drawn by week, so the bars stay readable
_chart_lock = threading.Lock()  # matplotlib's font cache and Agg backend set-up are shared between threads


def chart_buckets(s: Summary, days: int) -> list[tuple[str, dict[str, int]]]:
    """(label, escalations by kind) per bar: one per day up to DAILY_UP_TO_DAYS, else one per week (the
    week's first day as its label), every bucket of the period included, zeros too."""
    first = dt.datetime.fromtimestamp(s.until, dt.UTC).date() - dt.timedelta(days=days - 1)
    step = 1 if days <= DAILY_UP_TO_DAYS else 7
    buckets: list[tuple[str, dict[str, int]]] = []
    for start in range(0, days, step):
        day0 = first + dt.timedelta(days=start)
        totals: dict[str, int] = {}
        for offset in range(min(step, days - start)):
            for kind, count in s.per_day.get((day0 + dt.timedelta(days=offset)).isoformat(), {}).items():
                totals[kind] = totals.get(kind, 0) + count
        buckets.append((day0.isoformat()[5:], totals))
    return buckets


def render_chart(s: Summary, *, days: int) -> bytes:
    """A PNG bar chart of escalations per day (per week past DAILY_UP_TO_DAYS), stacked by kind.

    CPU-bound (0.5-1.5 s): call it in a thread (``asyncio.to_thread``), never on the event loop.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    buckets = chart_buckets(s, days)
    labels = [label for label, _ in buckets]
    with _chart_lock:
        figure = Figure(figsize=(min(CHART_MAX_INCHES, max(6, len(buckets) * 0.45)), 3.2), dpi=100)
        axes = figure.add_subplot()
        bottom = [0] * len(buckets)
        colours = {"question": "#3b82f6", "approval": "#f59e0b", "handover": "#ef4444"}
        for kind in KINDS:
            values = [totals.get(kind, 0) for _, totals in buckets]
            axes.bar(range(len(buckets)), values, bottom=bottom, label=kind, color=colours[kind])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        every = max(1, -(-len(labels) // 30))  # at most 30 labels on the axis
        axes.set_xticks(range(0, len(labels), every), labels[::every])
        unit = "day" if days <= DAILY_UP_TO_DAYS else "week"
        axes.set_title(f"Escalations per {unit} by kind, last {days} days")
        axes.set_ylabel("tickets")
        axes.legend(loc="upper left", fontsize="small")
        axes.tick_params(axis="x", labelrotation=45, labelsize="small")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text, never runs: text starting with = + - @ tab or carriage return
    gets a leading ' (OWASP, CSV injection). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


EXPORT_COLUMNS = ("id", "created_at", "kind", "priority", "source", "status", "outcome", "customer_discord_id",
                  "question", "reason", "action_name", "action_params", "claimed_by_name", "decided_by_name",
                  "decision_note", "first_response_seconds", "timed_out", "closed_at", "close_reason")


def export_sql(c: sqlite3.Connection, since: float, until: float) -> bytes:
    """The tickets of a period as CSV (UTF-8, a header row), oldest first."""
    rows = c.execute(
        f"SELECT t.*, {outcome_sql('t.')} AS outcome, c.discord_id"
        " FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.created_at >= ? AND t.created_at <= ?"
        " ORDER BY t.created_at, t.id", (since, until)).fetchall()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds") if t else ""  # noqa: E731
    for r in rows:
        wait = r["first_response_at"] - r["created_at"] if r["first_response_at"] else None
        cells = [r["id"], iso(r["created_at"]), r["kind"], r["priority"], r["source"], r["status"], r["outcome"],
                 r["discord_id"], r["question"], r["reason"], r["action_name"] or "", r["action_params"] or "",
                 r["claimed_by_name"] or "", r["decided_by_name"] or "", r["decision_note"] or "",
                 "" if wait is None else f"{wait:.0f}", "yes" if r["timed_out_at"] else "", iso(r["closed_at"]),
                 r["close_reason"] or ""]
        writer.writerow([csv_cell(v) for v in cells])
    return out.getvalue().encode("utf-8")


def period(now: float, days: int) -> tuple[float, float]:
    return now - days * 86400, now


def describe_period(since: float, until: float) -> str:
    fmt = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
    return f"{fmt(since)} – {fmt(until)}"

