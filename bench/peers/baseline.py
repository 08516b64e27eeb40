"""Which tree's fencedstate a process imports (--baseline SRC): baseline workers put SRC
first on `sys.path` in fresh `spawn` children and check `fencedstate.__file__`."""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

# Baseline workers must import fencedstate from SRC: a forked child would inherit the
# parent's already-imported package, so they are fresh `spawn` children.
SPAWN = mp.get_context("spawn")


def under(path: str, src: str) -> bool:
    """True if `path` lies inside the directory `src` (symlinks resolved)."""
    real, root = os.path.realpath(path), os.path.realpath(src)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def use_src(src: str | None, forbid_src: str | None = None) -> str:
    """Import fencedstate in this process, from `src` when given (it must not be imported
    yet), and return the package's ``__file__``. Raises RuntimeError when the package comes
    from the wrong tree: under `src` if given, NOT under `forbid_src` if given."""
    if src is not None:
        loaded = sys.modules.get("fencedstate")
        if loaded is None:
            sys.path.insert(0, os.path.realpath(src))
            importlib.invalidate_caches()
    import fencedstate

    where = str(fencedstate.__file__)
    if src is not None and not under(where, src):
        raise RuntimeError(f"baseline worker imported fencedstate from {where}, not from {src}")
    if forbid_src is not None and under(where, forbid_src):
        raise RuntimeError(f"worker imported fencedstate from the baseline tree: {where}")
    return where


def _call_in_src(src: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` with fencedstate imported from `src` (in a fresh spawn child)."""
    use_src(src)
    return fn(*args)


def in_src(src: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a fresh process whose fencedstate comes from `src`: the baseline's
    own code lays out and reads back its store (its on-disk format may differ)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as ex:
        return ex.submit(_call_in_src, src, fn, *args).result(timeout=600)
