"""Campaigns (service/moderation/campaigns.py) for moderators: list one, decide it in bulk."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import states
from ..documents import moderator_view
from ..domain_errors import CommentNotFound, DomainError
from ..ids import is_valid_id
from ..schemas import DecisionSchema
from .auth import MODERATION_PREFIX, moderators_only
from .context import services
from .moderation import decide_comment
from .requests import json_body
from .responses import json_response

bp = moderators_only(Blueprint("campaigns", __name__, url_prefix=MODERATION_PREFIX))
_decision = DecisionSchema()


@bp.get("/campaigns/<campaign_id>")
def get_campaign(campaign_id: str) -> Response:
    store = services().store
    comments = [c for i in _members(campaign_id) if (c := store.get(i)) is not None]
    return json_response(
        {"campaign_id": campaign_id, "comments": [moderator_view(c) for c in comments]}
    )


@bp.post(f"/campaigns/<campaign_id>/<any({', '.join(states.DECISIONS)}):decision>")
def decide_campaign(campaign_id: str, decision: str) -> Response:
    """One decision for every comment of the campaign (those deleted meanwhile are skipped)."""
    note: str = _decision.load(json_body(request, allow_empty=True))["note"]
    target = states.DECISIONS[decision].value
    decided: list[str] = []
    for member in _members(campaign_id):
        try:
            decide_comment(member, target, note)
        except DomainError:
            continue  # gone, or changed twice under the decision: not decided
        decided.append(member)
    return json_response({"campaign_id": campaign_id, "status": target, "decided": decided})


def _members(campaign_id: str) -> list[str]:
    members = services().store.campaign_members(campaign_id) if is_valid_id(campaign_id) else []
    if not members:
        raise CommentNotFound()
    return members
