"""A webhook receiver on loopback that answers with given statuses and records each push."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.kit.waiting import eventually


@dataclass(frozen=True)
class Push:
    """One request a :class:`WebhookReceiver` got, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 (a free port, its own thread) that stands in for an
    organisation's webhook endpoint: it answers the scripted statuses in turn, then 200, and
    keeps every request it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.pushes: list[Push] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.pushes.append(Push(dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/samsyn"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, match: Callable[[Push], bool], count: int, timeout: float = 60) -> list[Push]:
        """The pushes that ``match``, once there are at least ``count`` of them."""

        def found() -> list[Push]:
            with self.lock:
                pushes = [p for p in self.pushes if match(p)]
            return pushes if len(pushes) >= count else []

        return eventually(found, f"{count} pushes", timeout)


def signature_valid(secret: str, push: Push, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute ``Samsyn-Signature`` over the raw body with its secret
    (HMAC-SHA256 of ``"<t>." + body``) and refuse a timestamp outside the tolerance."""
    fields = dict(
        part.split("=", 1) for part in push.headers["Samsyn-Signature"].split(",") if "=" in part
    )
    t = fields.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + push.body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields.get("v1", ""))
