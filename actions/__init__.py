"""The deployer's business actions. ``actions.shop`` is a small example shop.

An actions module exposes ``ACTIONS`` (a list of ``core.actions.Action``) and may expose
``async def install(db)`` to create its own tables in the Handoff database.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load_actions_module(name: str) -> ModuleType:
    module = importlib.import_module(name)
    if not isinstance(getattr(module, "ACTIONS", None), list | tuple):
        raise ImportError(f"actions module {name!r} has no ACTIONS list")
    return module
