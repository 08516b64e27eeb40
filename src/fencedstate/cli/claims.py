"""Claims from the shell: ``fencedstate claim|renew|release|reclaim|commit``.

A claim lives in the key's state in the store, so one process can take it and others renew,
commit under or release it by (key, owner, epoch). Each command prints one JSON object on
stdout; an error exits 3 (held by another), 4 (fenced), 5 (conflict) or 2 (anything else).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ..claim import Claim
from ..core import args as core_args
from ..core import rules, values
from ..core.clock import Lease
from ..errors import InvalidArgumentError, InvalidValueError
from ..store import Store

T = TypeVar("T")


def resume(store: Store, key: str, owner: str, epoch: int) -> Claim:
    """The claim (key, owner, epoch) as a ``Claim`` object of this process.

    Its lease is the one in the key's state when that grant is still the key's; otherwise an
    expired one (every commit, renew or release through it is then checked, and fenced, by the
    store as usual).
    """
    if type(epoch) is not int or epoch < 1:
        raise InvalidArgumentError("epoch must be an int >= 1 (the one `claim` printed)")
    state = store.state(key)
    rules.check_owner_of_epoch(state, key, owner, epoch, "--owner")
    lease = None
    if state is not None and state.holder == owner and state.epoch == epoch:
        lease = state.lease
    if lease is None:
        lease = Lease(store.clock.boot_id, float("-inf"), 30.0)
    return Claim(store, key, owner, epoch, lease)


def claim(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Take the key's write grant; the grant as JSON."""
    return store.claim(args.key, args.owner, args.ttl, wait=args.wait).to_dict()


def renew(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Extend the lease of (key, owner, epoch)."""
    held = resume(store, args.key, args.owner, args.epoch)
    held.renew(args.ttl)
    return held.to_dict()


def release(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Give up (key, owner, epoch); ``released`` is False if it was no longer held."""
    held = resume(store, args.key, args.owner, args.epoch)
    return {"key": args.key, "owner": args.owner, "epoch": args.epoch, "released": held.release()}


def reclaim(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Revoke any holder and bump the epoch."""
    return {"key": args.key, "epoch": store.reclaim(args.key, by=args.by)}


def commit(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Commit a JSON value under (key, owner, epoch)."""
    text = sys.stdin.read() if args.value == "-" else args.value
    try:
        value = values.parse_json(text, "--value")  # "-": the text read from stdin
    except RecursionError:  # deeper than Python's own limit: the store's refusal, said early
        depth = values.MAX_VALUE_DEPTH
        raise InvalidValueError(args.key, f"nested deeper than {depth} levels") from None
    held = resume(store, args.key, args.owner, args.epoch)
    snap = held.commit(value, expected_version=args.expected_version)
    return {
        "key": snap.key,
        "version": snap.version,
        "epoch": snap.epoch,
        "writer": snap.writer,
    }


def checked(parse: Callable[[str], T], check: Callable[[T], object]) -> Callable[[str], T]:
    """An argparse ``type``: ``parse`` the text, then the store's own ``check`` (from
    ``core.args``), so a bad option is refused with the store's words before any store is
    opened or created."""

    def convert(text: str) -> T:
        value = parse(text)  # a ValueError here: argparse's own "invalid float value"
        try:
            check(value)
        except InvalidArgumentError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    convert.__name__ = parse.__name__
    return convert


TTL = checked(float, core_args.ttl)
WAIT = checked(float, core_args.wait)
OWNER = checked(str, partial(core_args.actor, "owner"))


def add_parsers(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register the five claim commands on the ``fencedstate`` subparsers."""
    from .errors import EXIT_CODES_HELP

    def add(name: str, help_: str, func: Any, *, creates: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help_, description=help_ + ". " + EXIT_CODES_HELP + ".", parents=parents
        )
        p.add_argument("dir", help="a store directory or URL")
        p.add_argument("key")
        p.set_defaults(func=func, creates=creates)
        return p

    p = add("claim", "take a key's write grant; prints its epoch and expiry", claim, creates=True)
    p.add_argument("--owner", type=OWNER, required=True)
    p.add_argument("--ttl", type=TTL, default=30.0, help="lease seconds (default 30)")
    p.add_argument("--wait", type=WAIT, default=0.0, help="seconds to wait for a live holder")
    p = add("renew", "extend the lease of (key, owner, epoch)", renew)
    p.add_argument("--owner", type=OWNER, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--ttl", type=TTL, default=None, help="new lease seconds (default: as before)")
    p = add("release", "give up the claim (key, owner, epoch)", release)
    p.add_argument("--owner", type=OWNER, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p = add("reclaim", "revoke any holder of a key and bump its epoch", reclaim)
    p.add_argument("--by", type=checked(str, partial(core_args.actor, "by")), default="recovery")
    p = add("commit", "commit a JSON value under the claim (key, owner, epoch)", commit)
    p.add_argument("--owner", type=OWNER, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--value", required=True, help="the value as JSON, or - to read stdin")
    p.add_argument(
        "--expected-version", type=checked(int, core_args.expected_version), default=None
    )
