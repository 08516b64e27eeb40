"""`fencedstate mcp DIR|URL`: a fencedstate store as an MCP server (stdio or streamable HTTP).

Works on the MCP SDK's 1.x (FastMCP) and 2.x (MCPServer). Tools: get, put, delete, claim,
commit, renew, release, reclaim, keys, history, watch_once; resource ``fencedstate://KEY`` ('/'
in KEY percent-encoded as %2F), which clients may subscribe to (:mod:`.subscriptions`). A
failed call is a tool error (``isError``) whose text is exactly the error's JSON
(``FencedStateError.to_dict()``: ``error``, ``message``, ``advice``, fields). Over HTTP beyond
loopback, bearer tokens are required (:mod:`.auth`).
"""

from __future__ import annotations

from .auth import Grant, TokenTable
from .cli import main
from .errors import NotPermittedError
from .server import create_server

__all__ = ["Grant", "NotPermittedError", "TokenTable", "create_server", "main"]
