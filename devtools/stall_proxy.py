"""A loopback TCP proxy that can freeze: a storage stall, for tests and benchmarks.

Put it in front of one Azurite service (queue or table) and point a connection string at
it. ``freeze()`` makes the service look stalled the way a real one does to a client: new
connections are still accepted (the kernel completes the handshake) and open ones stay
open, but no byte moves in either direction, so requests wait for an answer that never
comes until the client's own timeout fires. ``thaw()`` lets everything flow again,
including what was sent while frozen. Nothing in the product knows it is there.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field

POLL_SECONDS = 0.05


@dataclass
class StallProxy:
    target_host: str
    target_port: int
    _listener: socket.socket = field(init=False)
    _flowing: threading.Event = field(default_factory=threading.Event, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)
    _sockets: list[socket.socket] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True, name="stall-proxy").start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._stopped.set()
        self._flowing.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> StallProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.target_host, self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopped.is_set():
                if not self._flowing.wait(POLL_SECONDS):
                    continue  # frozen: leave the bytes in the kernel buffers
                readable, _, _ = select.select(list(peers), [], [], POLL_SECONDS)
                for sock in readable:
                    if not self._flowing.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                for sock in (client, upstream):
                    if sock in self._sockets:
                        self._sockets.remove(sock)


def proxied_connection_string(
    endpoints: dict[str, str], account: str, key: str, proxies: dict[str, StallProxy]
) -> str:
    """An Azurite connection string whose named services (``Queue``, ``Table``) go through
    the given proxies; the others go straight to Azurite."""
    parts = [f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"]
    for service in ("Blob", "Queue", "Table"):
        base = f"http://{proxies[service].address}" if service in proxies else endpoints[service]
        parts.append(f"{service}Endpoint={base}/{account};")
    return "".join(parts)
