"""MCP server (official `mcp` SDK, stdio transport) exposing the catalog's `search` and `show`.

A failed call is a tool error whose text is exactly the error's JSON (``to_dict()``: type,
message, advice), shaped as the state server shapes its own (:mod:`fencedstate.mcp_server`).
"""

from __future__ import annotations

from typing import Any, cast

from fencedstate.catalog.api import search as _search
from fencedstate.catalog.api import show as _show
from fencedstate.errors import InvalidArgumentError


class _JSONErrors:
    """Mixed in before the SDK's server class: a failed call's text is its error's JSON."""

    async def call_tool(self, name: str, arguments: dict[str, Any], *rest: Any, **kw: Any) -> Any:
        from fencedstate.mcp_server.errors import tool_error

        try:
            return await cast(Any, super()).call_tool(name, arguments, *rest, **kw)
        except Exception as exc:
            result = tool_error(exc, tool=name)
            if result is None:
                raise  # a protocol error (the SDK's own), passed through as it is
            return result


def create_server() -> Any:
    """Build the MCP server; imports `mcp` lazily so the catalog works without the extra."""
    try:
        from fencedstate.mcp_server.sdk import server_base

        base = server_base()  # FastMCP on mcp 1.x, MCPServer on 2.x
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "the MCP server needs the 'mcp' extra: pip install 'fencedstate[mcp]'"
        ) from exc

    server = type("CatalogMCPServer", (_JSONErrors, base), {})(
        "fencedstate-catalog",
        instructions=(
            "Catalog of coordination failure modes in multi-agent systems (lost updates, zombie "
            "writers, duplicate delivery, ...). Call `search` with a description of a symptom or "
            "design, then `show` with an id for the full entry, mitigations and real references."
        ),
    )

    def search(query: str, limit: int = 5) -> list[dict[str, Any]]:
        """Rank catalog entries by relevance to a free-text description of a failure or design."""
        if not 1 <= limit <= 50:
            raise InvalidArgumentError("limit must be between 1 and 50")
        return [h.model_dump() for h in _search(query, limit=limit)]

    def show(id: str) -> dict[str, Any]:
        """Return one catalog entry in full: reproduction, impact, detection, mitigations, refs."""
        return _show(id).model_dump(mode="json")

    server.tool()(search)
    server.tool()(show)
    return server


def serve() -> None:
    """Run the MCP server on stdio until the client disconnects."""
    create_server().run(transport="stdio")
