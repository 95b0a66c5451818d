"""Streaming XML through defusedxml: entity declarations (the billion laughs), external
entities and DTD-fetched resources are refused; records are handed over one at a time and
cleared, so memory stays flat whatever the file's size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from .source import BoundedReader, FormatError


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def records(
    handle: IO[bytes], root_name: str, record_names: frozenset[str], what: str, depth: int
) -> Iterator[tuple[Element, BoundedReader]]:
    """Each complete element named in ``record_names`` (local names) ``depth`` levels below
    the root (1: its children). The caller reads it before asking for the next: it is cleared
    then."""
    reader = BoundedReader(handle)
    parents: list[Element] = []
    push, pop = parents.append, parents.pop
    try:
        for event, element in iterparse(reader, events=("start", "end")):
            if event == "start":
                if not parents and local(element.tag) != root_name:
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
    except DefusedXmlException as error:
        raise FormatError(
            f"refused: the file declares entities or refers to external ones ({error}); "
            "exports never do"
        ) from None
    except ParseError as error:
        raise FormatError(f"not well-formed XML ({error}): truncated or not {what}") from None


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
