"""Read-set tracking: what one LangGraph node attempt (or one ``tracking()`` block) has read.

A later write of an item by the same attempt commits with ``expected_version`` = the version
read, so a concurrent change by another branch surfaces as ``ConflictError``.
"""

from __future__ import annotations

import itertools
from contextvars import ContextVar

from langchain_core.runnables.config import var_child_runnable_config

__all__ = ["EXPLICIT", "Read", "ReadSet", "current_reads", "store_ids"]

_TASK_ID = "__pregel_task_id"
_RUNTIME = "__pregel_runtime"


class Read:
    """What one node run saw of one key: its version (0 = absent) and creation time."""

    __slots__ = ("created_at", "version")

    def __init__(self, version: int, created_at: float | None) -> None:
        self.version = version
        self.created_at = created_at


ReadSet = dict[tuple[int, str], Read]
_SCOPE: ContextVar[tuple[object, ReadSet] | None] = ContextVar(
    "fencedstate_langgraph_read_scope", default=None
)
EXPLICIT: ContextVar[tuple[object, ReadSet] | None] = ContextVar(
    "fencedstate_langgraph_explicit_scope", default=None
)
store_ids = itertools.count(1)


def _node_scope_id() -> object | None:
    """Identity of the current LangGraph node attempt: (task id, attempt), or None."""
    config = var_child_runnable_config.get()
    if not config:
        return None
    conf = config.get("configurable") or {}
    task_id = conf.get(_TASK_ID)
    if task_id is None:
        return None
    attempt = 0
    runtime = conf.get(_RUNTIME)
    info = getattr(runtime, "execution_info", None)
    if info is not None:
        attempt = int(getattr(info, "node_attempt", 0) or 0)
    return ("node", str(task_id), attempt)


def current_reads() -> ReadSet | None:
    """The read set of the current scope (explicit ``tracking()`` block or node attempt)."""
    explicit = EXPLICIT.get()
    if explicit is not None:
        return explicit[1]
    scope_id = _node_scope_id()
    if scope_id is None:
        return None
    cur = _SCOPE.get()
    if cur is None or cur[0] != scope_id:
        cur = (scope_id, {})
        _SCOPE.set(cur)
    return cur[1]
