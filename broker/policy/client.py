"""The OPA client: one query per batch; anything but a well-formed answer is a denial.

OPA answers 200 without a ``result`` key when the rule is undefined; that, a timeout, a non-200
or a malformed body all raise :class:`PolicyUnavailable`, and the router keeps the batch and
retries: no disclosure without an explicit allow, and no event skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
import structlog
from opa_client.opa_async import AsyncOpaClient
from prometheus_client import Histogram

from broker.runtime.coalesce import Coalesced

log = structlog.get_logger("samsyn.policy")
PACKAGE = "samsyn.decide"
# The decisions with each distinct Decision once (policies/samsyn/decide.rego): a batch's pairs
# share a few, and the answer's bytes cost CPU in OPA (twice, with its decision log) and here.
RULE = "indexed_decisions"
# The most admission questions in one query when concurrent publishes are asked together: five
# batched publishes' worth, far below a query that would near OPA's timeout.
ADMISSION_QUERY_MAX = 500

OPA_SECONDS = Histogram(
    "samsyn_opa_query_seconds",
    "Time of one OPA batch query",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class PolicyUnavailable(Exception):
    """No decision could be had; treat every pair in the batch as not (yet) allowed."""


class PolicyTimeout(PolicyUnavailable):
    """OPA did not answer within the timeout (a smaller query may still be answered)."""


# Faults that say the policy data is broken: no event can be decided until it is fixed, so the
# batch waits as for an outage. Any other fault (malformed_input, indeterminate...) belongs to
# the events it was reported for: those are held and, if it persists, parked; the others go on.
POLICY_WIDE_FAULTS = frozenset({"config_malformed", "config_exceeds_ceiling", "ground_malformed"})


@dataclass(frozen=True)
class PolicyAnswer:
    decisions: dict[str, dict[str, dict[str, Any]]]
    revision: str
    decision_id: str | None
    seconds: float
    # event ref -> fault reasons, for the events the policy could not answer (their decisions
    # are not to be used).
    faulted: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """The policy's word on an event at ingest: ``admit``, or the reasons it can never be
    routed."""

    admit: bool
    reasons: list[str]


class _MsgspecOpaClient(AsyncOpaClient):  # type: ignore[misc]
    """opa-python-client whose queries are encoded and answered through msgspec. Why: the
    library's aiohttp session encodes with the standard library's ``json`` and decodes the
    answer with it, which took a tenth of the router's CPU on the answers of large batches.
    Same request (``POST /v1/data/<path>`` with ``{"input": ...}``), same errors (a non-2xx
    raises), same session and connection handling (the library's ``_request``)."""

    async def query_rule(
        self,
        input_data: dict[str, Any],
        package_path: str,
        rule_name: str | None = None,
        query_params: dict[str, str] | None = None,
    ) -> Any:
        path = package_path.replace(".", "/") + (f"/{rule_name}" if rule_name else "")
        url = f"{self.root_url}/data/{path}"
        if query_params:
            url = f"{url}?{urlencode(query_params)}"
        async with self._request(
            "POST",
            url,
            data=_ENCODE({"input": input_data}),
            headers={"Content-Type": "application/json"},
        ) as response:
            response.raise_for_status()
            return msgspec.json.decode(await response.read())


_ENCODE = msgspec.json.Encoder().encode


class PolicyClient:
    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._client = _MsgspecOpaClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8181),
            ssl=parts.scheme == "https",
            timeout=timeout_s,
            retries=0,  # the router owns retries, with its own backoff
        )
        self._admissions = Coalesced(self._ask_admissions, ADMISSION_QUERY_MAX)

    async def __aenter__(self) -> PolicyClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close_connection()

    async def healthy(self) -> bool:
        """OPA answers AND has activated its bundles (``/health?bundles``): an OPA that refused
        an unsigned or tampered bundle runs without policy and must not count as ready."""
        try:
            return bool(await self._client.check_health({"bundles": "true"}))
        except Exception:
            return False

    async def decide(self, batch: dict[str, Any]) -> PolicyAnswer:
        started = time.perf_counter()
        try:
            answer = await self._client.query_rule(
                batch, PACKAGE, RULE, query_params={"provenance": "true"}
            )
        except Exception as err:
            failure = PolicyTimeout if isinstance(err, TimeoutError) else PolicyUnavailable
            raise failure(f"OPA query failed: {type(err).__name__}: {err}") from err
        elapsed = time.perf_counter() - started
        OPA_SECONDS.observe(elapsed)
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
            raise PolicyUnavailable("OPA returned no result (rule undefined or not loaded)")
        decisions = _expand(answer["result"])
        faulted = {
            str(ref): sorted(
                {
                    str(reason)
                    for d in per_org.values()
                    if isinstance(d, dict) and d.get("fault")
                    for reason in d.get("reasons", [])
                }
            )
            for ref, per_org in decisions.items()
            if any(isinstance(d, dict) and d.get("fault") for d in per_org.values())
        }
        wide = POLICY_WIDE_FAULTS.intersection(r for rs in faulted.values() for r in rs)
        if wide:
            # The policy could not answer (broken data), which is not a refusal: hold the batch
            # as for an outage instead of recording a final denial.
            raise PolicyUnavailable(f"the policy reports a fault: {', '.join(sorted(wide))}")
        decision_id = answer.get("decision_id")
        # The log lines that follow name the decision (OPA's decision log has the same id).
        # Bound in the caller's task, a request's or a router batch's, until its next decision.
        structlog.contextvars.bind_contextvars(opa_decision_id=decision_id)
        return PolicyAnswer(
            decisions=decisions,
            revision=_revision(answer.get("provenance")),
            decision_id=decision_id,
            seconds=elapsed,
            faulted=faulted,
        )

    async def admissions(self, events: list[dict[str, Any]]) -> list[Admission | None]:
        """May the ingest accept each event, or can it never be routed (``samsyn.admission``)?
        One query for the events of one publish, however many, shared with the publishes that
        ask meanwhile (``broker/policy/coalesce.py``). An event the policy reports a fault for
        has no verdict (None); raises :class:`PolicyUnavailable` when there is no well-formed
        answer at all."""
        return await self._admissions(events)

    async def _ask_admissions(self, events: list[dict[str, Any]]) -> list[Admission | None]:
        try:
            answer = await self._client.query_rule(
                {"events": events}, "samsyn.admission", "verdicts"
            )
        except Exception as err:
            raise PolicyUnavailable(f"OPA query failed: {type(err).__name__}: {err}") from err
        verdicts = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(verdicts, list) or len(verdicts) != len(events):
            raise PolicyUnavailable("OPA returned no admission verdicts, or not one per event")
        found: list[Admission | None] = []
        for verdict in verdicts:
            if not isinstance(verdict, dict) or not isinstance(verdict.get("reasons"), list):
                raise PolicyUnavailable("OPA returned a malformed admission verdict")
            if verdict.get("fault") is True:
                log.warning("the policy reports an admission fault", reasons=verdict["reasons"])
                found.append(None)
                continue
            found.append(
                Admission(
                    admit=verdict.get("admit") is True, reasons=[str(r) for r in verdict["reasons"]]
                )
            )
        return found

    async def data_faults(self) -> list[str]:
        """What is wrong with the loaded policy data (``samsyn.ceiling.data_faults``): empty
        when it is well formed and widens nothing past the shipped ceiling."""
        try:
            answer = await self._client.query_rule({}, "samsyn.ceiling", "data_faults")
        except Exception as err:
            raise PolicyUnavailable(f"OPA query failed: {type(err).__name__}: {err}") from err
        faults = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(faults, list):
            raise PolicyUnavailable("OPA returned no data_faults (rule undefined or not loaded)")
        return [str(f) for f in faults]

    async def ground(self, name: str) -> dict[str, Any]:
        """The record of one legal ground in the policy data (its kinds, purposes, limits)."""
        try:
            answer = await self._client.query_rule({}, "samsyn.config.grounds", name)
        except Exception as err:
            raise PolicyUnavailable(f"OPA query failed: {type(err).__name__}: {err}") from err
        found = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(found, dict):
            raise PolicyUnavailable(f"the policy data has no ground {name!r}")
        return found


def _expand(indexed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """event ref -> candidate org -> Decision from the indexed answer (``table``, and ``pairs``
    of indexes into it). Pairs share their Decision objects, which are read, never changed.
    An answer that does not hold together raises :class:`PolicyUnavailable`."""
    table, pairs = indexed.get("table"), indexed.get("pairs")
    if not isinstance(table, list) or not isinstance(pairs, dict):
        raise PolicyUnavailable("OPA's answer has no decision table or no pairs")
    decisions: dict[str, dict[str, Any]] = {}
    for ref, per_org in pairs.items():
        if not isinstance(per_org, dict):
            raise PolicyUnavailable(f"OPA's answer for event {ref!r} is not an object")
        for index in per_org.values():
            if type(index) is not int or not 0 <= index < len(table):
                raise PolicyUnavailable(f"OPA's answer for event {ref!r} names no decision")
        decisions[ref] = {org: table[index] for org, index in per_org.items()}
    return decisions


def _revision(provenance: Any) -> str:
    """The bundle revision from OPA's provenance; ``unbundled`` when OPA serves a directory."""
    if not isinstance(provenance, dict):
        return "unknown"
    if provenance.get("revision"):
        return str(provenance["revision"])
    bundles = provenance.get("bundles") or {}
    revisions = sorted(
        f"{name}@{info.get('revision')}"
        for name, info in bundles.items()
        if isinstance(info, dict) and info.get("revision")
    )
    return ",".join(revisions) or "unbundled"
