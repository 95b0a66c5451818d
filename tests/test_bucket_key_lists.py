"""Every bucket's key of a kind (the merged listings' indexes) is made once per kind and is
the same as the bucket-by-bucket names, per Keys (prefix and class)."""

from __future__ import annotations

from service.states import Status
from service.store.keys import BUCKETS, Keys


class TaggedKeys(Keys):
    """Another layout: a class of its own must not share the first one's lists."""

    def _key(self, tag: str, kind: str, *parts: str) -> str:
        return "other:" + super()._key(tag, kind, *parts)


class PerBucketKeys(Keys):
    """A layout that names one kind per bucket its own way (as tests/sharded_keys.py does)."""

    def status_index(self, status: str, bucket: int | str) -> str:
        return f"{{b{bucket}}}:" + super().status_index(status, bucket)


def test_a_subclass_s_own_names_are_the_lists_names() -> None:
    keys = PerBucketKeys("cm")
    assert keys.status_indexes("pending")[7] == keys.status_index("pending", 7)
    assert keys.status_indexes("pending")[7].startswith("{b7}:")


def test_the_lists_are_every_bucket_s_names_in_order() -> None:
    keys = Keys("cm")
    assert keys.status_indexes(Status.PENDING) == tuple(
        keys.status_index(Status.PENDING, b) for b in range(BUCKETS)
    )
    assert keys.status_indexes("pending") == keys.status_indexes(Status.PENDING)
    assert keys.reason_status_indexes("campaign", "pending") == tuple(
        keys.reason_status_index("campaign", "pending", b) for b in range(BUCKETS)
    )
    assert keys.reported_indexes() == tuple(keys.reported(b) for b in range(BUCKETS))


def test_a_list_is_made_once_per_keys_and_kind() -> None:
    keys = Keys("cm")
    assert keys.status_indexes("approved") is keys.status_indexes("approved")
    assert Keys("cm").status_indexes("approved") is keys.status_indexes("approved")
    other_prefix = Keys("xy").status_indexes("approved")
    assert other_prefix[0].startswith("xy:")
    other_class = TaggedKeys("cm").status_indexes("approved")
    assert other_class[0].startswith("other:cm:")
    assert keys.status_indexes("approved")[0].startswith("cm:")
