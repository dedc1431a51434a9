"""The table on stdout, the plot (var/bench/bench.png) and the one-line summary (the last line)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def headline(results: dict[str, Any]) -> dict[str, float]:
    """The figures of the summary line: the largest size run (the most sustained one)."""
    sizes = results["sizes"]
    last = sizes[-1]
    e = last["direct"]["e2e_per_s"]
    p = last["passthrough"]["per_s"]
    latency = last.get("latency") or {}
    # Policy time per event in the sustained enforced run (the one E comes from).
    q = last["direct"]["policy_per_event_ms"]["p99_ms"]
    rss = max(peak_rss(s, name) for s in sizes for name in ("api", "router", "read_side"))
    return {
        "size": last["size"],
        "rate": float(results["config"]["rates"][0]),
        "events_per_s": e,
        "http_per_s": (last.get("http") or {}).get("e2e_per_s", 0.0),
        "http_batch_per_s": (last.get("http_batch") or {}).get("e2e_per_s", 0.0),
        "passthrough_per_s": p,
        "ratio": e / p if p else 0.0,
        "p99_ms": latency.get("p99_ms", 0.0),
        "policy_p99_ms": q,
        "max_rss_mb": rss,
    }


def _cpu(phase: str) -> Callable[[dict[str, Any]], str]:
    """A phase's CPU per event by process: API, router, read side, OPA, Kafka, PostgreSQL, the
    load."""
    return lambda s: "/".join(
        _fmt((s.get(phase) or {}).get("cpu_ms_per_event", {}).get(k), 2)
        for k in ("api", "router", "read_side", "opa", "kafka", "postgres", "bench")
    )


def _phases(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s.get("direct") or {},
        s.get("http") or {},
        s.get("http_batch") or {},
        *(s.get("latency_by_rate") or {}).values(),
    ]


def peak_rss(s: dict[str, Any], name: str) -> float:
    return float(max(p.get("peak_rss_mb", {}).get(name, 0.0) for p in _phases(s)))


def _policy(s: dict[str, Any], size: int) -> dict[str, Any]:
    table = s.get("policy") or {}
    found: dict[str, Any] = table.get(size) or table.get(str(size)) or {}  # JSON keys are str
    return found


def _slash(values: list[Any], digits: int = 0) -> str:
    return " / ".join(_fmt(v, digits) for v in values)


def _latency_rows(
    rate: str, key: str = "latency_by_rate", via: str = "API"
) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    def lat(s: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = (s.get(key) or {}).get(rate) or {}
        return found

    def percentiles(s: dict[str, Any]) -> str:
        return _slash([lat(s).get(k) for k in ("p50_ms", "p95_ms", "p99_ms")])

    def achieved(s: dict[str, Any]) -> str:
        return _fmt(lat(s).get("achieved_per_s"))

    def policy(s: dict[str, Any]) -> str:
        per_event = lat(s).get("policy_per_event") or {}
        return _slash([per_event.get(k) for k in ("p50_ms", "p99_ms")], 2)

    return [
        (f"latency at {rate}/s ({via}): p50 / p95 / p99 ms", percentiles),
        (f"  events/s visible (offered {rate}/s)", achieved),
        (f"  policy per event at {rate}/s: p50 / p99 ms", policy),
    ]


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("size (events)", lambda s: _fmt(s["size"])),
        ("direct: routed events/s (Kafka committed)", lambda s: _fmt(s["direct"]["routed_per_s"])),
        ("direct: end-to-end events/s (feeds + sealed)", lambda s: _fmt(s["direct"]["e2e_per_s"])),
        ("direct: decisions/s end to end", lambda s: _fmt(s["direct"]["decisions_per_s"])),
        ("direct: seconds to drain", lambda s: _fmt(s["direct"]["e2e_s"])),
        (
            "direct: policy per event p50 / p99 ms",
            lambda s: _slash(
                [s["direct"]["policy_per_event_ms"].get(k) for k in ("p50_ms", "p99_ms")], 2
            ),
        ),
        (
            "pass-through records/s (aiokafka, transactional)",
            lambda s: _fmt(s["passthrough"]["per_s"]),
        ),
        (
            "ratio end-to-end / pass-through",
            lambda s: _fmt(s["direct"]["e2e_per_s"] / s["passthrough"]["per_s"], 3),
        ),
        ("HTTP: events (closed loop)", lambda s: _fmt((s.get("http") or {}).get("events"))),
        ("HTTP: ingest events/s (202s)", lambda s: _fmt((s.get("http") or {}).get("ingest_per_s"))),
        ("HTTP: end-to-end events/s", lambda s: _fmt((s.get("http") or {}).get("e2e_per_s"))),
        (
            "HTTP: POST /v1/events p50 / p99 ms",
            lambda s: _slash(
                [(s.get("http") or {}).get(k) for k in ("request_p50_ms", "request_p99_ms")], 1
            ),
        ),
    ]
    for phase, name in (("http", "HTTP"), ("http_batch", "HTTP batches")):
        rows.append((f"CPU ms/event ({name}): api/router/read side/opa/kafka/pg/load", _cpu(phase)))
    rows.append(
        (
            "HTTP batches: end-to-end events/s",
            lambda s: _fmt((s.get("http_batch") or {}).get("e2e_per_s")),
        )
    )
    for rate in [f"{r:.0f}" for r in results["config"]["rates"]]:
        rows += _latency_rows(rate)
    for rate in [f"{r:.0f}" for r in results["config"]["rates"]]:
        rows += _latency_rows(rate, "latency_direct_by_rate", "no ingest")
    rows += [
        (
            "policy per event, batches of 1 / 100 / 500: p50 ms",
            lambda s: _slash([_policy(s, n).get("p50_ms") for n in (1, 100, 500)], 2),
        ),
        (
            "peak RSS MB: API / router / read side",
            lambda s: _slash([peak_rss(s, n) for n in ("api", "router", "read_side")]),
        ),
        (
            "direct: cores busy, all / other users' (2 cores)",
            lambda s: _slash(
                [s["direct"].get("machine_busy_cores"), s["direct"].get("others_cores")], 2
            ),
        ),
        (
            "CPU ms/event (direct): router/api/read side/opa/kafka/pg",
            lambda s: "/".join(
                _fmt(s["direct"]["cpu_ms_per_event"].get(k), 2)
                for k in ("router", "api", "read_side", "opa", "kafka", "postgres")
            ),
        ),
    ]
    sizes = results["sizes"]
    width = max(len(r[0]) for r in rows)
    cols = [[fn(s) for s in sizes] for _, fn in rows]
    colw = [max(len(c[i]) for c in cols) for i in range(len(sizes))]
    lines = []
    for (label, _), values in zip(rows, cols, strict=True):
        cells = "  ".join(v.rjust(colw[i]) for i, v in enumerate(values))
        lines.append(f"{label.ljust(width)}  {cells}")
    return "\n".join(lines)


def _by_size(ax: Any, sizes: int, xlabel: str, ylabel: str, title: str) -> None:
    """Log axes (x only when there are several sizes), labels, title and legend."""
    if sizes > 1:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    xs = [s["size"] for s in sizes]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.5))
    ax1.plot(xs, [s["direct"]["routed_per_s"] for s in sizes], "o-", label="routed (direct)")
    ax1.plot(xs, [s["direct"]["e2e_per_s"] for s in sizes], "o-", label="end to end (direct)")
    http = [(s["size"], s["http"]["e2e_per_s"]) for s in sizes if s.get("http")]
    if http:
        ax1.plot([x for x, _ in http], [y for _, y in http], "o-", label="end to end (HTTP)")
    ax1.plot(xs, [s["passthrough"]["per_s"] for s in sizes], "o--", label="pass-through")
    ax1.axhline(2000, color="grey", linestyle=":", label="target 2,000")
    _by_size(ax1, len(xs), "events in run", "events/s", "Throughput by size")
    rates = [f"{r:.0f}" for r in results["config"]["rates"]]
    for phase, via in (("latency_by_rate", "API"), ("latency_direct_by_rate", "no ingest")):
        for rate in rates:
            lat = [(s["size"], s[phase][rate]) for s in sizes if rate in (s.get(phase) or {})]
            ys = [max(v["p99_ms"], 1.0) for _, v in lat]
            style = "o-" if via == "API" else "s--"
            ax2.plot([x for x, _ in lat], ys, style, label=f"{rate}/s p99 ({via})")
    ax2.axhline(100, color="grey", linestyle=":", label="target p99 100 ms")
    _by_size(
        ax2,
        len(xs),
        "events in the run before it",
        "ms",
        "Publish -> visible in the feeds (open loop)",
    )
    last = sizes[-1]["direct"]["rss_series"]
    for name, series in last.items():
        if series:
            ax3.plot([t for t, _ in series], [mb for _, mb in series], label=name)
    ax3.axhline(300, color="grey", linestyle=":", label="300 MB")
    ax3.set_xlabel("s into the direct run")
    ax3.set_ylabel("RSS MB")
    ax3.set_title(f"RSS over the {sizes[-1]['size']:,}-event run")
    ax3.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def emit(results: dict[str, Any], out: Path) -> None:
    print(f"machine: {results['machine']}; started {results['started']}")
    print(table(results))
    plot(results, out / "bench.png")
    print(f"results: {out / 'results.json'}, plot: {out / 'bench.png'}")
    h = headline(results)
    print(summary_line(h))


def summary_line(h: dict[str, float]) -> str:
    """The bench's last line (issue 18 names its words)."""
    return (
        f"bench: {h['events_per_s']:.0f} events/s enforced, {h['http_per_s']:.0f} events/s via "
        f"HTTP, {h['http_batch_per_s']:.0f} events/s via HTTP batches, pass-through "
        f"{h['passthrough_per_s']:.0f} events/s, ratio {h['ratio']:.2f}, p99 publish-to-feed "
        f"{h['p99_ms']:.0f} ms at {h['rate']:.0f}/s via HTTP, policy p99 "
        f"{h['policy_p99_ms']:.2f} ms, max RSS {h['max_rss_mb']:.0f} MB"
    )
