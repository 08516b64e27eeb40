"""OpenAI Agents SDK ``function_tool``s over ``fencedstate.tools.StateTools``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents import FunctionTool, function_tool

from fencedstate.integrations import (
    commit_state_function,
    read_state_function,
    resolve_store,
)
from fencedstate.store import Store
from fencedstate.tools import COMMIT_DESCRIPTION, COMMIT_TOOL, READ_DESCRIPTION, READ_TOOL

__all__ = ["COMMIT_TOOL", "READ_TOOL", "commit_state_tool", "read_state_tool", "state_tools"]


def _tool(fn: Callable[..., Any], name: str, description: str, **extra: Any) -> FunctionTool:
    return function_tool(
        fn, name_override=name, description_override=description, use_docstring_info=False, **extra
    )


def read_state_tool(store: Store | str, *, key_prefix: str = "") -> FunctionTool:
    """A tool ``read_state(key)``: JSON with the key's ``value``, ``version`` and ``writer``
    (``store``: a Store, or a path/URL for ``fs.open_store``)."""
    read_state = read_state_function(resolve_store(store), key_prefix=key_prefix)
    return _tool(read_state, READ_TOOL, READ_DESCRIPTION)


def commit_state_tool(
    store: Store | str, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> FunctionTool:
    """A tool ``commit_state(key, value_json, expected_version)``: a compare-and-set write.

    A rejected write comes back as a message for the model (``fencedstate.tools``). With
    ``raise_on_conflict=True`` the tool is built with ``failure_error_function=None``, so the run
    stops: ``Runner.run`` raises the SDK's ``UserError`` whose ``__cause__`` is the
    ``ConflictError`` (the SDK's default turns any tool exception into text for the model).
    """
    extra: dict[str, Any] = {"failure_error_function": None} if raise_on_conflict else {}
    commit_state = commit_state_function(
        resolve_store(store),
        writer=writer,
        raise_on_conflict=raise_on_conflict,
        key_prefix=key_prefix,
    )
    return _tool(commit_state, COMMIT_TOOL, COMMIT_DESCRIPTION, **extra)


def state_tools(
    store: Store | str, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> list[FunctionTool]:
    """Both tools, ``[read_state, commit_state]``, ready for ``Agent(tools=...)``."""
    store = resolve_store(store)
    return [
        read_state_tool(store, key_prefix=key_prefix),
        commit_state_tool(
            store, writer=writer, raise_on_conflict=raise_on_conflict, key_prefix=key_prefix
        ),
    ]
