"""The bench scripts' argument checks: each failure is one usage error (exit 2) naming its flag.

Imported as ``bench_args`` (bench/ is ``sys.path[0]`` when a script runs)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable


def _value(args: argparse.Namespace, flag: str) -> object:
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def at_least_one(ap: argparse.ArgumentParser, args: argparse.Namespace, *flags: str) -> None:
    """Each of ``flags`` (e.g. ``"--procs"``) is a count >= 1."""
    for flag in flags:
        value = _value(args, flag)
        if not isinstance(value, int) or value < 1:
            ap.error(f"{flag} must be >= 1, not {value}")


def positive(ap: argparse.ArgumentParser, args: argparse.Namespace, *flags: str) -> None:
    """Each of ``flags`` (e.g. ``"--seconds"``) is a number > 0."""
    for flag in flags:
        value = _value(args, flag)
        if not isinstance(value, int | float) or not value > 0:
            ap.error(f"{flag} must be > 0, not {value}")


def counts(ap: argparse.ArgumentParser, args: argparse.Namespace, *flags: str) -> None:
    """Each of ``flags`` (e.g. ``"--procs"``) is a comma-separated list of counts >= 1."""
    for flag in flags:
        value = _value(args, flag)
        if not isinstance(value, str) or not re.fullmatch(r"[1-9]\d*(,[1-9]\d*)*", value):
            ap.error(f"{flag} must be whole numbers >= 1, comma-separated, not {value!r}")


def trees(ap: argparse.ArgumentParser, paths: Iterable[str], flag: str = "") -> None:
    """Each of ``paths`` is a src/ tree holding a fencedstate package: else the child process
    would import whichever fencedstate is importable and label it with that path."""
    for path in paths:
        if not os.path.isfile(os.path.join(path, "fencedstate", "__init__.py")):
            named = f"{flag} {path}" if flag else path
            ap.error(f"{named}: no fencedstate package in it (want SRC/fencedstate)")
