"""The shared vocabulary: what a stored comment is, and the part of it anyone may see.

A :class:`PublicComment` has no email attribute at all, so a public serializer handed one cannot
leak an address: privacy holds by the type, not by remembering to drop a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import json_text
from .states import rule


@dataclass(frozen=True)
class PublicComment:
    id: str
    article_id: str
    parent_id: str | None
    name: str
    comment: str
    website: str | None
    created_at: str


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    actor: str
    to: str
    from_: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, str | None]:
        return {
            "at": self.at,
            "actor": self.actor,
            "from": self.from_,
            "to": self.to,
            "note": self.note,
        }

    def to_json(self) -> str:
        return json_text.compact(self.as_dict())

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> HistoryEntry:
        previous = doc.get("from")
        return cls(
            at=doc["at"],
            actor=doc["actor"],
            to=doc["to"],
            from_=previous if isinstance(previous, str) else None,
            note=doc.get("note") or "",
        )


MODERATOR_ACTOR = "moderator:"


@dataclass(frozen=True)
class StoredComment:
    """A comment with everything the service keeps about it.

    In Redis it is one JSON string (see store/keys.py): status, the email (encrypted by the
    store), its keyed hash, the policy's reasons and the whole history; plus the commenter's
    content (name, text, website, parent, time) while the comment is not published. A published
    comment's content lives only in its article's public document, so a page and the record
    never hold the same text twice (memory is a measured budget: see bench/scale_bench.py).
    ``updated_at`` and ``decided_*`` are derived from the history when read.
    """

    id: str
    article_id: str
    name: str
    email: str
    comment: str
    status: str
    created_at: str
    updated_at: str
    parent_id: str | None = None
    website: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None
    # Keyed hash of the email: finds the author's record without storing the address twice.
    email_hash: str = ""
    # The commenter key's record that sent it (service/commenter_keys.py): a decision credits
    # or debits that key. Shown to no one.
    commenter_id: str = ""
    # What the policy found, each {code, detail, action}; shown to moderators only.
    reasons: tuple[dict[str, str], ...] = ()
    history: tuple[HistoryEntry, ...] = field(default=())
    # Where an imported comment came from ("wordpress:<site>:<comment id>", ...): kept with it
    # so an export carries it and a later import of the same source finds it.
    source: str = ""
    # Erased by its author's request, its text kept (service/data_rights.py).
    anonymised: bool = False
    # Incremented by every change the store's scripts make (a decision, an edit, an
    # anonymisation): moderators' ETags, and what If-Match compares. Records stored before
    # versions existed read as version 1.
    version: int = 1
    # The keyed hash of the edit token its author was handed (service/author_edits.py); the
    # token itself is stored nowhere. Shown to no one.
    edit_token_hash: str = ""
    # The earlier versions of the author's own words, oldest first (each the text an edit
    # replaced: version, at, name, comment, website); shown to moderators only.
    edits: tuple[dict[str, Any], ...] = ()

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r["code"] for r in self.reasons))

    def public(self) -> PublicComment:
        return PublicComment(
            id=self.id,
            article_id=self.article_id,
            parent_id=self.parent_id,
            name=self.name,
            comment=self.comment,
            website=self.website,
            created_at=self.created_at,
        )

    def content(self) -> dict[str, str | None]:
        """The commenter's own words and details, as kept while the comment is unpublished."""
        return {
            "name": self.name,
            "comment": self.comment,
            "website": self.website,
            "parent_id": self.parent_id,
            "created_at": self.created_at,
        }

    def to_record(self) -> dict[str, Any]:
        """The stored form of a new comment (the store encrypts ``email`` before writing)."""
        record: dict[str, Any] = {
            "article_id": self.article_id,
            "status": self.status,
            "email": self.email,
            "email_hash": self.email_hash,
            "reasons": list(self.reasons),
            "history": [h.as_dict() for h in self.history],
            "version": self.version,
        }
        if self.edit_token_hash:
            record["edit_token"] = self.edit_token_hash
        if self.edits:
            record["edits"] = list(self.edits)
        if not rule(self.status).public:
            record["content"] = self.content()
        if self.commenter_id:
            record["commenter"] = self.commenter_id
        if self.source:
            record["source"] = self.source
        if self.anonymised:
            record["anonymised"] = True
        return record

    @classmethod
    def from_record(
        cls, comment_id: str, record: dict[str, Any], public_doc: dict[str, Any] | None = None
    ) -> StoredComment:
        content = record.get("content") or public_doc
        if content is None:
            raise ValueError(f"comment {comment_id} has no content and no public document")
        # Lua's cjson writes an empty array as {}: both mean "none".
        history = tuple(HistoryEntry.from_dict(h) for h in record.get("history") or ())
        decision = next((h for h in reversed(history) if h.actor.startswith(MODERATOR_ACTOR)), None)
        created_at = str(content["created_at"])
        return cls(
            id=comment_id,
            article_id=record["article_id"],
            name=str(content["name"]),
            email=record.get("email") or "",
            comment=str(content["comment"]),
            status=record["status"],
            created_at=created_at,
            updated_at=history[-1].at if history else created_at,
            parent_id=content.get("parent_id") or None,
            website=content.get("website") or None,
            decided_by=decision.actor.removeprefix(MODERATOR_ACTOR) if decision else None,
            decided_at=decision.at if decision else None,
            note=(decision.note or None) if decision else None,
            email_hash=record.get("email_hash") or "",
            commenter_id=record.get("commenter") or "",
            reasons=tuple(record.get("reasons") or ()),
            history=history,
            source=record.get("source") or "",
            anonymised=bool(record.get("anonymised")),
            version=int(record.get("version") or 1),
            edit_token_hash=record.get("edit_token") or "",
            edits=tuple(record.get("edits") or ()),
        )
