"""Business actions the agent can call as Claude tools.

A deployer writes an action as an async function and declares its decision type (the
floor of its risk), a description and a JSON schema for its parameters. The registry turns
them into Claude tool definitions and validates every call's input against the schema
before anything runs.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

log = logging.getLogger(__name__)

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class DecisionType(enum.StrEnum):
    INFORMATIONAL = "informational"
    PREFERENCE = "preference"
    TRANSACTIONAL = "transactional"
    FINANCIAL = "financial"
    LEGAL_MEDICAL = "legal_medical"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True)
class ActionContext:
    """What an action may know about the call: who asked, and the shared database."""

    customer_id: int
    discord_user_id: int
    db: Any  # storage.Database; typed loosely so actions don't depend on storage internals
    now: float
    conversation_id: int | None = None


ActionHandler = Callable[[ActionContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class ActionError(Exception):
    """An action refused its input or failed in a way the customer should hear about."""


@dataclass(frozen=True)
class Action:
    name: str
    decision_type: DecisionType
    description: str
    input_schema: dict[str, Any]
    handler: ActionHandler
    summary: str = ""  # a short human label, e.g. "Refund an order"
    # Optional: what the action would do, computed without doing it (e.g. {"total": 35.0}). Shown to
    # the customer when they confirm, and read by the risk policy (a total above the threshold is
    # financial).
    preview: ActionHandler | None = None

    def tool_definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }

    def validate(self, params: Any) -> str | None:
        """None when ``params`` match the schema, else a one-line reason."""
        if not isinstance(params, dict):
            return "parameters must be a JSON object"
        try:
            jsonschema.validate(params, self.input_schema)
        except jsonschema.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            return f"{path}: {exc.message}"
        return None


@dataclass
class ActionRegistry:
    actions: dict[str, Action] = field(default_factory=dict)

    def add(self, action: Action) -> Action:
        if not re.match(TOOL_NAME_PATTERN, action.name):
            raise ValueError(f"action name {action.name!r} must match {TOOL_NAME_PATTERN}")
        if action.name in self.actions:
            raise ValueError(f"action {action.name!r} is registered twice")
        jsonschema.Draft202012Validator.check_schema(action.input_schema)
        if action.input_schema.get("type") != "object":
            raise ValueError(f"action {action.name!r}: input_schema must be of type 'object'")
        self.actions[action.name] = action
        return action

    def extend(self, actions: Iterable[Action]) -> ActionRegistry:
        for action in actions:
            self.add(action)
        return self

    def get(self, name: str) -> Action | None:
        return self.actions.get(name)

    def tool_definitions(self) -> list[dict[str, Any]]:
        return [a.tool_definition() for a in self.actions.values()]

    def __len__(self) -> int:
        return len(self.actions)


def action(
    decision_type: DecisionType | str,
    description: str,
    input_schema: dict[str, Any],
    *,
    name: str | None = None,
    summary: str = "",
    preview: ActionHandler | None = None,
) -> Callable[[ActionHandler], Action]:
    """Decorator: ``@action("informational", "Look up an order", {...})`` on an async handler."""

    def wrap(fn: ActionHandler) -> Action:
        return Action(
            name=name or fn.__name__,
            decision_type=DecisionType(decision_type),
            description=description,
            input_schema=input_schema,
            handler=fn,
            summary=summary or _first_line(fn.__doc__) or (name or fn.__name__).replace("_", " "),
            preview=preview,
        )

    return wrap


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


async def execute(
    action: Action | None, ctx: ActionContext, params: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Run an action once; returns (outcome to record, error to tell or None). Never raises for the
    action's own failures: an ActionError is its clear refusal, anything else a bug that is logged,
    not shown."""
    if action is None:
        error = "this action is no longer available"
        return {"status": "failed", "error": error}, error
    try:
        result = await action.handler(ctx, dict(params))
    except ActionError as exc:
        return {"status": "failed", "error": str(exc)}, str(exc)
    except Exception as exc:
        log.exception("action %s failed", action.name)
        error = f"internal error ({type(exc).__name__})"
        return {"status": "failed", "error": error}, error
    return {"status": "executed", "result": result}, None
