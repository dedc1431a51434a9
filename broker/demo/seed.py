"""``python -m broker.demo seed``: the Dalsland organisations and demo clients (idempotent).

Client credentials are printed once and kept in ``var/demo-clients.json`` (mode 600, ignored by
git) so that ``make demo`` can act as each organisation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from broker.demo.dalsland import organisations

CLIENTS_FILE = Path("var/demo-clients.json")


def admin_token(http: httpx.Client, url: str, admin: tuple[str, str]) -> str:
    r = http.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=admin)
    r.raise_for_status()
    return str(r.json()["access_token"])


def admin_from_env() -> tuple[str, str]:
    return os.environ["SAMSYN_ADMIN_CLIENT_ID"], os.environ["SAMSYN_ADMIN_CLIENT_SECRET"]


def seed(
    url: str, admin: tuple[str, str], clients_file: Path = CLIENTS_FILE, *, quiet: bool = False
) -> dict[str, Any]:
    """Create what is missing; return {org id: {client_id, client_secret}}."""
    known: dict[str, Any] = json.loads(clients_file.read_text()) if clients_file.exists() else {}
    created: list[str] = []
    with httpx.Client(timeout=30) as http:
        headers = {"Authorization": f"Bearer {admin_token(http, url, admin)}"}
        existing = {
            o["id"] for o in http.get(f"{url}/v1/admin/organisations", headers=headers).json()
        }
        for org in organisations():
            if org.id not in existing:
                r = http.post(
                    f"{url}/v1/admin/organisations",
                    headers=headers,
                    json={
                        "id": org.id,
                        "name": org.name,
                        "kind": org.kind,
                        "municipality": org.municipality,
                    },
                )
                r.raise_for_status()
            if org.id not in known:
                r = http.post(
                    f"{url}/v1/admin/clients",
                    headers=headers,
                    json={"org": org.id, "scopes": list(org.scopes)},
                )
                r.raise_for_status()
                body = r.json()
                known[org.id] = {
                    "client_id": body["client_id"],
                    "client_secret": body["client_secret"],
                }
                created.append(org.id)
    if created:
        clients_file.parent.mkdir(parents=True, exist_ok=True)
        clients_file.touch(mode=0o600)
        clients_file.write_text(json.dumps(known, indent=2))
    if quiet:
        return known
    if created:
        print("Demo-klienter skapade / demo clients created (visas en gång / shown once):")
        for org_id in created:
            print(f"  {org_id:24} {known[org_id]['client_id']}  {known[org_id]['client_secret']}")
        print(f"  (sparade i / kept in {clients_file})")
    else:
        print(f"Dalsland-demo redan sådd / already seeded: {len(known)} clients in {clients_file}")
    return known
