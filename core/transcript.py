"""A ticket's conversation as a readable HTML page: when, who (customer, assistant, operator), what.

Everything shown is escaped (a customer's ``<script>``, mentions and markdown appear as the text
they are); internal notes between operators are marked, and left out of the customer's copy.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass

from core.files import size_text

WHO = {
    "customer": "Customer",
    "assistant": "Assistant (AI)",
    "operator": "Operator",
    "system": "Note",
}


@dataclass(frozen=True)
class Attached:
    """A file shown under a line: a picture inline (its sniffed type and bytes), others by name."""

    filename: str
    size: int
    image: tuple[str, bytes] | None = None


@dataclass(frozen=True)
class Line:
    at: float
    kind: str  # customer, assistant, operator, system, note
    who: str
    text: str
    files: tuple[Attached, ...] = ()


def _files_html(files: Sequence[Attached]) -> str:
    out = []
    for f in files:
        if f.image is not None:
            media, data = f.image
            source = f"data:{media};base64,{base64.b64encode(data).decode()}"
            out.append(
                f'<div class="file"><img src="{source}" alt="{html.escape(f.filename)}"'
                ' style="max-width:100%;border-radius:6px"></div>'
            )
        else:
            out.append(
                f'<div class="file">📎 {html.escape(f.filename)} ({size_text(f.size)})</div>'
            )
    return "".join(out)


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
            f' class="text">{html.escape(line.text)}</div>{_files_html(line.files)}</div>'
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
