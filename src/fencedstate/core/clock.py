"""Lease time: a host-wide clock that never jumps with the wall clock, plus the kernel boot id.

Leases are measured on ``CLOCK_BOOTTIME`` (``CLOCK_MONOTONIC`` where that is missing): one clock
for every process on the host, unaffected by NTP steps or manual ``date`` changes, and still
counting across suspend. Its origin is the boot, so a lease is stamped with the kernel boot id
and any lease from another boot counts as expired.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_CLOCK_ID = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def read_boot_id() -> str:
    """The kernel's boot id (a fresh random id per boot); a per-process id if unavailable."""
    try:
        with open(_BOOT_ID_PATH, encoding="ascii") as f:
            return f.read().strip()
    except OSError:  # not Linux: leases then never outlive this process's idea of the boot
        return f"nonlinux-{uuid.uuid4()}"


def wall_text(ts: float, *, utc: bool = False) -> str:
    """Wall-clock seconds ``ts`` as ``YYYY-MM-DD HH:MM:SS`` (local time, or UTC with a " UTC"
    suffix); a time the platform cannot show is given as the number."""
    try:
        parts = time.gmtime(ts) if utc else time.localtime(ts)
    except (OverflowError, OSError, ValueError):
        return f"{ts!r}"
    return time.strftime("%Y-%m-%d %H:%M:%S", parts) + (" UTC" if utc else "")


class Clock:
    """Host-wide lease clock. Tests may pass a different ``boot_id`` to simulate a reboot."""

    __slots__ = ("boot_id",)

    def __init__(self, boot_id: str | None = None) -> None:
        self.boot_id = boot_id if boot_id is not None else read_boot_id()

    def now(self) -> float:
        """Seconds on the host-wide lease clock."""
        return time.clock_gettime(_CLOCK_ID)

    def wall(self) -> float:
        """Wall-clock time, for humans only (``committed_at``); never used for leases."""
        return time.time()


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease: valid on boot ``boot`` until ``deadline`` on the lease clock."""

    boot: str
    deadline: float
    ttl: float

    def remaining(self, clock: Clock) -> float:
        """Seconds left, 0.0 when expired or from another boot."""
        if self.boot != clock.boot_id:
            return 0.0
        return max(0.0, self.deadline - clock.now())

    def live(self, clock: Clock) -> bool:
        """True while the lease has not run out on this boot."""
        return self.boot == clock.boot_id and clock.now() < self.deadline


class FixedClock(Clock):
    """A clock frozen at one reading: a database server's time as one commit attempt read it,
    so the rules judge every lease of that attempt at the same instant."""

    __slots__ = ("_now",)

    def __init__(self, boot_id: str, now: float) -> None:
        super().__init__(boot_id)
        self._now = now

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now
