"""A TCP relay on loopback whose "network" can be cut without closing anything.

During a cut, every byte either way is dropped and nothing is closed, as when
a 4G link or a router dies: only keepalives can tell. Connections that lived
through a cut stay dead after it (their peer's TCP state is gone in real
life too); connections made after the cut relay normally.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from tests.harness.procs import free_port


@dataclass
class _Link:
    sockets: tuple[socket.socket, socket.socket]
    dead: bool = False


@dataclass
class CuttableRelay:
    target_port: int
    port: int = field(default_factory=free_port)
    cut: bool = False
    links: list[_Link] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> CuttableRelay:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut_network(self) -> None:
        with self._lock:
            self.cut = True
            for link in self.links:
                link.dead = True

    def restore_network(self) -> None:
        with self._lock:
            self.cut = False

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            for link in self.links:
                for sock in link.sockets:
                    sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            link = _Link((client, upstream))
            with self._lock:
                link.dead = self.cut  # made during a cut: it never gets through
                self.links.append(link)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(link, source, sink), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:  # a clean close from one side is passed on, unless the link is dead
                if not link.dead:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                return
            if link.dead:
                continue  # dropped on the floor, nobody is told
            try:
                sink.sendall(data)
            except OSError:
                return
