"""deploy/ checked offline (no Docker engine or cluster here): the compose file against the
compose-spec JSON Schema that check-jsonschema ships, the Kubernetes manifests against the
Kubernetes OpenAPI schemas that kubernetes-validate ships (strict: unknown fields fail), the
Dockerfile's few rules, and the example alert rules' structure and metric names."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

# Each import registers its module's metrics.
import broker.audit.sealer
import broker.policy.client
import broker.router.loop
import broker.runtime.lag
import broker.runtime.metrics  # noqa: F401
from broker.config import READ_SIDE, Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy/compose/compose.yaml"
K8S = REPO / "deploy/k8s"
ALERTS = REPO / "deploy/observability/alerts.yaml"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to fit


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendored.joinpath("compose-spec.json").read_text())
    return schema


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"])
        for _, doc in k8s_documents()
        if doc["kind"] in ("Deployment", "StatefulSet", "Job")
    ]


# ---- compose --------------------------------------------------------------------------------


def test_compose_file_is_valid_compose_spec() -> None:
    """The whole file validates against the compose-spec schema (services, secrets, networks,
    healthchecks, anchors resolved)."""
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_validation_is_not_vacuous() -> None:
    """The same validation refuses a misspelt service key, so the test above can fail."""
    broken = compose()
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    assert list(validator.iter_errors(broken))


def test_compose_secrets_have_no_defaults() -> None:
    """Every secret is a required variable (${VAR:?message}); none has a default or a value."""
    text = COMPOSE.read_text()
    for name in (
        "POSTGRES_PASSWORD",
        "KAFKA_SAMSYN_PASSWORD",
        "KAFKA_ADMIN_PASSWORD",
        "KAFKA_KEYSTORE_PASSWORD",
        "SAMSYN_JWT_PRIVATE_KEY",
        "SAMSYN_PSEUDONYM_KEYS",
        "SAMSYN_KEK_KEYS",
        "SAMSYN_AUDIT_SIGNING_KEY",
        "SAMSYN_FOLLOWUP_KEY",
        "SAMSYN_CONSOLE_SESSION_SECRET",
    ):
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        assert all(u.startswith(":?") for u in uses), f"{name} has a default: {uses}"


def test_compose_services_shape() -> None:
    """API and router are separate services on the Samsyn image, both health-checked on /readyz;
    the router runs only the router; Kafka listens only on SASL_SSL (and an SSL controller);
    OPA verifies its bundle; the backend network is internal."""
    c = compose()
    services = c["services"]
    api, router = services["api"], services["router"]
    assert api["command"][0] == "serve"
    assert router["command"] == ["worker", "router"]
    for svc in (api, router):
        assert "/readyz" in " ".join(svc["healthcheck"]["test"])
        assert svc["read_only"] is True
    assert router["environment"]["SAMSYN_WORKERS"] == '["router"]'
    assert "router" not in api["environment"]["SAMSYN_WORKERS"]
    assert api["environment"]["SAMSYN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    opa = services["opa"]["command"]
    assert any(a.startswith("--verification-key=") for a in opa)
    assert c["networks"]["backend"]["internal"] is True
    assert services["postgres"]["networks"] == ["backend"]
    # Every setting the Samsyn services pass is one Samsyn has.
    known = {f"SAMSYN_{name.upper()}" for name in Settings.model_fields}
    assert set(api["environment"]) <= known


def test_compose_read_side_is_its_own_service() -> None:
    """The materializer and the sealer run in the read-side service only (not on the API's
    loop), a static member under a stable name, health-checked on its /readyz; it has no OPA
    dependency (it decides nothing)."""
    services = compose()["services"]
    api, read_side = services["api"], services["read-side"]
    assert read_side["command"] == ["worker", *READ_SIDE]
    env = read_side["environment"]
    assert json.loads(env["SAMSYN_WORKERS"]) == list(READ_SIDE)
    assert env["SAMSYN_WORKER_INSTANCE"]
    assert "/readyz" in " ".join(read_side["healthcheck"]["test"])
    assert env["SAMSYN_METRICS_PORT"] in " ".join(read_side["healthcheck"]["test"])
    assert "opa" not in read_side["depends_on"]
    assert not set(READ_SIDE) & set(json.loads(api["environment"]["SAMSYN_WORKERS"]))
    known = {f"SAMSYN_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known


def test_dockerfile_runs_samsyn_serve_as_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert '"serve"' in text


# ---- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "doc"),
    k8s_documents(),
    ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in k8s_documents()],
)
def test_k8s_manifest_is_valid(name: str, doc: dict[str, Any]) -> None:
    """Each document validates (strictly: no unknown fields) against the Kubernetes schema."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_validation_is_not_vacuous() -> None:
    """A misspelt field fails validation, so the test above can fail."""
    [doc] = [
        d
        for _, d in k8s_documents()
        if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "samsyn-router"
    ]
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_containers_are_bounded_probed_and_locked_down() -> None:
    """Every container has requests and limits, runs as non-root on a read-only root file
    system without privilege escalation; Samsyn's long-running containers are probed on
    /healthz (liveness) and /readyz (readiness)."""
    for pod, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, pod
        assert spec.get("automountServiceAccountToken") is False, pod
        for c in spec["containers"]:
            where = f"{pod}/{c['name']}"
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            if c["name"] == "samsyn":
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", where


def test_k8s_router_has_opa_sidecar_with_verification_key() -> None:
    """API and router pods each carry an OPA that listens on loopback only and verifies the
    bundle's signature; routers get stable instance names (StatefulSet + pod name)."""
    specs = dict(pod_specs())
    for pod in ("samsyn-api", "samsyn-router"):
        [opa] = [c for c in specs[pod]["containers"] if c["name"] == "opa"]
        assert "--addr=127.0.0.1:8181" in opa["args"]
        assert any(a.startswith("--verification-key=") for a in opa["args"])
    kinds = {d["kind"] for _, d in k8s_documents() if d["metadata"]["name"] == "samsyn-router"}
    assert "StatefulSet" in kinds
    env = {e["name"]: e for e in specs["samsyn-router"]["containers"][0]["env"]}
    assert env["SAMSYN_ROUTER_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def _mebibytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Mi|MiB|Gi|GiB)", quantity)
    assert m is not None, quantity
    return int(m.group(1)) * (1024 if m.group(2).startswith("G") else 1)


def test_opa_collects_garbage_as_the_local_stack_does() -> None:
    """The OPA of the manifests runs with the local stack's GOGC (what the benchmark measures),
    and in Kubernetes with a GOMEMLIMIT below its container's memory limit."""
    local = re.search(r"SAMSYN_OPA_GOGC:-(\d+)", (REPO / "deploy/local/opa.sh").read_text())
    assert local is not None
    assert compose()["services"]["opa"]["environment"]["GOGC"] == local.group(1)
    specs = dict(pod_specs())
    for pod in ("samsyn-api", "samsyn-router"):
        [opa] = [c for c in specs[pod]["containers"] if c["name"] == "opa"]
        env = {e["name"]: e["value"] for e in opa["env"]}
        assert env["GOGC"] == local.group(1), pod
        limit = _mebibytes(opa["resources"]["limits"]["memory"])
        assert _mebibytes(env["GOMEMLIMIT"]) < limit, pod


def test_k8s_read_side_is_a_statefulset_of_static_members_without_opa() -> None:
    """The materializer and the sealer run in their own StatefulSet (not in the API pods),
    each pod a static member under its pod name (stable across restarts, never another pod's);
    no OPA sidecar (the read side decides nothing); probed on its own port."""
    specs = dict(pod_specs())
    kinds = {d["kind"] for _, d in k8s_documents() if d["metadata"]["name"] == "samsyn-read-side"}
    assert "StatefulSet" in kinds
    spec = specs["samsyn-read-side"]
    assert [c["name"] for c in spec["containers"]] == ["samsyn"]
    [samsyn] = spec["containers"]
    assert samsyn["args"] == ["worker", *READ_SIDE]
    env = {e["name"]: e for e in samsyn["env"]}
    assert json.loads(env["SAMSYN_WORKERS"]["value"]) == list(READ_SIDE)
    assert env["SAMSYN_WORKER_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert samsyn["readinessProbe"]["httpGet"]["port"] == "probes"
    [api] = [c for c in specs["samsyn-api"]["containers"] if c["name"] == "samsyn"]
    api_env = {e["name"]: e for e in api["env"]}
    assert not set(READ_SIDE) & set(json.loads(api_env["SAMSYN_WORKERS"]["value"]))
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "read-side.yaml" in kustomization["resources"]


def test_k8s_secrets_hold_placeholders_only() -> None:
    for _, doc in k8s_documents():
        if doc["kind"] == "Secret":
            for key, value in doc.get("stringData", {}).items():
                assert value.startswith("REPLACE") or value == "{}", f"{key} holds a value"
            assert "data" not in doc


def test_k8s_database_reachable_only_from_api_router_and_init() -> None:
    [db] = [
        d
        for _, d in k8s_documents()
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": "postgresql"}
    ]
    [rule] = db["spec"]["ingress"]
    [peer] = rule["from"]
    assert "namespaceSelector" not in peer
    [component] = [
        e
        for e in peer["podSelector"]["matchExpressions"]
        if e["key"] == "app.kubernetes.io/component"
    ]
    assert sorted(component["values"]) == ["api", "init", "read-side", "router"]
    assert [p["port"] for p in rule["ports"]] == [5432]
    default = [d for _, d in k8s_documents() if d["metadata"]["name"] == "default-deny-ingress"]
    assert [d["spec"]["podSelector"] for d in default] == [{}]


# ---- alert rules ----------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every sample name the registry knows (with _total, _bucket, … suffixes)."""
    return set(REGISTRY._names_to_collectors)


def test_alert_rules_structure_and_metrics() -> None:
    """A Prometheus rule file: groups with names and rules; every rule has alert, expr, a
    severity label and a summary; every samsyn_* metric in an expression is one Samsyn
    exports (a renamed metric would silently disarm its alert)."""
    rules = yaml.safe_load(ALERTS.read_text())
    assert set(rules) == {"groups"}
    exported = exported_metric_names()
    seen = set()
    for group in rules["groups"]:
        assert set(group) == {"name", "rules"}
        assert group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert rule["alert"] not in seen, f"duplicate alert {rule['alert']}"
            seen.add(rule["alert"])
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"])
            for metric in re.findall(r"\bsamsyn_[a-z_]+", rule["expr"]):
                assert metric in exported, f"{rule['alert']}: unknown metric {metric}"
    for wanted in (
        "SamsynRouterLagHigh",
        "SamsynOpaFailing",
        "SamsynAuditVerifyFailed",
        "SamsynHigh5xxRate",
        "SamsynDependencyDown",
    ):
        assert wanted in seen
