"""Authors edit or delete their own comments, with the edit token their submission's answer
carried, within the policy's ``edit_window_seconds`` of posting.

The token is random, shown once (in the 201/202 answer), and stored only as a keyed hash in the
comment's record, so it is bound to that comment and useless to anyone who reads the store. An
edit runs the policy's content rules again on the new words: an approved comment edited into
something the policy holds goes back to the queue with its reasons (or to spam); otherwise the
comment keeps its status. Each edit keeps the words it replaced in the record's ``edits`` for
moderators. After the window, or with edits switched off (``edit_window_seconds: 0``), both
answer 403 with the window's end.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace

from .clock import iso_from_ms, now_ms, parse_iso_ms
from .documents import render_public
from .domain_errors import (
    AuthorVersionMismatch,
    CommentNotFound,
    EditTokenInvalid,
    EditWindowClosed,
)
from .hashing import Hasher
from .ids import is_valid_id
from .models import HistoryEntry, StoredComment
from .moderation.policy import (
    Action,
    Policy,
    ProfanityFinder,
    Submission,
    Verdict,
    evaluate_standings,
)
from .policy_terms import submission_term_hashes
from .states import Status
from .store import CommentStore, VersionMismatch
from .submissions import load_policy

AUTHOR_ACTOR = "author"
ATTEMPTS = 3
# Reasons an edit does not clear: they are about the comment's readers, not its words.
_KEPT_REASONS = ("reported",)


@dataclass(frozen=True)
class EditRequest:
    comment_id: str
    token: str
    name: str | None
    comment: str | None
    website: str | None
    website_given: bool  # an explicit null removes the website
    client_ip: str
    accepted_versions: tuple[int, ...] | None = None  # If-Match


class AuthorEdits:
    def __init__(self, store: CommentStore, hasher: Hasher, profanity: ProfanityFinder) -> None:
        self.store = store
        self.hasher = hasher
        self.profanity = profanity

    def edit(self, request: EditRequest) -> StoredComment:
        for _ in range(ATTEMPTS):
            comment, policy = self._authorised(request.comment_id, request.token)
            if request.accepted_versions is not None and (
                comment.version not in request.accepted_versions
            ):
                raise AuthorVersionMismatch(comment.version)
            edited = self._judged(comment, request, policy)
            if edited is None:
                return comment  # nothing changed
            moment = now_ms()
            at = iso_from_ms(moment)
            entry = HistoryEntry(at=at, actor=AUTHOR_ACTOR, to=edited.status, note="edited")
            try:
                stored = self.store.edit(
                    comment, edited, render_public(edited.public()), entry, moment, at
                )
            except VersionMismatch as moved:
                if request.accepted_versions is not None:
                    raise AuthorVersionMismatch(moved.current.version) from None
                continue  # a moderator decided meanwhile: judge the edit again on that
            if stored is None:
                raise CommentNotFound()
            return stored
        raise AuthorVersionMismatch(comment.version)

    def delete(self, comment_id: str, token: str) -> None:
        comment, _ = self._authorised(comment_id, token)
        self.store.delete(comment, actor=AUTHOR_ACTOR)  # its event: comment.deleted by the author

    def _authorised(self, comment_id: str, token: str) -> tuple[StoredComment, Policy]:
        comment = self.store.get(comment_id) if is_valid_id(comment_id) else None
        if comment is None:
            raise CommentNotFound()
        expected = comment.edit_token_hash
        if not expected or not hmac.compare_digest(self.hasher.edit_token(token), expected):
            raise EditTokenInvalid()
        policy = load_policy(self.store.submission_settings(comment.article_id).policy_json)
        ends = parse_iso_ms(comment.created_at) + policy.edit_window_seconds * 1000
        if policy.edit_window_seconds == 0 or now_ms() > ends:
            raise EditWindowClosed(iso_from_ms(ends))
        return comment, policy

    def _judged(
        self, comment: StoredComment, request: EditRequest, policy: Policy
    ) -> StoredComment | None:
        """The comment with the new words, the status and the reasons the policy gives them;
        None when the words did not change."""
        name = request.name if request.name is not None else comment.name
        text = request.comment if request.comment is not None else comment.comment
        website = request.website if request.website_given else comment.website
        if (name, text, website) == (comment.name, comment.comment, comment.website):
            return None
        email_hash, ip_hash = submission_term_hashes(
            policy, self.hasher, comment.email, request.client_ip
        )
        verdicts = evaluate_standings(
            Submission(
                name=name,
                email=comment.email,
                comment=text,
                website=website,
                client_ip=request.client_ip,
                email_term_hash=email_hash,
                ip_term_hash=ip_hash,
            ),
            now_ms(),
            policy,
            self.profanity,
        )
        # The words are judged, not the author again: a trusted standing's verdict has only
        # the content rules' reasons (under pre-moderation every edit is held again).
        verdict = verdicts.trusted or verdicts.untrusted
        kept = tuple(r for r in comment.reasons if r["code"] in _KEPT_REASONS)
        reasons = tuple(r.as_dict() for r in verdict.reasons) + kept
        return replace(
            comment,
            name=name,
            comment=text,
            website=website,
            status=_status_after(comment.status, verdict),
            reasons=reasons,
        )


def _status_after(current: str, verdict: Verdict) -> str:
    """Approved words keep the status they had; held or spam words take an approved comment
    back to review (or spam) and a pending one to spam; a rejected or spam comment stays so."""
    if current in (Status.REJECTED, Status.SPAM) or verdict.action is Action.APPROVE:
        return current
    if verdict.action is Action.HOLD:
        return Status.PENDING.value
    return Status.SPAM.value
