"""Bearer tokens for the HTTP transport: who may read, who may write, and under which key prefix.

Tokens come from a JSON tokens file (``--tokens FILE``, mode 0600) or the environment variable
``FENCEDSTATE_MCP_TOKENS`` holding the same JSON, never from the command line::

    {"tokens": [
      {"name": "planner", "token": "…32+ random characters…", "access": "full"},
      {"name": "viewer",  "sha256": "<hex digest of the token>", "access": "read"},
      {"name": "agent-a", "token": "…", "access": "full", "prefix": "plans/a/"}
    ]}

``access`` is ``full`` (every tool) or ``read`` (:data:`READ_TOOLS`: get, keys, history,
watch_once, effects; resources); ``prefix`` limits every key the token touches to keys starting
with it (end it with ``/`` for a subtree).
Only SHA-256 digests are kept in memory, compared in constant time; a :class:`Grant` holds the
token's name and rights, never the secret, so no error, log line or ``repr`` can show one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import fencedstate as fs

from . import sdk
from .errors import NotPermittedError

ENV_VAR = "FENCEDSTATE_MCP_TOKENS"
MIN_TOKEN_LENGTH = 16
#: Tools a read-only token may call; every other tool writes (or takes a claim).
READ_TOOLS = frozenset({"get", "keys", "history", "watch_once", "effects"})

Access = Literal["full", "read"]


@dataclass(frozen=True)
class Grant:
    """What one token allows: its name, ``full`` or ``read`` access, and a key prefix."""

    name: str
    access: Access = "full"
    prefix: str = ""

    def check(self, tool: str, key: str | None) -> None:
        """Raise :class:`NotPermittedError` unless this grant allows ``tool`` on ``key``."""
        if self.access == "read" and tool not in READ_TOOLS:
            raise NotPermittedError(tool, self.name, key, "the token is read-only")
        if key is not None and not key.startswith(self.prefix):
            raise NotPermittedError(
                tool, self.name, key, f"the token is limited to keys under {self.prefix!r}"
            )

    def check_prefix(self, tool: str, prefix: str) -> str:
        """The listing prefix to use for ``keys(prefix)``: the narrower of the two."""
        if prefix.startswith(self.prefix):
            return prefix
        if self.prefix.startswith(prefix):
            return self.prefix
        raise NotPermittedError(
            tool, self.name, prefix, f"the token is limited to keys under {self.prefix!r}"
        )


#: The grant of a caller on stdio or on a loopback HTTP server run without tokens.
LOCAL = Grant("local")


class TokenTable:
    """SHA-256 digests of the accepted tokens, each mapped to its :class:`Grant`."""

    def __init__(self, entries: dict[bytes, Grant]) -> None:
        if not entries:
            raise fs.InvalidArgumentError("the tokens list is empty: give at least one token")
        self._entries = entries

    def __repr__(self) -> str:
        names = sorted(g.name for g in self._entries.values())
        return f"TokenTable({len(names)} tokens: {', '.join(names)})"

    def lookup(self, token: str) -> Grant | None:
        """The grant for ``token``, comparing every digest in constant time; None if unknown."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, grant in self._entries.items():
            if hmac.compare_digest(known, digest):
                found = grant
        return found

    def grant(self, name: str) -> Grant:
        """The grant named ``name`` (the SDK's ``AccessToken.client_id``)."""
        for g in self._entries.values():
            if g.name == name:
                return g
        raise fs.InvalidArgumentError(f"no token named {name!r}")

    @classmethod
    def parse(cls, text: str, *, source: str) -> TokenTable:
        """Read the JSON tokens document; errors name the entry, never a token's text."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise fs.InvalidArgumentError(
                f"{source}: not JSON ({e.msg}, line {e.lineno})"
            ) from None
        items = doc.get("tokens") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise fs.InvalidArgumentError(f"{source}: expected {{'tokens': [...]}}")
        entries: dict[bytes, Grant] = {}
        names: set[str] = set()
        for i, item in enumerate(items):
            grant, digest = _entry(item, f"{source}: entry {i}")
            if grant.name in names:
                raise fs.InvalidArgumentError(f"{source}: entry {i}: duplicate name {grant.name!r}")
            if digest in entries:
                raise fs.InvalidArgumentError(f"{source}: entry {i}: the same token twice")
            names.add(grant.name)
            entries[digest] = grant
        return cls(entries)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenTable:
        """Read a tokens file; refuse one that other users can read or write."""
        p = Path(path)
        try:
            st = p.stat()
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise fs.InvalidArgumentError(f"tokens file {p}: {e.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            mode = stat.S_IMODE(st.st_mode)
            raise fs.InvalidArgumentError(
                f"tokens file {p} is open to other users (mode {mode:04o}): chmod 600 it"
            )
        return cls.parse(text, source=f"tokens file {p}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TokenTable | None:
        """The table in ``FENCEDSTATE_MCP_TOKENS``, or None when the variable is unset or empty."""
        text = (os.environ if environ is None else environ).get(ENV_VAR, "")
        return cls.parse(text, source=ENV_VAR) if text.strip() else None


def _entry(item: Any, where: str) -> tuple[Grant, bytes]:
    if not isinstance(item, dict):
        raise fs.InvalidArgumentError(f"{where}: expected an object")
    unknown = set(item) - {"name", "token", "sha256", "access", "prefix"}
    if unknown:
        raise fs.InvalidArgumentError(f"{where}: unknown fields {sorted(unknown)}")
    name, access, prefix = item.get("name"), item.get("access", "full"), item.get("prefix", "")
    if not isinstance(name, str) or not name:
        raise fs.InvalidArgumentError(f"{where}: 'name' must be a non-empty string")
    if access not in ("full", "read"):
        raise fs.InvalidArgumentError(f"{where} ({name}): 'access' must be 'full' or 'read'")
    if not isinstance(prefix, str):
        raise fs.InvalidArgumentError(f"{where} ({name}): 'prefix' must be a string")
    token, hexdigest = item.get("token"), item.get("sha256")
    if (token is None) == (hexdigest is None):
        raise fs.InvalidArgumentError(f"{where} ({name}): give exactly one of 'token', 'sha256'")
    if token is not None:
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            raise fs.InvalidArgumentError(
                f"{where} ({name}): 'token' must be a string of {MIN_TOKEN_LENGTH}+ characters"
            )
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    else:
        try:
            digest = bytes.fromhex(str(hexdigest))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise fs.InvalidArgumentError(f"{where} ({name}): 'sha256' must be 64 hex digits")
    return Grant(name, access, prefix), digest


class TokenVerifier:
    """The SDK's ``TokenVerifier`` protocol over a :class:`TokenTable`."""

    def __init__(self, table: TokenTable) -> None:
        self.table = table

    def __repr__(self) -> str:
        return f"TokenVerifier({self.table!r})"

    async def verify_token(self, token: str) -> Any:
        """The SDK's ``AccessToken`` for a known token (named, no secret inside), else None."""
        grant = self.table.lookup(token)
        if grant is None:
            return None
        return sdk.new_access_token(grant.name, [grant.access])


def current_grant(table: TokenTable | None) -> Grant:
    """The grant of the request being served: from its verified bearer token, else LOCAL."""
    if table is None:
        return LOCAL
    token = sdk.access_token()
    if token is None:  # the SDK's middleware lets no unauthenticated request this far
        raise NotPermittedError("?", "anonymous", None, "no bearer token")
    return table.grant(str(token.client_id))
