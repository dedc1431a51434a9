"""What a run found: recoveries per fault, answers per phase, the counts, and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.faults.load import (
    Tally,
)


@dataclass
class Recovery:
    """One fault injection and how long the system took to come back from it."""

    fault: str
    label: str
    down_s: float
    api_s: float | None  # fault end -> /readyz 200 (None: the API was not affected)
    routed_s: float | None  # fault end -> every event acknowledged until then delivered
    pending: int  # of those, not yet delivered when the API answered again
    poll_s: float = 0.0  # how long the last read of every feed took (the figure's resolution)


@dataclass
class Result:
    sent: int
    acknowledged: int
    delivered: int
    duplicated: int
    lost: int
    unexpected: int
    disclosed_while_opa_down: int
    server_errors: int
    unavailable: int
    not_routed: int
    audit_ok: bool
    recoveries: list[Recovery]
    tallies: dict[str, Tally]
    samples: list[str]
    bound_s: float = 60.0
    seconds: float = 0.0
    broker_kills: int = 0
    timeout_s: float = 180.0

    @property
    def worst(self) -> float:
        """The longest recovery (a recovery not done counts as the whole timeout)."""
        return max(
            (r.routed_s if r.routed_s is not None else self.timeout_s for r in self.recoveries),
            default=0.0,
        )

    @property
    def slow(self) -> list[Recovery]:
        """Recoveries not done within the bound (or not at all)."""
        return [r for r in self.recoveries if r.routed_s is None or r.routed_s > self.bound_s]

    def last_line(self) -> str:
        return (
            f"faults: sent {self.sent}, acknowledged {self.acknowledged}, "
            f"delivered {self.delivered}, duplicated {self.duplicated}, lost {self.lost}, "
            f"disclosed while OPA down {self.disclosed_while_opa_down}, "
            f"5xx {self.server_errors}, broker kills {self.broker_kills}, "
            f"worst recovery {self.worst:.1f} s"
        )


def report(result: Result) -> str:
    """The human-readable summary; its last line is the verdict."""
    lines = [
        "",
        f"{result.sent} events in {result.seconds:.0f} s; "
        "recovery per fault (seconds from the fault's end):",
    ]
    lines.append(
        f"  {'fault':<14} {'injection':<9} {'down s':>7} {'API answering s':>16} "
        f"{'all pending routed s':>21} {'pending':>8}"
    )
    for r in result.recoveries:
        api = f"{r.api_s:.1f}" if r.api_s is not None else "-"
        routed = f"{r.routed_s:.1f}" if r.routed_s is not None else "TIMEOUT"
        lines.append(
            f"  {r.fault:<14} {r.label:<9} {r.down_s:>7.1f} {api:>16} {routed:>21} {r.pending:>8}"
        )
    lines += ["", "client answers per phase (every publish retried with the same id):"]
    lines.append(
        f"  {'phase':<14} {'requests':>8} {'202':>6} {'200 rep':>7} {'503':>6} {'conn err':>8} "
        f"{'429':>5} {'5xx':>5} {'4xx':>5}"
    )
    for name, t in result.tallies.items():
        lines.append(
            f"  {name:<14} {t.requests:>8} {t.accepted:>6} {t.repeated:>7} {t.unavailable:>6} "
            f"{t.connection_errors:>8} {t.throttled:>5} {t.server_errors:>5} {t.rejected:>5}"
        )
    lines += [
        "",
        "503 problem+json is the designed answer while a dependency (Kafka, the database) is",
        f"down: counted as 'unavailable' ({result.unavailable}), not as 5xx; other 5xx are bugs.",
        f"delivered to an organisation the rules do not name: {result.unexpected}",
        f"acknowledged events whose source does not see them 'routed': {result.not_routed}",
        f"audit chain verifies: {'yes' if result.audit_ok else 'NO'}",
        f"recoveries not done within {result.bound_s:.0f} s: "
        + (", ".join(f"{r.fault} {r.label}" for r in result.slow) or "none"),
    ]
    lines += [f"sample: {s}" for s in result.samples]
    lines.append(result.last_line())
    return "\n".join(lines)


def as_json(result: Result) -> dict[str, Any]:
    return asdict(result)
