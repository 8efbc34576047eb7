"""Which engine ``HANDOFF_DB`` names: a file path is SQLite (the default), a ``postgresql://`` URL
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database
from storage.postgres import PostgresDatabase, is_postgres_url

AnyDatabase = Database | PostgresDatabase


def database_for(
    target: str | Path, *, idle_in_transaction: float = 5.0, session_name: str | None = None
) -> AnyDatabase:
    """The database ``target`` names, not yet open (``idle_in_transaction``, ``session_name``: see
    ``PostgresDatabase``)."""
    if is_postgres_url(target):
        return PostgresDatabase(
            str(target), idle_in_transaction=idle_in_transaction, session_name=session_name
        )
    return Database(target)
