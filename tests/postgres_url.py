"""Print the URL of a PostgreSQL server the tests may use, or nothing.

The README's test command runs ``export HANDOFF_TEST_POSTGRES_URL=$(.venv/bin/python -m
tests.postgres_url)``: on the development and CI machines PostgreSQL answers on 127.0.0.1:5432
(trust authentication, database ``test``), and the PostgreSQL tests run; elsewhere this prints
nothing and they are skipped with one line. An URL already in HANDOFF_TEST_POSTGRES_URL is kept as
it is.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys

CANDIDATES = [
    f"postgresql://{user}@127.0.0.1:5432/test"
    for user in dict.fromkeys((getpass.getuser(), "postgres"))
]


async def usable(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()
    return True


async def main() -> int:
    given = os.environ.get("HANDOFF_TEST_POSTGRES_URL")
    for url in [given] if given else CANDIDATES:
        if await usable(url):
            print(url)
            return 0
    if given:
        print(
            f"HANDOFF_TEST_POSTGRES_URL={given} does not answer; PostgreSQL tests will be skipped",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
