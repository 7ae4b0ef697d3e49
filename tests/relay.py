"""A relay between the helpers and the real Docker engine or API server, which a test can stop
or make reset its connections: the engine or the cluster really failing, from the client's side."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable


class Relay:
    """Accepts connections on ``listener`` and pipes each one to a fresh ``connect()``.

    ``stop()`` closes the listener and every open connection (a server that went away);
    ``reset()`` keeps listening but answers every connection, new and open, with a TCP reset.
    """

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
        self.listener = listener
        self.connect = connect
        self.resetting = False
        self.open: list[socket.socket] = []
        self._lock = threading.Lock()
        listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def tcp(cls, host: str, port: int) -> Relay:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        return cls(listener, lambda: socket.create_connection((host, port)))

    @classmethod
    def unix(cls, path: str, target: str) -> Relay:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)

        def connect() -> socket.socket:
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(target)
            return upstream

        return cls(listener, connect)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            if self.resetting:
                self._abort(client)
                continue
            upstream = self.connect()
            with self._lock:
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    @staticmethod
    def _abort(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if conn.family != socket.AF_UNIX:  # SO_LINGER 0: close with RST, not FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # A recv() blocked in a pipe thread keeps the socket alive past close(); SHUT_RD
            # wakes it (and sends nothing), so the close really happens now.
            conn.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            conn.close()

    def _drop_open(self) -> None:
        with self._lock:
            for conn in self.open:
                self._abort(conn)
            self.open.clear()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the accept() blocked in its thread
            self.listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.listener.close()
        self._drop_open()

    def reset(self) -> None:
        self.resetting = True
        self._drop_open()
