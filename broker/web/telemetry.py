"""FastAPI's own OpenTelemetry instrumentation, switched off in every Samsyn app.

FastAPI (0.16x) instruments each request whenever a global tracer, meter or logger provider is
set, and configures OTLP exporters itself with ``FASTAPI_OTEL_AUTO_CONFIGURE=true``. Either
would send request paths (with event, child and consent ids), client addresses and exception
texts to a collector that Samsyn's operators did not choose, from a platform's environment
alone. Samsyn's telemetry is its Prometheus metrics and its structured log, both reviewed for
personal data. Off, FastAPI also stops asking the global providers whether they are set, at
each request (6 µs, about half a percent of the API's CPU per published event).
"""

from __future__ import annotations

from fastapi.telemetry import TelemetryConfig

OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
