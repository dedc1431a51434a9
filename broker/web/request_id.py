"""A request id for every HTTP request: taken from the caller's ``X-Request-Id`` when it is a
plain token, made up otherwise, echoed in the answer and bound into every log line written
while the request is handled (structlog contextvars), so one request's lines can be found
together and matched with the caller's own logs."""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
_HEADER_KEY = HEADER.lower().encode()
# What is taken from a caller: letters, digits and a few separators, so a caller cannot write
# line breaks, markup or unbounded text into the logs.
_ACCEPTED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY and _ACCEPTED.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestId:
    """Plain ASGI (as HttpMetrics): the handler runs in this task, so what is bound here is
    seen by its log lines, and unbound when the answer has gone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != _HEADER_KEY]
                message = {**message, "headers": [*headers, (_HEADER_KEY, rid.encode())]}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            await self.app(scope, receive, send_with_id)
