"""An in-process TCP proxy that can cut every connection on command.

It sits between the workers/janitors and Redis so the torture run (and a few
scenario tests) can make connections fail the way networks do: all at once
(:meth:`Proxy.cut_all`), or right after a chosen request reached Redis so the
command is applied but its reply is lost (:meth:`Proxy.drop_reply_after`).

Plain threads and blocking sockets: two pump threads per proxied connection.
It listens on a free 127.0.0.1 port. When Redis is down, a new client connection
is accepted and closed at once (the client sees a connection error, as it would
without the proxy).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

logger = logging.getLogger("tests.torture.proxy")

BUFFER = 256 * 1024


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.swallow = False  # set: the next reply is dropped and the link cut
        self._lock = threading.Lock()

    def start(self) -> None:
        for src, dst, up in ((self.client, self.upstream, True), (self.upstream, self.client, False)):
            threading.Thread(target=self._pump, args=(src, dst, up), daemon=True,
                             name="torture-proxy-pump").start()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        _close(self.client)
        _close(self.upstream)
        self.proxy._forget(self)

    def _pump(self, src: socket.socket, dst: socket.socket, client_to_server: bool) -> None:
        try:
            while True:
                data = src.recv(BUFFER)
                if not data:
                    break
                if client_to_server:
                    rule = self.proxy._match(data)
                    if rule:
                        self.swallow = True
                elif self.swallow:
                    # The request was applied by Redis; its reply never arrives.
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self.close()


class Proxy:
    """Forward 127.0.0.1:<port> to ``upstream_host:upstream_port``."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(256)
        self.host, self.port = self._listener.getsockname()[:2]
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._rules: list[Callable[[bytes], bool]] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="torture-proxy-accept")
        #: Connections accepted, and cut by :meth:`cut_all` (for reports).
        self.accepted = 0
        self.cut = 0
        self.refused = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                if self._stopped:
                    return
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2.0)
                upstream.settimeout(None)
            except OSError:
                self.refused += 1
                _close(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                if self._stopped:
                    link.close()
                    return
                self._links.add(link)
                self.accepted += 1
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _match(self, data: bytes) -> bool:
        if not self._rules:
            return False
        with self._lock:
            for rule in self._rules:
                if rule(data):
                    self._rules.remove(rule)
                    return True
        return False

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._links)

    def cut_all(self) -> int:
        """Close every proxied connection at once (both sides); returns how many."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        self.cut += len(links)
        logger.info("cut %d connection(s)", len(links))
        return len(links)

    def drop_reply_after(self, marker: bytes | Callable[[bytes], bool]) -> None:
        """One shot: the next request containing ``marker`` reaches Redis, its reply is dropped
        and that connection is cut (a connection lost in the middle of a command)."""
        rule = marker if callable(marker) else (lambda data, m=marker: m in data)
        with self._lock:
            self._rules.append(rule)

    def stop(self) -> None:
        self._stopped = True
        _close(self._listener)
        self.cut_all()
