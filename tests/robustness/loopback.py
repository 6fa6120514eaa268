"""A misbehaving HTTP server on 127.0.0.1, for testing stream sources against what real
cameras and servers do wrong: accept and say nothing, stream a few frames and fall silent,
stream a few frames and hang up, answer 404 or a web page.

    with LoopbackServer(mjpeg([20, None], then="close")) as server:
        open_source(server.url)

Only the loopback address is bound (port chosen by the system). Every connection is served
by its own daemon thread; :meth:`LoopbackServer.stop` closes the listening socket and every
client socket and joins the threads, so no test leaves a server behind. ``connections``
counts the connections accepted.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

from .helpers import jpeg

Handler = Callable[[socket.socket, int, threading.Event], None]
BOUNDARY = b"frame"


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def silent(conn: socket.socket, index: int, stop: threading.Event) -> None:
    """Accept the connection, read nothing, answer nothing (a stalled camera)."""
    stop.wait()


def mjpeg(sessions, then: str = "stall", fps: float = 50.0, size: tuple[int, int] = (64, 48)) -> Handler:
    """Stream JPEG frames as multipart/x-mixed-replace, as IP cameras do.

    ``sessions[i]``: how many frames the i-th connection gets (None: without end), after which
    it does ``then``: "stall" (keep the connection open, send nothing) or "close" (hang up).
    Connections beyond the list are closed at once, unanswered (the camera is gone).
    """
    sessions = list(sessions)

    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        if index >= len(sessions):
            return
        _read_request(conn)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary="
                     + BOUNDARY + b"\r\n\r\n")
        count = sessions[index]
        i = 0
        while not stop.is_set() and (count is None or i < count):
            data = jpeg((i * 10) % 256, *size)
            conn.sendall(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
            i += 1
            stop.wait(1.0 / fps)
        if then == "stall":
            stop.wait()

    return handler


def status(code: int, reason: str, body: bytes = b"", content_type: str = "text/plain") -> Handler:
    """Answer every request with this status and body, then close."""

    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(f"HTTP/1.0 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: "
                     f"{len(body)}\r\n\r\n".encode() + body)

    return handler


class LoopbackServer:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> "LoopbackServer":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.05)  # accept() polls the stop flag (close() would not wake it)
        self.port = self._listener.getsockname()[1]
        accept = threading.Thread(target=self._accept, name="loopback-accept", daemon=True)
        self._threads.append(accept)
        accept.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()  # type: ignore[union-attr]
            except socket.timeout:
                continue
            except OSError:  # the listening socket was closed: stop
                return
            conn.settimeout(None)
            with self._lock:
                index = self.connections
                self.connections += 1
                self._clients.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn, index), name="loopback-client",
                                          daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        try:
            self.handler(conn, index, self._stop)
        except OSError:  # the client went away, or stop() closed the socket
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            clients, threads = list(self._clients), list(self._threads)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in threads:
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
        assert not any(t.is_alive() for t in threads), "a loopback server thread did not end"

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
