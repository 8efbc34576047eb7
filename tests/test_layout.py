"""The layout's rules, checked on the source: the domain does not know discord, storage does not know the domain."""

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


@pytest.mark.parametrize(("package", "forbidden"), [
    ("storage", ("core", "cogs", "discord", "actions")),
    ("core", ("cogs", "discord", "sqlite3", "aiosqlite")),  # storage owns every SQL statement
    ("cogs", ("sqlite3", "aiosqlite")),
    ("agent_api", ("cogs", "discord", "sqlite3", "aiosqlite")),  # a front end beside the Discord one
])
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
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lstrip().upper(
                    ).startswith(statements):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "SQL belongs in storage/"
