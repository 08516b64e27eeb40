"""PostgreSQL schema: the tables and the forward-only migrations the library applies at open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "apply_migrations", "schema_version"]

_STATE_COLUMNS = """
    key            text COLLATE "C" NOT NULL,
    seq            bigint NOT NULL CHECK (seq >= 1),
    op             text NOT NULL,
    version        bigint NOT NULL CHECK (version >= 0),
    epoch          bigint NOT NULL CHECK (epoch >= 0),
    present        boolean NOT NULL,
    value          text,
    writer         text,
    committed_at   double precision NOT NULL,
    holder         text,
    lease_boot     text,
    lease_deadline double precision,
    lease_ttl      double precision,
    actor          text,
    event_at       double precision NOT NULL,
    idem           text,
    txn            text,
    commit_id      uuid NOT NULL
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "keys, journal and meta tables",
        [
            """CREATE TABLE fencedstate_meta (
               singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
               store_id   text NOT NULL,
               created_at timestamptz NOT NULL DEFAULT now())""",
            "INSERT INTO fencedstate_meta (store_id) VALUES (gen_random_uuid()::text)",
            f"CREATE TABLE fencedstate_keys ({_STATE_COLUMNS}, PRIMARY KEY (key))",
            f"CREATE TABLE fencedstate_journal ({_STATE_COLUMNS}, PRIMARY KEY (key, seq))",
        ],
    ),
]
"""Forward-only migrations: (version, description, statements). Append, never edit."""

SCHEMA_VERSION = MIGRATIONS[-1][0]
"""The schema version this library writes and needs."""


def schema_version(conn: psycopg.Connection[Any]) -> int:
    conn.execute("""CREATE TABLE IF NOT EXISTS fencedstate_schema (
                        version     integer PRIMARY KEY,
                        description text NOT NULL,
                        applied_at  timestamptz NOT NULL DEFAULT now())""")
    row = conn.execute("SELECT coalesce(max(version), 0) FROM fencedstate_schema").fetchone()
    return 0 if row is None else int(row[0])


def apply_migrations(conn: psycopg.Connection[Any], current: int) -> None:
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            conn.execute(statement.encode())
        conn.execute(
            "INSERT INTO fencedstate_schema (version, description) VALUES (%s, %s)",
            (version, description),
        )
