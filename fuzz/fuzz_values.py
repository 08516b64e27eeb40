"""Atheris harness: the value encoder. ``Store.put`` with odd values (NaN, infinities, huge
ints, lone surrogates, non-str dict keys, sets, bytes, deep nesting) either commits a value that
reads back equal, or raises a typed ``FencedStateError``; nothing else escapes."""

from __future__ import annotations

import math
import sys
import tempfile
from typing import Any

import atheris

with atheris.instrument_imports(include=["fencedstate"]):
    import fencedstate as fs

_STORE = fs.open_store(
    tempfile.mkdtemp(prefix="fuzz-values-"), durability="none", max_value_bytes=64 * 1024
)


def _value(fdp: atheris.FuzzedDataProvider, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 14)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 64))
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.PickValueInList([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])
    if kind == 5:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
    if kind == 6:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))
    if kind == 7:
        return 10 ** fdp.ConsumeIntInRange(0, 6000)  # past int->str digit limits
    if kind == 8:
        return "\ud800" + fdp.ConsumeUnicode(3)  # lone surrogate
    if kind == 9 and depth < 6:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if kind == 10 and depth < 6:
        return {
            fdp.ConsumeUnicode(6): _value(fdp, depth + 1)
            for _ in range(fdp.ConsumeIntInRange(0, 4))
        }
    if kind == 11:
        return {fdp.PickValueInList([1, 2.5, None, True, (1,)]): 1}
    if kind == 12:
        return {fdp.ConsumeIntInRange(0, 3)}
    if kind == 13:
        deep: Any = 0
        for _ in range(fdp.ConsumeIntInRange(0, 3000)):
            deep = [deep]
        return deep
    return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 200)) * fdp.ConsumeIntInRange(0, 600)


def test_one_input(data: bytes) -> None:
    """One fuzz input: build a value from the bytes and put it."""
    fdp = atheris.FuzzedDataProvider(data)
    value = _value(fdp, 0)
    try:
        snap = _STORE.put("v", value, expected_version=None)
    except fs.FencedStateError:
        return
    got = _STORE.get("v")
    assert got is not None and got.version == snap.version
    assert got.value == snap.value


if __name__ == "__main__":
    sys.setrecursionlimit(2000)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
