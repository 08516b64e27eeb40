"""The two agent tools every framework wraps: ``read_state`` and ``commit_state``, as coroutines.

Each adapter hands these functions to its framework's tool type; their names, parameters and
the texts in ``fencedstate.tools`` make the tools' schemas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..core import args
from ..store import Store
from ..tools import StateTools
from .arguments import resolve_prefix

__all__ = ["commit_state_function", "key_prefix_of", "read_state_function", "writer_of"]


def key_prefix_of(key_prefix: object) -> str:
    """A tool's ``key_prefix``: ``""`` (any key) or a key prefix ending in ``/``;
    ``InvalidArgumentError`` naming it else (every call of the tool would be refused)."""
    return "" if key_prefix == "" else resolve_prefix(key_prefix, what="key_prefix")


def writer_of(writer: object, raise_on_conflict: object) -> str:
    """A commit tool's validated ``writer``; ``raise_on_conflict`` must be a bool."""
    args.flag("raise_on_conflict", raise_on_conflict)
    return args.actor("writer", writer)


def read_state_function(store: Store, *, key_prefix: str = "") -> Callable[[str], Awaitable[str]]:
    """``async read_state(key)``: JSON with the key's ``value``, ``version`` and ``writer``."""
    tools = StateTools(store, key_prefix=key_prefix_of(key_prefix))

    async def read_state(key: str) -> str:
        return await tools.aread(key)

    return read_state


def commit_state_function(
    store: Store, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> Callable[[str, str, int], Awaitable[str]]:
    """``async commit_state(key, value_json, expected_version)``: a compare-and-set write."""
    tools = StateTools(
        store,
        writer=writer_of(writer, raise_on_conflict),
        key_prefix=key_prefix_of(key_prefix),
        raise_on_conflict=raise_on_conflict,
    )

    async def commit_state(key: str, value_json: str, expected_version: int) -> str:
        return await tools.acommit_json(key, value_json, expected_version)

    return commit_state
