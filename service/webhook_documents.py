"""The webhook API's documents (input schemas beside the renderers), and what a delivery
sends: the Standard Webhooks body ``{type, timestamp, data}`` or a chat message."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from .events import EVENT_TYPES
from .schemas import JsonBoolean, ObjectSchema, QueryInteger
from .webhooks import FORMATS, Endpoint


class WebhookCreateSchema(ObjectSchema):
    # The URL's form and address are checked by webhooks.check_url (it depends on
    # WEBHOOK_ALLOW_PRIVATE), in the view.
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        load_default=list,
        validate=validate.Length(max=len(EVENT_TYPES)),
    )
    enabled = JsonBoolean(load_default=True)
    format = fields.String(load_default="standard", validate=validate.OneOf(FORMATS))
    description = fields.String(load_default="", validate=validate.Length(max=200))


class WebhookPatchSchema(ObjectSchema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(max=len(EVENT_TYPES)),
    )
    enabled = JsonBoolean()
    format = fields.String(validate=validate.OneOf(FORMATS))
    description = fields.String(validate=validate.Length(max=200))
    rotate_secret = JsonBoolean()


class DeliveryArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = QueryInteger(load_default=50, validate=validate.Range(min=1, max=1000))


def webhook_view(
    endpoint: Endpoint, status: dict[str, Any], secret: str | None = None
) -> dict[str, Any]:
    """The ``Webhook`` document; ``secret`` only in the answer that created or rotated it."""
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "format": endpoint.format,
        "description": endpoint.description,
        "created_at": endpoint.created_at,
        **status,
    }
    if secret is not None:
        view["secret"] = secret
    return view


def standard_body(event: dict[str, Any]) -> str:
    """The Standard Webhooks payload of one event."""
    return json.dumps(
        {"type": event["type"], "timestamp": event["at"], "data": event},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def chat_body(event: dict[str, Any], console_url: str) -> str:
    """A chat message (Slack, Mattermost, Teams incoming webhooks): ``{"text": ...}``."""
    comment = event.get("comment")
    if comment:
        reasons = ", ".join(r.get("code", "") for r in event.get("reasons", [])) or "none"
        held = " is waiting for moderation" if comment.get("status") == "pending" else ""
        text = (
            f"{event['type']}: comment {comment['id']} on {comment['article_id']} by "
            f"{comment.get('name') or 'someone'}{held} (reasons: {reasons}). {console_url}"
        )
    elif "article" in event:
        text = f"{event['type']}: article {event['article']['id']} ({event['actor']})"
    elif "token" in event:
        text = f"{event['type']}: moderator {event['token']['moderator']} ({event['actor']})"
    else:
        text = f"{event['type']} ({event['actor']})"
    return json.dumps({"text": text}, ensure_ascii=False)
