"""The MCP server object: the SDK's server class with every call wrapped once.

``call_tool`` and ``read_resource`` are the one place where a caller's token is checked against
the tool and key, and where any failure becomes the error's JSON (``to_dict()``): tools never
catch anything themselves.
"""

from __future__ import annotations

import inspect
from typing import Any, cast
from urllib.parse import unquote

import fencedstate as fs

from . import sdk
from .auth import READ_TOOLS, TokenTable, TokenVerifier, current_grant
from .errors import error_body, tool_error, unknown_arguments
from .subscriptions import ListenWatches, Subscriptions
from .tools import StateTools

INSTRUCTIONS = (
    "Shared state with compare-and-set writes and epoch-fenced claims. put/delete need "
    "expected_version (0 = create). A failed call returns isError with a JSON object: 'error' "
    "(the type) and 'advice' (what to do: ConflictError, re-read and retry; FencedError, take "
    "a new claim; ClaimHeldError, wait or reclaim)."
)
RESOURCE_SCHEME = "fencedstate://"


class _Wrapped:
    """Mixed in before the SDK's server class: checks access, shapes errors, for every call."""

    _fs_tokens: TokenTable | None
    _fs_params: dict[str, tuple[str, ...]]
    _fs_root: str | None  # the served directory, hidden from error bodies

    async def call_tool(self, name: str, arguments: dict[str, Any], *rest: Any, **kw: Any) -> Any:
        try:
            grant = current_grant(self._fs_tokens)
            key = arguments.get("key")
            grant.check(name, key if isinstance(key, str) else None)
            prefix = arguments.get("prefix", "effects/" if name == "effects" else "")
            if name in ("keys", "effects") and isinstance(prefix, str):
                arguments = arguments | {"prefix": grant.check_prefix(name, prefix)}
            unknown = unknown_arguments(name, arguments, self._fs_params.get(name, ()))
            if unknown is not None and name in self._fs_params:
                return sdk.error_result(unknown)
            return sdk.one_text(await cast(Any, super()).call_tool(name, arguments, *rest, **kw))
        except Exception as exc:
            result = tool_error(exc, tool=name, root=self._fs_root)
            if result is None:
                raise  # a protocol error (the SDK's own), passed through as it is
            return result

    async def read_resource(self, uri: Any, *rest: Any, **kw: Any) -> Any:
        try:
            text = str(uri)
            if text.startswith(RESOURCE_SCHEME):
                grant = current_grant(self._fs_tokens)
                grant.check("get", unquote(text[len(RESOURCE_SCHEME) :]))
            return await cast(Any, super()).read_resource(uri, *rest, **kw)
        except Exception as exc:
            body = error_body(exc, tool="resource", root=self._fs_root)
            if body is None:
                raise
            raise sdk.protocol_error(body) from None


def create_server(
    store: fs.Store,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    tokens: TokenTable | None = None,
) -> Any:
    """Build the MCP server over ``store`` on whichever SDK major is installed.

    With ``tokens`` the streamable-HTTP app demands a bearer token from the table on every
    request (the SDK's own auth middleware) and each call is limited to that token's grant.
    """
    base = sdk.server_base()
    cls = type("FencedStateMCPServer", (_Wrapped, base), {})
    auth = None
    if tokens is not None:
        netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6
        auth = sdk.bearer_auth(TokenVerifier(tokens), f"http://{netloc}:{port}")
    bus = sdk.subscription_bus()
    server = cls(
        "fencedstate",
        **sdk.server_kwargs(instructions=INSTRUCTIONS, host=host, port=port, auth=auth, bus=bus),
    )
    server._fs_tokens = tokens
    server._fs_root = store.path if isinstance(store, fs.FileStore) else None
    tools = StateTools(store)
    server._fs_params = {
        n: tuple(inspect.signature(getattr(tools, n)).parameters) for n in StateTools.NAMES
    }
    for name in StateTools.NAMES:
        server.tool(name=name, annotations=_annotations(name))(getattr(tools, name))
    server.resource(RESOURCE_SCHEME + "{key}", name="key")(tools.resource)
    watches = ListenWatches(store, tokens, publish=_unpublished)
    sdk.enable_subscriptions(server, Subscriptions(store, tokens), watches, bus)
    return server


async def _unpublished(uri: str) -> None:
    raise RuntimeError("subscriptions/listen is not served by this MCP SDK")


def _annotations(name: str) -> Any:
    """The SDK's ToolAnnotations: read-only tools say so, so a client can tell them apart."""
    import importlib

    types = importlib.import_module("mcp.types")
    return types.ToolAnnotations.model_validate({"readOnlyHint": name in READ_TOOLS})
