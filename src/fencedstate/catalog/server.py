"""MCP server (official `mcp` SDK, stdio transport) exposing the catalog's `search` and `show`."""

from __future__ import annotations

from typing import Any

from fencedstate.catalog.api import search as _search
from fencedstate.catalog.api import show as _show
from fencedstate.catalog.errors import EntryNotFoundError


def create_server() -> Any:
    """Build the MCP server; imports `mcp` lazily so the catalog works without the extra."""
    try:
        from fencedstate.mcp_server.sdk import server_base

        server_cls = server_base()  # FastMCP on mcp 1.x, MCPServer on 2.x
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "the MCP server needs the 'mcp' extra: pip install 'fencedstate[mcp]'"
        ) from exc

    server = server_cls(
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
            raise ValueError("limit must be between 1 and 50")
        return [h.model_dump() for h in _search(query, limit=limit)]

    def show(id: str) -> dict[str, Any]:
        """Return one catalog entry in full: reproduction, impact, detection, mitigations, refs."""
        try:
            return _show(id).model_dump(mode="json")
        except EntryNotFoundError as exc:
            raise ValueError(str(exc)) from exc

    server.tool()(search)
    server.tool()(show)
    return server


def serve() -> None:
    """Run the MCP server on stdio until the client disconnects."""
    create_server().run(transport="stdio")
