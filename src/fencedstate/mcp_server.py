"""`fencedstate mcp DIR|URL`: a fencedstate store as an MCP server (stdio or streamable HTTP).

Tools: get, put, delete, claim, commit, renew, release, reclaim, keys, history. A conflict,
fence or held claim is a tool error (``isError``) whose text is JSON: ``error`` (the
fencedstate error type), the error's fields (what was expected, what is there now) and
``advice`` ("re-read and retry"). Claims live in this server process, keyed by
(key, owner, epoch): ``claim`` returns them, ``commit``/``renew``/``release`` name them.
Resources: each key as ``fencedstate://KEY`` ('/' in KEY percent-encoded as %2F).
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import unquote

import fencedstate as fs


def _error(exc: fs.FencedStateError) -> Exception:
    from mcp.server.fastmcp.exceptions import ToolError

    fields = {k: v for k, v in getattr(exc, "_fields", {}).items() if _jsonable(v)}
    advice = (
        "re-read and retry"
        if exc.retryable or isinstance(exc, fs.FencedError)
        else "fix the request"
    )
    body = {"error": type(exc).__name__, "message": str(exc), **fields, "advice": advice}
    return ToolError(json.dumps(body))


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def _snap(s: fs.Snapshot | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "key": s.key,
        "value": s.value,
        "version": s.version,
        "epoch": s.epoch,
        "writer": s.writer,
    }


def create_server(store: fs.Store, *, host: str = "127.0.0.1", port: int = 8000) -> Any:
    """Build the FastMCP server over ``store`` (imports ``mcp`` lazily)."""
    from mcp.server.fastmcp import FastMCP

    server = FastMCP(
        "fencedstate",
        instructions=(
            "Shared state with compare-and-set writes and epoch-fenced claims. put/delete need "
            "expected_version (0 = create). On a tool error, re-read with get and retry."
        ),
        host=host,
        port=port,
    )
    claims: dict[tuple[str, str, int], Any] = {}

    def held(key: str, owner: str, epoch: int) -> Any:
        c = claims.get((key, owner, epoch))
        if c is None:
            raise _error(
                fs.InvalidArgumentError(
                    f"this server holds no claim on {key!r} for owner {owner!r} at epoch {epoch}"
                )
            )
        return c

    @server.tool()
    def get(key: str) -> dict[str, Any] | None:
        """The key's current snapshot (value, version, epoch, writer), or null if absent."""
        try:
            return _snap(store.get(key))
        except fs.FencedStateError as e:
            raise _error(e) from e

    @server.tool()
    def put(
        key: str, value: Any, expected_version: int, writer: str | None = None
    ) -> dict[str, Any]:
        """Compare-and-set write: succeeds only if the key is at expected_version (0 = create)."""
        try:
            snap = store.put(key, value, expected_version=expected_version, writer=writer)
        except fs.FencedStateError as e:
            raise _error(e) from e
        return _snap(snap) or {}

    @server.tool()
    def delete(key: str, expected_version: int, writer: str | None = None) -> dict[str, Any]:
        """Compare-and-set delete; returns the tombstone version."""
        try:
            return {
                "key": key,
                "version": store.delete(key, expected_version=expected_version, writer=writer),
            }
        except fs.FencedStateError as e:
            raise _error(e) from e

    @server.tool()
    def claim(key: str, owner: str, ttl: float = 30.0) -> dict[str, Any]:
        """Take a fenced write grant on key; returns owner, epoch and lease (seconds)."""
        try:
            c = store.claim(key, owner=owner, ttl=ttl)
        except fs.FencedStateError as e:
            raise _error(e) from e
        claims[(key, owner, int(c.epoch))] = c
        return {"key": key, "owner": owner, "epoch": int(c.epoch), "lease": float(c.expires_in)}

    @server.tool()
    def commit(
        key: str, owner: str, epoch: int, value: Any, expected_version: int
    ) -> dict[str, Any]:
        """Write under a claim: version and epoch checked atomically (reclaimed = fenced)."""
        c = held(key, owner, epoch)
        try:
            return _snap(c.commit(value, expected_version=expected_version)) or {}
        except fs.FencedStateError as e:
            raise _error(e) from e

    @server.tool()
    def renew(key: str, owner: str, epoch: int) -> dict[str, Any]:
        """Extend a claim's lease."""
        c = held(key, owner, epoch)
        try:
            c.renew()
        except fs.FencedStateError as e:
            raise _error(e) from e
        return {"key": key, "owner": owner, "epoch": epoch, "lease": float(c.expires_in)}

    @server.tool()
    def release(key: str, owner: str, epoch: int) -> dict[str, Any]:
        """Give up a claim."""
        c = held(key, owner, epoch)
        claims.pop((key, owner, epoch), None)
        try:
            c.release()
        except fs.FencedStateError as e:
            raise _error(e) from e
        return {"key": key, "released": True}

    @server.tool()
    def reclaim(key: str, by: str = "recovery") -> dict[str, Any]:
        """Revoke any holder of key and bump its epoch; returns the new epoch."""
        try:
            return {"key": key, "epoch": int(store.reclaim(key, by=by))}
        except fs.FencedStateError as e:
            raise _error(e) from e

    @server.tool()
    def keys(prefix: str = "") -> list[str]:
        """Keys starting with prefix, sorted."""
        try:
            return store.keys(prefix=prefix)
        except fs.FencedStateError as e:
            raise _error(e) from e

    @server.tool()
    def history(key: str, limit: int = 50) -> list[dict[str, Any]]:
        """The key's journal events, oldest first."""
        try:
            events = store.history(key, limit=limit)
        except fs.FencedStateError as e:
            raise _error(e) from e
        names = ("op", "version", "epoch", "actor", "holder", "exists", "value")
        return [{n: getattr(ev, n) for n in names} | {"at": str(ev.at)} for ev in events]

    @server.resource("fencedstate://{key}")
    def resource(key: str) -> str:
        """The key's current snapshot as JSON (percent-encode '/' in the key: a%2Fb)."""
        try:
            return json.dumps(_snap(store.get(unquote(key))))
        except fs.FencedStateError as e:
            raise _error(e) from e

    return server


def main(argv: list[str] | None = None) -> int:
    """Serve a store over MCP: ``fencedstate-mcp DIR|URL [--http [--port N]]``."""
    ap = argparse.ArgumentParser(prog="fencedstate mcp")
    ap.add_argument("target", help="store directory or URL")
    ap.add_argument("--http", action="store_true", help="streamable HTTP on 127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    a = ap.parse_args(argv)
    server = create_server(fs.open_store(a.target), port=a.port)
    server.run(transport="streamable-http" if a.http else "stdio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
