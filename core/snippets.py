"""Snippets: saved operator replies with placeholders, checked when saved and filled in when
sent."""

from __future__ import annotations

import re

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
PLACEHOLDERS = ("customer", "ticket", "operator")
_FIELD = re.compile(r"\{(\w+)\}")


def name_problem(name: str) -> str | None:
    if not NAME.match(name):
        return (
            f"{name!r} is not a snippet name: use 1-32 lower-case letters, digits, '-' or '_' (e.g."
            " refund-policy)"
        )
    return None


def text_problem(text: str) -> str | None:
    if not text.strip():
        return "the snippet's text is empty"
    unknown = sorted({f for f in _FIELD.findall(text) if f not in PLACEHOLDERS})
    if unknown:
        return (
            f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; use "
            + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        )
    return None


def fill(text: str, *, customer: str, ticket: int, operator: str) -> str:
    values = {"customer": customer, "ticket": f"#{ticket}", "operator": operator}
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), text)
