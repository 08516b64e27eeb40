"""Namespace checks, with the rules and error type of LangGraph's ``BaseStore``.

Written here instead of importing LangGraph's private ``_validate_namespace``: the rules are
part of LangGraph's documented contract (``InvalidNamespaceError`` on an empty namespace, a
``"langgraph"`` root label for writes, and an empty, non-string, dotted or NUL-holding label).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    Op,
    PutOp,
    SearchOp,
)

import fencedstate as fs

__all__ = ["check_config_keys", "check_labels", "check_op", "check_write_namespace"]


def check_config_keys(what: str, config: Mapping[str, Any], spec: type) -> None:
    """Every key of ``config`` is one of the TypedDict ``spec``'s (a misspelt one is refused,
    not ignored)."""
    known = set(spec.__annotations__)
    unknown = sorted(str(k) for k in config if k not in known)
    if unknown:
        raise fs.InvalidArgumentError(
            f"{what} has unknown keys {unknown}: use only {sorted(known)}"
        )


def _labels(namespace: Iterable[str]) -> tuple[str, ...]:
    """``namespace`` as a tuple; a str is refused (``"memories"`` would be split into letters)."""
    if isinstance(namespace, str | bytes):
        raise InvalidNamespaceError(
            f"A namespace is a tuple of labels, not a {type(namespace).__name__}: got "
            f"{namespace!r}; write ({namespace!r},)."
        )
    return tuple(namespace)


def check_labels(namespace: Iterable[str]) -> None:
    """A tuple (not a str) whose every label is a non-empty ``str`` without ``.`` or NUL."""
    namespace = _labels(namespace)
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(
                f"Invalid namespace label {label!r} found in {namespace}. Namespace labels"
                f" must be strings, but got {type(label).__name__}."
            )
        if not label:
            raise InvalidNamespaceError(
                f"Namespace labels cannot be empty strings. Got {label!r} in {namespace}"
            )
        if "." in label:
            raise InvalidNamespaceError(
                f"Invalid namespace label {label!r} found in {namespace}. Namespace labels "
                "cannot contain periods ('.')."
            )
        if "\x00" in label:
            raise InvalidNamespaceError(
                f"Invalid namespace label {label!r} found in {namespace}. Namespace labels "
                "cannot contain NUL bytes ('\\x00')."
            )


def check_write_namespace(namespace: Iterable[str]) -> None:
    """What ``BaseStore.put`` accepts: labels as above, not empty, root not ``"langgraph"``."""
    namespace = _labels(namespace)
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    check_labels(namespace)
    if namespace[0] == "langgraph":
        raise InvalidNamespaceError(
            f'Root label for namespace cannot be "langgraph". Got: {namespace}'
        )


def check_op(op: Op) -> None:
    """The labels an op carries (ops given to ``batch`` directly skip the public methods)."""
    if isinstance(op, GetOp | PutOp):
        check_labels(op.namespace)
    elif isinstance(op, SearchOp):
        check_labels(op.namespace_prefix)
    elif isinstance(op, ListNamespacesOp):
        for cond in op.match_conditions or ():
            check_labels(cond.path)
