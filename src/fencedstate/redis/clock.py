"""``RedisClock``: the Redis server's clock (``TIME``) as a client sees it."""

from __future__ import annotations

import time

from ..core.clock import Clock

__all__ = ["RedisClock"]


class RedisClock(Clock):
    """The Redis server's clock (``TIME``) as seen from this client (for ``Claim.expires_in``).

    A reading ``server_now`` answered between local monotonic ``sent`` and ``recv`` bounds the
    offset server - local to ``[server_now - recv, server_now - sent]``. ``now()`` uses the
    upper bound, so it is never behind the server: a holder never overestimates the time left
    on its lease (rate drift aside); ``floor()`` the lower bound. Commits use neither: they
    decide with the server's own ``TIME``. ``boot_id`` names the store (``redis:<store_id>``).
    """

    __slots__ = ("_hi", "_lo")

    def __init__(self, boot_id: str) -> None:
        super().__init__(boot_id)
        self._hi = self._lo = time.time() - time.monotonic()

    def observe(self, server_now: float, sent_at: float, recv_at: float) -> None:
        """The server's clock read ``server_now`` for a request sent at local ``sent_at`` and
        answered at ``recv_at`` (``time.monotonic()``)."""
        self._hi = server_now - sent_at
        self._lo = server_now - recv_at

    def floor(self) -> float:
        """The earliest the server's clock can read now."""
        return time.monotonic() + self._lo

    def now(self) -> float:
        return time.monotonic() + self._hi

    def wall(self) -> float:
        return self.now()
