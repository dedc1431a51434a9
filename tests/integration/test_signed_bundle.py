"""Signed policy bundles (deploy/local/opa-signed.sh): OPA given a verification key serves a
bundle signed with the matching private key, and its revision lands in the audit records; an
unsigned bundle and a signed bundle changed after signing are refused, and a router whose OPA
has no verified bundle holds every event (fail closed) until one arrives."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kit import REPO, Org, Samsyn, audit_for, child, free_port, opa_binary, start_samsyn

pytestmark = [pytest.mark.integration, pytest.mark.stack_security]

SCRIPT = REPO / "deploy/local/opa-signed.sh"


@dataclass(frozen=True)
class Bundles:
    revision: str
    public_key: Path
    signed: Path
    unsigned: Path
    tampered: Path


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {
            m.name.lstrip("/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _pack(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo("/" + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """A bundle signed by opa-signed.sh (a revision of its own, so the audit check cannot pass by
    accident) and two bad copies: without .signatures.json, and with a data file changed after
    signing (mandatory reports would also go to the police)."""
    tmp = tmp_path_factory.mktemp("bundles")
    revision = f"signed-test-{uuid.uuid4().hex[:8]}"
    env = {"SAMSYN_POLICY_REVISION": revision, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    public_key = Path(
        subprocess.run(
            [str(SCRIPT), "keys"], check=True, capture_output=True, text=True, env=env
        ).stdout.strip()
    )
    signed = tmp / "signed.tar.gz"
    subprocess.run([str(SCRIPT), "build", str(signed)], check=True, env=env)
    members = _members(signed)
    assert json.loads(members[".manifest"])["revision"] == revision
    unsigned = _pack(
        tmp / "unsigned.tar.gz", {k: v for k, v in members.items() if k != ".signatures.json"}
    )
    data = json.loads(members["data.json"])
    data["data"]["grounds"]["mandatory_report"]["recipient_kinds"].append("police")
    tampered = _pack(tmp / "tampered.tar.gz", {**members, "data.json": json.dumps(data).encode()})
    return Bundles(revision, public_key, signed, unsigned, tampered)


class VerifyingOpa:
    """A private OPA on a free port. ``file`` mode: ``--bundle <file> --verification-key``, as
    opa-signed.sh and the compose file run it. ``download`` mode: OPA polls a bundle server and
    checks the signature with the key from its config, as a Kubernetes sidecar would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "opa.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> int | None:
        try:
            return httpx.get(self.url + "/health?bundles", timeout=1).status_code
        except httpx.TransportError:
            return None

    def _run(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{self.port}", *args],
            cwd=self.workdir,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def run_file(self, bundle: Path, public_key: Path) -> None:
        # The file is named "samsyn" so that provenance names the bundle "samsyn".
        (self.workdir / "samsyn").write_bytes(bundle.read_bytes())
        self._run(
            "--bundle", "samsyn", "--verification-key", str(public_key), "--signing-alg", "RS256",
            "--set", "decision_logs.console=true",
            "--set", "decision_logs.drop_decision=/system/log/drop",
        )  # fmt: skip

    def run_download(self, server_url: str, public_key: Path) -> None:
        config = {
            "services": {"bundles": {"url": server_url}},
            "bundles": {
                "samsyn": {
                    "service": "bundles",
                    "resource": "samsyn.tar.gz",
                    "polling": {"min_delay_seconds": 1, "max_delay_seconds": 2},
                    "signing": {"keyid": "samsyn-bundle"},
                }
            },
            "keys": {"samsyn-bundle": {"algorithm": "RS256", "key": public_key.read_text()}},
            "decision_logs": {"console": True, "drop_decision": "/system/log/drop"},
        }
        (self.workdir / "config.json").write_text(json.dumps(config))
        self._run("--config-file", "config.json")

    def wait_health(self, status: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.health() != status:
            assert time.monotonic() < deadline, f"OPA /health?bundles not {status}: {self.logs()}"
            time.sleep(0.1)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def opa(tmp_path: Path) -> Iterator[VerifyingOpa]:
    o = VerifyingOpa(tmp_path / "opa")
    yield o
    o.stop()


class BundleServer:
    """A bundle server: serves one directory over HTTP on 127.0.0.1 from a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, bundle: Path) -> None:
        tmp = self.root / "samsyn.tar.gz.tmp"
        tmp.write_bytes(bundle.read_bytes())
        tmp.replace(self.root / "samsyn.tar.gz")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def report(skola: Org, barn: str) -> dict[str, Any]:
    return skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def samsyn_on(stack: dict[str, str], opa_url: str, tmp: Path) -> Samsyn:
    return start_samsyn({**stack, "SAMSYN_OPA_URL": opa_url}, f"sqlite+aiosqlite:///{tmp}/s.db")


def test_signed_bundle_is_served_and_its_revision_audited(
    stack: dict[str, str], bundles: Bundles, opa: VerifyingOpa, tmp_path: Path
) -> None:
    """OPA with --verification-key activates the signed bundle; a routed event's audit record
    carries that bundle's revision; the bundle records the check of its data."""
    opa.run_file(bundles.signed, bundles.public_key)
    opa.wait_health(200)
    # opa build rewrote the data into one file: the check's record still names this data.
    recorded = httpx.post(opa.url + "/v1/data/samsyn/ceiling/data_check_recorded", json={})
    assert recorded.json()["result"] is True
    samsyn = samsyn_on(stack, opa.url, tmp_path)
    try:
        skola, soc = samsyn.org("school", "1460"), samsyn.org("social_services", "1460")
        polis = samsyn.org("police")
        barn = child(7)
        polis.relate(barn, "case_open")
        env = report(skola, barn)
        status = skola.publish(env)
        assert {r["org"]: r["shared"] for r in status["recipients"]} == {
            soc.id: True,
            polis.id: False,
        }
        [record] = audit_for(samsyn, str(env["id"]), 1, recipient_org=soc.id)
        assert record["outcome"] == "allow"
        assert record["policy_revision"] == f"samsyn@{bundles.revision}"
    finally:
        samsyn.stop()


@pytest.mark.parametrize(
    ("which", "complaint"),
    [("unsigned", "missing .signatures.json"), ("tampered", "digest mismatch")],
)
def test_bad_bundle_file_is_refused(
    bundles: Bundles, opa: VerifyingOpa, which: str, complaint: str
) -> None:
    """Given a bundle file without a signature, or whose data changed after signing, OPA with a
    verification key does not activate it: it exits at start and never answers healthy."""
    opa.run_file(getattr(bundles, which), bundles.public_key)
    assert opa.proc is not None
    assert opa.proc.wait(timeout=20) != 0
    assert complaint in opa.logs()
    assert opa.health() is None


def test_router_stays_fail_closed_on_refused_bundles(
    stack: dict[str, str], bundles: Bundles, opa: VerifyingOpa, tmp_path: Path
) -> None:
    """OPA pulls its bundle from a bundle server (as a sidecar would). It restarts while the
    server offers an unsigned bundle, and again while it offers a tampered one: each time OPA
    runs without policy (/health?bundles 500), Samsyn is not ready, accepted events stay pending
    and nothing is delivered. Once the signed bundle is published again, each held event is
    delivered exactly once under the signed revision, and never by the tampered data (which
    would also send reports to the police, related to every child here)."""
    root = tmp_path / "served"
    root.mkdir()
    server = BundleServer(root)
    samsyn: Samsyn | None = None
    try:
        server.publish(bundles.signed)
        opa.run_download(server.url, bundles.public_key)
        opa.wait_health(200)
        samsyn = samsyn_on(stack, opa.url, tmp_path)
        skola, soc = samsyn.org("school", "1438"), samsyn.org("social_services", "1438")
        polis = samsyn.org("police")
        skola.publish(report(skola, child(9)))  # routing works with the signed bundle

        held: list[str] = []
        for bad in (bundles.unsigned, bundles.tampered):
            opa.stop()
            server.publish(bad)
            opa.run_download(server.url, bundles.public_key)
            opa.wait_health(500)
            for _ in range(3):
                barn = child(9)
                polis.relate(barn, "case_open")
                env = report(skola, barn)
                assert skola.call("POST", "/v1/events", json=env).status_code == 202
                held.append(str(env["id"]))
            time.sleep(3)
            assert opa.health() == 500, f"OPA activated a bad bundle ({bad.name})"
            for event_id in held:
                assert skola.call("GET", f"/v1/events/{event_id}").json()["status"] == "pending"
            assert not [i for i in soc.feed() if i["event_id"] in held], "disclosed"
            assert not [i for i in polis.feed() if i["event_id"] in held], "disclosed"
            ready = samsyn.call("GET", "/readyz")
            assert ready.status_code == 503, ready.text
            assert "opa" in ready.json()["detail"]

        server.publish(bundles.signed)
        opa.wait_health(200)
        for event_id in held:
            skola.wait_routed(event_id)
        delivered = Counter(i["event_id"] for i in soc.feed() if i["event_id"] in held)
        assert set(delivered) == set(held)
        assert set(delivered.values()) == {1}
        assert not [i for i in polis.feed() if i["event_id"] in held]
        records = audit_for(samsyn, held[-1], 2)
        assert {r["policy_revision"] for r in records} == {f"samsyn@{bundles.revision}"}
    finally:
        if samsyn is not None:
            samsyn.stop()
        server.close()
