"""The fault suite (``make faults``): load through the public API while processes and
dependencies fail, then count what was acknowledged, delivered, duplicated, lost and disclosed.

Everything runs on a private stack so that parallel test sessions are not disturbed: Kafka (by
default production's shape, ``deploy/local/kafka-cluster.sh``'s three brokers with replication
factor 3 and min.insync.replicas 2; ``--kafka node`` for ``kafka.sh``'s one node) and a
PostgreSQL cluster started with their own ``SAMSYN_VAR`` (other ports, other data), and an OPA of
their own. Samsyn runs as three processes, the API (with the materializer and the sealer) and two
routers (router-1 and router-2, sharing events.v1), so each can be killed alone.

Fictional children are enrolled at a school and with student health in one of a few
municipalities; some also have an open police case. The load is two kinds of event whose one
rightful recipient is known beforehand:

- a mandatory report (from the school or student health) -> the municipality's social services;
- a consented attendance signal (from the school) -> student health.

The police, related to some children, is a candidate that must never receive either.

Clients retry every publish with the same event id until they get 200 or 202 (ids are
idempotency keys). Faults, one after the other, with recovery in between:

  api-kill       SIGKILL the API process (several times), restart it on the same port
  router-kill    SIGKILL router-1 (several times), restart it under its name
  router-dies    SIGKILL router-2 for good: router-1 takes its partitions over; the events
                 acknowledged in the 1.5 s after the kill count as pending, so the figure is
                 the time until the dead router's partitions are routed again
  broker-kill    (cluster) SIGKILL a broker under load, start it again after the outage; then
                 the next broker
  kafka-restart  every broker stopped and started again (several times: a client that does not
                 come back after one restart in several is the bug this looks for)
  opa-down       stop OPA for a while: nothing may be decided or disclosed meanwhile
  db-down        stop PostgreSQL under ingest: publishes get 503 and are retried

Counted per (event, recipient) after recovery: acknowledged, delivered (in the recipient's feed),
duplicated (more than one copy), lost (acknowledged, never delivered), delivered to anyone
else, disclosed while OPA was down (an allow decision timed inside the outage, or an event sent
after OPA stopped already in a feed before it came back), and 5xx: a 503 problem+json is the
designed answer to a dependency outage ("unavailable", counted apart); any other 5xx is a bug.

Every recovery must be done within a bound (``--bound``, 60 s): the run fails when one is not,
whatever the counts say (a router that hangs loses nothing, it only stops sharing).

The last line is the verdict (one line)::

    faults: sent N, acknowledged N, delivered N, duplicated D, lost L,
    disclosed while OPA down X, 5xx Y, broker kills K, worst recovery S s
"""

from bench.faults.suite import Options, run

__all__ = ["Options", "run"]
