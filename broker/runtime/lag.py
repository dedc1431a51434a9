"""Consumer lag of Samsyn's consumer groups, sampled periodically into ``samsyn_consumer_lag``.

Lag per partition is defined in ``broker.runtime.offsets``. The monitor runs beside the router
(``build_workers`` adds it wherever a router runs): growing router lag is the first sign that
routing falls behind or is held (OPA away: fail closed means the events wait). Two routers
export the same numbers; aggregate with ``max by (group, topic, partition)``.
"""

from __future__ import annotations

import asyncio

import structlog

from broker.audit.sealer import GROUP as SEALER_GROUP
from broker.audit.sealer import TOPICS as SEALER_TOPICS
from broker.config import Settings
from broker.router.loop import GROUP as ROUTER_GROUP
from broker.router.loop import TOPICS as ROUTER_TOPICS
from broker.runtime.metrics import CONSUMER_LAG, LAG_SAMPLE_FAILURES
from broker.runtime.offsets import LagProbe
from broker.runtime.supervise import pause
from consumers.feed.materializer import GROUP as MATERIALIZER_GROUP
from consumers.feed.materializer import TOPICS as MATERIALIZER_TOPICS

log = structlog.get_logger("samsyn.lag")

# label -> (consumer group, topics it reads)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "router": (ROUTER_GROUP, ROUTER_TOPICS),
    "materializer": (MATERIALIZER_GROUP, MATERIALIZER_TOPICS),
    "sealer": (SEALER_GROUP, SEALER_TOPICS),
}


class LagMonitor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                async with LagProbe(self.settings) as probe:
                    while not self.stopping.is_set():
                        await self.sample(probe)
                        await pause(self.stopping, self.settings.lag_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                LAG_SAMPLE_FAILURES.inc()
                log.warning("lag sampling failed", error=f"{type(err).__name__}: {err}")
            await pause(self.stopping, self.settings.lag_interval_s)

    async def sample(self, probe: LagProbe) -> dict[str, int]:
        """Set the gauge for every partition of every group; return the total lag per group."""
        totals: dict[str, int] = {}
        for label, (group, topics) in GROUPS.items():
            lag = await probe.lag(group, topics)
            if not lag:
                continue
            totals[label] = sum(lag.values())
            for tp, n in lag.items():
                topic = tp.topic.removeprefix(self.settings.topic_prefix)
                CONSUMER_LAG.labels(label, topic, str(tp.partition)).set(n)
        return totals
