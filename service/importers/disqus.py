"""A Disqus XML export: ``<thread dsq:id>`` elements (``id`` the site's identifier, ``link``,
``isClosed``), then ``<post dsq:id>`` elements (``message`` as HTML, ``createdAt``,
``isDeleted``, ``isSpam``, ``author`` with ``name`` and ``email``, ``ipAddress``,
``thread dsq:id``, ``parent dsq:id``). Threads come before their posts in an export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from ..clock import parse_iso_ms
from ..states import Status
from .html_text import html_to_text
from .source import FormatError, Skipped, SourceComment, Thread
from .xml_stream import child, local, records, text

DSQ = "{http://disqus.com/disqus-internals}id"


def read(handle: IO[bytes]) -> Iterator[SourceComment | Skipped]:
    threads: dict[str, Thread] = {}
    for element, _ in records(
        handle, "disqus", frozenset({"thread", "post", "category"}), "a Disqus export", 1
    ):
        name = local(element.tag)
        if name == "category":
            continue
        key = element.get(DSQ) or ""
        if name == "thread":
            threads[key] = Thread(
                url=text(element, "link") or None,
                post_id=key or None,
                thread_id=text(element, "id") or None,
                closed=text(element, "isClosed") == "true",
            )
            continue
        source = f"disqus:{key}"
        if not key:
            raise FormatError("not a Disqus export: a <post> without dsq:id")
        thread_ref = child(element, "thread")
        thread = threads.get(thread_ref.get(DSQ) or "" if thread_ref is not None else "")
        if thread is None:
            yield Skipped(source, "unknown_thread")
            continue
        try:
            created = parse_iso_ms(text(element, "createdAt"))
        except ValueError:
            yield Skipped(source, "no_date")
            continue
        if text(element, "isSpam") == "true":
            status = Status.SPAM
        elif text(element, "isDeleted") == "true":
            status = Status.REJECTED
        elif text(element, "isApproved") == "false":
            status = Status.PENDING
        else:
            status = Status.APPROVED
        author = child(element, "author")
        parent = child(element, "parent")
        parent_key = parent.get(DSQ) if parent is not None else None
        message = child(element, "message")
        yield SourceComment(
            source=source,
            thread=thread,
            parent_source=f"disqus:{parent_key}" if parent_key else None,
            name=text(author, "name") if author is not None else "",
            email=text(author, "email") if author is not None else "",
            website=None,
            text=html_to_text(
                (message.text or "") if message is not None else "", keep_newlines=False
            ),
            created_ms=created,
            status=status.value,
            client_ip=text(element, "ipAddress") or None,
        )
