"""One import: source comments through a live submission's validation, into the store.

For each comment: its article id by the chosen rule (ids that are not valid slugs are reported,
never changed); the submission schema's validation and normalisation (email-validator, length
limits, control and invisible characters); the source's decision kept, or the policy run again
(``--rejudge``); an id of its own time, fixed by its source id (service/ids.py id_at); then a
batch at a time through the store's import room. A reply whose parent is not stored yet waits
for it; one whose parent never comes is stored as a top-level comment and reported.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from marshmallow import Schema, ValidationError

from ..clock import iso_from_ms, parse_iso_ms
from ..documents import render_public
from ..hashing import Hasher
from ..ids import id_at
from ..models import HistoryEntry, StoredComment
from ..moderation.policy import ProfanityFinder, Submission, evaluate_standings
from ..policy_terms import submission_term_hashes
from ..schemas import ARTICLE_ID_PATTERN, make_submission_schemas
from ..store import CommentStore, DecidedComment, Outcome
from ..submissions import load_policy
from .source import Checked, FormatError, Skipped, SourceComment, Thread, Verdict

ARTICLE_RULES = ("slug", "post-id", "thread-id")
_AUTHOR = ("name", "email", "website")
BATCH = 500
# Batches sent to Redis while the next are prepared, each by a thread of its own on a
# connection of its own (Redis runs one batch's scripts while Python builds the next one's
# arguments and validates and renders the one after), and the ids of recent comments kept
# for their replies meanwhile (a reply's parent is close by in every source). Six: with two,
# Redis often finished one batch before the next had been packed and sent (100,000 comments,
# idle machine, alternated runs: 2 in flight 4,557-4,807/s, 4 5,354-5,744/s, 6 5,691-5,865/s).
IN_FLIGHT = 6
RECENT = 5_000
# Per-distinct-value results kept (pure functions of the value): at most this many values.
DISTINCT_REMEMBERED = 100_000
EXAMPLES = 20  # skipped comments and invalid article ids listed by name in the report


@dataclass
class Report:
    dry_run: bool = False
    articles: set[str] = field(default_factory=set)
    stored: Counter[str] = field(default_factory=Counter)  # by status
    already: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    examples: list[str] = field(default_factory=list)
    invalid_articles: Counter[str] = field(default_factory=Counter)
    orphans: int = 0
    closed_articles: set[str] = field(default_factory=set)  # closed at the source
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def skip(self, source: str, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{source}: {reason}" + (f" ({detail})" if detail else ""))

    @property
    def comments(self) -> int:
        return sum(self.stored.values())

    def lines(self) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(self.stored.items())) or "none"
        rate = self.comments / self.seconds if self.seconds else 0.0
        out = [
            f"{verb} {self.comments} comments ({by_status}) into {len(self.articles)} articles "
            f"in {self.seconds:.1f} s ({rate:,.0f}/s)",
            f"already imported (left as they are): {self.already}",
        ]
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items())) or "none"
        out.append(f"skipped: {sum(self.skipped.values())} ({skipped})")
        out += [f"  {example}" for example in self.examples]
        if self.invalid_articles:
            out.append(
                "article ids that are not valid (their comments skipped; use --article-map):"
            )
            out += [
                f"  {a!r}: {n} comments" for a, n in self.invalid_articles.most_common(EXAMPLES)
            ]
        if self.closed_articles:
            out.append(f"articles closed at the source, closed here: {len(self.closed_articles)}")
        if self.orphans:
            out.append(f"replies whose parent is not in the file, stored top-level: {self.orphans}")
        return out


class ArticleRule:
    """--article-id and --article-map: a source thread to an article id, or why not."""

    def __init__(self, rule: str = "slug", mapping: dict[str, str] | None = None) -> None:
        if rule not in ARTICLE_RULES:
            raise ValueError(f"--article-id must be one of {', '.join(ARTICLE_RULES)}")
        self.rule = rule
        self.mapping = mapping
        # Each URL's slug, worked out once: a post's comments all ask for it.
        self.slugs: dict[str | None, str | None] = {}

    @classmethod
    def from_map(cls, path: Path) -> ArticleRule:
        """A CSV of ``source,article_id`` rows; source is a thread's URL, post id or thread id."""
        mapping: dict[str, str] = {}
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if len(row) >= 2 and row[0].strip() and not row[0].startswith("#"):
                    mapping[row[0].strip()] = row[1].strip()
        return cls(mapping=mapping)

    def article_id(self, thread: Thread) -> str | None:
        """The article id, or None when the rule yields none (the caller reports it)."""
        if thread.article_id is not None:
            return thread.article_id
        if self.mapping is not None:
            for candidate in (thread.url, thread.post_id, thread.thread_id):
                if candidate and candidate in self.mapping:
                    return self.mapping[candidate]
            return None
        if self.rule == "post-id":
            return thread.post_id
        if self.rule == "thread-id":
            return thread.thread_id
        try:
            return self.slugs[thread.url]
        except KeyError:
            found = slug(thread.url)
            if len(self.slugs) < DISTINCT_REMEMBERED:
                self.slugs[thread.url] = found
            return found


def slug(url: str | None) -> str | None:
    """The last segment of a URL's path ("https://x.org/2019/05/hello-world/" -> "hello-world")."""
    if not url:
        return None
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return unquote(segments[-1]) if segments else None


def describe(thread: Thread) -> str:
    return thread.url or thread.post_id or thread.thread_id or "?"


class Progress:
    """A bar on a terminal (tqdm), a plain line every few seconds otherwise."""

    def __init__(self, total: int | None, out: TextIO, unit: str, every: float = 5.0) -> None:
        self.total, self.out, self.unit, self.every = total, out, unit, every
        self.bar = None
        self.done = 0
        self.last_line = time.monotonic()
        if out.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, unit_scale=True, file=out)

    def update(self, done: int, comments: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix(comments=comments, refresh=False)
        elif time.monotonic() - self.last_line >= self.every:
            self.last_line = time.monotonic()
            of = f" of {self.total:,}" if self.total else ""
            print(f"read {done:,}{of} {self.unit}, {comments:,} comments", file=self.out)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Ready:
    decided: DecidedComment
    source: str


# A comment on its way to the store: its article id, and its fields' verdict when a reader
# process checked them already (None: checked here, when it is decided).
_Pending = tuple[SourceComment, str, Verdict | None]


class FieldCheck:
    """A live submission's validation and normalisation of a comment's fields: the submission
    schema's own fields (validators, normalisation), without the ones a source has no value
    for (honeypot, commenter key; the parent is resolved by the importer). Pure, so a reader
    process can run it beside the import (reader_process.py).

    The author's fields (name, email, website) are checked once per distinct combination: an
    import meets the same few thousand authors over and over, and their checks were half the
    cost of a comment's. The schema has no check across fields, so checking the text apart and
    joining the two verdicts is the whole schema's verdict."""

    def __init__(self) -> None:
        live = make_submission_schemas(False, remember_emails=True)[0]
        self.author = Schema.from_dict({name: live.fields[name] for name in _AUTHOR})()
        # The text alone through its field, not a schema of one field: the same pre-load,
        # validators and messages (tests/test_imports.py), without a schema load's own cost
        # (7 of 17 us a comment).
        self.text = live.fields["comment"]
        self.authors: dict[tuple[str, str, str | None, bool], dict[str, Any]] = {}

    def __call__(self, item: SourceComment) -> Verdict:
        """The valid fields, or why a live submission with these fields would be refused."""
        # An anonymised comment (erased by its author, its text kept) has no email any more.
        erased = item.anonymised and not item.email
        key = (item.name, item.email, item.website, erased)
        author = self.authors.get(key)
        if author is None:
            fields = {"name": item.name}
            if not erased:
                fields["email"] = item.email
            if item.website:
                fields["website"] = item.website
            author = _load(self.author, fields, ("email",) if erased else False)
            if len(self.authors) < DISTINCT_REMEMBERED:
                self.authors[key] = author
        try:
            text: dict[str, Any] = {"valid": {"comment": self.text.deserialize(item.text)}}
        except ValidationError as error:
            text = {"errors": {"comment": error.messages}}
        if "errors" in author or "errors" in text:
            messages = {**author.get("errors", {}), **text.get("errors", {})}
            return "; ".join(
                f"{name}: {' '.join(map(str, m)) if isinstance(m, list) else m}"
                for name, m in sorted(messages.items())
            )
        return {**author["valid"], **text["valid"]}


def _load(
    schema: Schema, fields: dict[str, Any], partial: tuple[str, ...] | bool
) -> dict[str, Any]:
    """``{"valid": fields}``, or ``{"errors": messages by field}``."""
    try:
        return {"valid": schema.load(fields, partial=partial)}
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
        return {"errors": messages}


class Importer:
    def __init__(
        self,
        store: CommentStore,
        hasher: Hasher,
        *,
        kind: str,
        rule: ArticleRule,
        dry_run: bool = False,
        rejudge: ProfanityFinder | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.kind = kind
        self.rule = rule
        self.dry_run = dry_run
        self.profanity = rejudge
        self.check = FieldCheck()
        self.email_hashes: dict[str, str] = {}
        self.report = Report(dry_run=dry_run)
        self.policy = load_policy(store.policy_json()) if rejudge else None
        # Replies waiting for their parent: parent source id -> the replies.
        self.waiting: dict[tuple[str, str], list[_Pending]] = {}
        self.seen_in_dry_run: set[tuple[str, str]] = set()
        # Oldest first: a plain dict's first key after many deletions is found by scanning the
        # deleted ones (a tenth of the importing thread's time); popitem(last=False) is not.
        self.recent: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.writer = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="import-writer")
        self.lookup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-lookup")
        self.in_flight: deque[tuple[list[_Ready], Future[list[Outcome]]]] = deque()

    def run(
        self,
        items: Iterable[SourceComment | Skipped | Checked],
        progress: Callable[[], int] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Report:
        pending: list[_Pending] = []
        # The batch read before this one, whose lookup runs in Redis while this one is read.
        ahead: tuple[list[_Pending], Future[list[str | None]]] | None = None
        try:
            try:
                for read in items:
                    if isinstance(read, Skipped):
                        self.report.skip(read.source, read.reason, read.detail)
                        continue
                    item, verdict = (
                        (read.item, read.verdict) if isinstance(read, Checked) else (read, None)
                    )
                    article_id = self._article(item)
                    if article_id is not None:
                        pending.append((item, article_id, verdict))
                    if len(pending) >= BATCH:
                        previous, ahead = ahead, None
                        if previous is not None:
                            self._batch(*previous)
                        ahead = (pending, self.lookup.submit(self._look_up, pending))
                        pending = []
                        if on_progress and progress:
                            on_progress(progress(), self.report.comments)
            except FormatError:
                # What was read before a break in the file is stored, as without a lookup
                # ahead (the batch being read when it broke is not).
                if ahead is not None:
                    self._batch(*ahead)
                raise
            if ahead is not None:
                self._batch(*ahead)
            self._batch(pending)
            self._orphans()
            self._drain(0)
        finally:
            self.lookup.shutdown(wait=True)
            self.writer.shutdown(wait=True)
        self.report.seconds = time.monotonic() - self.report.started
        return self.report

    def _article(self, item: SourceComment) -> str | None:
        article_id = self.rule.article_id(item.thread)
        if article_id is None:
            self.report.skip(item.source, "no_article_id", describe(item.thread))
            return None
        if not ARTICLE_ID_PATTERN.fullmatch(article_id):
            self.report.invalid_articles[article_id] += 1
            self.report.skipped["invalid_article_id"] += 1
            return None
        if item.thread.closed:
            self.report.closed_articles.add(article_id)
        return article_id

    def _lookups(self, pending: list[_Pending]) -> list[tuple[str, str]]:
        """The (article, source id) pairs a batch needs: its own and its parents'."""
        lookups: list[tuple[str, str]] = []
        for item, article_id, _ in pending:
            if item.source:
                lookups.append((article_id, item.source))
            if item.parent_source:
                lookups.append((article_id, item.parent_source))
        return lookups

    def _look_up(self, pending: list[_Pending]) -> list[str | None]:
        return self.store.imported_ids(self._lookups(pending))

    def _batch(
        self, pending: list[_Pending], looked_up: Future[list[str | None]] | None = None
    ) -> None:
        """Look up which are stored already and where their parents are (one round trip, or
        ``looked_up`` ahead of time), then store the rest (one more). A lookup ahead of the
        batches before it misses what they store: their ids are in ``recent``, and one stored
        twice is ALREADY_STORED by the script."""
        if not pending:
            return
        lookups = self._lookups(pending)
        ids = self.store.imported_ids(lookups) if looked_up is None else looked_up.result()
        found = dict(zip(lookups, ids, strict=True))
        ready: list[_Ready] = []
        in_batch: dict[tuple[str, str], str] = {}
        # Replies that waited for a comment of this batch join it, after their parent: no
        # lookup and no batch of their own (each one's lookup was a round trip queued behind
        # the batch Redis was running). Each was looked up when it was read, and not stored.
        work, looked_up_count = list(pending), len(pending)
        for position, (item, article_id, verdict) in enumerate(work):
            if (
                position < looked_up_count
                and item.comment_id is None
                and found.get((article_id, item.source))
            ):
                self.report.already += 1
                continue
            parent_id = item.parent_id
            if item.parent_source:
                parent_key = (article_id, item.parent_source)
                parent_id = (
                    found.get(parent_key) or in_batch.get(parent_key) or self.recent.get(parent_key)
                )
                if parent_id is None and parent_key in self.seen_in_dry_run:
                    parent_id = "0" * 26
                if parent_id is None:
                    self.waiting.setdefault(parent_key, []).append((item, article_id, verdict))
                    continue
            decided = self._decide(item, article_id, parent_id, verdict)
            if decided is None:
                continue
            key = (article_id, item.source)
            in_batch[key] = decided.comment.id
            self.recent[key] = decided.comment.id
            if len(self.recent) > RECENT:
                self.recent.popitem(last=False)
            ready.append(_Ready(decided, item.source))
            work += self.waiting.pop(key, ())
        self._store(ready)

    def _store(self, ready: list[_Ready]) -> None:
        if not ready:
            return
        if self.dry_run:
            self.seen_in_dry_run.update((r.decided.comment.article_id, r.source) for r in ready)
            self._count(ready, [Outcome.STORED] * len(ready))
            return
        future = self.writer.submit(self.store.store_decided, [r.decided for r in ready])
        self.in_flight.append((ready, future))
        self._drain(IN_FLIGHT)

    def _drain(self, keep: int) -> None:
        """Wait for the oldest batches in flight until ``keep`` remain; count them."""
        while len(self.in_flight) > keep:
            ready, future = self.in_flight.popleft()
            self._count(ready, future.result())

    def _count(self, ready: list[_Ready], outcomes: list[Outcome]) -> None:
        for r, outcome in zip(ready, outcomes, strict=True):
            if outcome is Outcome.STORED:
                self.report.stored[r.decided.comment.status] += 1
                self.report.articles.add(r.decided.comment.article_id)
            else:
                self.report.already += 1

    def _orphans(self) -> None:
        """Replies whose parent never came (not in the file, or skipped): stored top-level,
        and their own replies after them."""
        while self.waiting:
            _, children = self.waiting.popitem()
            self.report.orphans += len(children)
            self._batch(
                [(dataclasses.replace(c, parent_source=None), a, v) for c, a, v in children]
            )

    def _decide(
        self,
        item: SourceComment,
        article_id: str,
        parent_id: str | None,
        verdict: Verdict | None = None,
    ) -> DecidedComment | None:
        """The comment as the service will hold it, or None (reported) if a live submission
        with these fields would be refused (``verdict``: the fields' check, when done already)."""
        valid = self.check(item) if verdict is None else verdict
        if isinstance(valid, str):
            self.report.skip(item.source or item.comment_id or "?", "invalid", valid)
            return None
        erased = item.anonymised and not item.email
        email = "" if erased else valid["email"]
        status, reasons, history = item.status, item.reasons, item.history
        at = iso_from_ms(item.created_ms)
        if self.policy is not None and self.profanity is not None:
            status, reasons, entry = self._rejudge(item, valid, at)
            history = (entry,)
        elif not history:
            history = (
                HistoryEntry(at=at, actor=f"import:{self.kind}", to=status, note=item.source),
            )
        decided_ms = item.created_ms if history[-1].at == at else parse_iso_ms(history[-1].at)
        comment = StoredComment(
            id=item.comment_id
            or id_at(
                item.created_ms,
                self.hasher.import_seed(item.source),
                self.store.keys.bucket(article_id),
            ),
            article_id=article_id,
            name=valid["name"],
            email=email,
            comment=valid["comment"],
            website=valid.get("website"),
            parent_id=parent_id,
            status=status,
            created_at=at,
            updated_at=history[-1].at,
            email_hash=self._email_hash(email) if email else "",
            commenter_id=item.commenter_id,
            reasons=reasons,
            history=history,
            source=item.source,
            anonymised=item.anonymised,
            version=item.version,
            edits=item.edits,
            edit_token_hash=item.edit_token_hash,
        )
        return DecidedComment(comment, render_public(comment.public()), decided_ms)

    def _email_hash(self, email: str) -> str:
        """The keyed hash of an address, computed once per distinct address (an import meets
        the same few thousand authors over and over)."""
        found = self.email_hashes.get(email)
        if found is None:
            found = self.hasher.email(email)
            if len(self.email_hashes) < DISTINCT_REMEMBERED:
                self.email_hashes[email] = found
        return found

    def _rejudge(
        self, item: SourceComment, valid: dict[str, str], at: str
    ) -> tuple[str, tuple[dict[str, str], ...], HistoryEntry]:
        assert self.policy is not None and self.profanity is not None
        ip = item.client_ip or ""
        email_term, ip_term = submission_term_hashes(
            self.policy, self.hasher, valid.get("email", ""), ip
        )
        verdict = evaluate_standings(
            Submission(
                name=valid["name"],
                email=valid.get("email", ""),
                comment=valid["comment"],
                website=valid.get("website"),
                client_ip=ip,
                honeypot=None,
                email_term_hash=email_term,
                ip_term_hash=ip_term,
            ),
            item.created_ms,
            self.policy,
            self.profanity,
        ).untrusted
        reasons = tuple(r.as_dict() for r in verdict.reasons)
        note = ", ".join(r.code for r in verdict.reasons)
        return (
            verdict.status,
            reasons,
            HistoryEntry(at=at, actor="policy", to=verdict.status, note=note),
        )
