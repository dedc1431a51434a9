"""A Python client generated with openapi-python-client from the running /openapi.json, used as
an integrator would: a token, a relationship, a consent, an event, the feed."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Samsyn, child

pytestmark = [pytest.mark.integration, pytest.mark.one_database]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def generate(samsyn: Samsyn, where: Path) -> Any:
    """Generate the client package from the server's document; a warning (an operation or a
    model the generator had to leave out) fails the test."""
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--url",
            f"{samsyn.url}/openapi.json",
            "--meta",
            "none",
            "--output-path",
            str(where / "samsyn_client"),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # The generator formats its output with ruff, from PATH.
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("samsyn_client")
    finally:
        sys.path.remove(str(where))


def test_generated_client_registers_publishes_and_reads(samsyn: Samsyn, tmp_path: Path) -> None:
    sc = generate(samsyn, tmp_path)
    api = importlib.import_module("samsyn_client.api")
    m = importlib.import_module("samsyn_client.models")
    for name in ("auth.token", "relationships.create_relationship", "consents.create_consent"):
        importlib.import_module(f"samsyn_client.api.{name}")
    for name in ("events.publish", "events.event_status", "feed.feed"):
        importlib.import_module(f"samsyn_client.api.{name}")

    skola = samsyn.org("school", "1463")
    eh = samsyn.org("student_health", "1463")
    barn = child(10)

    def login(client_id: str, secret: str) -> Any:
        answer = api.auth.token.sync_detailed(
            client=sc.Client(base_url=samsyn.url),
            body=m.TokenBody(
                grant_type=m.TokenBodyGrantType.CLIENT_CREDENTIALS,
                client_id=client_id,
                client_secret=secret,
            ),
        )
        assert answer.status_code == 200, answer.content
        token = json.loads(answer.content)["access_token"]
        return sc.AuthenticatedClient(base_url=samsyn.url, token=token)

    school, health = login(skola.client_id, skola.secret), login(eh.client_id, eh.secret)
    since = datetime.now(UTC) - timedelta(days=30)
    for caller in (school, health):
        created = api.relationships.create_relationship.sync(
            client=caller,
            body=m.RelationshipRequest(
                subject=barn, role=m.RelationshipRequestRole.ENROLLED, valid_from=since
            ),
        )
        assert isinstance(created, m.Created), created

    consent = api.consents.create_consent.sync(
        client=school,
        body=m.ConsentRequest(
            subject=barn,
            given_by=[m.ConsentRequestGivenByItem(role=m.ConsentRequestGivenByItemRole.GUARDIAN)],
            scope=m.ConsentRequestScope(
                from_kinds=[m.ConsentRequestScopeFromKindsItem.SCHOOL],
                to_kinds=[m.ConsentRequestScopeToKindsItem.STUDENT_HEALTH],
                categories=[m.ConsentRequestScopeCategoriesItem.ATTENDANCE],
                purposes=[m.ConsentRequestScopePurposesItem.EARLY_SUPPORT],
            ),
            valid_from=since,
            valid_until=since + timedelta(days=365),
        ),
    )
    assert isinstance(consent, m.Created), consent

    event_id = str(uuid.uuid4())
    event = m.CloudEventAttendanceFlaggedV1(
        specversion="1.0",
        id=event_id,
        source=f"org/{skola.id}",
        type_="se.backabarnet.attendance.flagged.v1",
        subject=barn,
        time=datetime.now(UTC),
        datacontenttype="application/json",
        purpose=m.CloudEventAttendanceFlaggedV1Purpose.EARLY_SUPPORT,
        legalbasis=m.CloudEventAttendanceFlaggedV1Legalbasis.CONSENT,
        consentref=uuid.UUID(consent.id),
        data=m.EventDataAttendanceFlaggedV1(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), absence_percent=27.5
        ),
    )
    published = api.events.publish.sync_detailed(client=school, body=event)
    assert published.status_code == 202, published.content
    assert isinstance(published.parsed, m.AcceptedOut)
    assert published.parsed.id == event_id

    deadline = time.monotonic() + 60
    while (status := api.events.event_status.sync(client=school, event_id=event_id)).status != (
        "routed"
    ):
        assert time.monotonic() < deadline, "not routed in time"
        time.sleep(0.2)
    assert [(r.org, r.shared) for r in status.recipients] == [(eh.id, True)]

    page = api.feed.feed.sync(client=health, limit=500)
    assert isinstance(page, m.FeedPage), page
    (item,) = [i for i in page.items if i.event_id == event_id]
    assert item.type_ == "se.backabarnet.attendance.flagged.v1"
    assert item.subject == barn
    assert item.legal_ground == "consent"
