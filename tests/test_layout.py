"""The layout's rules, checked on the source: the domain does not know discord, storage does not
know the domain."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("storage", ("core", "cogs", "discord", "actions")),
        ("core", ("cogs", "discord", "sqlite3", "aiosqlite")),  # storage owns every SQL statement
        ("cogs", ("sqlite3", "aiosqlite")),
        # a front end beside the Discord one
        ("agent_api", ("cogs", "discord", "sqlite3", "aiosqlite")),
    ],
)
def test_packages_import_only_downwards(package, forbidden):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = sorted(name for name in imports(path) if name.split(".")[0] in forbidden)
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}, f"{package}/ must not import {forbidden}"


@pytest.mark.parametrize("package", ["core", "cogs", "agent_api"])
def test_no_sql_outside_storage(package):
    statements = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE")
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.lstrip().upper().startswith(statements)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "SQL belongs in storage/"


# Calls a transaction function must not make (storage.sql.TX_RULE): the loop, deliveries, Discord,
# timers.
LOOP_CALLS = {
    "kick",
    "_kick",
    "arm",
    "_arm",
    "arm_ticket",
    "schedule",
    "wake",
    "wake_later",
    "create_task",
    "ensure_future",
    "call_soon",
    "call_later",
    "get_running_loop",
    "get_event_loop",
    "sleep",
    "send",
    "send_file",
    "open_dm",
    "delete",
    "run_coroutine_threadsafe",
}


def _is_transaction_function(node: ast.AST) -> bool:
    """A function given a transaction: a parameter annotated ``...Tx`` or ``Connection``."""
    if not isinstance(node, ast.FunctionDef):
        return False
    for arg in [*node.args.posonlyargs, *node.args.args]:
        annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
        if annotation.endswith("Tx") or annotation in ("Connection", "sqlite3.Connection"):
            return True
    return False


def loop_calls_in_transactions(source: str, where: str) -> list[str]:
    found = []
    for function in filter(_is_transaction_function, ast.walk(ast.parse(source))):
        for node in ast.walk(function):
            if isinstance(node, ast.Await | ast.AsyncFor | ast.AsyncWith):
                found.append(f"{where}:{node.lineno} {function.name}: awaits")
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name.split(".")[-1] in LOOP_CALLS or name.startswith("asyncio."):
                    found.append(f"{where}:{node.lineno} {function.name}: calls {name}")
    return found


def test_transaction_functions_touch_neither_the_loop_nor_discord():
    offenders = []
    for package in ("core", "storage", "actions"):
        for path in sorted((ROOT / package).rglob("*.py")):
            offenders += loop_calls_in_transactions(
                path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
            )
    assert offenders == [], (
        "storage.sql.TX_RULE: do these after the commit, from the function's result"
    )


def test_the_transaction_rule_check_finds_a_call_into_the_loop():
    bad = (
        "def write(tx: DeskTx) -> int:\n    self.outbox.kick(1)\n    return 1\n"
        "def check(c: Connection) -> None:\n    asyncio.get_running_loop()\n"
    )
    assert [f.split(" ", 1)[1] for f in loop_calls_in_transactions(bad, "x")] == [
        "write: calls self.outbox.kick",
        "check: calls asyncio.get_running_loop",
    ]
