"""The receiving end every exporter delivers to: one HTTP webhook per exporter, counting the
event versions it was sent.

Each version the bench writes carries a token `pb-<name>-c<count>` in its message, and every
exporter forwards the message, whatever its body layout, so a request's versions are the tokens
found in its body. "Down" closes the listening socket (connections are refused, as for a
receiver whose pod is gone); "up" listens on the same port again.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = re.compile(rb"pb-([a-z0-9]+)-c([0-9]+)")


def token(name: str, count: int) -> str:
    """The token a version's message carries."""
    return f"pb-{name}-c{count}"


class WebhookSink:
    """A webhook on 127.0.0.1 that counts each token it received (per request, once)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.up()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _receive(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                found = {m.group(0).decode() for m in TOKEN.finditer(body)}
                with sink._lock:
                    sink.received.update(found)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_PATCH = do_GET = _receive

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused until `up()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """The webhook's URL."""
        return f"http://127.0.0.1:{self.port}/events"

    def tally(self, served: set[str]) -> tuple[int, int]:
        """(versions delivered out of `served`, extra copies of those delivered)."""
        with self._lock:
            delivered = sum(1 for t in served if self.received[t])
            duplicates = sum(self.received[t] - 1 for t in served if self.received[t] > 1)
        return delivered, duplicates
