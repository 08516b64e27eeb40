"""LangGraph's search filters and namespace listing, as ``InMemoryStore`` applies them.

One addition: a filter key that is not a key of the value but contains ``.`` is read as a
path into nested dicts (``{"user.level": 1}`` matches ``{"user": {"level": 1}}``), as
``SqliteStore`` and ``PostgresStore`` read it; a literal key wins, as in ``InMemoryStore``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from langgraph.store.base import ListNamespacesOp, MatchCondition

__all__ = ["matches_filter", "select_namespaces"]


def matches_filter(value: Any, flt: dict[str, Any]) -> bool:
    """True if the item value ``value`` satisfies every condition of a search ``filter``."""
    return all(_compare_values(_lookup(value, k), fv) for k, fv in flt.items())


def _lookup(value: Any, key: str) -> Any:
    if key in value or "." not in key:
        return value.get(key)
    cur = value
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def select_namespaces(
    op: ListNamespacesOp, namespaces: Iterable[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    selected = list(namespaces)
    if op.match_conditions:
        selected = [ns for ns in selected if all(_does_match(c, ns) for c in op.match_conditions)]
    if op.max_depth is not None:
        selected = sorted({ns[: op.max_depth] for ns in selected})
    else:
        selected = sorted(selected)
    return selected[op.offset : op.offset + op.limit]


def _does_match(cond: MatchCondition, ns: tuple[str, ...]) -> bool:
    path = cond.path
    if len(ns) < len(path):
        return False
    pairs: Iterable[tuple[str, str]]
    if cond.match_type == "prefix":
        pairs = zip(ns, path, strict=False)
    elif cond.match_type == "suffix":
        pairs = zip(reversed(ns), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {cond.match_type}")
    return all(p == "*" or k == p for k, p in pairs)


def _compare_values(item_value: Any, filter_value: Any) -> bool:
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(_apply_operator(item_value, k, v) for k, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(_compare_values(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, list | tuple):
        return (
            isinstance(item_value, list | tuple)
            and len(item_value) == len(filter_value)
            and all(_compare_values(a, b) for a, b in zip(item_value, filter_value, strict=False))
        )
    return bool(item_value == filter_value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ordered(test: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    """A numeric comparison; an item whose field is missing or not a number does not match
    (as in PostgreSQL's JSONB; ``InMemoryStore`` raises ``TypeError`` there)."""

    def compare(a: Any, b: Any) -> bool:
        x = _number(a)
        return x is not None and test(x, float(b))

    return compare


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: bool(a == b),
    "$ne": lambda a, b: bool(a != b),
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
}


def _apply_operator(value: Any, operator: str, operand: Any) -> bool:
    fn = _OPS.get(operator)
    if fn is None:
        raise ValueError(f"Unsupported operator: {operator}")
    return fn(value, operand)
