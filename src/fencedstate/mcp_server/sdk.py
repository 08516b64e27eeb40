"""The two majors of the MCP SDK behind one face.

mcp 1.x serves through ``mcp.server.fastmcp.FastMCP`` (host and port given to the constructor);
mcp 2.x renamed it ``mcp.server.mcpserver.MCPServer`` (host and port given to ``run``) and moved
the result types to ``mcp_types``. Everything version-specific lives here, imported lazily so the
core never needs the ``mcp`` extra.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from fencedstate.errors import FencedStateError

EXTRA = "pip install 'fencedstate[mcp]'"


class MCPUnavailableError(FencedStateError, ImportError):
    """The MCP SDK (the ``mcp`` extra) is not installed."""

    advice: ClassVar[str] = f"Install the MCP extra: {EXTRA}."

    def __init__(self) -> None:
        super().__init__(f"the MCP server needs the 'mcp' extra: {EXTRA}")


def major() -> int:
    """The installed SDK's major version (1 or 2); :class:`MCPUnavailableError` without it."""
    try:
        return int(version("mcp").split(".")[0])
    except PackageNotFoundError:
        raise MCPUnavailableError() from None


def require() -> None:
    """Raise :class:`MCPUnavailableError` unless the SDK is installed and importable."""
    major()
    try:
        importlib.import_module("mcp")
    except ImportError:
        raise MCPUnavailableError() from None


def server_base() -> type[Any]:
    """The SDK's high-level server class: ``MCPServer`` on 2.x, ``FastMCP`` on 1.x."""
    if major() >= 2:
        return importlib.import_module("mcp.server.mcpserver").MCPServer  # type: ignore[no-any-return]
    return importlib.import_module("mcp.server.fastmcp").FastMCP  # type: ignore[no-any-return]


def tool_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions the SDK raises for a failed tool call (ours arrive as their cause)."""
    mod = "mcp.server.mcpserver.exceptions" if major() >= 2 else "mcp.server.fastmcp.exceptions"
    exc = importlib.import_module(mod)
    return (exc.ToolError, exc.ResourceError)


def error_result(body: dict[str, Any]) -> Any:
    """A tool result with ``isError`` whose text is exactly ``body`` as JSON (no prefix)."""
    import json

    types = importlib.import_module("mcp.types")
    text = json.dumps(body)
    return types.CallToolResult.model_validate(
        {
            "content": [{"type": "text", "text": text}],
            "structuredContent": body,
            "isError": True,
        }
    )


def one_text(result: Any) -> Any:
    """A tool's list or null result with its text as one JSON block: both majors send one text
    block per list item and no content at all for an empty list or None (a client passing only
    text to the model would see nothing for a missing key); others as they are."""
    import json

    if isinstance(result, tuple) and len(result) == 2:  # 1.x: (content, structured)
        structured = result[1]
    else:
        structured = getattr(
            result, "structured_content", getattr(result, "structuredContent", None)
        )
    if not (isinstance(structured, dict) and list(structured) == ["result"]):
        return result
    if structured["result"] is not None and not isinstance(structured["result"], list):
        return result
    types = importlib.import_module("mcp.types")
    return types.CallToolResult.model_validate(
        {
            "content": [{"type": "text", "text": json.dumps(structured["result"])}],
            "structuredContent": structured,
            "isError": False,
        }
    )


def protocol_error(body: dict[str, Any]) -> Exception:
    """A JSON-RPC error (invalid params) whose message is ``body`` as JSON and data is ``body``."""
    import json

    code = -32602
    if major() >= 2:
        err: Exception = importlib.import_module("mcp.shared.exceptions").MCPError(
            code=code, message=json.dumps(body), data=body
        )
        return err
    types = importlib.import_module("mcp.types")
    data = types.ErrorData(code=code, message=json.dumps(body), data=body)
    err = importlib.import_module("mcp.shared.exceptions").McpError(data)
    return err


def bearer_auth(verifier: Any, url: str) -> dict[str, Any]:
    """Constructor arguments that make the SDK itself demand a bearer token on every request.

    The SDK's ``RequireAuthMiddleware`` answers a missing or unknown token with HTTP 401 before
    any MCP message is read; ``verifier`` is our :class:`~.auth.TokenVerifier`. No OAuth
    metadata routes are published (``resource_server_url`` is None): tokens come from the
    operator's tokens file, not from an authorization server.
    """
    settings = importlib.import_module("mcp.server.auth.settings")
    auth = settings.AuthSettings(issuer_url=url, resource_server_url=None, required_scopes=[])
    return {"token_verifier": verifier, "auth": auth}


def access_token() -> Any:
    """The verified token of the current HTTP request (None on stdio or without auth)."""
    ctx = importlib.import_module("mcp.server.auth.middleware.auth_context")
    return ctx.get_access_token()


def new_access_token(name: str, scopes: list[str]) -> Any:
    """The SDK's ``AccessToken`` for a grant: it carries the grant's name, never the secret."""
    provider = importlib.import_module("mcp.server.auth.provider")
    return provider.AccessToken(token=f"grant:{name}", client_id=name, scopes=scopes)


def lowlevel(server: Any) -> Any:
    """The SDK's low-level server inside the high-level one (request handlers, context)."""
    for name in ("_mcp_server", "_lowlevel_server"):
        inner = getattr(server, name, None)
        if inner is not None:
            return inner
    raise RuntimeError("this MCP SDK keeps its low-level server elsewhere")


def subscription_bus() -> Any:
    """SDK 2.x: a new in-process ``SubscriptionBus`` (the fan-out behind
    ``subscriptions/listen`` streams), to pass as ``subscriptions=``; SDK 1.x: None."""
    if major() < 2:
        return None
    return importlib.import_module("mcp.server.subscriptions").InMemorySubscriptionBus()


def server_kwargs(
    *,
    instructions: str,
    host: str,
    port: int,
    auth: dict[str, Any] | None = None,
    bus: Any = None,
) -> dict[str, Any]:
    """Constructor keyword arguments for :func:`server_base` the way this major wants them."""
    kwargs: dict[str, Any] = {"instructions": instructions, **(auth or {})}
    if major() < 2:
        kwargs |= {"host": host, "port": port}
    elif bus is not None:
        kwargs["subscriptions"] = bus
    return kwargs


def enable_subscriptions(server: Any, subs: Any, watches: Any, bus: Any) -> None:
    """Serve resource subscriptions through this major's own mechanism.

    Both majors: ``resources/subscribe`` / ``unsubscribe`` go to ``subs``
    (:class:`~.subscriptions.Subscriptions`) with the requesting session. SDK 1.x registers the
    handlers but hard-codes the ``resources.subscribe`` capability to false, so it is patched
    to true; SDK 2.x derives the capability from the registered handler (2025 protocol
    versions). SDK 2.x also serves the 2026-07-28 ``subscriptions/listen``: each listen stream
    holds ``watches`` (:class:`~.subscriptions.ListenWatches`) for the ``fencedstate://`` URIs
    it names while it is open, and their changes are published as ``ResourceUpdated`` on
    ``bus``, the SDK's ``SubscriptionBus``, which delivers them to the streams that asked.
    """
    low = lowlevel(server)
    if major() >= 2:
        _enable_v2(low, subs, watches, bus)
        return

    async def subscribe(uri: Any) -> None:
        session = low.request_context.session
        await subs.subscribe(session, uri)
        if id(session) not in ended:  # drop its subscriptions when the session ends
            ended.add(id(session))
            session._task_group.start_soon(_on_end, lambda: _ended(session))

    def _ended(session: Any) -> None:
        ended.discard(id(session))
        subs.drop(session)

    ended: set[int] = set()
    low.subscribe_resource()(subscribe)
    low.unsubscribe_resource()(lambda uri: subs.unsubscribe(low.request_context.session, uri))
    plain = low.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> Any:
        caps = plain(*args, **kwargs)
        if caps.resources is not None:
            caps.resources.subscribe = True
        return caps

    low.get_capabilities = get_capabilities


def _enable_v2(low: Any, subs: Any, watches: Any, bus: Any) -> None:
    types = importlib.import_module("mcp.types")
    event = importlib.import_module("mcp.server.subscriptions").ResourceUpdated

    # 2.x makes a ServerSession per request; the client is its connection (it sends through
    # the connection's own channel once the request is answered, and its exit_stack unwinds
    # when the client's session ends).
    async def subscribe(ctx: Any, params: Any) -> Any:
        client = ctx.session._connection
        await subs.subscribe(ctx.session, params.uri, client=client)
        if not client.state.get("fencedstate.subscriptions"):
            client.state["fencedstate.subscriptions"] = True
            client.exit_stack.callback(subs.drop, client)
        return types.EmptyResult()

    async def unsubscribe(ctx: Any, params: Any) -> Any:
        client = ctx.session._connection
        await subs.unsubscribe(ctx.session, params.uri, client=client)
        return types.EmptyResult()

    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    entry = low.get_request_handler("subscriptions/listen")
    if entry is None:
        raise RuntimeError("this MCP SDK serves no subscriptions/listen")
    inner = entry.handler

    async def listen(ctx: Any, params: Any) -> Any:
        async with watches.held(params.notifications.resource_subscriptions or ()):
            return await inner(ctx, params)

    low.add_request_handler("subscriptions/listen", entry.params_type, listen)
    watches.publish = lambda uri: bus.publish(event(uri=uri))


async def _on_end(then: Any) -> None:
    """Run in a session's own task group (SDK 1.x): call ``then()`` when the session ends and
    cancels the group."""
    anyio = importlib.import_module("anyio")
    try:
        await anyio.sleep_forever()
    finally:
        then()


def run(server: Any, transport: str, *, host: str, port: int) -> None:
    """Serve: ``stdio`` or ``streamable-http`` on host:port."""
    if transport == "stdio":
        server.run("stdio")
    elif major() >= 2:
        server.run("streamable-http", host=host, port=port)
    else:
        server.run(transport="streamable-http")
