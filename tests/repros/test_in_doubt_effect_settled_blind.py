"""Repro: a charge whose reply was lost is guessed "not done" (charged twice) or "done" (never
charged); the effect ledger keeps it in doubt until a probe of the gateway settles it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import fencedstate as fs


class Gateway:
    """A payment gateway; ``lose_reply`` drops the answer, ``drop_request`` the request."""

    def __init__(self) -> None:
        self.charges: list[str] = []

    def charge(self, ref: str, *, lose_reply: bool = False, drop_request: bool = False) -> str:
        if drop_request:
            raise TimeoutError("no reply")
        self.charges.append(ref)
        if lose_reply:
            raise TimeoutError("no reply")
        return f"charge-{len(self.charges)}"

    def find(self, ref: str) -> str | None:
        return f"charge-{self.charges.index(ref) + 1}" if ref in self.charges else None


def test_repro(tmp_path: Path) -> None:
    # treated as not done: the retry charges again
    gw = Gateway()
    try:
        gw.charge("order-1", lose_reply=True)
    except TimeoutError:
        gw.charge("order-1")
    assert gw.charges == ["order-1", "order-1"]
    # treated as done: the order is marked paid, nothing was charged
    gw, paid = Gateway(), {}
    try:
        gw.charge("order-2", drop_request=True)
    except TimeoutError:
        paid["order-2"] = True
    assert paid == {"order-2": True} and gw.charges == []

    ledger = fs.EffectLedger(fs.open_store(str(tmp_path / "store")))

    def probe(gw: Gateway) -> Callable[[fs.EffectToken], str]:
        def look(token: fs.EffectToken) -> str:
            found = gw.find(token.id)
            if found is None:
                raise fs.EffectNotApplied("the gateway has no such charge")
            return found

        return look

    for order, lost in (("order-1", "lose_reply"), ("order-2", "drop_request")):
        gw = Gateway()
        with pytest.raises(TimeoutError):
            ledger.run(order, lambda t, gw=gw, lost=lost: gw.charge(t.id, **{lost: True}))
        with pytest.raises(fs.EffectInDoubtError) as info:
            ledger.run(order, lambda t, gw=gw: gw.charge(t.id))  # a blind retry is refused
        assert info.value.attempt == 1 and gw.charges == ([order] if lost == "lose_reply" else [])
        result = ledger.run(order, lambda t, gw=gw: gw.charge(t.id), probe=probe(gw))
        assert result == "charge-1" and gw.charges == [order]  # exactly one charge either way
