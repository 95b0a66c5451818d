"""Streaming XML through lxml (libxml2) with entity substitution, DTD loading and network
access off; a document that declares any entity (the billion laughs, an external entity) or
names an external DTD is refused before its first element is read, as defusedxml refused them
(what this replaced: its pure-Python expat callbacks were a third of the reader's time).
Records are handed over one at a time and cleared, so memory stays flat whatever the file's
size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, cast

from lxml import etree

from .source import MAX_RECORD_BYTES, BoundedReader, FormatError

# An element of the file being read (the caller reads it before asking for the next record).
Element = etree._Element


# What lxml types a tag as; an element parsed from a file (comments and processing
# instructions removed) always has a str one, "{namespace}local".
Tag = str | bytes | bytearray | etree.QName


def local(tag: Tag) -> str:
    return cast(str, tag).rsplit("}", 1)[-1]


def namespace(tag: Tag) -> str:
    name = cast(str, tag)
    return name[1:].split("}", 1)[0] if name.startswith("{") else ""


def records(
    handle: IO[bytes], root_name: str, record_names: frozenset[str], what: str, depth: int
) -> Iterator[tuple[Element, BoundedReader]]:
    """Each complete element named in ``record_names`` (local names) ``depth`` levels below
    the root (1: its children). The caller reads it before asking for the next: it is cleared
    then."""
    reader = BoundedReader(handle)
    parents: list[Element] = []
    push, pop = parents.append, parents.pop
    events = etree.iterparse(
        reader,
        events=("start", "end"),
        # Entities stay unexpanded references (and any declaration is refused below), no DTD
        # or other resource is fetched, libxml2's limits on a node's size stay on; comments
        # and processing instructions are not elements a reader should meet.
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for event, element in events:
            if event == "start":
                if not parents:
                    _refuse_declarations(element)
                    if local(element.tag) != root_name:
                        raise FormatError(
                            f"not {what}: the document's root is <{local(element.tag)}>, "
                            f"not <{root_name}>"
                        )
                push(element)
                continue
            pop()
            if len(parents) != depth:
                continue
            if local(element.tag) in record_names:
                yield element, reader
                reader.record_done()
                element.clear()
                if parents:
                    parents[-1].remove(element)
    except etree.XMLSyntaxError as error:
        if error.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            # libxml2 refuses a text node over 10 MB (huge_tree off) before the record
            # limit's 32 MiB are read: the same refusal, naming both limits.
            raise FormatError(
                f"a record larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB, or a text in "
                f"it larger than 10 MB, before byte {reader.position}: refused (a broken or "
                "hostile file)"
            ) from None
        raise FormatError(f"not well-formed XML ({error}): truncated or not {what}") from None


def _refuse_declarations(root: Element) -> None:
    """At the root's start the document type, if any, is read whole: refuse one that
    declares entities (internal, external, parameter or unparsed) or names an external DTD.
    Exports never do."""
    info = root.getroottree().docinfo
    dtd = info.internalDTD
    entities = [e.name for e in dtd.iterentities()] if dtd is not None else []
    if entities:
        shown = ", ".join(repr(name) for name in entities[:3])
        detail = f"entities {shown}" + (" and more" if len(entities) > 3 else "")
    elif info.system_url or info.public_id:
        detail = f"an external DTD {info.system_url or info.public_id!r}"
    else:
        return
    raise FormatError(
        f"refused: the file declares entities or refers to external ones ({detail}); "
        "exports never do"
    )


def text(element: Element, name: str) -> str:
    """The text of the child with this local name ("" if none)."""
    for child in element:
        if local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def child(element: Element, name: str) -> Element | None:
    for found in element:
        if local(found.tag) == name:
            return found
    return None
