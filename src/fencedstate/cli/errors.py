"""How the ``fencedstate`` command reports an error: one line with what to do next (or the
error's ``to_dict()`` as JSON with ``--json``), and an exit code a shell script can branch on."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from ..errors import (
    ClaimHeldError,
    ConflictError,
    FencedError,
    FencedStateError,
    InvalidArgumentError,
)

EXIT_OK = 0
EXIT_DAMAGE = 1
"""``check`` found damage."""
EXIT_ERROR = 2
"""Any other error: bad arguments, not a store, storage failure."""
EXIT_HELD = 3
"""``ClaimHeldError``: another owner holds a live claim on the key."""
EXIT_FENCED = 4
"""``FencedError``: the claim (key, owner, epoch) is no longer the key's grant."""
EXIT_CONFLICT = 5
"""``ConflictError``: the key is not at the expected version."""
EXIT_BROKEN_PIPE = 141
"""The reader of stdout went away (``| head``): 128 + SIGPIPE, as the shell reports a tool
killed by it."""

EXIT_CODES_HELP = (
    "exit codes: 0 ok, 2 error (bad input, not a store, storage), 3 held by another owner "
    "(ClaimHeldError), 4 fenced (FencedError: take a new claim), 5 conflict (ConflictError: "
    "re-read and retry)"
)

EXIT_CODES_ALL_HELP = EXIT_CODES_HELP.replace("0 ok, ", "0 ok, 1 damage found (check, inspect), ")
"""Every exit code of the ``fencedstate`` command (``EXIT_CODES_HELP``: the claim commands')."""


def exit_code(exc: FencedStateError) -> int:
    """The exit code for ``exc``: 3 held, 4 fenced, 5 conflict, 2 anything else."""
    if isinstance(exc, ClaimHeldError):
        return EXIT_HELD
    if isinstance(exc, FencedError):
        return EXIT_FENCED
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    return EXIT_ERROR


def one_line(exc: FencedStateError, prog: str = "fencedstate") -> str:
    """``prog: error: <message>. <advice>`` on one line."""
    message = " ".join(str(exc).split())
    end = "" if message.endswith((".", "?", "!")) else "."  # a driver's text may end a sentence
    return f"{prog}: error: {message}{end} {exc.advice}"


def report(exc: FencedStateError, *, as_json: bool, prog: str = "fencedstate") -> int:
    """Print ``exc`` (JSON on stdout with ``as_json``, else one line on stderr); its exit code."""
    if as_json:
        print(json.dumps(exc.to_dict()), flush=True)
    else:
        stream: TextIO = sys.stderr
        print(one_line(exc, prog), file=stream, flush=True)
    return exit_code(exc)


def usage_error(message: str, prog: str = "fencedstate") -> int:
    """A plain one-line error (not a ``FencedStateError``); exit 2."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR


class _UsageError(Exception):
    """argparse refused the command line (raised instead of exiting, to report it as JSON)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors ``parse`` reports (as JSON with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self, message)


def parse(parser: Parser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit code of a refused command line: argparse's
    usage and error line on stderr, or with ``--json`` an ``InvalidArgumentError`` on stdout
    (a script that asked for JSON gets JSON, also for ``--epoch ''``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return parser.parse_args(args)
    except _UsageError as exc:
        if "--json" in args:
            return report(InvalidArgumentError(f"{exc.parser.prog}: {exc.message}"), as_json=True)
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr, flush=True)
        return EXIT_ERROR
