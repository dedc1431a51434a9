"""``PUT``, ``GET`` and ``DELETE /v1/webhook``: the caller organisation's push endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from broker.audit.records import record
from broker.auth.deps import FeedReader, StateDep
from broker.infra.db import transaction
from broker.records import AuditAction
from broker.web.openapi import PROBLEMS
from consumers.webhooks import service

router = APIRouter(tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="Where to POST new feed items")


class WebhookOut(BaseModel):
    url: str
    registered_at: str
    pending: int = Field(description="Pushes waiting for a 2xx answer")
    failed: int = Field(description="Pushes given up after the last attempt (still in the feed)")


class WebhookRegistered(BaseModel):
    url: str
    secret: str = Field(description="The signing key: shown this once, keep it")


@router.put(
    "/v1/webhook",
    response_model=WebhookRegistered,
    responses={**PROBLEMS, 201: {"description": "Registered", "model": WebhookRegistered}},
)
async def put_webhook(
    body: WebhookIn, caller: FeedReader, state: StateDep, response: Response
) -> Any:
    """Push the caller organisation's new feed items to ``url``; answers a new signing secret."""
    url = service.check_url(body.url, env=state.settings.env)
    async with transaction(state.sessions) as session:
        done = await service.register(session, org=caller.org, url=url)
        await state.emit_audit(
            record(
                action=AuditAction.WEBHOOK_REGISTER,
                outcome="ok",
                actor_org=caller.org,
                actor_client=caller.client_id,
                recipient_org=caller.org,
                reasons=[f"url:{url}"],
            )
        )
    response.status_code = 201 if done.created else 200
    return {"url": done.webhook.url, "secret": done.webhook.secret}


@router.get("/v1/webhook", response_model=WebhookOut, responses=PROBLEMS)
async def get_webhook(caller: FeedReader, state: StateDep) -> Any:
    """The caller organisation's webhook (never its secret) and its push backlog."""
    async with state.sessions() as session:
        found = await service.status(session, org=caller.org)
    return {
        "url": found.webhook.url,
        "registered_at": found.webhook.updated_at.isoformat().replace("+00:00", "Z"),
        "pending": found.pending,
        "failed": found.failed,
    }


@router.delete("/v1/webhook", status_code=204, responses=PROBLEMS)
async def delete_webhook(caller: FeedReader, state: StateDep) -> Response:
    """Stop pushing; pushes still waiting are dropped (the items stay in the feed)."""
    async with transaction(state.sessions) as session:
        hook = await service.remove(session, org=caller.org)
        await state.emit_audit(
            record(
                action=AuditAction.WEBHOOK_REMOVE,
                outcome="ok",
                actor_org=caller.org,
                actor_client=caller.client_id,
                recipient_org=caller.org,
                reasons=[f"url:{hook.url}"],
            )
        )
    return Response(status_code=204)
