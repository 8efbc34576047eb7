"""Durable storage: one aiosqlite connection, WAL, numbered migrations, small repositories."""

from storage.db import Database, StorageError

__all__ = ["Database", "StorageError"]
