"""fencedstate: shared state for multi-agent systems that never silently loses a write."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from .. import __version__, open_store
from ..errors import (
    CorruptStateError,
    FencedStateError,
    InsecureStoreError,
    InvalidArgumentError,
    NotAStoreError,
)
from ..file.filestore import MARKER
from ..file.keylog import make_dirs
from ..locations import local_dir, no_store_at
from ..store import Store
from . import claims
from .errors import EXIT_BROKEN_PIPE, EXIT_CODES_ALL_HELP, EXIT_DAMAGE, Parser, parse, report
from .table import render


def open_existing(target: str) -> Store:
    """Open the store at ``target`` without ever creating one (``NotAStoreError``)."""
    if no_store_at(target) is not None:
        raise NotAStoreError(local_dir(target) or target)
    return open_store(target)


def _not_there_yet(target: str) -> list[str]:
    """What opening the file store ``target`` may create: its outermost missing directory, or
    the store's own entries in an existing directory that holds no store (nothing for a
    store, or a server's URL)."""
    path = no_store_at(target)
    if path is None:
        return []
    if not os.path.lexists(path):
        while not os.path.lexists(os.path.dirname(path)):
            path = os.path.dirname(path)
        return [path]
    if not os.path.isdir(path):
        return []
    names = (MARKER, "data", "locks", "txn")
    return [p for p in (os.path.join(path, n) for n in names) if not os.path.lexists(p)]


@contextmanager
def _copying_into(target: str) -> Iterator[None]:
    """Hold the destination directory (its ``flock``) for one copy: a second copy into it is
    refused at once, so a copy that fails never removes what another one is writing."""
    local = local_dir(target)
    try:
        if local is None:  # a server's URL: its keys are checked by copy_store
            raise NotADirectoryError
        make_dirs(os.path.abspath(local))
        fd = os.open(local, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # not a directory: open_store says what is wrong with it
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidArgumentError(
                f"another copy into {local} is running: let it finish (it verifies what it "
                "copied), or copy into another directory"
            ) from None
        yield
    finally:
        os.close(fd)  # drops the lock


def _remove(paths: list[str]) -> None:
    """Remove each of ``paths`` (a directory with what it holds) that exists."""
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(path)


def _inspect(args: argparse.Namespace) -> int:
    store = open_existing(args.dir)
    found: list[dict[str, object]] = []
    for key in (k for k in store.read_all_keys() if k.startswith(args.prefix)):
        try:
            state = store.state(key)
        except (CorruptStateError, InsecureStoreError) as exc:  # this key's log alone
            found.append({"key": key, "damaged": exc.detail})
            continue
        if state is None:
            continue
        live = state.lease is not None and state.lease.live(store.clock)
        found.append(
            {
                "key": key,
                "version": state.visible_version,
                "deleted": bool(state.version) and not state.exists,
                "epoch": state.epoch,
                "holder": state.holder if live else None,
                "expires_in": round(state.lease.remaining(store.clock), 3)
                if state.lease and live
                else None,
                "writer": state.writer,
                "committed_at": state.committed_at or None,
            }
        )
    damaged = sum("damaged" in k for k in found)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
    elif not found:
        print(f"no keys in {args.dir}" + (f" under {args.prefix!r}" if args.prefix else ""))
    else:
        print(render(_INSPECT_HEADERS, [_inspect_row(k) for k in found], indent=""))
    if damaged:
        print(
            f"fencedstate: {damaged} damaged key(s): run `fencedstate check {args.dir}`",
            file=sys.stderr,
        )
        return EXIT_DAMAGE
    return 0


_INSPECT_HEADERS = ["key", "version", "epoch", "holder", "expires in", "last writer", "committed"]


def _inspect_row(k: dict[str, object]) -> list[object]:
    if "damaged" in k:
        return [k["key"], "damaged", "-", "-", "-", "-", _short(str(k["damaged"]), 60)]
    left, at = k["expires_in"], k["committed_at"]
    return [
        k["key"],
        "deleted" if k["deleted"] else k["version"],
        k["epoch"],
        k["holder"] or "-",
        f"{left:.1f}s" if isinstance(left, float) else "-",
        k["writer"] or "-",
        _when(at) if isinstance(at, float) else "-",
    ]


def _get(args: argparse.Namespace) -> int:
    snap = open_existing(args.dir).get(args.key)
    print(json.dumps(None if snap is None else snap.to_dict(), ensure_ascii=False))
    return 0


def _limit(value: int) -> None:
    if value < 0:
        raise InvalidArgumentError("limit must be >= 0 (0: every event kept)")


def _history(args: argparse.Namespace) -> int:
    store = open_existing(args.dir)
    events = store.history(args.key, limit=args.limit or None)  # 0: every event kept
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2, ensure_ascii=False))
        return 0
    if not events:
        print(f"no history for {args.key!r}")
        return 0
    rows = []
    for e in events:
        value = "-" if not e.exists else _short(json.dumps(e.value, ensure_ascii=False), 40)
        rows.append([_when(e.at), e.op, e.version, e.epoch, e.actor or "-", e.holder or "-", value])
    print(render(["at", "op", "version", "epoch", "by", "holder", "value"], rows, indent=""))
    return 0


def _copy(args: argparse.Namespace) -> int:
    from ..copy import copy_store

    src = open_existing(args.src)  # a mistyped source is an error, never a new empty store
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty and (done == total or done % 100 == 0):
            print(f"\rcopying: {done:,}/{total:,} keys", end="", file=sys.stderr, flush=True)

    new = _not_there_yet(args.dst)  # removed again if the copy fails: a retry starts afresh
    dst: Store | None = None
    with _copying_into(args.dst):
        try:
            dst = open_store(args.dst)
            report = copy_store(src, dst, wait=args.wait, progress=progress)
        except BaseException:
            if dst is not None:
                dst.close()
            _remove(new)
            raise
    if tty:
        print(file=sys.stderr)
    if args.json:
        out = {"keys": report.keys, "events": report.events, "seconds": report.seconds}
        print(json.dumps(out | {"verified": True}))
        return 0
    print(
        render(
            ["keys", "events", "seconds", "verified"],
            [
                [
                    f"{report.keys:,}",
                    f"{report.events:,}",
                    f"{report.seconds:.2f}",
                    "yes: same keys, events and checksums",
                ]
            ],
            indent="",
        )
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.frameworks:
        from . import frameworks

        return frameworks.run()
    from .demo import run

    return run(workers=args.workers, rounds=args.rounds, workdir=args.dir)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _claim_command(args: argparse.Namespace) -> int:
    new = no_store_at(args.dir) if args.creates else None
    store = open_store(args.dir) if args.creates else open_existing(args.dir)
    if new:  # a mistyped path would otherwise start a store without a word
        print(
            f"fencedstate {args.command}: no store was at {args.dir}: created a new, empty one "
            f"at {new}",
            file=sys.stderr,
        )
    print(json.dumps(args.claim_func(store, args)))
    return 0


COMMANDS = {
    "demo": "show the lost update and the zombie writer, then the fix (real processes)",
    "inspect": "list keys with version, epoch, holder, expiry (read-only)",
    "get": "print a key's value, version, epoch and writer as JSON, null if absent (read-only)",
    "history": "print a key's journal (read-only)",
    "copy": "copy a whole store to another backend, then verify it",
    "check": "fsck a file store: find, quarantine, salvage, restore or reset damaged keys",
    "mcp": "serve a store over MCP, stdio or HTTP",
    "catalog": "query the failure-mode catalog: list, show, search, check, build, serve",
    "effects": "list the effect ledger, in-doubt effects first (read-only)",
}


def _wide(prog: str) -> argparse.HelpFormatter:
    """Help wide enough that every command's summary stays on one line."""
    return argparse.HelpFormatter(prog, width=110, max_help_position=14)


def build_parser() -> Parser:
    """The ``fencedstate`` argument parser (every command, one help line each)."""
    parser = Parser(
        prog="fencedstate",
        description=__doc__,
        epilog=EXIT_CODES_ALL_HELP + ". Details: docs/cli.md.",
        formatter_class=_wide,
    )
    parser.add_argument("--version", action="version", version=f"fencedstate {__version__}")
    common = Parser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="print the result and any error as JSON (an error: type, message, advice, fields)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("demo", help=COMMANDS["demo"], parents=[common])
    p.add_argument("--workers", type=int, default=6, help="worker processes, 2 to 64 (default 6)")
    p.add_argument("--rounds", type=int, default=20, help="rounds per worker (default 20)")
    p.add_argument("--dir", help="keep the demo's files here instead of a temp dir")
    p.add_argument(
        "--frameworks",
        action="store_true",
        help="run each installed framework's example: its default vs fencedstate "
        "(examples/ of a source checkout)",
    )
    p.set_defaults(func=_demo)
    p = sub.add_parser("inspect", help=COMMANDS["inspect"], parents=[common])
    p.add_argument("dir", help="a store directory (never created) or URL")
    p.add_argument("--prefix", default="", help="only keys that start with this")
    p.set_defaults(func=_inspect)
    p = sub.add_parser("get", help=COMMANDS["get"], parents=[common])
    p.add_argument("dir", help="a store directory (never created) or URL")
    p.add_argument("key")
    p.set_defaults(func=_get)
    p = sub.add_parser("history", help=COMMANDS["history"], parents=[common])
    p.add_argument("dir", help="a store directory (never created) or URL")
    p.add_argument("key")
    p.add_argument(
        "--limit",
        type=claims.checked(int, _limit),
        default=50,
        help="the newest N events (default 50; 0: all kept)",
    )
    p.set_defaults(func=_history)
    p = sub.add_parser("copy", help=COMMANDS["copy"], parents=[common])
    p.add_argument("src", help="the source store (a directory, never created, or URL)")
    p.add_argument(
        "dst", help="the destination store (holding none of the keys, or a killed copy's)"
    )
    p.add_argument(
        "--wait",
        type=claims.WAIT,  # refused before any store is opened, as claim's
        default=0.0,
        help="seconds to wait for live claims / pending commits to end",
    )
    p.set_defaults(func=_copy)
    for name in ("check", "mcp", "catalog", "effects"):  # parsed by their own modules
        sub.add_parser(name, help=COMMANDS[name], add_help=False)
    claims.add_parsers(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fencedstate`` console script.

    A reader that goes away early (``fencedstate catalog list | head``) ends the command
    quietly with 141, as SIGPIPE ends a Unix tool (SIGPIPE itself stays ignored: the MCP
    server writes to sockets).
    """
    try:
        code = _main(argv)
        if not sys.stdout.closed:  # the MCP stdio server closes it on the way out
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush goes nowhere
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["check"]:
        from ..fsck import main as check_main

        return check_main(args_list[1:])
    if args_list[:1] == ["mcp"]:
        from ..mcp_server import main as mcp_main

        return mcp_main(args_list[1:])
    if args_list[:1] == ["effects"]:
        from .effects import main as effects_main

        return effects_main(args_list[1:])
    if args_list[:1] == ["catalog"]:
        from ..catalog.cli import main as catalog_main

        return catalog_main(args_list[1:])
    args = parse(build_parser(), args_list)
    if isinstance(args, int):
        return args
    if hasattr(args, "creates"):
        args.claim_func, args.func = args.func, _claim_command
    try:
        return int(args.func(args))
    except FencedStateError as exc:
        return report(exc, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
