"""The error hierarchy: every error fencedstate raises is a ``FencedStateError``.

Each error carries the fields a caller needs to act on it, and ``retryable`` says whether
reading fresh and trying again can succeed.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from .core.clock import wall_text


class FencedStateError(Exception):
    """Base class of every fencedstate error."""

    retryable: ClassVar[bool] = False
    #: What the caller should do next, in one sentence (shown by the CLI and the MCP server).
    advice: ClassVar[str] = "See the error's fields for details."
    #: The message made from the fields, for a class built with ``error_fields``.
    template: ClassVar[str] = "{}"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self._fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data: type, message, retryable, advice and its fields."""
        out: dict[str, Any] = {
            "error": type(self).__name__,
            "message": str(self),
            "retryable": self.retryable,
            "advice": self.advice,
        }
        for name, value in self._fields.items():
            out[name] = (
                value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
            )
        return out

    def advise(self, advice: str) -> Self:
        """Give this error its own ``advice`` (the class's fits most cases, not this one);
        returns it. Kept when the error crosses a process boundary."""
        vars(self)["advice"] = advice
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the fields so errors cross process boundaries intact.
        own = vars(self).get("advice")
        return (_rebuild, (type(self), str(self), self._fields, own))


def _rebuild(
    cls: type[FencedStateError], message: str, fields: dict[str, Any], advice: str | None = None
) -> Any:
    err = cls.__new__(cls)
    FencedStateError.__init__(err, message, **fields)
    return err if advice is None else err.advise(advice)


_E = TypeVar("_E", bound=type[FencedStateError])


class _Template(string.Formatter):
    """``str.format`` plus the spec ``utc``: wall-clock seconds shown as a UTC time."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if format_spec == "utc":
            return wall_text(value, utc=True)
        return super().format_field(value, format_spec)


_TEMPLATE = _Template()


@dataclass_transform(eq_default=False)
def error_fields(cls: _E) -> _E:
    """Give an error class an ``__init__`` taking its annotated fields in order, and the
    message ``cls.template.format(**fields)`` (``{field:utc}`` shows wall-clock seconds as a
    UTC time): each field is named once, not three times."""

    def post_init(self: FencedStateError) -> None:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        message = _TEMPLATE.format(type(self).template, **fields)
        FencedStateError.__init__(self, message, **fields)

    cls.__post_init__ = post_init  # type: ignore[attr-defined]
    dataclasses.dataclass(eq=False, repr=False)(cls)  # in place (no slots)
    return cls


class ConflictError(FencedStateError):
    """The key's version is not the one the writer expected: read fresh, recompute, commit again."""

    advice: ClassVar[str] = (
        "Re-read the key and retry with the version you read (in Python, store.update does "
        "this for you; from the shell, `fencedstate get`)."
    )

    retryable: ClassVar[bool] = True
    key: str
    expected_version: int
    actual_version: int

    def __init__(self, key: str, expected_version: int, actual_version: int) -> None:
        found = (
            "the key does not exist (nothing to delete)"
            if expected_version == actual_version == 0
            else f"expected version {expected_version}, found {actual_version}"
        )
        super().__init__(
            f"conflict on {key!r}: {found}",
            key=key,
            expected_version=expected_version,
            actual_version=actual_version,
        )


class FencedError(FencedStateError):
    """The writer's claim is no longer the key's current grant; its write was rejected.

    ``reason`` is ``"reclaimed"`` (the epoch moved on), ``"expired"`` (the lease ran out) or
    ``"released"`` (the claim was given up). Not retryable with the same claim: take a new one.
    """

    advice: ClassVar[str] = (
        "Your claim is gone: take a new claim, re-read, and redo the work; do not retry with "
        "this claim."
    )

    key: str
    claim_epoch: int
    current_epoch: int
    reason: str

    def __init__(self, key: str, claim_epoch: int, current_epoch: int, reason: str) -> None:
        super().__init__(
            f"fenced on {key!r}: claim epoch {claim_epoch} is {reason} "
            f"(current epoch {current_epoch})",
            key=key,
            claim_epoch=claim_epoch,
            current_epoch=current_epoch,
            reason=reason,
        )


class ClaimHeldError(FencedStateError):
    """Someone else holds a live claim on the key."""

    advice: ClassVar[str] = (
        "Wait for the holder's lease to expire (expires_in) and claim again, or reclaim the "
        "key if its holder is dead."
    )

    #: The advice when the owner asking is the holder itself (the error then has ``yours``).
    advice_yours: ClassVar[str] = (
        "This owner already holds the claim: use its grant (epoch) and renew it; if that "
        "grant is not this process's (a restart, a second worker with the same owner), wait "
        "for the lease (expires_in) or reclaim."
    )

    retryable: ClassVar[bool] = True
    key: str
    holder: str
    expires_in: float

    def __init__(
        self,
        key: str,
        holder: str,
        expires_in: float,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> None:
        if owner is not None and owner == holder:
            super().__init__(
                f"{key!r} is already claimed by {holder!r}, the owner asking, at epoch {epoch} "
                f"for another {expires_in:.3f}s",
                key=key,
                holder=holder,
                expires_in=expires_in,
                yours=True,
                epoch=epoch,
            )
            self.advise(self.advice_yours)
            return
        super().__init__(
            f"{key!r} is claimed by {holder!r} for another {expires_in:.3f}s",
            key=key,
            holder=holder,
            expires_in=expires_in,
        )


class InvalidKeyError(FencedStateError, ValueError):
    """The key does not follow the key grammar."""

    advice: ClassVar[str] = (
        "Fix the key: '/'-separated segments of [A-Za-z0-9._-] (128 each), 512 in all, no "
        "leading dot."
    )

    key: object
    reason: str

    def __init__(self, key: object, reason: str) -> None:
        super().__init__(f"invalid key {key!r}: {reason}", key=key, reason=reason)


class InvalidArgumentError(FencedStateError, ValueError):
    """An argument other than the key or value is out of range (ttl, versions, names, ...)."""

    advice: ClassVar[str] = "Fix the argument named in the message; nothing was written."

    def __init__(self, reason: str) -> None:
        super().__init__(reason, reason=reason)


class InvalidValueError(FencedStateError, ValueError):
    """The value cannot be stored as JSON (unserialisable, NaN, non-string dict keys...)."""

    advice: ClassVar[str] = (
        "Store JSON only: string dict keys, lists not tuples, finite numbers; nothing was written."
    )

    key: str
    reason: str

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid value for {key!r}: {reason}", key=key, reason=reason)


class ValueTooLargeError(InvalidValueError):
    """The encoded value is larger than the store's ``max_value_bytes``."""

    advice: ClassVar[str] = (
        "Store a smaller value (or raise max_value_bytes when opening the store); nothing was "
        "written."
    )

    size: int
    limit: int

    def __init__(self, key: str, size: int, limit: int) -> None:
        FencedStateError.__init__(
            self,
            f"value for {key!r} is {size} bytes encoded, over the limit of {limit}",
            key=key,
            reason="too large",
            size=size,
            limit=limit,
        )


class CorruptStateError(FencedStateError):
    """Stored state failed its integrity check. It is reported, never repaired by overwriting."""

    advice: ClassVar[str] = (
        "Run `fencedstate check DIR` to see the damage, then `check DIR --salvage KEY` (keeps "
        "the valid history) or `check DIR --reset KEY SHA256`; nothing was overwritten."
    )

    path: str
    detail: str

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"corrupt state in {path}: {detail}", path=path, detail=detail)


class ForeignValueError(CorruptStateError):
    """A key under an effect ledger's prefix holds a value the ledger did not write. Its bytes
    are sound (``fencedstate check`` finds nothing): something else wrote there."""

    advice: ClassVar[str] = (
        "Something other than the ledger wrote that key: move it out of the ledger's prefix, or "
        "give the ledger a prefix of its own; nothing was changed."
    )

    def __init__(self, path: str, detail: str) -> None:
        FencedStateError.__init__(
            self, f"{path} holds a value that is not {detail}", path=path, detail=detail
        )


class StorageError(FencedStateError):
    """The storage layer failed (I/O error, full disk, permissions). Nothing was acknowledged."""

    advice: ClassVar[str] = (
        "Fix the storage problem (disk full, permissions, I/O error, a server that cannot be "
        "reached) and retry; nothing was acknowledged."
    )

    key: str | None
    detail: str

    def __init__(self, key: str | None, detail: str) -> None:
        where = f" on {key!r}" if key else ""
        super().__init__(f"storage error{where}: {detail}", key=key, detail=detail)


class NotAStoreError(StorageError):
    """The path is not a fencedstate store (no store marker); nothing was created there."""

    advice: ClassVar[str] = (
        "Check the path; a store is created by open_store(path) or the first write, in a new or "
        "empty directory, never by a read-only command."
    )

    path: str

    def __init__(self, path: str, why: str = "no fencedstate.json") -> None:
        FencedStateError.__init__(
            self,
            f"{path} is not a fencedstate store ({why})",
            key=None,
            detail="no store marker",
            path=path,
        )


class LockTimeoutError(StorageError):
    """The key's lock was not acquired in time (a holder may be stalled). Retryable."""

    advice: ClassVar[str] = (
        "Retry later; if it keeps happening, a process holding the key's lock may be stopped."
    )

    retryable: ClassVar[bool] = True


class InsecureStoreError(StorageError):
    """The store directory is unsafe to trust (world-writable, foreign owner, symlinked)."""

    advice: ClassVar[str] = (
        "Fix the directory's owner and mode (0700, owned by you, not a symlink) and open it again."
    )


class AccessDeniedError(FencedStateError):
    """The server refused this client: missing or wrong credentials, certificate or permission.

    ``detail`` says what the server demanded; it never contains a password or token.
    """

    advice: ClassVar[str] = (
        "Give the store what the server demands (a CA bundle, a client certificate, a user and "
        "password, or a role with access to the namespace), then open it again."
    )
    backend: str
    detail: str

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} refused access: {detail}", backend=backend, detail=detail)


class OutcomeUnknownError(FencedStateError):
    """The connection broke during a commit: it may or may not have landed. Read to find out."""

    advice: ClassVar[str] = "Read the key to see whether the commit landed before retrying."

    retryable: ClassVar[bool] = True
    key: str

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"outcome of commit on {key!r} unknown: {detail}", key=key, detail=detail)


# -- errors of the opt-in helpers (fencedstate.outcomes, .schema, .verify) ------------------


class OutcomeError(FencedStateError):
    """Base class of outcome-ledger errors."""


class InvalidTransitionError(OutcomeError, ValueError):
    """The requested state change is not allowed from the current state."""

    advice: ClassVar[str] = "Read the action's current state and pick a transition allowed from it."

    action_id: str
    current: str
    requested: str

    def __init__(self, action_id: str, current: str, requested: str) -> None:
        super().__init__(
            f"action {action_id!r} cannot go from {current!r} to {requested!r}",
            action_id=action_id,
            current=current,
            requested=requested,
        )


class UnknownActionError(OutcomeError, KeyError):
    """No outcome is recorded for this action id."""

    advice: ClassVar[str] = "Record the action before changing its state."

    action_id: str

    def __init__(self, action_id: str) -> None:
        super().__init__(f"no outcome recorded for action {action_id!r}", action_id=action_id)

    def __str__(self) -> str:
        return str(self.args[0])


class SchemaError(FencedStateError, ValueError):
    """A value does not match the model registered for its key (nothing was written).

    ``errors`` is pydantic's list of problems; ``pattern`` is the matching glob (None when the
    registry is strict and no pattern matched).
    """

    advice: ClassVar[str] = (
        "Fix the value so it matches the key's model (see errors); nothing was written."
    )

    key: str
    pattern: str | None
    errors: list[dict[str, Any]]

    def __init__(
        self, key: str, pattern: str | None, errors: list[dict[str, Any]], message: str
    ) -> None:
        super().__init__(message, key=key, pattern=pattern, errors=errors)


class VerificationError(FencedStateError):
    """Re-reading did not confirm the write or effect.

    ``reason`` is one of ``"missing"`` (nothing there), ``"version"`` (the committed version is
    not in the store), ``"value"`` (different value at that version), ``"check"`` (the domain
    check rejected the re-read value) or ``"probe"`` (an external effect was not observed).
    """

    advice: ClassVar[str] = (
        "The write or effect did not happen as expected: inspect the key (or the external "
        "system) before retrying."
    )

    key: str
    version: int | None
    reason: str
    expected: Any
    actual: Any

    def __init__(
        self, key: str, version: int | None, reason: str, expected: Any, actual: Any
    ) -> None:
        super().__init__(
            f"verification of {key!r} at version {version} failed: {reason}",
            key=key,
            version=version,
            reason=reason,
            expected=expected,
            actual=actual,
        )
