"""The sketch (campaigns.sketch, written for speed) is the one-permutation MinHash its docstring
defines: checked against a plain rendering of that definition, on arbitrary and on generated
texts."""

from __future__ import annotations

import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.campaign_texts import generated
from service.moderation import campaigns
from service.moderation.policy import duplicate_fingerprint


def reference(text: str) -> tuple[int, ...] | None:
    """The definition: the canonical text's words and pairs of adjacent words, each hashed by
    CRC-32 of its UTF-8; each slot (hash mod SLOTS) keeps its smallest hash; an empty slot
    borrows the next filled one's (wrapping round) plus its distance times 2^32."""
    flat = campaigns.canonical(text)
    if len(flat) < campaigns.MIN_LENGTH:
        return None
    words = flat.split()
    shingles = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
    slots: dict[int, int] = {}
    for shingle in shingles:
        value = zlib.crc32(shingle.encode())
        slot = value % campaigns.SLOTS
        slots[slot] = min(slots.get(slot, value), value)
    out = []
    for i in range(campaigns.SLOTS):
        distance = 0
        while (i + distance) % campaigns.SLOTS not in slots:
            distance += 1
        out.append(slots[(i + distance) % campaigns.SLOTS] + distance * (1 << 32))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["vote", "no", "measure", "12", "taxes", "élan", "ǅ", "straße"]),
            st.text(min_size=1, max_size=8),
            # ASCII (the bytes path): punctuation, control characters, underscores, digits.
            st.text(st.characters(max_codepoint=127), min_size=1, max_size=8),
        ),
        max_size=40,
    )
)
def test_the_sketch_is_the_reference_minhash(words: list[str]) -> None:
    text = " ".join(words)
    assert campaigns.sketch(text) == reference(text)
    # A submission sketches its duplicate fingerprint (normalised, whitespace collapsed).
    assert campaigns.sketch_normalized(duplicate_fingerprint(text)) == reference(text)


def test_the_sketch_is_the_reference_minhash_on_generated_texts() -> None:
    rng = random.Random(5)
    texts = [item.text for item in generated(seed=7)]
    # Short ones too: few shingles, so empty slots that borrow.
    texts += [" ".join(rng.sample(t.split(), min(8, len(t.split())))) for t in texts[:200]]
    borrowed = 0
    for text in texts:
        expected = reference(text)
        assert campaigns.sketch(text) == expected
        borrowed += expected is not None and any(v >= 1 << 32 for v in expected)
    assert borrowed > 50  # the borrowing path was exercised
