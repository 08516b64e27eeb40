"""Command line: ``fencedstate mcp DIR|URL [--http [--host H] [--port N] [--tokens FILE]]``."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys

import fencedstate as fs
from fencedstate.locations import no_store_at

from . import sdk
from .auth import ENV_VAR, TokenTable
from .server import create_server

HOST = "127.0.0.1"
PORT = 8000


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (only this machine can connect)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(host: str, port: int) -> None:
    """``InvalidArgumentError`` unless ``host:port`` can be listened on, checked before the store
    is opened (the SDK's server would refuse it later with a traceback or uvicorn's exit 3)."""
    if not 0 <= port <= 65535:
        raise fs.InvalidArgumentError(f"--port must be 0-65535, not {port}")
    address = host.strip("[]")
    try:
        family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0][0]
        socket.create_server((address, port), family=family).close()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise fs.InvalidArgumentError(
            f"cannot listen on {host}:{port}: {reason or exc}; give another --host or --port"
        ) from None


def load_tokens(path: str | None) -> TokenTable | None:
    """The tokens of ``--tokens FILE``, else of ``$FENCEDSTATE_MCP_TOKENS``, else None."""
    if path:
        return TokenTable.load(path)
    return TokenTable.from_env()


def main(argv: list[str] | None = None) -> int:
    """Serve a store over MCP; bad options are one line on stderr and exit 2."""
    ap = argparse.ArgumentParser(
        prog="fencedstate mcp",
        description="Serve a fencedstate store over MCP (stdio by default).",
    )
    ap.add_argument("target", help="store directory or URL")
    ap.add_argument("--http", action="store_true", help="streamable HTTP on HOST:PORT/mcp")
    ap.add_argument("--host", help=f"address to listen on with --http (default {HOST}, loopback)")
    ap.add_argument("--port", type=int, help=f"port to listen on with --http (default {PORT})")
    ap.add_argument(
        "--tokens",
        metavar="FILE",
        help=f"bearer tokens (JSON, mode 0600; or set ${ENV_VAR}); required beyond loopback",
    )
    a = ap.parse_args(argv)
    try:
        if a.tokens and not a.http:
            raise fs.InvalidArgumentError(
                "--tokens applies to --http only (stdio trusts the process that spawned it)"
            )
        for flag in ("host", "port"):
            if getattr(a, flag) is not None and not a.http:
                raise fs.InvalidArgumentError(
                    f"--{flag} applies to --http only (stdio listens on no address)"
                )
        sdk.require()  # before a store is opened (or created) for a server that cannot run
        a.host = HOST if a.host is None else a.host
        a.port = PORT if a.port is None else a.port
        tokens = load_tokens(a.tokens) if a.http else None
        if a.http and tokens is None and not is_loopback(a.host):
            raise fs.InvalidArgumentError(
                f"refusing to serve {a.host} without authentication: give --tokens FILE or "
                f"${ENV_VAR} (or listen on 127.0.0.1)"
            )
        if a.http:
            check_listen(a.host, a.port)
        new = no_store_at(a.target)  # a store is known by its marker: an empty DIR has none
        server = create_server(fs.open_store(a.target), host=a.host, port=a.port, tokens=tokens)
    except fs.FencedStateError as e:
        print(f"fencedstate mcp: {e}", file=sys.stderr)
        return 2
    if new:  # a mistyped path would otherwise serve an empty store without a word
        print(
            f"fencedstate mcp: no store was at {a.target}: created a new, empty one at {new}",
            file=sys.stderr,
        )
    sdk.run(server, "streamable-http" if a.http else "stdio", host=a.host, port=a.port)
    return 0
