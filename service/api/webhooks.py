"""Webhook endpoints, managed by moderators: ``/api/v1/moderation/webhooks`` (create, list,
read, change, rotate the secret, delete), their delivery log and the replay of dead letters.
Deliveries themselves are the delivery worker's (service/delivery/)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request
from marshmallow import ValidationError

from ..clock import iso_from_ms, now_ms
from ..domain_errors import WebhookNotFound
from ..ids import is_valid_id, new_id
from ..webhook_documents import (
    DeliveryArgsSchema,
    WebhookCreateSchema,
    WebhookPatchSchema,
    webhook_view,
)
from ..webhooks import Endpoint, Secret, UnsafeUrl, check_url, new_secret
from .auth import MODERATION_PREFIX, moderators_only
from .context import services
from .requests import json_body, query_args
from .responses import json_response

bp = moderators_only(Blueprint("webhooks", __name__, url_prefix=MODERATION_PREFIX))
_create = WebhookCreateSchema()
_patch = WebhookPatchSchema()
_delivery_args = DeliveryArgsSchema()
SECRET_PURPOSE = "webhook-secret"


@bp.post("/webhooks")
def create_webhook() -> Response:
    svc = services()
    body = _create.load(json_body(request))
    _check_url(body["url"])
    moment = now_ms()
    secret = new_secret()
    endpoint = Endpoint(
        id=new_id(moment),
        url=body["url"],
        event_types=tuple(dict.fromkeys(body["event_types"])),
        enabled=body["enabled"],
        format=body["format"],
        description=body["description"],
        created_at=iso_from_ms(moment),
        created_ms=moment,
        secrets=(Secret(svc.store.cipher.encrypt(secret, SECRET_PURPOSE)),),
    )
    svc.store.save_webhook(endpoint)
    response = json_response(_view(endpoint, secret), status=201)
    response.headers["Location"] = f"{MODERATION_PREFIX}/webhooks/{endpoint.id}"
    return response


@bp.get("/webhooks")
def list_webhooks() -> Response:
    return json_response({"webhooks": [_view(e) for e in services().store.webhook_list()]})


@bp.get("/webhooks/<webhook_id>")
def get_webhook(webhook_id: str) -> Response:
    return json_response(_view(_load(webhook_id)))


@bp.patch("/webhooks/<webhook_id>")
def patch_webhook(webhook_id: str) -> Response:
    svc = services()
    _load(webhook_id)
    body: dict[str, Any] = _patch.load(json_body(request))
    if "url" in body:
        _check_url(body["url"])
    rotate = body.pop("rotate_secret", False)
    secret = new_secret() if rotate else None
    grace_ms = svc.config.webhook_secret_grace_seconds * 1000

    def change(endpoint: Endpoint) -> Endpoint:
        if "event_types" in body:
            body["event_types"] = tuple(dict.fromkeys(body["event_types"]))
        changed = replace(endpoint, **body)
        if secret is not None:
            encrypted = svc.store.cipher.encrypt(secret, SECRET_PURPOSE)
            changed = changed.rotated(encrypted, now_ms(), grace_ms)
        return changed

    updated = svc.store.update_webhook(webhook_id, change)
    if updated is None:
        raise WebhookNotFound()
    return json_response(_view(updated, secret))


@bp.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str) -> Response:
    if not is_valid_id(webhook_id) or not services().store.delete_webhook(webhook_id):
        raise WebhookNotFound()
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


@bp.post("/webhooks/<webhook_id>/replay")
def replay(webhook_id: str) -> Response:
    _load(webhook_id)
    return json_response({"replayed": services().store.replay_dead(webhook_id)})


@bp.get("/webhooks/<webhook_id>/deliveries")
def deliveries(webhook_id: str) -> Response:
    _load(webhook_id)
    limit = _delivery_args.load(query_args(request.query_string))["limit"]
    return json_response({"deliveries": services().store.webhook_deliveries(webhook_id, limit)})


def _view(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    return webhook_view(endpoint, services().store.webhook_status(endpoint.id), secret)


def _load(webhook_id: str) -> Endpoint:
    endpoint = services().store.webhook(webhook_id) if is_valid_id(webhook_id) else None
    if endpoint is None:
        raise WebhookNotFound()
    return endpoint


def _check_url(url: str) -> None:
    try:
        check_url(url, allow_private=services().config.webhook_allow_private)
    except UnsafeUrl as error:
        raise ValidationError({"url": [str(error)]}) from None
