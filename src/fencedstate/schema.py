"""Schema validation per key pattern: one pydantic model per glob, checked before every write.

Two agents that write one key in different shapes corrupt it silently ("phantom corruption"):
each write succeeds, and the next reader fails or misreads. A ``SchemaRegistry`` maps key
patterns (``fnmatch`` globs such as ``"plans/*"``) to pydantic models, and ``ValidatedStore``
wraps a store so that ``put``, ``update`` and claim commits validate the value first and store
the model's canonical JSON form. A wrong shape raises ``SchemaError`` and nothing is written.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from fencedstate.errors import InvalidArgumentError, SchemaError

if TYPE_CHECKING:
    from fencedstate.claim import Claim
    from fencedstate.records import Event, Snapshot
    from fencedstate.store import Store

M = TypeVar("M", bound=BaseModel)


class SchemaRegistry:
    """Maps key globs to pydantic models; the first registered matching pattern wins.

    With ``strict=True`` a key that matches no pattern is rejected instead of passed through.
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._rules: list[tuple[str, type[BaseModel]]] = []

    def register(self, pattern: str, model: type[BaseModel]) -> None:
        """Validate values of keys matching ``pattern`` with ``model``."""
        if not pattern or not isinstance(pattern, str):
            raise InvalidArgumentError("pattern must be a non-empty glob string")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidArgumentError(
                f"model must be a pydantic BaseModel subclass, got {model!r}"
            )
        if any(p == pattern for p, _ in self._rules):
            raise InvalidArgumentError(f"pattern {pattern!r} is already registered")
        self._rules.append((pattern, model))

    def rule_for(self, key: str) -> tuple[str, type[BaseModel]] | None:
        """The (pattern, model) that governs ``key``, or None."""
        for pattern, model in self._rules:
            if fnmatch.fnmatchcase(key, pattern):
                return pattern, model
        return None

    def __iter__(self) -> Iterator[tuple[str, type[BaseModel]]]:
        return iter(list(self._rules))

    def validate(self, key: str, value: Any) -> Any:
        """Return the canonical JSON form of ``value``; raise ``SchemaError`` if invalid."""
        rule = self.rule_for(key)
        if rule is None:
            if self.strict:
                raise SchemaError(
                    key, None, [], f"no schema registered for key {key!r} (strict registry)"
                )
            return value
        pattern, model = rule
        try:
            obj = model.model_validate(
                value.model_dump() if isinstance(value, BaseModel) else value
            )
        except ValidationError as exc:
            errs = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            first = errs[0] if errs else {"loc": [], "msg": "invalid"}
            raise SchemaError(
                key,
                pattern,
                errs,
                f"value for {key!r} does not match {model.__name__} (pattern {pattern!r}): "
                f"{'.'.join(str(p) for p in first['loc']) or '<root>'}: {first['msg']}",
            ) from exc
        return obj.model_dump(mode="json")

    def parse(self, key: str, value: Any, model: type[M]) -> M:
        """Validate a stored value as ``model`` (detects foreign shapes written by others)."""
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            errs = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            raise SchemaError(
                key, None, errs, f"stored value of {key!r} does not match {model.__name__}"
            ) from exc


class ValidatedClaim:
    """A claim whose commits are validated against the registry first."""

    def __init__(self, claim: Claim, registry: SchemaRegistry) -> None:
        self._claim = claim
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        return getattr(self._claim, name)

    def commit(self, value: Any, expected_version: int) -> Snapshot:
        """Validate, then commit under the claim (epoch + version checked by the store)."""
        canonical = self._registry.validate(self._claim.key, value)
        return self._claim.commit(canonical, expected_version=expected_version)

    def __enter__(self) -> ValidatedClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self._claim.__exit__(*exc)


class ValidatedStore:
    """Wraps a store: every write is validated by the registry before it reaches the store."""

    def __init__(self, store: Store, registry: SchemaRegistry) -> None:
        self.store = store
        self.registry = registry

    def get(self, key: str) -> Snapshot | None:
        """Read as the store does (no validation: use ``get_model`` to check a stored shape)."""
        return self.store.get(key)

    def get_model(self, key: str, model: type[M]) -> M | None:
        """Read and parse the value as ``model``; ``SchemaError`` if the stored shape is foreign."""
        snap = self.store.get(key)
        if snap is None:
            return None
        return self.registry.parse(key, snap.value, model)

    def put(
        self,
        key: str,
        value: Any,
        *,
        expected_version: int,
        writer: str | None = None,
        **kwargs: Any,
    ) -> Snapshot:
        """Validate, then compare-and-set as ``Store.put``."""
        canonical = self.registry.validate(key, value)
        return self.store.put(
            key, canonical, expected_version=expected_version, writer=writer, **kwargs
        )

    def update(
        self, key: str, fn: Callable[[Any], Any], *, writer: str | None = None, **kwargs: Any
    ) -> Snapshot:
        """``Store.update`` where each computed value is validated before its commit."""

        def checked(old: Any) -> Any:
            return self.registry.validate(key, fn(old))

        return self.store.update(key, checked, writer=writer, **kwargs)

    def claim(self, key: str, owner: str, ttl: float = 30.0) -> ValidatedClaim:
        """Claim the key; commits through the returned claim are validated."""
        return ValidatedClaim(self.store.claim(key, owner=owner, ttl=ttl), self.registry)

    def delete(self, key: str, *, expected_version: int, **kwargs: Any) -> Any:
        """Delete as the store does (a tombstone has no shape to validate)."""
        return self.store.delete(key, expected_version=expected_version, **kwargs)

    def keys(self, prefix: str = "") -> list[str]:
        """Keys as the store lists them."""
        return self.store.keys(prefix=prefix)

    def history(self, key: str, limit: int = 50) -> list[Event]:
        """Journal events as the store returns them."""
        return self.store.history(key, limit=limit)
