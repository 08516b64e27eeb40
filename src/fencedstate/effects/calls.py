"""How a function becomes calls of ``EffectLedger``: the ``effect`` decorator, and an async
probe run from the ledger's worker thread on the caller's event loop."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import string
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fencedstate.core import args
from fencedstate.errors import InvalidArgumentError

from .record import _CURRENT, EffectToken

if TYPE_CHECKING:
    from fencedstate.claim import Claim

    from .ledger import EffectLedger

T = TypeVar("T")


def decorator(
    ledger: EffectLedger,
    id: str | Callable[..., str],
    claim: Claim | None,
    probe: Callable[..., Any] | None,
    ttl: float,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """``EffectLedger.effect``: each call of the decorated function is one effect."""

    if probe is not None:
        args.function("probe", probe, "the decorated function's arguments")

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        sig = inspect.signature(func)
        if isinstance(id, str):
            _check_fields(id, func, sig)
        name = getattr(func, "__name__", "the function")

        def check(a: tuple[Any, ...], kw: dict[str, Any]) -> None:
            """Refuse a call that ``func`` (or ``probe``) cannot take, before it is recorded:
            it would raise inside the attempt and leave the effect in doubt for good."""
            try:
                sig.bind(*a, **kw)
            except TypeError as exc:
                raise InvalidArgumentError(
                    f"{name}{args.shape(sig)} cannot be called with these arguments ({exc}); "
                    "nothing was recorded"
                ) from None
            if probe is not None:
                call = "probe(*args, **kwargs) with this call's arguments"
                args.takes("probe", probe, f"{name}'s arguments", call, *a, **kw)

        def effect_id(*a: Any, **kw: Any) -> str:
            check(a, kw)
            if callable(id):
                return id(*a, **kw)
            bound = sig.bind(*a, **kw)
            bound.apply_defaults()
            return id.format(**bound.arguments)

        def prober(a: tuple[Any, ...], kw: dict[str, Any]) -> Callable[[EffectToken], Any] | None:
            if probe is None:
                return None
            return lambda _token: probe(*a, **kw)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awrapper(*a: Any, **kw: Any) -> Any:
                async def fire(_token: EffectToken) -> Any:
                    return await cast("Callable[..., Awaitable[Any]]", func)(*a, **kw)

                return await ledger.arun(
                    effect_id(*a, **kw),
                    fire,
                    claim=claim,
                    probe=prober(a, kw),
                    ttl=ttl,
                )

            return cast("Callable[..., T]", awrapper)

        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            return ledger.run(
                effect_id(*a, **kw),
                lambda _token: func(*a, **kw),
                claim=claim,
                probe=prober(a, kw),
                ttl=ttl,
            )

        return cast("Callable[..., T]", wrapper)

    return decorate


def on_loop(
    fn: Callable[[EffectToken], Any], loop: asyncio.AbstractEventLoop
) -> Callable[[EffectToken], Any]:
    """``fn`` as a plain function for the ledger's worker thread: a coroutine it returns is
    run on ``loop`` (with the token set there) and waited for."""

    def call(token: EffectToken) -> Any:
        out = fn(token)
        if not inspect.isawaitable(out):
            return out

        async def with_token() -> Any:
            _CURRENT.set(token)
            return await out

        return asyncio.run_coroutine_threadsafe(with_token(), loop).result()

    return call


def _check_fields(id: str, func: Callable[..., Any], sig: inspect.Signature) -> None:
    """Refuse, at decoration, an ``id`` format string naming no argument of ``func`` (it
    would fail at every call with a bare ``KeyError``)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(id) if f is not None]
    except ValueError as exc:
        raise InvalidArgumentError(f"id {id!r} is not a format string: {exc}") from None
    takes = list(sig.parameters)
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if name not in takes:
            shown = f"{{{field}}}" if field else "{} (a positional field)"
            name_of = getattr(func, "__name__", "the function")
            raise InvalidArgumentError(
                f"id {id!r} names {shown}, which is not an argument of {name_of} "
                f"(it takes {', '.join(takes) or 'none'})"
            )
