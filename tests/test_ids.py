"""Comment ids: their time order, the article bucket they carry, and the encoding against the
plain 5 bits a character reading of ULID's layout."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import ids
from service.ids import _ALPHABET, _encode, id_at, id_bucket, id_time_ms, is_valid_id, new_id
from service.store.keys import BUCKETS, Keys, article_bucket

NOW = 1_764_633_600_000


@pytest.fixture(autouse=True)
def no_earlier_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: ids made earlier in this one (later in
    time) would otherwise have each bucket's ids count up from theirs."""
    monkeypatch.setattr(ids, "_last", {})


@pytest.mark.parametrize("bucket", [0, 1, 17, 128, BUCKETS - 1])
def test_an_id_carries_its_bucket_and_its_time(bucket: int) -> None:
    for _ in range(50):
        made = new_id(NOW, bucket)
        assert is_valid_id(made)
        assert id_bucket(made) == bucket
        assert id_time_ms(made) == NOW


def test_ids_of_one_bucket_keep_their_order_inside_one_millisecond() -> None:
    made = [new_id(NOW + 5, 42) for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == 1000
    assert {id_bucket(i) for i in made} == {42}


def test_buckets_interleaved_in_one_millisecond_each_stay_ordered_and_keep_their_bucket() -> None:
    made: dict[int, list[str]] = collections.defaultdict(list)
    for n in range(600):
        bucket = n % 3
        made[bucket].append(new_id(NOW + 9, bucket))
    for bucket, made_ids in made.items():
        assert made_ids == sorted(made_ids)
        assert {id_bucket(i) for i in made_ids} == {bucket}


def test_an_imported_id_is_fixed_by_its_seed_and_carries_its_bucket() -> None:
    seed = "0123456789abcdef0123456789"
    first = id_at(NOW, seed, 200)
    assert first == id_at(NOW, seed, 200)
    assert id_bucket(first) == 200
    assert id_time_ms(first) == NOW
    assert id_at(NOW, seed, 201) != first


def test_a_bucket_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        new_id(NOW, BUCKETS)
    with pytest.raises(ValueError, match="bucket"):
        id_at(NOW, "0" * 20, -1)


def test_ids_without_a_bucket_keep_80_random_bits() -> None:
    buckets = {id_bucket(new_id(NOW + n)) for n in range(2000)}
    assert len(buckets) > BUCKETS // 2  # spread over the range, not stamped


def test_articles_spread_evenly_over_the_buckets() -> None:
    counts = collections.Counter(article_bucket(f"article-{n}") for n in range(25_600))
    assert len(counts) == BUCKETS
    assert max(counts.values()) < 2 * 25_600 / BUCKETS
    assert Keys().bucket("article-7") == article_bucket("article-7")


def reference(value: int) -> str:
    return "".join(_ALPHABET[(value >> (5 * (25 - i))) & 31] for i in range(26))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_encode_equals_five_bits_a_character(value: int) -> None:
    assert _encode(value) == reference(value)


def test_encode_edges() -> None:
    assert _encode(0) == "0" * 26
    assert _encode(2**128 - 1) == "7" + "Z" * 25
    made = id_at(1_600_000_000_123, "f" * 20)
    assert is_valid_id(made) and id_time_ms(made) == 1_600_000_000_123
