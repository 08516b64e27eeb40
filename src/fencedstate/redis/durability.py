"""What an acknowledged commit survives on this Redis server, read at open, and the refusal.

A commit is acknowledged when its script has run. It survives a crash of the server only when
the append-only file is on and fsynced before the reply (``appendonly yes`` with ``appendfsync
always``); ``everysec`` or ``no`` can lose the last second (or more) of acknowledged commits, and
a server without AOF loses everything since its last RDB snapshot. An eviction policy over all
keys (``allkeys-*``) lets Redis delete state silently when memory runs out, whatever the disk
does. The store refuses such a server unless the caller chose explicitly: ``durability="none"``
(accept losing acknowledged commits on a crash) or ``wait_replicas=N`` (a commit is acknowledged
once N replicas have it; see docs/redis.md for what that does and does not cover).
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import FencedStateError, StorageError

__all__ = ["UnsafeDurabilityError", "check_settings"]


class UnsafeDurabilityError(StorageError):
    """The Redis server can lose an acknowledged commit, or the store cannot tell whether it can.

    ``setting`` names the server setting (``appendonly``, ``appendfsync``, ``maxmemory-policy``,
    or ``CONFIG`` when the server does not let clients read its settings) and ``value`` what it
    is (None when unreadable). Nothing was written.
    """

    advice: ClassVar[str] = (
        "Set the named Redis setting as the message says, or open the store with an explicit "
        'choice: durability="none" (accept losing acknowledged commits on a crash) or '
        "wait_replicas=N (acknowledge once N replicas have the commit)."
    )

    setting: str
    value: str | None

    def __init__(self, setting: str, value: str | None, detail: str) -> None:
        FencedStateError.__init__(
            self,
            f"storage error: {detail}",
            key=None,
            detail=detail,
            setting=setting,
            value=value,
        )


_EVICTING = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


def check_settings(
    settings: dict[str, str] | None, *, durability: str, wait_replicas: int, where: str
) -> None:
    """Raise ``UnsafeDurabilityError`` unless ``settings`` (None: CONFIG was refused) keep every
    acknowledged commit under the caller's choice (``durability``, ``wait_replicas``)."""
    if settings is None:
        if durability == "fsync" and wait_replicas == 0:
            raise UnsafeDurabilityError(
                "CONFIG",
                None,
                f"{where} does not let this client read its settings (CONFIG GET is disabled or "
                "not permitted, as on most managed Redis services), so the store cannot check "
                "that an acknowledged commit survives a crash; choose explicitly: "
                'durability="none" or wait_replicas=N',
            )
        return
    policy = settings.get("maxmemory-policy", "noeviction")
    if policy in _EVICTING:
        raise UnsafeDurabilityError(
            "maxmemory-policy",
            policy,
            f"{where} has maxmemory-policy {policy}: when memory runs out Redis deletes keys, "
            "so stored state can vanish silently; set maxmemory-policy noeviction (or a "
            "volatile-* policy: the store sets no TTLs)",
        )
    if durability == "none" or wait_replicas > 0:
        return
    aof = settings.get("appendonly", "no")
    if aof != "yes":
        raise UnsafeDurabilityError(
            "appendonly",
            aof,
            f"{where} has appendonly {aof}: a crash loses every commit since the last snapshot; "
            "set appendonly yes and appendfsync always, or open with "
            'durability="none" or wait_replicas=N',
        )
    fsync = settings.get("appendfsync", "everysec")
    if fsync != "always":
        raise UnsafeDurabilityError(
            "appendfsync",
            fsync,
            f"{where} has appendfsync {fsync}: a crash can lose commits already acknowledged "
            "(up to a second of them, or more with 'no'); set appendfsync always, or open with "
            'durability="none" or wait_replicas=N',
        )
