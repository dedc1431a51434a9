"""Prometheus metrics that span modules, and the HTTP middleware that counts requests.

Metrics that belong to one module stay there (``samsyn_decisions_total`` … in the router,
``samsyn_audit_chain_length`` in the sealer, ``samsyn_opa_query_seconds`` in the OPA client). The
API serves ``GET /metrics``; a process that runs only workers serves them on
``SAMSYN_METRICS_PORT`` with its probes (broker/runtime/worker_http.py).
deploy/observability/alerts.yaml holds example alert rules over these names, and
docs/operations.md says what to watch.

Labels are bounded: event types come from the schema registry (validated before counting),
routes are templates (``/v1/events/{event_id}``, never the id), groups and topics are Samsyn's
own few. No organisation ids or pseudonyms become label values.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMISSION_UNANSWERED = Counter(
    "samsyn_ingest_admission_unanswered_total",
    "Events accepted without the policy's admission verdict (OPA away or a policy fault); "
    "the router decides them under the same rules",
)
ADMISSION_REMEMBERED = Counter(
    "samsyn_ingest_admission_remembered_total",
    "Admission verdicts taken from memory (the same facts answered within "
    "SAMSYN_ADMISSION_MEMO_S) instead of asking OPA",
)
EVENTS_ACCEPTED = Counter(
    "samsyn_events_accepted_total",
    "Events accepted by ingest (202, first time; repeats of an id are not counted)",
    ["type"],
)
DELIVERIES_MATERIALISED = Counter(
    "samsyn_deliveries_materialised_total",
    "Deliveries stored in the read model (feeds); copies of an already stored delivery id are "
    "not counted",
)
CONSUMER_LAG = Gauge(
    "samsyn_consumer_lag",
    "Records in a partition not yet committed by a Samsyn consumer group (end offset, "
    "read_committed, minus the group's committed offset)",
    ["group", "topic", "partition"],
)
LAG_SAMPLE_FAILURES = Counter(
    "samsyn_consumer_lag_sample_failures_total", "Lag samples that could not be taken"
)
HTTP_REQUESTS = Counter(
    "samsyn_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "samsyn_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DEPENDENCY_UP = Gauge(
    "samsyn_dependency_up",
    "1 when the last readiness check (GET /readyz) found the dependency working, else 0",
    ["dependency"],
)
AUDIT_VERIFY = Counter(
    "samsyn_audit_verify_total",
    "Verifications of the whole audit chain (API, console) by result",
    ["result"],
)


class HttpMetrics:
    """Count every answer by method, route template and status; time it by route. Requests
    that match no route are counted under ``route="unmatched"`` (scanners, typos).

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs
    each request in an extra task with a memory stream, a measurable share of a publish."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app is answered with 500 by the server

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The router writes the matched route into the (shared) scope.
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            if template != "/metrics":
                HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
                HTTP_SECONDS.labels(template).observe(time.perf_counter() - started)
