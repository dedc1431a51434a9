"""The private stack the fault suite runs on: its own Kafka (three brokers, or one node),
PostgreSQL cluster and OPA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from tests.kit import Opa, PrivateServices

# deploy/local/kafka-cluster.sh's nodes: production's shape, replication factor 3 and
# min.insync.replicas 2, so one broker may die with writes going on.
BROKERS = (1, 2, 3)


class PrivateStack:
    """Kafka and PostgreSQL under their own ``SAMSYN_VAR``, and a private OPA. ``cluster``:
    Kafka is ``kafka-cluster.sh``'s three brokers, else ``kafka.sh``'s one node."""

    def __init__(self, var: Path, log: Callable[[str], None], cluster: bool = True) -> None:
        self.var = var
        self.log = log
        self.cluster = cluster
        self.kafka = "kafka-cluster" if cluster else "kafka"
        self.services = PrivateServices(var)
        # A broker's JVM took more than the scripts' 90 s to answer on the 2-core machine at a
        # load average of 55 (a whole-cluster restart failed so): a fault run waits longer.
        self.services.env.setdefault("SAMSYN_KAFKA_START_TIMEOUT", "300")
        self.opa = Opa()
        self.kafka_bootstrap = ""
        self.postgres_dsn = ""

    @property
    def replication(self) -> int:
        return len(BROKERS) if self.cluster else 1

    def up(self) -> None:
        self.services.script(self.kafka, "start")
        self.services.script("postgres", "start")
        self.opa.start()
        env = self.services.stack_env()
        self.kafka_bootstrap = env[
            "SAMSYN_KAFKA_CLUSTER_BOOTSTRAP" if self.cluster else "SAMSYN_KAFKA_BOOTSTRAP"
        ]
        # The cluster's own database 'samsyn'; fresh, since the cluster is.
        self.postgres_dsn = env["SAMSYN_TEST_POSTGRES_DSN"].rsplit("/", 1)[0] + "/samsyn"

    def kafka_restart(self) -> None:
        """Every broker stopped, then started again (on the same addresses)."""
        if self.cluster:
            self.services.script(self.kafka, "stop")
            self.services.script(self.kafka, "start")
        else:
            self.services.kafka_restart()

    def broker_kill(self, node: int) -> None:
        """SIGKILL one broker of the cluster."""
        self.services.script(self.kafka, "kill", str(node))

    def broker_start(self, node: int) -> None:
        """Start a killed broker again; returns once it answers."""
        self.services.script(self.kafka, "start", str(node))

    def postgres(self, command: str) -> None:
        self.services.script("postgres", command)

    def down(self, clean: bool) -> None:
        self.opa.stop()
        for name in (self.kafka, "postgres"):
            with contextlib.suppress(Exception):
                self.services.script(name, "stop")
            if clean:
                with contextlib.suppress(Exception):
                    self.services.script(name, "clean")
