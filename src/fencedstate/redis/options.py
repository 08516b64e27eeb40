"""What a Redis URL and the store's keywords say: fencedstate's own options (namespace,
durability, replicas to wait for), the database, the rest for redis-py, and the URL as it may be
shown (no password)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from ..core import args
from ..errors import InvalidArgumentError

_OUR_PARAMS = ("namespace", "durability", "wait_replicas", "wait_timeout")


@dataclass(frozen=True)
class Options:
    """The store's options, each from its keyword or the URL's query (never both, differently)."""

    namespace: str
    durability: str
    wait_replicas: int
    wait_timeout: float
    host: str
    port: int
    db: int
    parts: SplitResult
    rest: list[tuple[str, str]]  # the URL's query parameters that are redis-py's

    def connection_url(self) -> str:
        """The URL redis-py parses: no path (the database is passed apart), its own params."""
        p = self.parts
        return urlunsplit((p.scheme, p.netloc, "", urlencode(self.rest), ""))


def parse_options(
    url: str,
    namespace: str | None,
    durability: str | None,
    wait_replicas: int | None,
    wait_timeout: float | None,
) -> Options:
    """``Options`` of a ``redis://`` URL and the keywords; ``InvalidArgumentError`` if bad."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        raise InvalidArgumentError(f"malformed Redis URL {_redact(url)!r}") from None
    ours, rest = _split_query(parts.query)
    ns = _merge("namespace", namespace, ours.get("namespace"), "fencedstate")
    dur = _merge("durability", durability, ours.get("durability"), "fsync")
    wait_n = _merge("wait_replicas", wait_replicas, ours.get("wait_replicas"), 0)
    wait_s = _merge("wait_timeout", wait_timeout, ours.get("wait_timeout"), 1.0)
    if not isinstance(ns, str) or not _valid_namespace(ns):
        raise InvalidArgumentError(
            "namespace must be 1-128 characters of [A-Za-z0-9._-] (no braces: it is the "
            "store's hash tag)"
        )
    if dur not in ("fsync", "none"):
        raise InvalidArgumentError('durability must be "fsync" or "none"')
    try:
        wait_n = int(wait_n)
    except (TypeError, ValueError):
        raise InvalidArgumentError("wait_replicas must be an int >= 0") from None
    if isinstance(wait_replicas, bool) or wait_n < 0:
        raise InvalidArgumentError("wait_replicas must be an int >= 0")
    try:
        wait_s = float(wait_s)
    except (TypeError, ValueError):
        wait_s = -1.0
    args.seconds("wait_timeout", wait_s)
    return Options(ns, dur, wait_n, wait_s, host, port, _db(parts.path), parts, rest)


def _valid_namespace(ns: str) -> bool:
    return 1 <= len(ns) <= 128 and all(c.isascii() and (c.isalnum() or c in "._-") for c in ns)


def _split_query(query: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(fencedstate's own URL parameters, the rest for redis-py)."""
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _OUR_PARAMS:
            ours[name] = value
        else:
            rest.append((name, value))
    return ours, rest


def _merge(name: str, given: Any, in_url: str | None, default: Any) -> Any:
    """An option from the keyword or the URL (they must agree when both are given)."""
    if given is None:
        return default if in_url is None else in_url
    if in_url is not None and str(given) != in_url:
        raise InvalidArgumentError(f"{name} is given twice, differently (keyword and URL)")
    return given


def _db(path: str) -> int:
    text = path.strip("/")
    if not text:
        return 0
    if not text.isdigit():
        raise InvalidArgumentError(
            f"the Redis URL's path must be a database number (/0, /1, ...), not {path!r}; "
            "name the store with ?namespace=NAME"
        )
    return int(text)


def _redact(url: str) -> str:
    """``url`` with any password (in the authority or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "redis://?"
    netloc = parts.netloc
    if "@" in netloc:
        auth, host = netloc.rsplit("@", 1)
        if ":" in auth:
            netloc = f"{auth.split(':', 1)[0]}:***@{host}"
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
