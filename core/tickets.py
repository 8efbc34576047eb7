"""Tickets: what the operator desk decides, without Discord.

Priority rules, thread names, the ticket card (what the staff message shows), the queue
listing, and turning an operator's typed parameter values back into an action's input.
The Discord cog renders these; the rules stay here so they are tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.policy_sections import DeskSection
from core.words import word_list
from storage.records import Priority, Source, Status, Ticket

THREAD_NAME_LIMIT = 100
EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024
EMBED_TOTAL_LIMIT = 6000
MODAL_INPUTS_LIMIT = 5


# How a ticket came about (tickets.source); shown to operators as the reason's origin.
SOURCES: dict[str, str] = {
    Source.ASK_HUMAN: "the assistant asked a question",
    Source.APPROVAL: "an action needs approval",
    Source.HANDOVER: "the customer asked for a person",
    Source.LLM_FAILURE: "the assistant could not answer",
    Source.RELAY: "no AI is configured (human relay)",
    Source.SPECIALIST: "a legal or medical question",
    Source.AGENT: "another agent asked (MCP)",
    Source.OPERATOR: "an operator contacted the customer (/contact)",
}


# -- priority ---------------------------------------------------------------------------------


def _mentions(text: str, words: Iterable[str]) -> str | None:
    return word_list(tuple(words)).find(text)


def classify_priority(
    *,
    texts: Sequence[str],
    decision_type: str | None,
    desk_policy: DeskSection,
    floor: Priority = Priority.NORMAL,
) -> tuple[Priority, str]:
    """The ticket's priority and the rule that set it. ``floor`` (e.g. the model's view) can raise,
    never lower."""
    found = (
        [(floor, f"at least {floor.value} as requested")] if floor is not Priority.NORMAL else []
    )
    if decision_type and decision_type in desk_policy.urgent_decision_types:
        found.append((Priority.URGENT, f"{decision_type} action"))
    joined = "\n".join(texts)
    if word := _mentions(joined, desk_policy.urgent_keywords):
        found.append((Priority.URGENT, f"mentions {word!r}"))
    if word := _mentions(joined, desk_policy.high_keywords):
        found.append((Priority.HIGH, f"mentions {word!r}"))
    if not found:
        return Priority.NORMAL, "no priority rule matched"
    return min(found, key=lambda pair: pair[0].rank)


# -- names and the card -----------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def thread_name(number: int, question: str) -> str:
    """``#12 Can I get a discount?``, one line, never over Discord's 100 characters."""
    one_line = " ".join(question.split()) or "ticket"
    return clip(f"#{number} {one_line}", THREAD_NAME_LIMIT)


@dataclass(frozen=True)
class Card:
    """What the ticket message shows: an embed's title, description and fields, within Discord's
    limits."""

    ticket_id: int
    title: str
    description: str
    fields: list[tuple[str, str]]
    colour: int
    closed: bool
    can_decide: bool
    can_edit: bool
    can_save: bool = False  # an answered question: "Save as knowledge"
    can_answer_form: bool = False  # an agent asked for a typed answer: "Answer" opens its form

    def total_length(self) -> int:
        return (
            len(self.title) + len(self.description) + sum(len(n) + len(v) for n, v in self.fields)
        )


COLOURS = {Priority.URGENT: 0xE02B2B, Priority.HIGH: 0xF0A020, Priority.NORMAL: 0x3B82F6}
STATUS_LABELS = {
    "open": "waiting for a person",
    "answered": "answered",
    "approved": "approved",
    "denied": "denied",
    "expired": "expired (nobody decided in time)",
    "closed": "closed",
}


def transcript_lines(turns: Sequence[Any]) -> list[str]:
    """Recent turns as short lines (customer, assistant, operator); tool plumbing is left out."""
    who = {"customer": "Customer", "assistant": "Assistant", "operator": "Operator"}
    lines = []
    for turn in turns:
        if turn.kind in who and turn.content.strip():
            name = (turn.data or {}).get("operator_name") if turn.kind == "operator" else None
            lines.append(
                f"**{name or who[turn.kind]}:** {clip(' '.join(turn.content.split()), 300)}"
            )
    return lines


def _value(text: str, limit: int = EMBED_FIELD_LIMIT) -> str:
    """A field value: Discord refuses empty ones."""
    return clip(text, limit) or "(none)"


def build_card(
    ticket: Ticket,
    transcript: Sequence[str],
    action_summary: str | None,
    case: Sequence[str] = (),
    approvals: str | None = None,
    escalated: str | None = None,
) -> Card:
    title = clip(
        f"Ticket #{ticket.id} · {ticket.kind.value} · {ticket.priority.value}", EMBED_TITLE_LIMIT
    )
    description = _value(ticket.question, 1500)
    who = (
        ("Agent", _value(clip(ticket.agent_name, 200)))
        if ticket.agent_name
        else (
            "Customer",
            _value(
                f"{clip(ticket.customer_name, 200)} (<@{ticket.customer_discord_id}>,"
                f" id {ticket.customer_discord_id})"
            ),
        )
    )
    fields: list[tuple[str, str]] = [
        who,
        ("Status", _status_line(ticket)),
        ("Reason", _value(ticket.reason.strip() or SOURCES.get(ticket.source, ticket.source))),
    ]
    if ticket.action_name:
        params = json.dumps(ticket.action_params or {}, ensure_ascii=False, indent=1)
        label = (
            f"{action_summary} (`{ticket.action_name}`)"
            if action_summary
            else f"`{ticket.action_name}`"
        )
        fields.append(("Proposed action", _value(f"{label}\n```json\n{clip(params, 800)}\n```")))
    if approvals:
        fields.append(("Approvals (distinct operators)", _value(approvals)))
    if escalated and not ticket.ended:
        fields.append(("Escalated", _value(escalated)))
    if case:
        fields.append(("Case at a glance", _value(_fit_lines(case, 500))))
    if ticket.dm_closed_at is not None:
        fields.append(
            ("⚠ DMs closed", "The customer's DMs are closed: they are not receiving our messages.")
        )
    if transcript:
        fields.append(("Recent conversation", _value(_fit_lines(transcript, EMBED_FIELD_LIMIT))))
    card = Card(
        ticket.id,
        title,
        description,
        fields,
        COLOURS[ticket.priority],
        ticket.ended,
        can_decide=ticket.awaits_decision,
        can_edit=ticket.awaits_decision and bool(ticket.action_params),
        can_save=ticket.kind.asks_a_question and bool(ticket.answer),
        can_answer_form=(
            ticket.answer_schema is not None
            and ticket.status == Status.OPEN
            and ticket.answer is None
        ),
    )
    assert card.total_length() <= EMBED_TOTAL_LIMIT
    return card


def _status_line(ticket: Ticket) -> str:
    parts = [STATUS_LABELS.get(ticket.status, ticket.status)]
    if ticket.decided_by_name:
        parts.append(f"by {ticket.decided_by_name}")
    if ticket.decision_note:
        parts.append(f"({clip(ticket.decision_note, 300)})")
    if ticket.claimed_by_name:
        parts.append(f"· claimed by {ticket.claimed_by_name}")
    if ticket.in_takeover:
        parts.append(f"· {ticket.takeover_by_name or 'relay'} is talking with the customer")
    return _value(" ".join(parts))


def _fit_lines(lines: Sequence[str], limit: int) -> str:
    """The newest lines that fit, oldest first; older ones are dropped, not the recent context."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept)) or _value(lines[-1], limit)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def pending_lines(tickets: Sequence[Ticket], now: float, limit: int = 1900) -> str:
    """The queue, oldest first: number, age, kind, priority, who has it, and a link to the
    thread."""
    if not tickets:
        return "No open tickets. 🎉"
    lines = []
    for t in sorted(tickets, key=lambda t: (t.created_at, t.id)):
        where = f"<#{t.thread_id}>" if t.thread_id else "(thread not posted yet)"
        who = f" · {t.claimed_by_name}" if t.claimed_by_name else ""
        origin = f" from {t.agent_name}" if t.agent_name else ""
        if t.escalation_level:
            who += f" · 🔺 escalated ({t.escalation_level})"
        lines.append(
            f"#{t.id} · {age(now - t.created_at)} · {t.kind.value}{origin} · {t.priority.value} · "
            f"{STATUS_LABELS.get(t.status, t.status)}{who} · {where}"
        )
    text = ""
    for shown, line in enumerate(lines):
        if len(text) + len(line) + 40 > limit:
            return text + f"… and {len(lines) - shown} more"
        text += line + "\n"
    return text.rstrip()


# -- edited parameters ------------------------------------------------------------------------


def details_schema(details: dict[str, Any]) -> dict[str, Any]:
    """A form schema for an agent's details (it has no registered action): each value keeps its
    type."""

    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "integer"
        if isinstance(value, float):
            return "number"
        return (
            "object"
            if isinstance(value, dict)
            else "array"
            if isinstance(value, list)
            else "string"
        )

    return {
        "type": "object",
        "properties": {name: {"type": kind(v)} for name, v in details.items()},
    }


def editable_fields(schema: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, current value as text) for a modal. More than a modal holds: one JSON field
    ``params``."""
    props = list((schema.get("properties") or {}).keys())
    names = props + [k for k in params if k not in props]
    if len(names) > MODAL_INPUTS_LIMIT or any(_is_structured(schema, n) for n in names):
        return [("params", json.dumps(params, ensure_ascii=False))]
    return [(n, _as_text(params.get(n))) for n in names]


def _is_structured(schema: dict[str, Any], name: str) -> bool:
    return (schema.get("properties") or {}).get(name, {}).get("type") in ("object", "array")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_edited(schema: dict[str, Any], raw: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    """Typed values from what an operator typed, by the schema's types. Returns (params, "") or
    (None, why)."""
    if set(raw) == {"params"} and "params" not in (schema.get("properties") or {}):
        try:
            value = json.loads(raw["params"])
        except json.JSONDecodeError as exc:
            return None, f"the parameters are not valid JSON ({exc.msg})"
        return (
            (value, "")
            if isinstance(value, dict)
            else (None, "the parameters must be a JSON object")
        )
    props = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name, text in raw.items():
        text = text.strip()
        if text == "":
            continue  # left empty: leave it out (the schema says whether that is allowed)
        kind = props.get(name, {}).get("type")
        try:
            if kind == "integer":
                out[name] = int(text)
            elif kind == "number":
                number = float(text)
                out[name] = int(number) if number.is_integer() and "." not in text else number
            elif kind == "boolean":
                if text.casefold() not in ("true", "false", "yes", "no"):
                    raise ValueError
                out[name] = text.casefold() in ("true", "yes")
            else:
                out[name] = text
        except ValueError:
            return None, f"{name}: {text!r} is not a valid {kind}"
    return out, ""
