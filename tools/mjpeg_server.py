"""A tiny MJPEG-over-HTTP server on the loopback interface, for testing stream sources.

    with MjpegServer() as server:          # serves synthetic frames at server.url
        source = open_source(server.url)
        server.stop()                      # the stream drops (clients see the end)
        server.start()                     # ... and comes back on the same port

Only 127.0.0.1 is ever bound. Each client gets ``frames`` frames (None: until stopped) at
``fps``, as ``multipart/x-mixed-replace`` (what IP cameras send).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from .synthetic_video import synthetic_frame

BOUNDARY = b"frame"


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
        self.end_headers()
        owner = self.server.owner
        index = 0
        while not owner.stopping.is_set() and (owner.frames is None or index < owner.frames):
            ok, jpeg = cv2.imencode(".jpg", synthetic_frame(index, owner.width, owner.height))
            part = (b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg.tobytes() + b"\r\n")
            try:
                self.wfile.write(part)
            except OSError:
                return
            index += 1
            owner.stopping.wait(1.0 / owner.fps)

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "MjpegServer"


class MjpegServer:
    """Serve synthetic MJPEG frames at ``http://127.0.0.1:PORT/stream.mjpg``."""

    def __init__(self, port: int = 0, fps: float = 25.0, frames: int | None = None,
                 width: int = 160, height: int = 120):
        self.port, self.fps, self.frames = port, fps, frames
        self.width, self.height = width, height
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> "MjpegServer":
        self.stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and end every client's stream."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        time.sleep(0.05)  # let handler threads notice and close their sockets

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
