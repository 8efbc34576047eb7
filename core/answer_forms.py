"""Typed answers: the small JSON Schema an agent gives ``ask_human`` as ``answer_schema``, read into
the fields of a Discord form, and an operator's submission checked against it.

Pure: no Discord here. What a form can hold is Discord's: at most 5 fields, labels of 45
characters, text inputs of at most 4000 characters, choices (a select) of at most 25 options of 100
characters. A schema beyond that is refused with the field named, before any ticket is opened.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_FIELDS = 5  # components in one Discord form
MAX_TEXT = 4000  # a text input's max_length
DEFAULT_TEXT = 1000
MAX_CHOICES = 25  # a select's options
MAX_CHOICE = 100  # an option's value and label
LABEL = 45
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
YES, NO = "yes", "no"


class SchemaError(ValueError):
    """An answer_schema a Discord form cannot show; the message names the field."""


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # string | integer | number | boolean | enum
    required: bool
    description: str = ""
    max_length: int = DEFAULT_TEXT
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def is_choice(self) -> bool:
        """Shown as a select (an enum, or yes/no for a boolean)."""
        return self.kind in ("enum", "boolean")

    @property
    def options(self) -> tuple[str, ...]:
        return (YES, NO) if self.kind == "boolean" else self.choices

    @property
    def hint(self) -> str:
        """What a text input's placeholder says of the expected value (at most 100 characters)."""
        if self.kind in ("integer", "number"):
            whole = "a whole number" if self.kind == "integer" else "a number"
            low = "" if self.minimum is None else f" from {self.minimum:g}"
            high = "" if self.maximum is None else f" to {self.maximum:g}"
            return f"{whole}{low}{high}"[:100]
        return self.description[:100]


def read_schema(schema: Any) -> list[FormField]:
    """The form's fields, in the schema's order; SchemaError says what Discord cannot show."""
    if not isinstance(schema, Mapping):
        raise SchemaError("answer_schema must be a JSON Schema object")
    if schema.get("type", "object") != "object":
        raise SchemaError("answer_schema must have type 'object' (a form of fields)")
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        raise SchemaError("answer_schema needs 'properties': the form's fields (1 to 5)")
    if len(properties) > MAX_FIELDS:
        raise SchemaError(
            f"answer_schema has {len(properties)} fields; a Discord form holds at most {MAX_FIELDS}"
        )
    required = schema.get("required", [])
    if not isinstance(required, list) or any(name not in properties for name in required):
        raise SchemaError("answer_schema 'required' must list names from its properties")
    return [_field(name, spec, name in required) for name, spec in properties.items()]


def _field(name: Any, spec: Any, required: bool) -> FormField:
    if not isinstance(name, str) or not NAME.match(name):
        raise SchemaError(f"field {name!r}: names are letters, digits and _ (at most 64)")
    if not isinstance(spec, Mapping):
        raise SchemaError(f"field {name!r} must be a schema object")
    label = str(spec.get("title") or name.replace("_", " ").capitalize())[:LABEL]
    description = str(spec.get("description") or "")
    kind = spec.get("type")
    if "enum" in spec:
        choices = spec["enum"]
        if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
            raise SchemaError(f"field {name!r}: enum must list 1 to {MAX_CHOICES} choices")
        if any(not isinstance(c, str) or not 0 < len(c) <= MAX_CHOICE for c in choices):
            raise SchemaError(
                f"field {name!r}: enum choices must be texts of 1 to {MAX_CHOICE} characters"
            )
        if len(set(choices)) != len(choices):
            raise SchemaError(f"field {name!r}: enum lists a choice twice")
        return FormField(name, label, "enum", required, description, choices=tuple(choices))
    if kind == "boolean":
        return FormField(name, label, "boolean", required, description)
    if kind == "string":
        limit = spec.get("maxLength", DEFAULT_TEXT)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_TEXT:
            raise SchemaError(f"field {name!r}: maxLength must be 1 to {MAX_TEXT}")
        return FormField(name, label, "string", required, description, max_length=limit)
    if kind in ("integer", "number"):
        low, high = spec.get("minimum"), spec.get("maximum")
        for bound in (low, high):
            if bound is not None and (
                isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or not math.isfinite(bound)
            ):
                raise SchemaError(f"field {name!r}: minimum and maximum must be finite numbers")
        if low is not None and high is not None and low > high:
            raise SchemaError(f"field {name!r}: minimum is above maximum")
        return FormField(
            name, label, kind, required, description, max_length=40, minimum=low, maximum=high
        )
    raise SchemaError(
        f"field {name!r}: type {kind!r} cannot be a form field (string, integer, number, boolean"
        " or an enum of texts)"
    )


def parse_answer(
    fields: list[FormField], raw: Mapping[str, str]
) -> tuple[dict[str, Any] | None, str]:
    """(the answer's data, '') or (None, what is wrong, naming the field)."""
    data: dict[str, Any] = {}
    for field in fields:
        text = str(raw.get(field.name, "")).strip()
        if not text:
            if field.required:
                return None, f"{field.label} is required"
            continue
        value, problem = _value(field, text)
        if problem:
            return None, f"{field.label}: {problem}"
        data[field.name] = value
    return data, ""


def _value(field: FormField, text: str) -> tuple[Any, str]:
    if field.is_choice:
        if text not in field.options:
            return None, f"choose one of {', '.join(field.options)}"
        return (text == YES) if field.kind == "boolean" else text, ""
    if field.kind == "string":
        if len(text) > field.max_length:
            return None, f"at most {field.max_length} characters"
        return text, ""
    try:
        number = int(text) if field.kind == "integer" else float(text.replace(",", "."))
    except ValueError:
        return (
            None,
            f"{text!r} is not {'a whole number' if field.kind == 'integer' else 'a number'}",
        )
    if not math.isfinite(number):
        return None, "must be a finite number"
    if field.minimum is not None and number < field.minimum:
        return None, f"{number:g} is below the minimum {field.minimum:g}"
    if field.maximum is not None and number > field.maximum:
        return None, f"{number:g} is above the maximum {field.maximum:g}"
    return number, ""


def as_text(fields: list[FormField], data: Mapping[str, Any]) -> str:
    """The answer in words: what the thread, the transcript and a plain reader see."""
    lines = []
    for field in fields:
        if field.name in data:
            value = data[field.name]
            shown = (YES if value else NO) if field.kind == "boolean" else f"{value}"
            lines.append(f"{field.label}: {shown}")
    return "\n".join(lines) or "(no fields filled in)"
