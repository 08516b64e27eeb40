"""Atheris harness: the key grammar. Any input is a valid key or ``InvalidKeyError``; a valid
key never names a path outside the store's data directory."""

from __future__ import annotations

import contextlib
import os
import sys

import atheris

with atheris.instrument_imports(include=["fencedstate"]):
    import fencedstate as fs
    from fencedstate.core.keys import key_to_relpath, relpath_to_key, validate_prefix

_DATA = "/store/data"


def test_one_input(data: bytes) -> None:
    """One fuzz input: the bytes decoded as a key (and as a prefix)."""
    key = data.decode("utf-8", "surrogateescape")
    try:
        valid = fs.validate_key(key)
    except fs.InvalidKeyError:
        valid = None
    if valid is not None:
        path = os.path.normpath(os.path.join(_DATA, key_to_relpath(valid)))
        assert path.startswith(_DATA + "/"), f"key {key!r} escapes the store: {path}"
        assert relpath_to_key(key_to_relpath(valid)) == valid
        assert "\x00" not in valid and ".." not in valid.split("/")
    with contextlib.suppress(fs.InvalidKeyError):
        validate_prefix(key)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
