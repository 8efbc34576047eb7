"""The escalation summary: why customers needed a person.

``compute`` reads the period's counts from storage (three queries over covering indexes, one round
trip, ``storage/summary.py``) and labels them; ``render_text`` and ``render_chart`` turn them into
what operators read: text within Discord's limits and a PNG bar chart. ``export`` writes the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from core.costs import CostFigures, cost_figures, cost_lines
from core.knowledge_text import one_line, top_repeated
from core.policy import DEFAULT_PRICES
from storage.db import Store
from storage.drafts import DraftFigures, DraftStore
from storage.knowledge import KnowledgeStore, UsageFigures
from storage.records import Kind, Outcome, Source
from storage.summary import ExportRow, PeriodFigures, SummaryStore
from storage.usage import UsageStore

KINDS = tuple(kind.value for kind in Kind)
OUTCOMES = tuple(outcome.value for outcome in Outcome)
REASONS: dict[str, str] = {
    Source.ASK_HUMAN: "the assistant needed a fact or decision",
    Source.APPROVAL: "an action needed approval",
    Source.HANDOVER: "the customer asked for a person",
    Source.LLM_FAILURE: "the assistant could not answer",
    Source.BUDGET: "the customer's daily Claude budget was used up",
    Source.RELAY: "no AI configured (relay)",
    Source.SPECIALIST: "legal or medical",
    Source.AGENT: "another agent asked (MCP)",
    Source.OPERATOR: "an operator contacted the customer",
}


@dataclass
class Summary(PeriodFigures):
    """A period's counts (storage's) with what operators read from them: labelled reasons,
    percentiles."""

    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    first_response_median: float | None = None
    first_response_p90: float | None = None
    knowledge: UsageFigures | None = None  # what the assistant answered from its knowledge
    drafts: DraftFigures | None = None  # the copilot's drafts and what operators did with them
    costs: CostFigures | None = None  # Claude's tokens and dollars

    def copilot_lines(self) -> list[str]:
        """How operators answered: from a draft as it was, edited, or by hand, and how fast."""
        d = self.drafts
        if d is None or not d.drafts:
            return []
        with_draft = _percentile(sorted(d.first_response_with_draft), 50)
        without = _percentile(sorted(d.first_response_without_draft), 50)
        return [
            f"Copilot: {d.drafts} draft(s){f', {d.failed} not written' if d.failed else ''};"
            f" answers sent from a draft as it was {d.sent_unchanged}, edited {d.sent_edited},"
            f" written by hand {d.by_hand}",
            f"First response median with a draft {_duration(with_draft)}, without"
            f" {_duration(without)}",
        ]

    def knowledge_lines(self, limit: int = 3) -> list[str]:
        """The loop made visible: answers from knowledge, saved answers and their use, and the
        questions that went to a person with no passage ("write these next")."""
        k = self.knowledge
        if k is None or not (k.conversations_with_knowledge or k.saved_count or k.misses):
            return []
        lines = [
            f"Answered from knowledge: {k.conversations_with_knowledge} conversation(s),"
            f" {k.of_which_without_ticket} of them without a ticket"
        ]
        if k.most_used:
            lines.append(
                "Passages used most: "
                + ", ".join(f"{one_line(t, 50)} ({n})" for t, n in k.most_used[:limit])
            )
        if k.saved_count:
            lines.append(
                f"Answers saved as knowledge: {k.saved_count}; used since: "
                + ", ".join(f"{one_line(t, 40)} ({n})" for t, n in k.saved_used[:limit])
            )
        if k.misses:
            lines.append("Went to a person with no passage (write these next):")
            lines.extend(
                f"{i}. {q}" + (f" ×{n}" if n > 1 else "")
                for i, (q, n) in enumerate(top_repeated(k.misses, limit), 1)
            )
        return lines

    @property
    def escalation_rate(self) -> float:
        return self.escalated_conversations / self.conversations if self.conversations else 0.0

    def csat_line(self) -> str | None:
        """CSAT (the share of ratings of 4 or 5), by who helped, against the period before."""
        if not self.ratings and not self.ratings_before:
            return None

        def csat(scores: list[int]) -> str:
            return (
                f"{100 * sum(1 for s in scores if s >= 4) / len(scores):.0f}% of {len(scores)}"
                if scores
                else "—"
            )

        scores = [s for s, _, _ in self.ratings]
        people = [s for s, person, _ in self.ratings if person]
        ai_only = [s for s, person, _ in self.ratings if not person]
        return (
            f"Satisfaction (CSAT, ratings of 4-5): {csat(scores)} · handled by a person"
            f" {csat(people)} · AI only {csat(ai_only)} · the period before"
            f" {csat(self.ratings_before)}"
        )

    def override_line(self) -> str | None:
        """How often operators overrode the assistant: approvals denied or edited, per action."""
        parts = [
            f"{action} {denied + edited} of {decided} ({denied} denied, {edited} edited)"
            for action, (decided, denied, edited) in sorted(
                self.overrides.items(), key=lambda kv: -kv[1][0]
            )
            if decided
        ]
        return ("Operators overrode the assistant: " + " · ".join(parts[:5])) if parts else None

    def hours_lines(self, tz: dt.tzinfo) -> list[str]:
        """The busiest hours of day (tickets), and the first response median for every hour that had
        tickets."""
        per_hour: dict[int, list[float | None]] = {}
        for created, wait in self.created:
            per_hour.setdefault(dt.datetime.fromtimestamp(created, tz).hour, []).append(wait)
        if not per_hour:
            return []
        busiest = sorted(per_hour.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]
        name = getattr(tz, "key", "UTC")
        lines = [
            f"Busiest hours ({name}): "
            + ", ".join(f"{h:02d}:00 ({len(w)} tickets)" for h, w in busiest)
        ]
        medians = []
        for hour, waits in sorted(per_hour.items()):
            answered = sorted(w for w in waits if w is not None)
            medians.append(f"{hour:02d}h {_duration(_percentile(answered, 50))}")
        lines.append("First response median by hour: " + " · ".join(medians))
        return lines

    def low_rating_comments(self, limit: int = 3) -> list[str]:
        return [
            f"{score}/5: {' '.join(comment.split())[:200]}"
            for score, _, comment in self.ratings
            if score <= 2 and comment
        ][-limit:]


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def compute_from(f: PeriodFigures) -> Summary:
    """What operators read, from the period's counts: reasons labelled, response-time
    percentiles."""
    s = Summary(**{f_.name: getattr(f, f_.name) for f_ in fields(f)})
    reasons: dict[str, int] = {}
    for (source, action), count in f.by_source.items():
        label = REASONS.get(source, source) + (f": {action}" if action else "")
        reasons[label] = reasons.get(label, 0) + count
    s.top_reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    s.first_response_median = _percentile(f.waits, 50)
    s.first_response_p90 = _percentile(f.waits, 90)
    return s


async def compute(
    db: Store,
    since: float,
    until: float,
    prices: Mapping[str, Mapping[str, float]] = DEFAULT_PRICES,
) -> Summary:
    """The summary of tickets and conversations in [since, until]: the desk's figures in one
    database round trip, the knowledge's in another."""
    summary = compute_from(await SummaryStore(db).figures(since, until))
    summary.knowledge = await KnowledgeStore(db).figures(since, until)
    summary.drafts = await DraftStore(db).figures(since, until)
    summary.costs = cost_figures(await UsageStore(db).rows(since, until), prices)
    return summary


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(
    s: Summary, *, alert_percent: float, days: int, tz: dt.tzinfo = dt.UTC
) -> tuple[str, bool]:
    """The summary as Markdown (under 2000 characters) and whether it is an alert."""
    rate = s.escalation_rate * 100
    alert = rate > alert_percent

    def counts(d: dict[str, int], keys: Iterable[str]) -> str:
        return ", ".join(f"{k} {d[k]}" for k in keys if d.get(k)) or "none"

    lines = [
        (
            f"{'⚠ **Alert:** ' if alert else ''}**Escalations, last {days}"
            f" day{'s' if days != 1 else ''}**"
        ),
        f"Conversations: {s.conversations} · escalated: {s.escalated_conversations} · "
        f"**escalation rate {rate:.1f}%**"
        + (f" (above the alert level of {alert_percent:g}%)" if alert else ""),
        f"Tickets: {s.tickets} — by kind: {counts(s.by_kind, KINDS)}",
        f"By priority: {counts(s.by_priority, ('urgent', 'high', 'normal'))}",
        f"By outcome: {counts(s.by_outcome, OUTCOMES)}",
        (
            f"Time to the first human response: median {_duration(s.first_response_median)}, "
            f"90th percentile {_duration(s.first_response_p90)}"
        ),
    ]
    if s.top_reasons:
        lines.append("Top reasons:")
        lines.extend(
            f"{i}. {reason} — {count}" for i, (reason, count) in enumerate(s.top_reasons, 1)
        )
    lines.extend(s.knowledge_lines())
    lines.extend(s.copilot_lines())
    if s.costs is not None:
        lines.extend(cost_lines(s.costs))
    if (overrides := s.override_line()) is not None:
        lines.append(overrides)
    lines.extend(s.hours_lines(tz))
    if (csat := s.csat_line()) is not None:
        lines.append(csat)
        lines.extend(f"> {comment}" for comment in s.low_rating_comments())
    if s.delivery_stalls:
        lines.append(
            f"⚠ Discord requests stalled and were recovered {s.delivery_stalls} time(s): see"
            " the log"
        )
    text = "\n".join(lines)
    return (text if len(text) <= 1900 else text[:1899] + "…"), alert


CHART_MAX_INCHES = 14  # at 100 dpi: never wider than 1400 pixels, whatever the period
DAILY_UP_TO_DAYS = 60  # longer periods are drawn by week, so the bars stay readable
# matplotlib's font cache and Agg backend set-up are shared between threads
_chart_lock = threading.Lock()


def chart_buckets(s: Summary, days: int) -> list[tuple[str, dict[str, int]]]:
    """(label, escalations by kind) per bar: one per day up to DAILY_UP_TO_DAYS, else one per week
    (the week's first day as its label), every bucket of the period included, zeros too."""
    first = dt.datetime.fromtimestamp(s.until, dt.UTC).date() - dt.timedelta(days=days - 1)
    step = 1 if days <= DAILY_UP_TO_DAYS else 7
    buckets: list[tuple[str, dict[str, int]]] = []
    for start in range(0, days, step):
        day0 = first + dt.timedelta(days=start)
        totals: dict[str, int] = {}
        for offset in range(min(step, days - start)):
            for kind, count in s.per_day.get(
                (day0 + dt.timedelta(days=offset)).isoformat(), {}
            ).items():
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
        colours: dict[str, str] = {
            Kind.QUESTION: "#3b82f6",
            Kind.APPROVAL: "#f59e0b",
            Kind.HANDOVER: "#ef4444",
            Kind.AGENT_QUESTION: "#8b5cf6",
            Kind.AGENT_APPROVAL: "#14b8a6",
            Kind.NOTICE: "#9ca3af",
        }
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
    """A cell a spreadsheet shows as text, never runs: text starting with = + - @ tab or carriage
    return gets a leading ' (OWASP, CSV injection). Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "priority",
    "source",
    "status",
    "outcome",
    "customer_discord_id",
    "question",
    "reason",
    "action_name",
    "action_params",
    "claimed_by_name",
    "decided_by_name",
    "decision_note",
    "first_response_seconds",
    "timed_out",
    "closed_at",
    "close_reason",
    "agent",
    "answer",
)


def export_csv(rows: list[ExportRow]) -> bytes:
    """Tickets as CSV (UTF-8, a header row), in the order given; cells a spreadsheet would run are
    escaped."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)

    def iso(t: float | None) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds") if t else ""

    for r in rows:
        cells = [
            r.id,
            iso(r.created_at),
            r.kind,
            r.priority,
            r.source,
            r.status,
            r.outcome,
            r.customer_discord_id,
            r.question,
            r.reason,
            r.action_name or "",
            r.action_params or "",
            r.claimed_by_name or "",
            r.decided_by_name or "",
            r.decision_note or "",
            "" if r.first_response_seconds is None else f"{r.first_response_seconds:.0f}",
            "yes" if r.timed_out else "",
            iso(r.closed_at),
            r.close_reason or "",
            r.agent or "",
            r.answer or "",
        ]
        writer.writerow([csv_cell(v) for v in cells])
    return out.getvalue().encode("utf-8")


async def export(db: Store, since: float, until: float) -> bytes:
    """The tickets created in [since, until] as CSV, oldest first."""
    return export_csv(await SummaryStore(db).tickets(since, until))


def period(now: float, days: int) -> tuple[float, float]:
    return now - days * 86400, now


def describe_period(since: float, until: float) -> str:
    def fmt(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    return f"{fmt(since)} – {fmt(until)}"
