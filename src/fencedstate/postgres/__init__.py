"""The PostgreSQL backend (the ``postgres`` extra): ``PostgresStore`` and its schema."""

from .schema import MIGRATIONS, SCHEMA_VERSION
from .store import PostgresStore, ServerClock

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "ServerClock"]
