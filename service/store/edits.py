"""Authors' edits of their own comments: new words in place, the old ones kept for moderators,
status and reasons as the policy judged the new words; one script, on the version read, which
appends the edit's event (``comment.edited``, service/events.py)."""

from __future__ import annotations

import json
from typing import Any, cast

from ..events import comment_subject, comment_text
from ..models import HistoryEntry, StoredComment
from ..states import STATUSES
from .decisions import VersionMismatch
from .records import RecordLoader, compact, status_rule_args

_RULE_ARGS = status_rule_args(stamps=False)


class Edits(RecordLoader):
    def edit(
        self,
        comment: StoredComment,
        edited: StoredComment,
        public_json: str,
        entry: HistoryEntry,
        now_ms: int,
        now_iso: str,
    ) -> StoredComment | None:
        """Store ``edited`` (the words, status and reasons after the edit) over ``comment``
        (as read), only if that is still the stored version (else :class:`VersionMismatch`);
        None when it no longer exists."""
        k = self.keys
        placed = k.index_groups(comment.article_id, edited.reason_codes)
        gone = [c for c in comment.reason_codes if c not in edited.reason_codes]
        bucket = k.bucket(comment.article_id)
        cleared = [k.reason_status_index(code, s, bucket) for code in gone for s in STATUSES]
        touched = [k.comment(comment.id), k.article_public(comment.article_id), k.retention(bucket)]
        event_keys = [k.events(comment.article_id), k.event_content(comment.article_id, comment.id)]
        reply = self._edit(
            keys=[*touched, *placed, *cleared, *event_keys],
            args=[
                comment.id,
                comment.version,
                now_ms,
                now_iso,
                compact(edited.content()),
                public_json,
                edited.status,
                compact(list(edited.reasons)),
                entry.to_json(),
                len(placed) // len(STATUSES),
                len(STATUSES),
                *_RULE_ARGS,
                # Its event: who, which comment, the log's retention, the words it now shows.
                entry.actor,
                comment_subject(edited),
                *self.event_retention.script_args(now_ms, per_bucket=True),
                comment_text(edited.name, edited.comment, edited.website),
            ],
        )
        if reply is None:
            return None
        outcome, raw, doc = cast(list[Any], reply)
        found = self._decode(comment.id, json.loads(raw), doc)
        if int(outcome) == -1:
            raise VersionMismatch(found)
        self._changed(*touched, *placed, *cleared)
        return found
