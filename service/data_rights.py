"""Erasure of one person's comments (a data request), whatever is submitted meanwhile.

The author's comment set is how a person's comments are found. A submission of the same email
may be stored while an erasure runs, its id joining the set after the erasure read it; an
erasure that then dropped the set would leave that comment (and its encrypted email) found by
no later export or erasure, and never purged if pending. So the erasure ends with one atomic
step that forgets the author only if nothing is listed any more, and otherwise hands back what
is, to be erased in another round. A submission stored after that step starts a new set, which
the next export or erasure finds. The submission itself is never refused or answered
differently: no answer may tell that an email was erased.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from .documents import render_public
from .events import COMMENT_ERASED
from .states import Status
from .store import CommentStore

log = logging.getLogger(__name__)
ANONYMOUS = "Anonymous"
# Each round erases what was listed when it began; only a stream of the same person's
# submissions, each stored within the previous round, could need the next. Past this many the
# rest stays listed (never orphaned), for the next request to find.
MAX_ROUNDS = 10
ACTOR = "data-request"  # the events' actor


@dataclass(frozen=True)
class Erasure:
    deleted: int
    anonymised: int


def erase_author(store: CommentStore, email_hash: str, *, anonymise_published: bool) -> Erasure:
    """Delete every comment of the author, or with ``anonymise_published`` keep the published
    ones' text under :data:`ANONYMOUS` with no tie to them; then forget the author. Their
    commenter keys stop working first, so no submission racing the erasure is trusted."""
    store.revoke_commenters(email_hash)
    deleted = anonymised = 0
    ids = store.author_comment_ids(email_hash)
    for _ in range(MAX_ROUNDS):
        for comment in store.comments(ids):
            if anonymise_published and comment.status == Status.APPROVED:
                public = replace(comment.public(), name=ANONYMOUS, website=None)
                anonymised += store.anonymise(
                    comment, ANONYMOUS, render_public(public), actor=ACTOR
                )
            else:
                deleted += store.delete(comment, actor=ACTOR, kind=COMMENT_ERASED)
        ids = store.forget_author(email_hash, ids)
        if not ids:
            return Erasure(deleted=deleted, anonymised=anonymised)
    log.warning("erasure: the author's comments kept arriving; %d left listed", len(ids))
    return Erasure(deleted=deleted, anonymised=anonymised)
