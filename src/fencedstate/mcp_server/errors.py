"""Every failed call as one JSON object: the error's ``to_dict()`` (type, message, advice, fields).

The SDK wraps whatever a tool raises ("Error executing tool put: ...", on 2.x a pydantic dump
for bad arguments); :func:`error_body` digs the real cause out of that chain so a client parses
the result text as JSON as it is, on mcp 1.x and 2.x alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, ClassVar

import fencedstate as fs

from . import sdk


class NotPermittedError(fs.FencedStateError):
    """The bearer token may not do this: read-only, or the key is outside the token's prefix."""

    advice: ClassVar[str] = (
        "This token does not cover that: use a token whose access and key prefix allow it; "
        "nothing was done."
    )

    tool: str
    grant: str
    key: str | None
    reason: str

    def __init__(self, tool: str, grant: str, key: str | None, reason: str) -> None:
        where = f" on {key!r}" if key is not None else ""
        super().__init__(
            f"token {grant!r} may not call {tool}{where}: {reason}",
            tool=tool,
            grant=grant,
            key=key,
            reason=reason,
        )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _bad_arguments(tool: str, exc: Any) -> dict[str, Any]:
    """A pydantic ValidationError of the tool's arguments, without echoing the values sent."""
    problems = []
    for e in exc.errors():
        name = ".".join(str(p) for p in e.get("loc", ())) or "arguments"
        problem = "missing" if e.get("type") == "missing" else str(e.get("msg", "invalid"))
        problems.append({"argument": name, "problem": problem})
    said = "; ".join(f"{p['argument']}: {p['problem']}" for p in problems)
    body = fs.InvalidArgumentError(f"bad arguments to {tool}: {said}").to_dict()
    body["tool"] = tool
    body["problems"] = problems
    return body


def unknown_arguments(tool: str, sent: Any, takes: tuple[str, ...]) -> dict[str, Any] | None:
    """The error body for arguments ``tool`` does not take (a misspelt ``ttl`` would otherwise
    be dropped and its default used), naming the nearest valid one; None if all are known."""
    from difflib import get_close_matches

    problems = []
    for name in sorted(set(sent) - set(takes)) if isinstance(sent, dict) else ():
        near = get_close_matches(name, takes, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append({"argument": name, "problem": f"unknown argument{hint}"})
    if not problems:
        return None
    said = "; ".join(f"{p['argument']}: {p['problem']}" for p in problems)
    message = f"bad arguments to {tool}: {said}; it takes {', '.join(takes)}"
    body = fs.InvalidArgumentError(message).to_dict()
    body["tool"] = tool
    body["problems"] = problems
    return body


def _within(value: Any, root: str) -> Any:
    """``value`` with the store directory's own path cut from its strings."""
    if isinstance(value, str):
        return value.replace(root + os.sep, "")
    if isinstance(value, dict):
        return {k: _within(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_within(v, root) for v in value]
    return value


def error_body(exc: BaseException, *, tool: str, root: str | None = None) -> dict[str, Any] | None:
    """The JSON body for ``exc`` raised by (or around) ``tool``; None if it is not ours to shape.

    ``root``: the served store's directory. Paths inside it are shown relative to it (a damaged
    log as ``data/k.jsonl``): a client learns which file, not where the server keeps it."""
    from pydantic import ValidationError

    for e in _chain(exc):
        if isinstance(e, fs.FencedStateError):
            body = e.to_dict()
            return _within(body, root) if root else body
        if isinstance(e, ValidationError):
            return _bad_arguments(tool, e)
    text = str(exc)
    if "Unknown tool" in text:
        return fs.InvalidArgumentError(f"unknown tool {tool!r}").to_dict()
    return None


def internal_body(exc: BaseException) -> dict[str, Any]:
    """The body for an exception that is not a fencedstate error (a bug): its root cause."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return {
        "error": type(root).__name__,
        "message": str(root),
        "retryable": False,
        "advice": "An unexpected server error: nothing is known to have been written; "
        "read the key before retrying, and report the message.",
    }


def tool_error(exc: Exception, *, tool: str, root: str | None = None) -> Any:
    """The ``isError`` result for ``exc`` raised by a call of ``tool``, its text the error's
    JSON; None for a protocol error (the SDK's own), which the caller raises as it is."""
    body = error_body(exc, tool=tool, root=root)
    if body is None and not isinstance(exc, sdk.tool_error_types()):
        return None
    return sdk.error_result(body or internal_body(exc))
