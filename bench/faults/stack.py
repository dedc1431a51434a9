"""The private stack the fault suite runs on: its own Kafka node, PostgreSQL cluster and OPA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from tests.kit import Opa, PrivateServices


class PrivateStack:
    """Kafka and PostgreSQL under their own ``SAMSYN_VAR``, and a private OPA."""

    def __init__(self, var: Path, log: Callable[[str], None]) -> None:
        self.var = var
        self.log = log
        self.services = PrivateServices(var)
        self.opa = Opa()
        self.kafka_bootstrap = ""
        self.postgres_dsn = ""

    def up(self) -> None:
        self.services.script("kafka", "start")
        self.services.script("postgres", "start")
        self.opa.start()
        env = self.services.stack_env()
        self.kafka_bootstrap = env["SAMSYN_KAFKA_BOOTSTRAP"]
        # The cluster's own database 'samsyn'; fresh, since the cluster is.
        self.postgres_dsn = env["SAMSYN_TEST_POSTGRES_DSN"].rsplit("/", 1)[0] + "/samsyn"

    def kafka_restart(self) -> None:
        self.services.kafka_restart()

    def postgres(self, command: str) -> None:
        self.services.script("postgres", command)

    def down(self, clean: bool) -> None:
        self.opa.stop()
        for name in ("kafka", "postgres"):
            with contextlib.suppress(Exception):
                self.services.script(name, "stop")
            if clean:
                with contextlib.suppress(Exception):
                    self.services.script(name, "clean")
