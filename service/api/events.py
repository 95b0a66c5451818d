"""The event log for moderators and integrations that prefer to pull:
``GET /api/v1/moderation/events?after=<id>&limit=``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from ..events import is_stream_id, render_event
from ..schemas import QueryInteger
from .auth import MODERATION_PREFIX, moderators_only
from .context import services
from .requests import query_args
from .responses import json_response

bp = moderators_only(Blueprint("events", __name__, url_prefix=MODERATION_PREFIX))


class EventPageArgsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    after = fields.String(load_default=None)
    limit = QueryInteger(load_default=100, validate=validate.Range(min=1, max=1000))

    @validates("after")
    def _stream_id(self, value: str | None, **kwargs: Any) -> None:
        if value is not None and not is_stream_id(value):
            raise ValidationError("Not an event id (<milliseconds>-<sequence>[~<stream>]).")


_args = EventPageArgsSchema()


@bp.get("/events")
def list_events() -> Response:
    args = _args.load(query_args(request.query_string))
    found = services().store.events_after(args["after"], args["limit"])
    events = [render_event(e.event_id, e.fields, e.text) for e in found]
    # The next page starts after the last event shown; with none, after the same id again.
    return json_response(
        {"events": events, "next_after": events[-1]["id"] if events else args["after"]}
    )
