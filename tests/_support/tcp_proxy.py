"""A loopback TCP proxy that can drop a connection around one chosen request (for lost replies).

``TcpProxy(upstream_port)`` forwards every connection. ``arm(trigger, mode)`` makes the next
client chunk containing ``trigger`` (bytes) fire once:

* ``"after"``: forward the request, then drop the connection instead of forwarding the reply
  (the server ran it; the client never hears back);
* ``"before"``: drop the connection without forwarding the request;
* ``refuse_after=True``: from then on, every new connection is closed at once (the server looks
  unreachable) until ``refuse(False)``.

``fired`` is set once the trigger fired and the reply (mode ``"after"``) has been swallowed.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._trigger: bytes | None = None
        self._mode = "after"
        self._refuse_after = False
        self._refusing = False
        self.fired = threading.Event()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, trigger: bytes, mode: str = "after", *, refuse_after: bool = False) -> None:
        with self._lock:
            self._trigger, self._mode, self._refuse_after = trigger, mode, refuse_after
            self.fired.clear()

    def refuse(self, on: bool) -> None:
        with self._lock:
            self._refusing = on

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            conn = _Conn(self, client, upstream)
            threading.Thread(target=conn.up, daemon=True).start()
            threading.Thread(target=conn.down, daemon=True).start()

    def _check(self, chunk: bytes) -> str | None:
        """The mode to fire for ``chunk`` (disarming), or None to forward it."""
        with self._lock:
            if self._trigger is None or self._trigger not in chunk:
                return None
            self._trigger = None
            if self._refuse_after:
                self._refusing = True
            return self._mode


class _Conn:
    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.swallow = False

    def _drop(self) -> None:
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def up(self) -> None:
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    break
                mode = self.proxy._check(chunk)
                if mode == "before":
                    self._drop()
                    self.proxy.fired.set()
                    return
                if mode == "after":
                    self.swallow = True  # set before the server can answer
                self.upstream.sendall(chunk)
        except OSError:
            pass
        self._drop()

    def down(self) -> None:
        try:
            while True:
                chunk = self.upstream.recv(65536)
                if not chunk:
                    break
                if self.swallow:
                    self._drop()
                    self.proxy.fired.set()
                    return
                self.client.sendall(chunk)
        except OSError:
            pass
        self._drop()
