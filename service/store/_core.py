"""What every room of the store shares: the client, the key schema, the cipher, the caches and
the registered scripts. Only the store's rooms use it; callers use :class:`CommentStore`."""

from __future__ import annotations

from typing import ClassVar

from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError

from ..clock import iso_from_ms
from ..crypto import Cipher
from ..events import EventRetention
from ..tracked_cache import TrackedCache
from . import scripts
from .client import RedisClient
from .durability import ReplicaWait, WriteScript
from .keys import Keys
from .steps import StepFault


class StoreCore:
    # Tests only: every store runs split changes stepped, as on a cluster (TEST_STEPS=stepped).
    force_stepped: ClassVar[bool] = False

    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        cipher: Cipher,
        cache: TrackedCache | None = None,
        *,
        moderation_cache: TrackedCache | None = None,
        event_retention: EventRetention | None = None,
        wait_replicas: int | None = None,
        wait_timeout_ms: int = 500,
    ) -> None:
        self.redis = redis
        # Each acknowledging write waits for this many replicas (None: as the topology has
        # them); see durability.py.
        self.replica_wait = ReplicaWait(redis, wait_replicas, wait_timeout_ms)
        self.replica_wait.on_redirect = self._slots_moved

        def write(source: str, what: str) -> WriteScript:
            return WriteScript(redis.register_script(source), self.replica_wait, what)

        def script(source: str) -> WriteScript:  # a read, or a lease: nothing to wait for
            return WriteScript(redis.register_script(source))

        self.keys = keys
        self.cipher = cipher
        # Without caches every read goes to Redis (tests, the CLI). ``cache`` holds what
        # public reads, submissions and token checks use; ``moderation_cache`` the moderator
        # listings, whose keys every submission changes (see Keys.*_tracked_prefixes).
        self.cache = cache
        self.moderation_cache = moderation_cache
        self._anonymise = write(scripts.ANONYMISE_COMMENT, "anonymise")
        self._insert = write(scripts.INSERT_COMMENT, "insert")
        # Split changes (steps.py): one script on a single server; on a cluster one script a
        # step, each in its own tag's slot. ``stepped`` is set by tests to run the steps on a
        # single server too; ``step_fault`` (tests) is told after each step and may raise.
        self.stepped = self.force_stepped or isinstance(redis, RedisCluster)
        self.step_fault: StepFault | None = None
        self._transition = write(scripts.TRANSITION_COMMENT.combined, "decision")
        first, *post = scripts.TRANSITION_COMMENT.steps
        # The bucket step acknowledges the decision (WAIT); the post-steps go without it.
        self._transition_steps = [write(first, "decision"), *(script(s) for s in post)]
        self._delete = write(scripts.DELETE_COMMENT, "deletion")
        self._public_page = script(scripts.PUBLIC_PAGE)
        self._merged_page = script(scripts.MERGED_PAGE)
        self._forget_author = write(scripts.FORGET_AUTHOR, "erasure")
        self._read_comments = script(scripts.READ_COMMENTS)
        self._latest_public = script(scripts.LATEST_PUBLIC)
        self.event_retention = event_retention or EventRetention()
        self._save_policy = write(scripts.SAVE_POLICY, "policy")
        self._set_article_closed = write(scripts.SET_ARTICLE_CLOSED, "article closed")
        self._save_moderator = write(scripts.SAVE_MODERATOR, "moderator")
        self._hold_lease = script(scripts.HOLD_LEASE)
        self._claim_script = script(scripts.CLAIM_COMMENT)
        self._release_claim = script(scripts.RELEASE_CLAIM)
        self._begin_idempotent = script(scripts.BEGIN_IDEMPOTENT)
        self._report = write(scripts.REPORT_COMMENT, "report")
        self._finish_review = write(scripts.FINISH_REVIEW, "review")
        self._edit = write(scripts.EDIT_COMMENT, "edit")

    def ping(self) -> bool:
        """Ready to serve: the server answers; on a cluster, every primary answers and each
        sees the cluster's state as ok (raises otherwise: the readiness probe's 503)."""
        if not isinstance(self.redis, RedisCluster):
            return bool(self.redis.ping())
        for node in self.redis.get_primaries():  # type: ignore[no-untyped-call]
            server = self.redis.get_redis_connection(node)
            server.ping()
            info = str(server.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
            fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
            state = fields.get("cluster_state")
            if state != "ok":
                raise ClusterDownError(f"{node.name} sees the cluster state as {state}")
        return True

    def _slots_moved(self) -> None:
        for cache in (self.cache, self.moderation_cache):
            if cache:
                cache.topology_changed()

    def _changed(self, *keys: str) -> None:
        """Our own writes: forget what they touched now, not when Redis's message arrives."""
        for cache in (self.cache, self.moderation_cache):
            if cache:
                cache.invalidate(list(keys))

    def _event_args(self, actor: str, now_ms: int, *, per_bucket: bool) -> list[str | int]:
        """at, actor, MAXLEN, MINID: how the site-wide scripts take their event (an article's
        settings append to its bucket's stream: ``per_bucket``)."""
        maxlen, minid, _ = self.event_retention.script_args(now_ms, per_bucket=per_bucket)
        return [iso_from_ms(now_ms), actor, maxlen, minid]

    def _after_step(self, kind: str, step: int) -> None:
        if self.step_fault is not None:
            self.step_fault(kind, step)

    def try_lock(self, name: str, seconds: int) -> bool:
        return bool(self.redis.set(self.keys.lock(name), "1", nx=True, ex=seconds))
