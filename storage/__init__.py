"""Durable storage: SQLite (one aiosqlite connection, WAL) or PostgreSQL (an asyncpg pool), numbered
migrations per engine, small repositories written once for both."""

from storage.db import Database, StorageError
from storage.engines import AnyDatabase, database_for
from storage.postgres import PostgresDatabase

__all__ = ["AnyDatabase", "Database", "PostgresDatabase", "StorageError", "database_for"]
