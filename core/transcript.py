"""A ticket's conversation as a readable HTML page: when, who (customer, assistant, operator), what.

Everything shown is escaped (a customer's ``<script>``, mentions and markdown appear as the text
they are); internal notes between operators are marked, and left out of the customer's copy.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass

WHO = {
    "customer": "Customer",
    "assistant": "Assistant (AI)",
    "operator": "Operator",
    "system": "Note",
}


@dataclass(frozen=True)
class Line:
    at: float
    kind: str  # customer, assistant, operator, system, note
    who: str
    text: str


def render_html(
    title: str, lines: Sequence[Line], *, for_customer: bool, tz: dt.tzinfo = dt.UTC
) -> str:
    rows = []
    for line in sorted(lines, key=lambda x: x.at):
        if line.kind == "note" and for_customer:
            continue
        when = dt.datetime.fromtimestamp(line.at, tz).strftime("%Y-%m-%d %H:%M")
        mark = ' <span class="note">internal note</span>' if line.kind == "note" else ""
        rows.append(
            f'<div class="turn {html.escape(line.kind)}"><div class="meta">{html.escape(when)} ·'
            f" <b>{html.escape(line.who)}</b>{mark}</div><div"
            f' class="text">{html.escape(line.text)}</div></div>'
        )
    body = "\n".join(rows) or "<p>(nothing was said)</p>"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>'
        + html.escape(title)
        + "</title><style>"
        "body{font:15px/1.45 system-ui,sans-serif;max-width:760px;margin:2em auto;color:#1f2937}"
        ".turn{margin:.6em 0;padding:.5em .8em;border-radius:8px;background:#f3f4f6}"
        ".customer{background:#eef2ff}.operator{background:#ecfdf5}.note{background:#fef9c3}"
        ".meta{font-size:12px;color:#6b7280}.text{white-space:pre-wrap;word-wrap:break-word}"
        "span.note{padding:0 .3em;border-radius:4px}</style></head><body><h1>"
        + html.escape(title)
        + "</h1>\n"
        + body
        + "\n</body></html>"
    )
