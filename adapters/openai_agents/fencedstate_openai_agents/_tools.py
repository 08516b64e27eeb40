"""OpenAI Agents SDK ``function_tool``s that read and compare-and-set commit fencedstate keys."""

from __future__ import annotations

import json
from typing import Any

from agents import FunctionTool, function_tool

from fencedstate.errors import ConflictError
from fencedstate.store import Store

from ._common import conflict_message, in_thread

READ_TOOL = "read_state"
COMMIT_TOOL = "commit_state"


def _check_prefix(key: str, prefix: str) -> None:
    if prefix and not key.startswith(prefix):
        raise ValueError(f"key {key!r} is outside this tool's prefix {prefix!r}")


def read_state_tool(store: Store, *, key_prefix: str = "") -> FunctionTool:
    """A tool ``read_state(key)``: JSON with the key's ``value``, ``version`` and ``writer``."""

    async def read_state(key: str) -> str:
        _check_prefix(key, key_prefix)
        snap = await in_thread(store.get, key)
        if snap is None:
            return json.dumps({"key": key, "exists": False, "version": 0, "value": None})
        return json.dumps(
            {"key": key, "exists": True, "version": snap.version, "value": snap.value,
             "writer": snap.writer},
            ensure_ascii=False,
        )

    return function_tool(
        read_state,
        name_override=READ_TOOL,
        description_override=(
            "Read a shared state key. Returns JSON with its current value and version; pass that "
            "version as expected_version to commit_state."
        ),
        use_docstring_info=False,
    )


def commit_state_tool(
    store: Store,
    *,
    writer: str,
    raise_on_conflict: bool = False,
    key_prefix: str = "",
) -> FunctionTool:
    """A tool ``commit_state(key, value_json, expected_version)``: a compare-and-set write.

    On ``ConflictError`` the tool returns a message for the model (expected vs actual version,
    a summary of the current value, "re-read and retry"). With ``raise_on_conflict=True`` the tool
    is built with ``failure_error_function=None``, so the run stops: ``Runner.run`` raises the
    SDK's ``agents.exceptions.UserError`` whose ``__cause__`` is the ``ConflictError`` (the
    SDK's default would turn any tool exception into an error string for the model).
    """

    async def commit_state(key: str, value_json: str, expected_version: int) -> str:
        _check_prefix(key, key_prefix)
        try:
            value: Any = json.loads(value_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"value_json is not valid JSON: {exc}") from exc
        try:
            snap = await in_thread(
                store.put, key, value, expected_version=expected_version, writer=writer
            )
        except ConflictError as err:
            if raise_on_conflict:
                raise
            current = await in_thread(store.get, key)
            return conflict_message(err, current, READ_TOOL)
        return json.dumps({"ok": True, "key": key, "version": snap.version})

    description = (
        "Write a shared state key only if it is still at expected_version (0 = must not exist "
        "yet). value_json is the full new value as JSON text. On a conflict, re-read with "
        "read_state and retry."
    )
    if raise_on_conflict:
        return function_tool(
            commit_state,
            name_override=COMMIT_TOOL,
            description_override=description,
            use_docstring_info=False,
            failure_error_function=None,
        )
    return function_tool(
        commit_state,
        name_override=COMMIT_TOOL,
        description_override=description,
        use_docstring_info=False,
    )


def state_tools(
    store: Store,
    *,
    writer: str,
    raise_on_conflict: bool = False,
    key_prefix: str = "",
) -> list[FunctionTool]:
    """Both tools, ``[read_state, commit_state]``, ready for ``Agent(tools=...)``."""
    return [
        read_state_tool(store, key_prefix=key_prefix),
        commit_state_tool(
            store, writer=writer, raise_on_conflict=raise_on_conflict, key_prefix=key_prefix
        ),
    ]
